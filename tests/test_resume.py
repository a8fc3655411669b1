"""Kill `mgz run` mid-flight with a signal, run it again: the same passages and outputs as an
uninterrupted run (every output file, byte for byte), no duplicates, no half-written files, and
nothing the killed run started (its temporary Prefect server, its workers) left running."""

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


# Not outputs: the store itself, and the run's own log of what it did (a resumed run did less).
NOT_OUTPUTS = ("mgz.sqlite", "mgz.sqlite-wal", "mgz.sqlite-shm", "run_report.json")


def snapshot(out: Path) -> dict[str, bytes]:
    """Every output file (matrices.xlsx, topics/*, the report, figures …) with its bytes."""
    files = [f for f in out.rglob("*") if f.is_file() and str(f.relative_to(out)) not in NOT_OUTPUTS]
    return {str(f.relative_to(out)): f.read_bytes() for f in files}


def children(pid: int) -> dict[int, str]:
    """pid -> command line of the direct children of ``pid`` (Linux /proc)."""
    found = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            if ppid == pid:
                found[int(stat.parent.name)] = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except (OSError, IndexError, ValueError):
            continue
    return found


def running(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_killed_run_resumes_to_the_same_result(tmp_path):
    corpus = make_corpus(tmp_path / "corpus")
    reference = mgz_run(corpus, tmp_path / "ref")
    assert reference.wait(timeout=600) == 0

    victim = mgz_run(corpus, tmp_path / "out")
    deadline = time.time() + 300
    while stored_passages(tmp_path / "out") == 0 and victim.poll() is None and time.time() < deadline:
        time.sleep(0.2)
    assert victim.poll() is None, "the run finished before it could be interrupted"
    servers = [pid for pid, command in children(victim.pid).items() if "prefect.server.api.server" in command]
    assert servers, "the run has no temporary Prefect server"
    try:
        os.kill(victim.pid, signal.SIGKILL)  # the run alone (as the OOM killer does): first document stored
        victim.wait()
        time.sleep(0.5)
        assert all(running(pid) for pid in servers)  # what a killed run leaves behind

        resumed = mgz_run(corpus, tmp_path / "out")
        assert resumed.wait(timeout=600) == 0
        assert not any(running(pid) for pid in servers), "the killed run's Prefect server is still running"
    finally:
        try:
            os.killpg(victim.pid, signal.SIGKILL)  # whatever is left of the killed run's process group
        except ProcessLookupError:
            pass
    with sqlite3.connect(tmp_path / "out" / "mgz.sqlite") as con:
        ids = [r[0] for r in con.execute("select id from passages")]
    assert len(ids) == len(set(ids))
    assert not list((tmp_path / "out").rglob("*.tmp"))
    expected, got = snapshot(tmp_path / "ref"), snapshot(tmp_path / "out")
    assert sorted(got) == sorted(expected) and len(got) >= 6
    assert got == expected
