"""The SQLite store: migrations, idempotent re-ingest, replacement on change."""

from __future__ import annotations

import shutil

from sqlalchemy import inspect, text

from pipeline.corpus import ingest_corpus
from pipeline.store import document_rows, load_passages, open_store

from .conftest import CORPUS

DOC = "vg-deelsessie-huisartsenzorg"


def small_corpus(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / f"{DOC}.pdf", corpus)
    (corpus / "manifest.csv").write_text(
        f"doc_id,file,title,study,sector,doc_type,year\n{DOC},{DOC}.pdf,Sessie,s,vg,sessieverslag,2021\n", "utf-8"
    )
    return corpus


def test_schema_is_under_alembic(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'm.sqlite'}")
    tables = set(inspect(engine).get_table_names())
    assert {
        "documents",
        "passages",
        "ingest_failures",
        "embeddings",
        "classifications",
        "reviews",
        "users",
        "web_sessions",
        "double_coding",
        "adjudications",
        "alembic_version",
        "passage_carry",
    } <= tables
    from alembic.script import ScriptDirectory

    from pipeline.store import alembic_config

    heads = ScriptDirectory.from_config(alembic_config("sqlite://")).get_heads()
    assert len(heads) == 1, f"several Alembic heads: {heads}"
    with engine.connect() as c:
        assert c.execute(text("select version_num from alembic_version")).scalar() == heads[0]
    open_store(f"sqlite:///{tmp_path / 'm.sqlite'}")  # reopening an up-to-date store is harmless


def test_reingesting_an_unchanged_file_is_a_no_op(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    corpus = small_corpus(tmp_path)
    first = ingest_corpus(corpus, engine, workers=1)
    assert first.ingested == [DOC]
    passages = load_passages(engine, DOC)
    assert passages and passages[0].kind == "heading"
    updated = document_rows(engine)[0]
    second = ingest_corpus(corpus, engine, workers=1)
    assert second.ingested == [] and second.unchanged == [DOC]
    assert load_passages(engine, DOC) == passages
    assert document_rows(engine)[0] == updated


def test_a_changed_file_replaces_its_passages(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    corpus = small_corpus(tmp_path)
    ingest_corpus(corpus, engine, workers=1)
    shutil.copy(CORPUS / "ouderenzorg-mgz-in-de-regio-2023.pdf", corpus / f"{DOC}.pdf")
    report = ingest_corpus(corpus, engine, workers=1)
    assert report.ingested == [DOC]
    texts = [p.text for p in load_passages(engine, DOC)]
    assert any("inventarisatie" in t for t in texts)
    assert not any(t.startswith("Ander knelpunt vloeit") for t in texts)
