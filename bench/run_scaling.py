"""The bundled corpus replicated ×N with distinct ids: wall time with 1 vs 2 workers and peak memory.

Each configuration is a cold run into its own store, in a child process, so the
peak resident memory (ru_maxrss of that process tree) is its own.

    python bench/run_scaling.py [--copies 10]
"""

from __future__ import annotations

import argparse
import csv
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def replicate(target: Path, copies: int) -> Path:
    target.mkdir()
    rows = list(csv.DictReader((ROOT / "corpus" / "manifest.csv").open(encoding="utf-8")))
    with (target / "manifest.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        for k in range(copies):
            for row in rows:
                name = f"{row['doc_id']}-{k:02d}.pdf"
                # A trailing PDF comment makes each copy a distinct file (identical files are refused
                # as duplicates) without changing what is printed.
                data = (ROOT / "corpus" / row["file"]).read_bytes() + f"\n%copy {k}\n".encode()
                (target / name).write_bytes(data)
                writer.writerow({**row, "doc_id": f"{row['doc_id']}-{k:02d}", "file": name})
    return target


def run(corpus: Path, out: Path, workers: int) -> tuple[float, float]:
    code = (
        "import os; os.environ.setdefault('PREFECT_SERVER_ANALYTICS_ENABLED','false');"
        "from flows.corpus import corpus_flow, task_runner;"
        f"s = corpus_flow.with_options(task_runner=task_runner({workers}))"
        f"({str(corpus)!r}, {str(out)!r}, None, {str(ROOT / 'models')!r}, 2000, False, return_state=True);"
        "raise SystemExit(0 if s.is_completed() else 1)"
    )
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    if done.returncode:
        report = out / "run_report.json"
        raise SystemExit(
            f"run with {workers} worker(s) failed: {report.read_text() if report.exists() else ''}{done.stderr[-3000:]}"
        )
    seconds = time.perf_counter() - start
    peak_kib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
    return seconds, peak_kib / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--copies", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        corpus = replicate(Path(tmp) / "corpus", args.copies)
        n_docs = len(list(corpus.glob("*.pdf")))
        results = {w: run(corpus, Path(tmp) / f"out-{w}", w) for w in (1, 2)}
    print(f"{n_docs} documents ({args.copies} copies of the bundled corpus), cold runs")
    for w, (seconds, peak) in results.items():
        print(f"  {w} worker(s): {seconds:7.1f} s   peak RSS of one process {peak:7.0f} MiB")
    print(f"speed-up 2 vs 1 workers: {results[1][0] / results[2][0]:.2f}x")


if __name__ == "__main__":
    main()
