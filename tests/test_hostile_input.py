"""Hostile or odd input found in issue 16 (manifest paths, encodings, numbers; PDFs; classify rows;
output folders): each gets one line naming the file, and the rest still goes through."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeline.corpus import ingest_corpus, read_manifest
from pipeline.ingest import IngestError
from pipeline.store import document_rows, load_passages, open_store

TEXT = "De huisarts en de wijkverpleging overleggen elke maand over kwetsbare ouderen in de wijk.\n"
HEADER = "doc_id,file,title,study,sector,doc_type,year\n"


def corpus_with(tmp_path: Path, rows: list[str], encoding: str = "utf-8") -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "goed.txt").write_text(TEXT, "utf-8")
    (corpus / "manifest.csv").write_text(HEADER + "".join(r + "\n" for r in rows), encoding)
    return corpus


def ingest(tmp_path: Path, corpus: Path):
    engine = open_store(f"sqlite:///{tmp_path / 'mgz.sqlite'}")
    return engine, ingest_corpus(corpus, engine, workers=1)


def test_manifest_paths_outside_the_corpus_folder_are_refused(tmp_path):
    elsewhere = tmp_path / "elders"
    elsewhere.mkdir()
    secret = elsewhere / "geheim.txt"
    secret.write_text("Geheime notities over een patiënt die niet in het corpus horen.\n", "utf-8")
    corpus = corpus_with(
        tmp_path,
        [
            "goed,goed.txt,Goed,s,vg,interview,2021",
            f"absoluut,{secret},A,s,vg,interview,2021",
            "omhoog,../elders/geheim.txt,B,s,vg,interview,2021",
            "link,link.txt,C,s,vg,interview,2021",
        ],
    )
    (corpus / "link.txt").symlink_to(secret)
    engine, report = ingest(tmp_path, corpus)
    assert report.ingested == ["goed"]
    reasons = {p.doc_id: str(p) for p in report.failed}
    assert set(reasons) == {"absoluut", "omhoog", "link"}
    assert "absolute path" in reasons["absoluut"] and "outside the corpus folder" in reasons["omhoog"]
    assert "outside the corpus folder" in reasons["link"]
    assert all("\n" not in r and "refused" in r for r in reasons.values())
    stored = {d["doc_id"]: d for d in document_rows(engine)}
    assert stored["goed"]["status"] == "ok" and stored["goed"]["sha256"]
    assert all(not stored[d]["sha256"] and stored[d]["status"] != "ok" for d in ("absoluut", "omhoog", "link"))
    assert not any(load_passages(engine, d) for d in ("absoluut", "omhoog", "link"))


def test_a_utf16_manifest_is_read_and_an_undecodable_one_is_one_line(tmp_path):
    corpus = corpus_with(tmp_path, ["goed,goed.txt,Zorg in één regio,s,vg,interview,2021"], encoding="utf-16")
    assert [r.title for r in read_manifest(corpus).rows] == ["Zorg in één regio"]
    (corpus / "manifest.csv").write_bytes(
        (HEADER + "goed,goed.txt,Zorg in één regio,s,vg,interview,2021\n").encode("latin-1")
    )
    with pytest.raises(IngestError) as refused:
        read_manifest(corpus)
    assert str(refused.value).startswith(str(corpus / "manifest.csv")) and "\n" not in str(refused.value)


def test_a_year_too_large_for_the_store_refuses_that_row_only(tmp_path):
    corpus = corpus_with(
        tmp_path,
        ["groot,goed.txt,Groot,s,vg,interview,99999999999999999999999", "goed,goed.txt,Goed,s,vg,interview,2021"],
    )
    engine, report = ingest(tmp_path, corpus)
    assert report.ingested == ["goed"]
    [problem] = report.failed
    assert problem.doc_id == "groot" and "year" in str(problem) and "line 2" in str(problem)
