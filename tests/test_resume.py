"""Kill `mgz run` mid-flight with a signal, run it again: the same passages and outputs as an
uninterrupted run, no duplicates, no half-written files."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from .conftest import CORPUS, ROOT

DOCS = ["vg-deelsessie-huisartsenzorg", "ouderenzorg-mgz-in-de-regio-2023"]


def make_corpus(path: Path) -> Path:
    path.mkdir()
    rows = []
    for doc in DOCS:
        shutil.copy(CORPUS / f"{doc}.pdf", path)
        rows.append(f"{doc},{doc}.pdf,{doc},s,vg,rapport,2021")
    (path / "manifest.csv").write_text("doc_id,file,title,study,sector,doc_type,year\n" + "\n".join(rows) + "\n")
    return path


def mgz_run(corpus: Path, out: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "PREFECT_HOME": str(out.parent / f".prefect-{out.name}"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline.cli",
            "run",
            "--corpus",
            str(corpus),
            "--out",
            str(out),
            "--models",
            str(ROOT / "models"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stored_passages(out: Path) -> int:
    db = out / "mgz.sqlite"
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=1) as con:
            return con.execute("select count(*) from passages").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def snapshot(out: Path) -> dict[str, bytes]:
    files = [
        *out.glob("passages/*.json"),
        *out.glob("matrices/*.csv"),
        *out.glob("comparison/*.csv"),
        out / "comparison" / "chi_square.json",
    ]
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


def test_killed_run_resumes_to_the_same_result(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    reference = mgz_run(corpus, tmp_path / "ref")
    assert reference.wait(timeout=600) == 0

    victim = mgz_run(corpus, tmp_path / "out")
    deadline = time.time() + 300
    while stored_passages(tmp_path / "out") == 0 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert victim.poll() is None, "the run finished before it could be interrupted"
    os.killpg(victim.pid, signal.SIGKILL)  # mid-run: the first document is stored, the rest is not
    victim.wait()

    resumed = mgz_run(corpus, tmp_path / "out")
    assert resumed.wait(timeout=600) == 0
    with sqlite3.connect(tmp_path / "out" / "mgz.sqlite") as con:
        ids = [r[0] for r in con.execute("select id from passages")]
    assert len(ids) == len(set(ids))
    assert not list((tmp_path / "out").rglob("*.tmp"))
    expected, got = snapshot(tmp_path / "ref"), snapshot(tmp_path / "out")
    assert sorted(got) == sorted(expected) and len(got) >= 6
    assert got == expected
