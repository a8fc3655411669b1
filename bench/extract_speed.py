"""Throughput of `mgz extract` against plain pdfplumber `extract_text()`, as a ratio.

Both run in this one process on the same files, so the ratio does not depend on
how fast the machine is. The layout work may cost at most 1.5x plain pdfplumber
per page (sequential); the parallel figure shows what `extract_many` gains on
this machine's cores.

    python bench/extract_speed.py [--repeat N]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pdfplumber

from pipeline.ingest import ExtractJob, extract_many

CORPUS = Path(__file__).resolve().parent.parent / "corpus"


def plain(paths: list[Path]) -> int:
    pages = 0
    for path in paths:
        with pdfplumber.open(path) as pdf:
            for page in pdf.pages:
                page.extract_text()
                pages += 1
    return pages


def timed(fn, *args) -> tuple[float, object]:
    start = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - start, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    paths = sorted(CORPUS.glob("*.pdf"))
    jobs = [ExtractJob(str(p)) for p in paths]
    best = {"plain": float("inf"), "mgz-1": float("inf"), "mgz-par": float("inf")}
    pages = 0
    workers = os.cpu_count() or 1
    for _ in range(args.repeat):
        t, pages = timed(plain, paths)
        best["plain"] = min(best["plain"], t)
        t, _ = timed(extract_many, jobs, 1)
        best["mgz-1"] = min(best["mgz-1"], t)
        t, _ = timed(extract_many, jobs, workers)
        best["mgz-par"] = min(best["mgz-par"], t)
    print(f"{len(paths)} PDFs, {pages} pages, best of {args.repeat}")
    for name, seconds in best.items():
        print(f"  {name:8s} {pages / seconds:7.1f} pages/s  ({seconds:.2f} s)")
    print(
        f"cost of mgz extract vs plain extract_text, 1 process:   {best['mgz-1'] / best['plain']:.2f}x (bar: <= 1.5x)"
    )
    print(f"cost of mgz extract vs plain extract_text, {workers} processes: {best['mgz-par'] / best['plain']:.2f}x")


if __name__ == "__main__":
    main()
