"""Start-up cost of the ``mgz`` command line: wall time and peak memory of fresh processes.

Needs GNU time (``/usr/bin/time``, Debian package ``time``).

Bars (issue 16, idle two-core machine): ``mgz --help`` at most 0.5 s and 100 MB
resident; ``mgz extract`` of a one-page PDF at most 2 s. Each command runs in a
fresh process (no warm imports); the figures are the median and best of the
runs, peak RSS the largest. A baseline ``python -c pass`` is run the same way,
so a slow machine shows as a slow baseline.

    python bench/startup.py [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent
MGZ = BIN / "mgz"


def measure(argv: list[str], runs: int) -> tuple[float, float, float]:
    """(median s, best s, peak RSS MB) of ``argv`` run ``runs`` times, each in a new process."""
    times, peaks = [], []
    with tempfile.NamedTemporaryFile("r") as report:
        for _ in range(runs):
            # GNU time reports the command's own peak RSS (a fork of this process would count ours).
            start = time.perf_counter()
            code = subprocess.call(
                ["/usr/bin/time", "-f", "%M", "-o", report.name, *argv],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            times.append(time.perf_counter() - start)
            if code not in (0, 1):
                raise SystemExit(f"{' '.join(argv)} exited with {code}")
            peaks.append(int(Path(report.name).read_text().split()[-1]) / 1024)  # kB
    return statistics.median(times), min(times), max(peaks)


def one_page_pdf(folder: Path) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    path = folder / "een-pagina.pdf"
    c = canvas.Canvas(str(path), pagesize=A4)
    c.setFont("Helvetica-Bold", 14)
    c.drawString(57, 780, "Samenwerking huisarts en AVG")
    c.setFont("Helvetica", 10)
    lines = [
        "De huisarts en de arts verstandelijk gehandicapten werken samen in de regio.",
        "De bereikbaarheid buiten kantooruren blijft een probleem voor begeleiders.",
        "Een vast aanspreekpunt bij de huisartsenpost zou volgens deelnemers helpen.",
    ]
    for i, line in enumerate(lines):
        c.drawString(57, 750 - 14 * i, line)
    c.showPage()
    c.save()
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        pdf = one_page_pdf(Path(tmp))
        rows = [
            ("python -c pass (baseline)", [sys.executable, "-c", "pass"], None, None),
            ("mgz --help", [str(MGZ), "--help"], 0.5, 100),
            ("mgz extract (one-page PDF)", [str(MGZ), "extract", str(pdf)], 2.0, None),
        ]
        print(f"{'command':32} {'median s':>9} {'best s':>7} {'peak MB':>8}  bar")
        for name, argv, time_bar, mem_bar in rows:
            median, best, peak = measure(argv, args.runs)
            bars = []
            if time_bar is not None:
                bars.append(f"≤ {time_bar} s {'met' if median <= time_bar else 'NOT met'}")
            if mem_bar is not None:
                bars.append(f"≤ {mem_bar} MB {'met' if peak <= mem_bar else 'NOT met'}")
            print(f"{name:32} {median:9.3f} {best:7.3f} {peak:8.1f}  {'; '.join(bars)}")


if __name__ == "__main__":
    main()
