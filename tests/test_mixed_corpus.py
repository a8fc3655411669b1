"""`mgz run` on a folder of mixed files from a project partner: a scanned PDF and a Teams .vtt.

Both are ingested, classified, in the matrices, the report, the review screen and
the REFI-QDA export; a warm re-run re-OCRs nothing.
"""

from __future__ import annotations

import json
import zipfile

import pytest
from prefect.testing.utilities import prefect_test_harness
from sqlalchemy import select

from flows.corpus import corpus_flow
from pipeline.ocr import missing_tesseract
from pipeline.store import OcrCacheRow, load_passages, open_store, session

from .conftest import ROOT
from .test_ocr import SOURCE, scanned_copy
from .test_transcripts import TEAMS_TURNS, TEAMS_VTT, turns

pytestmark = pytest.mark.skipif(missing_tesseract() is not None, reason="Tesseract is not installed")


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mixed")
    corpus = tmp / "corpus"
    corpus.mkdir()
    scanned_copy(SOURCE, corpus / "verslag-scan.pdf")
    (corpus / "interview-teams.vtt").write_text(TEAMS_VTT, "utf-8")
    (corpus / "manifest.csv").write_text(
        "doc_id,file,title,study,sector,doc_type,year\n"
        "verslag-scan,verslag-scan.pdf,Verslag (scan),partner,vg,sessieverslag,2021\n"
        "interview-teams,interview-teams.vtt,Interview huisarts,partner,vg,interview,2024\n",
        "utf-8",
    )
    out = tmp / "out"
    runs = []
    with prefect_test_harness(server_startup_timeout=120):
        for _ in range(2):
            state = corpus_flow(str(corpus), str(out), None, str(ROOT / "models"), 50, False, return_state=True)
            runs.append((state, json.loads((out / "run_report.json").read_text("utf-8"))))
            with session(open_store(f"sqlite:///{out / 'mgz.sqlite'}")) as s:
                cached = [(r.sha256, r.created_at) for r in s.scalars(select(OcrCacheRow))]
            runs[-1] += (cached,)
    return out, runs


def test_scan_and_transcript_are_ingested_classified_and_reported(mixed_run):
    out, runs = mixed_run
    state, report, _ = runs[0]
    assert state.is_completed(), state.message
    assert sorted(report["ingested"]) == ["interview-teams", "verslag-scan"]
    assert report["classified"]["verslag-scan"] > 0 and report["classified"]["interview-teams"] > 0
    for doc_id in ("verslag-scan", "interview-teams"):
        assert (out / "matrices" / f"{doc_id}.csv").exists()
    html = (out / "report" / "index.html").read_text("utf-8")
    assert "Verslag (scan)" in html and "Interview huisarts" in html and "met OCR gelezen" in html

    engine = open_store(f"sqlite:///{out / 'mgz.sqlite'}")
    scan = load_passages(engine, "verslag-scan")
    assert scan and all(p.ocr for p in scan)
    assert turns(type("D", (), {"passages": load_passages(engine, "interview-teams")})) == TEAMS_TURNS


def test_warm_rerun_ocrs_nothing(mixed_run):
    _, runs = mixed_run
    (_, first, cached_first), (state, second, cached_second) = runs
    assert state.is_completed()
    assert second["ingested"] == [] and sorted(second["unchanged"]) == ["interview-teams", "verslag-scan"]
    assert len(cached_first) == 1 and cached_second == cached_first  # the one OCR result, not redone


def test_review_screen_and_export_show_time_and_ocr(mixed_run):
    from fastapi.testclient import TestClient

    from pipeline.accounts import add_user
    from pipeline.classify import read_card
    from pipeline.codebook import load_codebook
    from pipeline.exchange import export_project
    from pipeline.web.app import create_app

    out, _ = mixed_run
    engine = open_store(f"sqlite:///{out / 'mgz.sqlite'}")
    add_user(engine, "ria", "correct horse battery", role="analyst")
    client = TestClient(create_app(engine, load_codebook(), model_version=read_card(ROOT / "models")["model_version"]))
    page = client.get("/login").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    client.post("/login", data={"name": "ria", "password": "correct horse battery", "csrf_token": token})
    turn = load_passages(engine, "interview-teams")[0]
    html = client.get(f"/passages/{turn.id}").text
    assert '<span id="passage-time" title="tijd in de opname">00:00:01–00:00:08</span>' in html
    scan = load_passages(engine, "verslag-scan")[0]
    assert 'id="passage-ocr"' in client.get(f"/passages/{scan.id}").text

    target = out / "project.qdpx"
    version = read_card(ROOT / "models")["model_version"]
    export_project(engine, load_codebook(), target, include_model=True, confidence_floor=0.0, model_version=version)
    with zipfile.ZipFile(target) as archive:
        project = archive.read("project.qde").decode("utf-8")
    assert "Tijd in de opname 00:00:01–00:00:08 (Jansen, Peter)" in project
    assert "tekst gelezen met OCR uit een scan" in project
