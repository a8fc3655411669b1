"""Peak memory of ``mgz import qdpx`` on two hostile projects (issue 16).

* ``one-member``: 48 TextSources whose ``plainTextPath`` names one 60 MB member
  (a 250 KB .qdpx: the member compresses well);
* ``big-source``: one 16 MB source of 3.3 million words.

Each import runs in its own process against an empty store; the peak resident set
(ru_maxrss of the child) is printed next to a baseline import of a small valid
project in the same way, and the ratio to it. Before issue 16 the two took
3.47 GB and 1.8 GB; now they are refused in one line by the per-import budget
(characters and words), having read the member once.

    .venv/bin/python bench/import_memory.py [--pythonpath DIR]   # DIR: another checkout, to compare
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

NS = "urn:QDA-XML:project:1.0"
WORDS = "huisarts wijkverpleging regio samenwerking ouderen zorg overleg praktijk ".split()


def text_of(n_words: int) -> bytes:
    reps = n_words // len(WORDS) + 1
    return (" ".join(WORDS * reps)).encode()[: n_words * 11]


def project(sources: str) -> bytes:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="{NS}" name="p" origin="bench">'
        f"<CodeBook><Codes/></CodeBook><Sources>{sources}</Sources></Project>"
    ).encode()


def write(path: Path, sources: str, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("project.qde", project(sources))
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def peak_of(args: list[str], env: dict, cwd: str | None) -> tuple[int, int, str]:
    """(peak RSS in MiB, exit status, last stderr line) of one child process."""
    code = (
        "import resource, subprocess, sys\n"
        "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss // 1024, r.returncode)\n"
        "print((r.stderr.strip().splitlines() or [''])[-1][:160])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=cwd).stdout
    first, last = (out.splitlines() + ["", ""])[:2]
    peak, status = first.split()
    return int(peak), int(status), last


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pythonpath", help="import the pipeline from this checkout instead (run there)")
    args = parser.parse_args()
    env = dict(os.environ)
    if args.pythonpath:
        env["PYTHONPATH"] = args.pythonpath
    mgz = [sys.executable, "-m", "pipeline.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        store = f"sqlite:///{folder / 'leeg.sqlite'}"
        small = write(
            folder / "small.qdpx",
            '<TextSource guid="00000000-0000-4000-8000-000000000001" name="a" plainTextPath="internal://a.txt"/>',
            {"sources/a.txt": text_of(2_000)},
        )
        many = "".join(
            f'<TextSource guid="00000000-0000-4000-8000-{k:012d}" name="kopie {k}" plainTextPath="internal://een.txt"/>'
            for k in range(48)
        )
        one_member = write(folder / "one-member.qdpx", many, {"sources/een.txt": text_of(60 * 2**20 // 11)})
        big = write(
            folder / "big-source.qdpx",
            '<TextSource guid="00000000-0000-4000-8000-000000000002" name="groot" plainTextPath="internal://b.txt"/>',
            {"sources/b.txt": (b"zorg wijk arts " * 1_100_000)[: 16 * 2**20]},  # 16 MB, 3.3 million words
        )
        base = None
        for path in (small, one_member, big):
            peak, status, last = peak_of(
                [*mgz, "import", "qdpx", str(path), "--coder", "bench", "--store", store, "--dry-run"],
                env,
                args.pythonpath,  # python -m puts the working folder first on the path
            )
            base = base or peak
            print(
                f"{path.name:16} {path.stat().st_size / 1024:8.0f} KB  peak {peak:6d} MiB  "
                f"({peak / base:5.1f}× baseline)  exit {status}  {last}"
            )
    _ = resource  # the parent's own usage is not what is measured


if __name__ == "__main__":
    main()
