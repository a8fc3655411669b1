"""Cold run of the bundled corpus vs a warm re-run with nothing changed, in one process.

Bar (orchestration issue): the warm run does no per-document work and takes at
most a tenth of the cold run or 20 s, whichever is larger. Prefect's temporary
local server (ephemeral mode) is part of both timings.

    python bench/run_speed.py
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.corpus import corpus_flow

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "outputs"
        timings = {}
        for name in ("cold", "warm"):
            start = time.perf_counter()
            corpus_flow(str(ROOT / "corpus"), str(out), None, str(ROOT / "models"), 2000, False, return_state=True)
            timings[name] = time.perf_counter() - start
            report = json.loads((out / "run_report.json").read_text("utf-8"))
            work = len(report["ingested"]) + sum(1 for n in report["classified"].values() if n)
            print(f"{name}: {timings[name]:6.1f} s, documents re-extracted or re-classified: {work}")
    bar = max(timings["cold"] / 10, 20.0)
    print(
        f"warm / cold = {timings['warm'] / timings['cold']:.3f}; bar: warm <= {bar:.1f} s -> "
        f"{'met' if timings['warm'] <= bar else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
