"""The store on a real PostgreSQL server (a throwaway cluster started for this module): the Alembic
migrations, ingest, embeddings, classifications, reviews and the review screen's concurrent writers.

Needs Debian's PostgreSQL server binaries (`.ci/run` installs package `postgresql`) and the
psycopg driver (the `postgres` extra, included in `dev`).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, text

from pipeline.embeddings import embed
from pipeline.matrices import coded_passages
from pipeline.review import reviewed_labels
from pipeline.store import add_review, alembic_config, document_rows, load_classifications

from .review_fixtures import DOC, MODEL, build_review_store

BINARIES = sorted(glob.glob("/usr/lib/postgresql/*/bin"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(args: list[str]) -> list[str]:
    """initdb refuses to run as root: run the server as the ``postgres`` system user then."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def postgres():
    """A private PostgreSQL cluster on a free port; yields a function that makes a fresh database URL."""
    if not BINARIES:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg")
    bin_dir = Path(BINARIES[-1])
    # Not under pytest's tmp folder: that is private to root, and the server runs as ``postgres``.
    root = Path(tempfile.mkdtemp(prefix="mgz-postgres-"))
    data, sockets = root / "data", root / "sockets"
    sockets.mkdir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
    port = _free_port()
    subprocess.run(
        _as_server_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "mgz", "-E", "UTF8"]),
        check=True,
        capture_output=True,
    )
    options = f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(
        _as_server_user(
            [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-w", "-l", str(root / "log"), "start"]
        ),
        check=True,
        capture_output=True,
    )
    admin = create_engine(f"postgresql+psycopg://mgz@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
    made = []

    def database(name: str) -> str:
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
        made.append(name)
        return f"postgresql+psycopg://mgz@127.0.0.1:{port}/{name}"

    try:
        yield database
    finally:
        admin.dispose()
        subprocess.run(_as_server_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "fast", "stop"]), check=False)
        shutil.rmtree(root, ignore_errors=True)


def test_store_and_stages_on_postgres(postgres, tmp_path):
    rs = build_review_store(tmp_path, url=postgres("mgz_store"))
    assert rs.engine.dialect.name == "postgresql"
    with rs.engine.connect() as connection:
        head = ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
        assert connection.execute(text("SELECT version_num FROM alembic_version")).scalar() == head
    assert [d["doc_id"] for d in document_rows(rs.engine)] == [DOC]
    model = load_classifications(rs.engine, DOC, MODEL)
    assert {pid: {f: labels[f] for f in rs.codebook.fields} for pid, labels in model.items()} == rs.labels

    class Fixed:  # a deterministic encoder: this test is about storage, not about vectors
        name, dim = "fixed-test-encoder", 4

        def encode(self, texts):
            return np.array([[len(t), t.count("e"), 1.0, -1.0] for t in texts], dtype=np.float32)

    texts = [p.text for p in rs.passages]
    first = embed(texts, Fixed(), rs.engine)
    again = embed(texts, type("Failing", (Fixed,), {"encode": lambda self, t: 1 / 0})(), rs.engine)
    assert np.array_equal(first, again)  # the second call is served from the store's cache

    passage = rs.passages[0]
    corrected = {**rs.labels[passage.id], "polarity": "bevorderend"}
    add_review(rs.engine, passage.id, "anna", rs.labels[passage.id])
    add_review(rs.engine, passage.id, "anna", corrected)
    assert reviewed_labels(rs.engine)[passage.id] == corrected
    coded = {c.passage_id: c for c in coded_passages(rs.engine, MODEL)}
    assert coded[passage.id].source == "review" and coded[passage.id].polarity == "bevorderend"


def test_concurrent_review_decisions_on_postgres(postgres, tmp_path):
    from .test_review import fire_concurrent_decisions

    fire_concurrent_decisions(build_review_store(tmp_path, url=postgres("mgz_review")))


def test_reingest_carries_decisions_on_postgres(postgres, tmp_path):
    """The carry-over reflects tables and copies rows generically: the same on PostgreSQL."""
    from sqlalchemy import select

    from pipeline.corpus import ingest_corpus
    from pipeline.review import DoubleCodingRow
    from pipeline.store import ReviewRow, load_passages, open_store, session

    from .test_carry import LABELS, PARAGRAPHS, _corpus

    engine = open_store(postgres("mgz_carry"))
    corpus = _corpus(tmp_path, "interview-pg", ".txt")
    edited = list(PARAGRAPHS)
    edited[1] = edited[1].replace("bereikbaarheid", "bereikbaarhied")
    (corpus / "interview-pg.txt").write_text("\n\n".join(edited), "utf-8")
    ingest_corpus(corpus, engine, workers=1)
    typo = next(p for p in load_passages(engine, "interview-pg") if "bereikbaarhied" in p.text)
    add_review(engine, typo.id, "anna", LABELS)
    with session(engine) as s:
        s.add(
            DoubleCodingRow(passage_id=typo.id, coder="anna", slot=1, blind=False, assigned_by="x", assigned_at=now())
        )
    (corpus / "interview-pg.txt").write_text("\n\n".join(PARAGRAPHS), "utf-8")
    report = ingest_corpus(corpus, engine, workers=1)
    assert report.carried["interview-pg"]["aligned"] == 1
    fixed = next(p for p in load_passages(engine, "interview-pg") if "bereikbaarheid" in p.text)
    assert reviewed_labels(engine)[fixed.id] == LABELS
    with session(engine) as s:
        assert s.scalar(select(ReviewRow.carried_from).where(ReviewRow.passage_id == fixed.id)) is not None
        assert s.scalar(select(DoubleCodingRow.coder).where(DoubleCodingRow.passage_id == fixed.id)) == "anna"


def now():
    from datetime import UTC, datetime

    return datetime.now(UTC)
