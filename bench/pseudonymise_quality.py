"""Person-name detectors against the hand-made gold set (issue 21).

Candidates:

* ``rules``: :func:`pipeline.pseudonymise.detect` (titles, initials, particles,
  speaker labels, citations, propagation; lexicon from spaCy's lookup tables),
  run with an empty allow-list so detection is measured, not the policy;
* ``deduce``: the Dutch de-identification package (rule and lookup based). It
  pins ``regex<2025`` while this project's environment has a newer ``regex``
  (transformers, dateparser), so it runs in its own virtualenv, named by
  ``--deduce-python`` (``python -m venv V && V/bin/pip install deduce``);
* ``rules+deduce``: the union, keeping deduce's person hits only when one of
  their words is not ordinary Dutch in that text (drops "Box 1", "Kern", "Punt");
* ``frog``: Frog's NER (``--frog``, Debian package ``frog``), PER entities.

Figures per document and overall: mention-level recall/precision (a gold
mention counts as found when a predicted person span overlaps it; a predicted
span is correct when it overlaps a gold person mention) and token-level
recall/precision (word tokens ``\\w+`` inside the spans). Texts come from
``mgz extract --format json`` (the ``text`` field), run here unless
``--extracted DIR`` holds them. Also times each detector on the whole corpus.

    python bench/pseudonymise_quality.py --deduce-python /tmp/deduce-venv/bin/python
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.pseudonymise import (  # noqa: E402
    PERSON,
    AllowList,
    Pseudonyms,
    detect,
    dutch_words,
    load_allow_list,
    pseudonymise,
)

GOLD = ROOT / "data" / "pseudonymisation" / "gold.jsonl"

DEDUCE_SCRIPT = r"""
import json, sys, time
t0 = time.perf_counter()
from deduce import Deduce
d = Deduce()
init = time.perf_counter() - t0
texts = json.load(sys.stdin)
out, t1 = {}, time.perf_counter()
for doc, text in texts.items():
    r = d.deidentify(text)
    out[doc] = [[a.start_char, a.end_char, a.tag] for a in r.annotations]
json.dump({"init_s": init, "run_s": time.perf_counter() - t1, "spans": out}, sys.stdout)
"""


def load_texts(extracted: Path | None, docs: list[str]) -> dict[str, str]:
    texts = {}
    for doc in docs:
        if extracted is not None:
            data = json.loads((extracted / f"{doc}.json").read_text("utf-8"))
        else:
            out = subprocess.run(
                [str(ROOT / ".venv" / "bin" / "mgz"), "extract", "--format", "json",
                 str(ROOT / "corpus" / f"{doc}.pdf")],
                capture_output=True, text=True, check=True,
            )
            data = json.loads(out.stdout)
        texts[doc] = data["text"]
    return texts


def run_deduce(python: str, texts: dict[str, str]) -> dict:
    proc = subprocess.run([python, "-c", DEDUCE_SCRIPT], input=json.dumps(texts),
                          capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def run_frog(texts: dict[str, str]) -> tuple[dict[str, list[tuple[int, int]]], float]:
    """PER entities from Frog, mapped back onto the text by token search."""
    spans: dict[str, list[tuple[int, int]]] = {}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for doc, text in texts.items():
            src, dst = Path(tmp) / f"{doc}.txt", Path(tmp) / f"{doc}.frog"
            src.write_text(text, "utf-8")
            subprocess.run(["frog", "-t", str(src), "--skip=mcp", "-o", str(dst)],
                           capture_output=True, check=True)
            found, cursor = [], 0
            for line in dst.read_text("utf-8").splitlines():
                cols = line.split("\t")
                if len(cols) < 7:
                    continue
                token, ner = cols[1], cols[6]
                pos = text.find(token, cursor)
                if pos < 0:
                    continue
                cursor = pos + len(token)
                if ner.endswith("-per") or ner.endswith("-PER"):
                    found.append((pos, cursor))
            spans[doc] = _merge_adjacent(text, found)
    return spans, time.perf_counter() - t0


def _merge_adjacent(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(spans):
        if out and re.fullmatch(r"[ \t]?", text[out[-1][1]:s]):
            out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
    return out


def _tokens(text: str, spans: list[tuple[int, int]]) -> set[int]:
    """Start offsets of the word tokens that lie in (or overlap) the spans."""
    starts = set()
    for s, e in spans:
        for m in re.finditer(r"\w+", text[s:e]):
            starts.add(s + m.start())
    return starts


def score(text: str, gold: list[tuple[int, int]], pred: list[tuple[int, int]]) -> dict[str, float]:
    def overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
        return a[0] < b[1] and b[0] < a[1]

    found = sum(any(overlaps(g, p) for p in pred) for g in gold)
    correct = sum(any(overlaps(p, g) for g in gold) for p in pred)
    gt, pt = _tokens(text, gold), _tokens(text, pred)
    return {
        "gold": len(gold), "pred": len(pred),
        "mention_recall": found / len(gold) if gold else 1.0,
        "mention_precision": correct / len(pred) if pred else 1.0,
        "token_recall": len(gt & pt) / len(gt) if gt else 1.0,
        "token_precision": len(gt & pt) / len(pt) if pt else 1.0,
        "missed": [text[g[0]:g[1]] for g in gold if not any(overlaps(g, p) for p in pred)],
        "false": [text[p[0]:p[1]] for p in pred if not any(overlaps(p, g) for g in gold)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--extracted", type=Path, help="folder with <doc_id>.json from mgz extract")
    parser.add_argument("--deduce-python", help="a python with deduce installed")
    parser.add_argument("--frog", action="store_true", help="also run Frog's NER")
    parser.add_argument("--json", type=Path, help="write all figures here")
    args = parser.parse_args()

    gold_rows = [json.loads(line) for line in GOLD.read_text("utf-8").splitlines() if line]
    docs = sorted({r["doc_id"] for r in gold_rows})
    texts = load_texts(args.extracted, docs)
    for r in gold_rows:
        sha = hashlib.sha256(texts[r["doc_id"]].encode("utf-8")).hexdigest()
        if sha != r["text_sha256"]:
            raise SystemExit(f"{r['doc_id']}: extracted text differs from the gold set's text")
    gold = {d: [(r["start"], r["end"]) for r in gold_rows if r["doc_id"] == d and r["type"] == PERSON]
            for d in docs}

    bundled = load_allow_list()
    no_allow = AllowList(protected=bundled.protected)
    preds: dict[str, dict[str, list[tuple[int, int]]]] = {}
    timing: dict[str, str] = {}

    t0 = time.perf_counter()
    dutch_words()
    lexicon_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    rule_spans = {d: [s for s in detect(texts[d], no_allow) if s.kind == PERSON] for d in docs}
    rules_s = time.perf_counter() - t0
    preds["rules"] = {d: [(s.start, s.end) for s in v] for d, v in rule_spans.items()}
    timing["rules"] = f"{rules_s:.2f} s detection + {lexicon_s:.2f} s lexicon load (once per process)"

    if args.deduce_python:
        result = run_deduce(args.deduce_python, texts)
        preds["deduce"] = {d: sorted((s, e) for s, e, tag in result["spans"][d] if tag == "persoon")
                           for d in docs}
        timing["deduce"] = f"{result['run_s']:.2f} s detection + {result['init_s']:.2f} s start-up"
        lexicon = dutch_words()
        combined = {}
        for d in docs:
            lower = set(re.findall(r"\b[a-zß-ÿ][\w-]*", texts[d]))
            extra = [(s, e) for s, e in preds["deduce"][d]
                     if any(w.lower() not in lexicon and w.lower() not in lower
                            for w in re.findall(r"[A-ZÀ-Ý][\w-]+", texts[d][s:e]))]
            merged = sorted(set(preds["rules"][d]) | set(extra))
            keep: list[tuple[int, int]] = []
            for s, e in sorted(merged, key=lambda x: (x[0], -x[1])):
                if keep and s < keep[-1][1]:
                    keep[-1] = (keep[-1][0], max(e, keep[-1][1]))
                else:
                    keep.append((s, e))
            combined[d] = keep
        preds["rules+deduce"] = combined
        timing["rules+deduce"] = "sum of both"
    if args.frog:
        preds["frog"], frog_s = run_frog(texts)
        timing["frog"] = f"{frog_s:.1f} s (start-up per document included)"

    report: dict[str, dict] = {}
    for name, by_doc in preds.items():
        report[name] = {}
        print(f"\n== {name}  ({timing[name]})")
        print(f"{'document':36} {'gold':>4} {'pred':>4} {'m-rec':>6} {'m-prec':>6} {'t-rec':>6} {'t-prec':>6}")
        all_text = "\n".join(texts[d] for d in docs)
        offset, all_gold, all_pred = 0, [], []
        for d in docs:
            sc = score(texts[d], gold[d], by_doc[d])
            report[name][d] = sc
            print(f"{d:36} {sc['gold']:>4} {sc['pred']:>4} {sc['mention_recall']:6.3f} "
                  f"{sc['mention_precision']:6.3f} {sc['token_recall']:6.3f} {sc['token_precision']:6.3f}")
            if sc["missed"]:
                print(f"    missed: {sc['missed']}")
            if sc["false"]:
                print(f"    false:  {sorted(set(sc['false']))} ({len(sc['false'])})")
            all_gold += [(s + offset, e + offset) for s, e in gold[d]]
            all_pred += [(s + offset, e + offset) for s, e in by_doc[d]]
            offset += len(texts[d]) + 1
        sc = score(all_text, all_gold, all_pred)
        report[name]["all"] = sc
        print(f"{'ALL':36} {sc['gold']:>4} {sc['pred']:>4} {sc['mention_recall']:6.3f} "
              f"{sc['mention_precision']:6.3f} {sc['token_recall']:6.3f} {sc['token_precision']:6.3f}")

    # The policy on top of detection: with the bundled allow-list and cited
    # authors kept, how many research-subject mentions are replaced, and does
    # any subject's name survive in the pseudonymised text?
    mapping = Pseudonyms()
    subjects = [r for r in gold_rows if r["type"] == PERSON and r["subject"]]
    t0 = time.perf_counter()
    out = {d: pseudonymise(texts[d], detect(texts[d], bundled), mapping)[0] for d in docs}
    pseudo_s = time.perf_counter() - t0
    leaked = sorted({r["text"] for r in subjects for w in r["text"].split()
                     if re.search(rf"\b{w}\b", out[r["doc_id"]])})
    print(f"\npseudonymise (bundled allow-list, cited kept): corpus in {pseudo_s:.2f} s; "
          f"{len(subjects)} subject mentions; subject names left in the output: {leaked or 'none'}; "
          f"pseudonyms: {len(mapping.numbers)}")
    report["policy"] = {"seconds": pseudo_s, "subject_mentions": len(subjects), "leaked": leaked}
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False), "utf-8")


if __name__ == "__main__":
    main()
