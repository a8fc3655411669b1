"""Lookup lemmas (spaCy + spacy-lookups-data) against Frog as a spaCy component.

Accuracy on the hand-lemmatized gold sentences in data/lemma-gold/ (tokens with a
letter, case-insensitive), and speed on the same passages in this one process,
as a ratio.

    python bench/lemmatizers.py
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from spacy.tokens import Doc

from pipeline.nlp import FROG_COMPONENT, frog_available, load_glossary, make_nlp

ROOT = Path(__file__).resolve().parent.parent
GOLD = ROOT / "data" / "lemma-gold"


def accuracy(nlp, component: str, sentences: list[dict], gold: dict[tuple[int, int], str]) -> tuple[float, int]:
    docs = [Doc(nlp.vocab, words=s["tokens"]) for s in sentences]
    pipe = nlp.get_pipe(component)
    docs = list(pipe.pipe(docs)) if hasattr(pipe, "pipe") else [pipe(d) for d in docs]
    hits = total = 0
    for s, doc in zip(sentences, docs, strict=True):
        for i, token in enumerate(doc):
            if (s["sent_id"], i) in gold:
                total += 1
                hits += (token.lemma_ or token.text).lower() == gold[(s["sent_id"], i)].lower()
    return hits / max(1, total), total


def main() -> None:
    sentences = [json.loads(line) for line in (GOLD / "sentences.jsonl").read_text("utf-8").splitlines()]
    gold = {
        (r["sent_id"], r["index"]): r["lemma"]
        for r in map(json.loads, (GOLD / "gold.jsonl").read_text("utf-8").splitlines())
    }
    glossary = load_glossary()
    lookup = make_nlp(glossary, lemmatizer="lookup")
    texts = [" ".join(s["tokens"]) for s in sentences] * 20
    results = {}
    acc, n = accuracy(lookup, "lemmatizer", sentences, gold)
    start = time.perf_counter()
    list(lookup.pipe(texts))
    results["lookup"] = (acc, time.perf_counter() - start)
    if frog_available():
        frog = make_nlp(glossary, lemmatizer="frog")
        acc, _ = accuracy(frog, FROG_COMPONENT, sentences, gold)
        start = time.perf_counter()
        list(frog.pipe(texts))
        results["frog"] = (acc, time.perf_counter() - start)
    print(f"gold: {n} tokens in {len(sentences)} sentences; speed on {len(texts)} sentences")
    for name, (acc, seconds) in results.items():
        print(f"  {name:7s} lemma accuracy {acc:.3f}   {len(texts) / seconds:8.0f} sentences/s")
    if "frog" in results:
        print(
            f"frog vs lookup: accuracy {results['frog'][0] - results['lookup'][0]:+.3f}, "
            f"time {results['frog'][1] / results['lookup'][1]:.1f}x"
        )


if __name__ == "__main__":
    main()
