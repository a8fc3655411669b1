"""Do model-assisted estimates keep their promise? Coverage by simulation on the bundled corpus.

For every bundled document the model is the leave-one-document-out model (it
never saw the document it estimates; `bench/lodo_predictions.py`), the truth is
the reference coding of all the document's content passages, and an "audit
sample" is a simple random sample of them whose reference labels play the
analyst. For audit samples of 20, 40 and 10 % of each document, repeated 1,000
times, it reports per label (every polarity label, every condition):

- coverage: the share of 95 % intervals that contain the true share
  (PPI++ from `pipeline/estimate.py`, and the classical interval from the audit
  sample alone);
- mean interval width, PPI++ against classical;
- the absolute error of the plain model count (what the matrices showed before).

    python bench/estimate_coverage.py [--predictions outputs/bench/lodo-predictions.jsonl]
        [--reps 1000] [--scores labels|probabilities] [--csv docs/estimate-coverage.csv]

With --csv, the sector-level results (documents as strata, differences between
sectors) go to the same name with "-sectors" added.

Runs `bench/lodo_predictions.py` first when its cache is missing (slow).
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from pipeline.codebook import load_codebook
from pipeline.estimate import (
    DEFAULT_CONFIDENCE,
    classical_share,
    combine,
    difference,
    label_indicator,
    label_score,
    ppi_share,
)
from pipeline.matrices import CONTENT_KINDS

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_PREDICTIONS = ROOT / "outputs" / "bench" / "lodo-predictions.jsonl"
SIZES = ("20", "40", "10%")


def load_rows(path: Path) -> list[dict]:
    if not path.exists():
        subprocess.run([sys.executable, str(ROOT / "bench" / "lodo_predictions.py"), "--out", str(path)], check=True)
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r for r in rows if r["kind"] in CONTENT_KINDS]


def audit_size(size: str, n_total: int) -> int:
    return max(2, round(n_total * float(size[:-1]) / 100)) if size.endswith("%") else min(int(size), n_total - 1)


def simulate(
    y: np.ndarray, yhat: np.ndarray, model_labels: np.ndarray, n: int, reps: int, rng: np.random.Generator
) -> dict:
    truth = float(y.mean())
    covered = covered_classical = 0
    width = width_classical = 0.0
    N = len(y)
    for _ in range(reps):
        sample = rng.choice(N, size=n, replace=False)
        e = ppi_share(y[sample], yhat[sample], yhat, DEFAULT_CONFIDENCE)
        c = classical_share(y[sample], N, DEFAULT_CONFIDENCE)
        covered += e.ci_low <= truth <= e.ci_high
        covered_classical += c.ci_low <= truth <= c.ci_high
        width += e.ci_high - e.ci_low
        width_classical += c.ci_high - c.ci_low
    return {
        "true_share": round(truth, 4),
        "model_share": round(float(model_labels.mean()), 4),
        "model_abs_error": round(abs(float(model_labels.mean()) - truth), 4),
        "coverage_ppi": round(covered / reps, 3),
        "coverage_classical": round(covered_classical / reps, 3),
        "width_ppi": round(width / reps, 4),
        "width_classical": round(width_classical / reps, 4),
    }


def strata(
    docs: list[tuple[np.ndarray, np.ndarray]], n: int, reps: int, rng: np.random.Generator
) -> list:
    """One draw of per-document estimates for each repetition (the same draws serve sectors and differences)."""
    out = []
    for _ in range(reps):
        parts = []
        for y, yhat in docs:
            sample = rng.choice(len(y), size=min(n, len(y) - 1), replace=False)
            parts.append(ppi_share(y[sample], yhat[sample], yhat, DEFAULT_CONFIDENCE))
        out.append(combine(parts, DEFAULT_CONFIDENCE))
    return out


def sector_coverage(rows: list[dict], targets, use_scores: bool, reps: int, rng: np.random.Generator) -> list[dict]:
    """Stratified sector estimates (documents as strata) and differences between sectors: coverage."""
    sectors: dict[str, dict[str, list[dict]]] = {}
    for r in rows:
        sectors.setdefault(r["sector"], {}).setdefault(r["doc_id"], []).append(r)
    results = []
    for field, label in targets:
        arrays = {
            sector: [
                (np.array([label_indicator(r["reference"], field, label) for r in doc]),
                 np.array([label_score(r["prediction"], field, label, use_scores) for r in doc]))
                for doc in docs.values()
            ]
            for sector, docs in sectors.items()
        }  # fmt: skip
        truth = {s: sum(y.sum() for y, _ in a) / sum(len(y) for y, _ in a) for s, a in arrays.items()}
        for n in (20, 40):
            draws = {s: strata(a, n, reps, rng) for s, a in arrays.items()}
            for s in sorted(draws):
                if len(arrays[s]) > 1:
                    hit = np.mean([e.ci_low <= truth[s] <= e.ci_high for e in draws[s]])
                    results.append({"what": f"sector {s}", "label": label, "n_per_doc": n, "coverage": hit})
            names = sorted(draws)
            for i, a in enumerate(names):
                for b in names[i + 1 :]:
                    true_diff = truth[a] - truth[b]
                    ds = [difference(x, y, DEFAULT_CONFIDENCE) for x, y in zip(draws[a], draws[b], strict=True)]
                    hit = np.mean([d["ci_low"] <= true_diff <= d["ci_high"] for d in ds])
                    results.append({"what": f"{a} − {b}", "label": label, "n_per_doc": n, "coverage": hit})
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--predictions", type=Path, default=DEFAULT_PREDICTIONS)
    parser.add_argument("--reps", type=int, default=1000)
    parser.add_argument("--scores", choices=("probabilities", "labels"), default="probabilities")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--csv", type=Path, default=None)
    args = parser.parse_args()
    codebook = load_codebook()
    rows = load_rows(args.predictions)
    targets = [("polarity", lab) for lab in codebook.ids("polarity")]
    targets += [("conditions", lab) for lab in codebook.ids("conditions")]
    rng = np.random.default_rng(args.seed)
    results = []
    for doc_id in sorted({r["doc_id"] for r in rows}):
        doc = [r for r in rows if r["doc_id"] == doc_id]
        for field, label in targets:
            y = np.array([label_indicator(r["reference"], field, label) for r in doc])
            yhat = np.array(
                [label_score(r["prediction"], field, label, args.scores == "probabilities") for r in doc]
            )
            hard = np.array([label_indicator(r["prediction"], field, label) for r in doc])
            for size in SIZES:
                n = audit_size(size, len(doc))
                result = simulate(y, yhat, hard, n, args.reps, rng)
                results.append({"doc_id": doc_id, "field": field, "label": label, "audit": size, "n_audit": n,
                                "n_total": len(doc), **result})  # fmt: skip
                print(
                    f"{doc_id[:28]:28} {field[:10]:10} {label[:18]:18} n={n:4d}  "
                    f"cov {result['coverage_ppi']:.3f} / {result['coverage_classical']:.3f}  "
                    f"width {result['width_ppi']:.3f} / {result['width_classical']:.3f}  "
                    f"model error {result['model_abs_error']:.3f}",
                    flush=True,
                )
    worst = min(results, key=lambda r: r["coverage_ppi"])
    narrower = sum(r["width_ppi"] <= r["width_classical"] + 1e-9 for r in results)
    print(
        f"\nlowest PPI++ coverage: {worst['coverage_ppi']:.3f} "
        f"({worst['doc_id']}, {worst['label']}, {worst['audit']})"
    )
    print(f"PPI++ no wider than classical on average in {narrower}/{len(results)} settings")
    for size in SIZES:
        part = [r for r in results if r["audit"] == size]
        ratio = np.mean([r["width_ppi"] / r["width_classical"] for r in part if r["width_classical"] > 0])
        print(f"audit {size:>4}: mean width ratio PPI++/classical {ratio:.3f}; "
              f"coverage PPI++ min {min(r['coverage_ppi'] for r in part):.3f}, "
              f"classical min {min(r['coverage_classical'] for r in part):.3f}")  # fmt: skip
    strat = sector_coverage(rows, targets, args.scores == "probabilities", args.reps, rng)
    for n in (20, 40):
        part = [r for r in strat if r["n_per_doc"] == n]
        sect = [r["coverage"] for r in part if r["what"].startswith("sector")]
        diff = [r["coverage"] for r in part if not r["what"].startswith("sector")]
        worst = min(part, key=lambda r: r["coverage"])
        print(
            f"{n} per document: stratified sector coverage min {min(sect):.3f}, "
            f"differences between sectors min {min(diff):.3f} (lowest: {worst['what']}, {worst['label']})"
        )
    if args.csv:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        for path, table in ((args.csv, results), (args.csv.with_name(args.csv.stem + "-sectors.csv"), strat)):
            with path.open("w", newline="", encoding="utf-8") as handle:
                writer = csv.DictWriter(handle, fieldnames=list(table[0]))
                writer.writeheader()
                writer.writerows({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()} for r in table)


if __name__ == "__main__":
    main()
