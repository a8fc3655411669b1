"""Source paths are stored relative to a recorded corpus root, so PDF links work from any folder."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from fastapi.testclient import TestClient

from pipeline.accounts import add_user
from pipeline.codebook import load_codebook
from pipeline.corpus import ingest_corpus
from pipeline.store import DocumentRow, document_rows, open_store, session
from pipeline.web.app import create_app

from .conftest import CORPUS

DOC = "vg-deelsessie-huisartsenzorg"
PASSWORD = "een lang wachtwoord 123"


def _pdf_status(engine, corpus_dir: Path | None = None) -> int:
    client = TestClient(create_app(engine, load_codebook(), corpus_dir=corpus_dir))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": "anna", "password": PASSWORD, "csrf_token": token})
    return client.get(f"/documents/{DOC}/pdf").status_code


def test_pdf_link_works_from_another_folder_and_after_the_corpus_moved(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "corpus").mkdir(parents=True)
    shutil.copy(CORPUS / f"{DOC}.pdf", project / "corpus")
    (project / "corpus" / "manifest.csv").write_text(
        f"doc_id,file,title,study,sector,doc_type,year\n{DOC},{DOC}.pdf,T,s,vg,sessieverslag,2021\n", "utf-8"
    )
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    monkeypatch.chdir(project)
    assert ingest_corpus(Path("corpus"), engine, workers=1).ingested == [DOC]  # a relative corpus folder
    with session(engine) as s:
        row = s.get(DocumentRow, DOC)
        assert row.source == f"{DOC}.pdf" and row.corpus_root == str((project / "corpus").resolve())
    assert document_rows(engine)[0]["source"] == str((project / "corpus" / f"{DOC}.pdf").resolve())
    add_user(engine, "anna", PASSWORD, "analyst")

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # the review screen started in another folder
    assert _pdf_status(engine) == 200

    moved = tmp_path / "archive" / "corpus-2021"
    moved.parent.mkdir()
    shutil.move(project / "corpus", moved)
    assert _pdf_status(engine) == 404  # not where it was ingested from: a page saying so
    assert _pdf_status(engine, corpus_dir=moved) == 200  # mgz review --corpus
