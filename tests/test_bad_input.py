"""Bad input: one-line reasons naming the file; every other document still processed."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.corpus import ingest_corpus, read_manifest
from pipeline.ingest import ExtractOptions, IngestError, extract_document
from pipeline.store import document_rows, failures, load_passages, open_store

from .conftest import CORPUS, body_lines, make_pdf

GOOD = "vg-deelsessie-huisartsenzorg"


def a_page(text: str = "Een gewone alinea over samenwerking tussen huisarts en AVG.") -> dict:
    return {"header": "", "lines": body_lines([text], 63, 100)}


@pytest.fixture()
def bad_files(tmp_path) -> dict[str, Path]:
    files = {
        "encrypted": make_pdf(tmp_path / "versleuteld.pdf", [a_page()], encrypt="geheim"),
        "scanned": make_pdf(tmp_path / "scan.pdf", [{"image_only": True, "footer": False}]),
        "not_pdf": tmp_path / "eigenlijk-tekst.pdf",
        "empty": tmp_path / "leeg.pdf",
        "too_long": make_pdf(tmp_path / "dik.pdf", [a_page()] * 5),
    }
    files["not_pdf"].write_text("Dit is geen PDF maar platte tekst.\n", "utf-8")
    files["empty"].write_bytes(b"")
    whole = make_pdf(tmp_path / "heel.pdf", [a_page()] * 3).read_bytes()
    files["truncated"] = tmp_path / "afgebroken.pdf"
    files["truncated"].write_bytes(whole[: len(whole) // 3])
    return files


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("encrypted", "encrypted PDF"),
        ("scanned", "no text layer"),
        ("not_pdf", "not a PDF"),
        ("empty", "empty file"),
        ("too_long", "more than the limit of 3"),
        ("truncated", "corrupt or truncated PDF"),
    ],
)
def test_each_bad_file_gets_a_one_line_reason_naming_it(bad_files, nlp, kind, reason):
    path = bad_files[kind]
    with pytest.raises(IngestError) as caught:
        extract_document(path, nlp, options=ExtractOptions(max_pages=3))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(path))
    assert reason in message


def build_corpus(tmp_path: Path, bad_files: dict[str, Path], extra_rows: str = "") -> Path:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / f"{GOOD}.pdf", corpus)
    for name in ("encrypted", "truncated"):
        shutil.copy(bad_files[name], corpus / bad_files[name].name)
    (corpus / "manifest.csv").write_text(
        "doc_id,file,title,study,sector,doc_type,year\n"
        f"{GOOD},{GOOD}.pdf,Sessie,s1,vg,sessieverslag,2021\n"
        "versleuteld,versleuteld.pdf,X,s2,vg,rapport,2021\n"
        "afgebroken,afgebroken.pdf,X,s3,eerstelijn,rapport,2020\n"
        "ontbreekt,bestaat-niet.pdf,X,s4,vg,rapport,2020\n"
        f"{GOOD},{GOOD}.pdf,Dubbel,s1,vg,sessieverslag,2021\n"
        "onbekend,versleuteld.pdf,X,s5,ziekenhuis,rapport,2020\n" + extra_rows,
        "utf-8",
    )
    return corpus


def test_manifest_problems_are_reported_per_row(tmp_path, bad_files):
    manifest = read_manifest(build_corpus(tmp_path, bad_files))
    reasons = [str(p) for p in manifest.problems]
    assert any("bestaat-niet.pdf" in r and "file not found" in r for r in reasons)
    assert any("duplicate doc_id" in r and "line 6" in r for r in reasons)
    assert any("unknown sector 'ziekenhuis'" in r and "line 7" in r for r in reasons)
    assert [row.doc_id for row in manifest.rows] == [GOOD, "versleuteld", "afgebroken"]


def test_corpus_ingest_records_failures_and_keeps_the_rest(tmp_path, bad_files):
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    report = ingest_corpus(build_corpus(tmp_path, bad_files), engine, workers=2)
    assert report.ingested == [GOOD]
    assert not report.ok
    status = {d["doc_id"]: d for d in document_rows(engine)}
    assert status[GOOD]["status"] == "ok"
    assert load_passages(engine, GOOD)
    assert status["versleuteld"]["status"] == "failed" and "encrypted" in status["versleuteld"]["error"]
    assert status["afgebroken"]["status"] == "failed" and "corrupt" in status["afgebroken"]["error"]
    assert status["ontbreekt"]["status"] == "failed"
    logged = [f["reason"] for f in failures(engine)]
    assert len(logged) == 5  # missing file, duplicate, unknown sector, encrypted, truncated


def test_cli_exit_status_says_whether_anything_failed(tmp_path, bad_files):
    runner = CliRunner()
    store = f"sqlite:///{tmp_path / 'cli.sqlite'}"
    corpus = build_corpus(tmp_path, bad_files)
    failed = runner.invoke(app, ["ingest", "--corpus", str(corpus), "--store", store, "--workers", "1"])
    assert failed.exit_code == 1
    assert "versleuteld.pdf: encrypted PDF" in failed.output

    ok = runner.invoke(app, ["extract", str(CORPUS / f"{GOOD}.pdf"), "--format", "json", "--workers", "1"])
    assert ok.exit_code == 0
    bad = runner.invoke(app, ["extract", str(bad_files["empty"]), "--workers", "1"])
    assert bad.exit_code == 1
    assert f"{bad_files['empty']}: empty file" in bad.output


def test_the_same_file_under_two_ids_is_refused_as_a_duplicate(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / f"{GOOD}.pdf", corpus / "a.pdf")
    shutil.copy(CORPUS / f"{GOOD}.pdf", corpus / "b.pdf")
    (corpus / "manifest.csv").write_text(
        "doc_id,file,title,study,sector,doc_type,year\neen,a.pdf,A,s,vg,r,2021\ntwee,b.pdf,B,s,vg,r,2021\n", "utf-8"
    )
    engine = open_store(f"sqlite:///{tmp_path / 'dup.sqlite'}")
    report = ingest_corpus(corpus, engine, workers=1)
    assert report.ingested == ["een"]
    assert [(f.doc_id, f.reason) for f in report.failed] == [
        ("twee", "same content as document 'een' (duplicate file)")
    ]
    assert ingest_corpus(corpus, engine, workers=1).unchanged == ["een"]  # still refused on the next run, not stored
