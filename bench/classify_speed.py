"""Speed of `mgz classify`: 1,000 new passages with embeddings, then the same passages again
(embeddings cached in the store), against the bare encoder on the same texts in this process.

Bars (issue 4): 1,000 new passages in < 60 s on 2 cores; re-classifying
already-embedded passages at >= 500 passages/s.

    python bench/classify_speed.py [--models models] [--n 1000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from pipeline.classify import PassageInput, classify_items, load_model
from pipeline.codebook import load_codebook
from pipeline.embeddings import make_encoder
from pipeline.ingest import ExtractJob, extract_many
from pipeline.nlp import load_glossary, make_nlp
from pipeline.store import open_store

ROOT = Path(__file__).resolve().parent.parent


def corpus_passages(n: int) -> list[PassageInput]:
    items: list[PassageInput] = []
    for result in extract_many([ExtractJob(str(p)) for p in sorted((ROOT / "corpus").glob("*.pdf"))], workers=2):
        assert result.document is not None
        doc = result.document
        items += [PassageInput(p.id, p.text, " > ".join(p.section), "", "", p.kind, doc.doc_id) for p in doc.passages]
    items = [i for i in items if i.kind != "heading"]
    while len(items) < n:  # repeat with a marker so the texts stay distinct (nothing cached)
        items += [PassageInput(f"{i.id}-{len(items)}", f"{i.text} ({len(items)})") for i in items[: n - len(items)]]
    return items[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--models", type=Path, default=ROOT / "models")
    parser.add_argument("--n", type=int, default=1000)
    args = parser.parse_args()
    codebook = load_codebook()
    model, card = load_model(args.models, codebook)
    nlp = make_nlp(load_glossary())
    items = corpus_passages(args.n)
    with tempfile.TemporaryDirectory() as tmp:
        engine = open_store(f"sqlite:///{tmp}/bench.sqlite")
        encoder = make_encoder("e5")
        encoder.encode(["opwarmen"])  # load weights outside the timings

        start = time.perf_counter()
        encoder.encode([i.text for i in items])
        bare = time.perf_counter() - start

        start = time.perf_counter()
        classify_items(model, card, items, nlp, encoder, engine)
        cold = time.perf_counter() - start

        start = time.perf_counter()
        classify_items(model, card, items, nlp, encoder, engine)
        warm = time.perf_counter() - start
    n = len(items)
    print(f"{n} passages, model {card['model_version']}, encoder {card['encoder']}")
    print(f"  bare encoder only          {bare:6.1f} s  ({n / bare:6.0f} passages/s)")
    print(f"  classify, new passages     {cold:6.1f} s  ({n / cold:6.0f} passages/s)  bar: < 60 s")
    print(f"  classify, cached embedding {warm:6.1f} s  ({n / warm:6.0f} passages/s)  bar: >= 500 passages/s")
    print(f"  classify (new) / bare encoder: {cold / bare:.2f}x;  cached / new: {warm / cold:.3f}x")


if __name__ == "__main__":
    main()
