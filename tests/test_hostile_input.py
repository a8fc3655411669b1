"""Hostile or odd input found in issue 16 (manifest paths, encodings, numbers; PDFs; classify rows;
output folders): each gets one line naming the file, and the rest still goes through."""

from __future__ import annotations

from functools import cache
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


# --------------------------------------------------------------------------- mgz classify --in


def test_classify_reports_each_bad_row_with_its_line_and_caps_a_huge_text(tmp_path):
    import json

    from typer.testing import CliRunner

    from pipeline.classify import MAX_INPUT_CHARS, read_input_rows
    from pipeline.cli import app

    sentence = "De huisarts werkt samen met de wijkverpleging in de regio. "
    lines = [
        json.dumps({"id": "a", "text": "De huisarts werkt goed samen met de AVG."}).encode(),
        b'{"id": "diep", "text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
        b'{"id": "surrogaat", "text": "kapot \\ud800 teken"}',
        '{"id": "latijn", "text": "Coördinatie"}'.encode("latin-1"),
        json.dumps({"id": "lang", "text": sentence * (1_200_000 // len(sentence))}).encode(),
        b'{"id": "getal", "text": 42}',
        b'{"id": "lijst", "text": ["a", "b"]}',
        b'{"id": ["x"], "text": "Een lijst als id."}',
        json.dumps({"id": 7, "text": "Korte lijnen met de POH."}).encode(),
    ]
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"\n".join(lines) + b"\n")
    items, problems = read_input_rows(src)
    assert [i.id for i in items] == ["a", "lang", "7"] and len(items[1].text) == MAX_INPUT_CHARS
    assert [(p.line, p.skipped) for p in problems] == [
        (2, True),
        (3, True),
        (4, True),
        (5, False),
        (6, True),
        (7, True),
        (8, True),
    ]
    assert "nested too deeply" in str(problems[0]) and "surrogate" in str(problems[1])
    assert "not UTF-8" in str(problems[2]) and "int, not a string" in str(problems[4])
    assert "list, not a string" in str(problems[5])
    csv_path = tmp_path / "in.csv"
    csv_path.write_bytes("id,text\nx,Goede samenwerking\ny,Coördinatie\n".encode("latin-1"))
    items, problems = read_input_rows(csv_path)
    assert [i.id for i in items] == ["x"] and [str(p) for p in problems] == [
        "line 3: text holds a lone surrogate or bytes that are not UTF-8"
    ]

    out = tmp_path / "out.jsonl"
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    result = CliRunner().invoke(app, ["classify", "--in", str(src), "--out", str(out), "--store", store])
    assert result.exit_code == 1, result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith(("error:", "warning:"))]
    assert [line.split(": ")[2] for line in errors] == [f"line {n}" for n in range(2, 9)]
    assert sum(line.startswith("warning:") for line in errors) == 1
    assert [json.loads(line)["id"] for line in out.read_text("utf-8").splitlines()] == ["a", "lang", "7"]


# --------------------------------------------------------------------------- odd PDFs


def tiny_pdf(lines: list[str], extra_ops: bytes = b"") -> bytes:
    """A one-page PDF written by hand (correct xref), with extra content-stream operators."""
    shown = b" ".join(b"(" + line.encode("latin-1") + b") '" for line in lines)
    content = b"BT /F1 11 Tf 72 760 Td 14 TL " + shown + b" ET " + extra_ops
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 4 0 R >> >> "
        b"/Contents 5 0 R >>",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>",
        b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream",
    ]
    out, offsets = b"%PDF-1.4\n", []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    return out + b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)


@cache
def shared_nlp():
    """One tokenizer pipeline for the PDF tests, built on first use."""
    from pipeline.nlp import load_glossary, make_nlp

    return make_nlp(load_glossary(), lemmas=False)


LINES = [
    "De huisarts en de wijkverpleging overleggen elke maand over kwetsbare ouderen.",
    "Dat overleg werkt goed, zeggen de deelnemers uit de regio.",
]


def test_junk_before_the_pdf_header_is_read(tmp_path):
    from pipeline.ingest import extract_document

    path = tmp_path / "met-log.pdf"
    path.write_bytes(b"GPL Ghostscript 10.00.0: Unrecoverable error, exit code 1\n" * 6 + tiny_pdf(LINES))
    doc = extract_document(str(path), shared_nlp())
    assert "kwetsbare ouderen" in doc.text
    far = tmp_path / "te-ver.pdf"
    far.write_bytes(b"x" * 5000 + tiny_pdf(LINES))
    with pytest.raises(IngestError, match="not a PDF"):
        extract_document(str(far), shared_nlp())


def test_an_encrypted_pdf_without_id_is_reported_as_encrypted(tmp_path):
    import re

    from pypdf import PdfReader, PdfWriter

    from pipeline.ingest import extract_document

    from .conftest import make_pdf

    blank = make_pdf(tmp_path / "leeg.pdf", [{"header": "", "lines": [], "footer": False}])
    writer = PdfWriter()
    for page in PdfReader(str(blank)).pages:
        writer.add_page(page)
    writer.encrypt(user_password="", owner_password="eigenaar", algorithm="AES-256")
    encrypted = tmp_path / "versleuteld.pdf"
    with encrypted.open("wb") as handle:
        writer.write(handle)
    data = encrypted.read_bytes()
    found = re.search(rb"/ID\s*\[[^\]]*\]", data)
    encrypted.write_bytes(data[: found.start()] + b" " * (found.end() - found.start()) + data[found.end() :])
    with pytest.raises(IngestError) as refused:
        extract_document(str(encrypted), shared_nlp())
    assert "encrypted PDF without an /ID" in str(refused.value) and "no text layer" not in str(refused.value)


def test_pdf_library_warnings_are_the_files_warnings_not_anonymous_stderr(tmp_path, capfd):
    from pipeline.ingest import ExtractJob, extract_many

    odd = tmp_path / "vreemd.pdf"
    odd.write_bytes(tiny_pdf(LINES, b"/X w"))
    plain = tmp_path / "gewoon.pdf"
    plain.write_bytes(tiny_pdf(LINES))
    capfd.readouterr()
    first, second = extract_many([ExtractJob(str(odd)), ExtractJob(str(plain))], workers=1)
    assert any("line width" in w for w in first.document.warnings)
    assert not any("line width" in w for w in second.document.warnings)
    assert "line width" not in capfd.readouterr().err


# --------------------------------------------------------------------------- full or read-only output folders


@pytest.fixture()
def small_disk(tmp_path):
    """A 1 MiB tmpfs (root only); yields (mount point, remount-read-only function)."""
    import os
    import subprocess

    point = tmp_path / "schijf"
    point.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(point)]).returncode:
        pytest.skip("needs root to mount a small tmpfs")

    def read_only() -> None:
        subprocess.run(["mount", "-o", "remount,ro", str(point)], check=True)

    try:
        yield point, read_only
    finally:
        subprocess.run(["umount", "-l", str(point)], check=False)


def previous_outputs(out: Path) -> dict[Path, bytes]:
    files = {
        out / "matrices" / "oud-document.csv": b"uit de vorige run\n",
        out / "matrices" / "coverage.json": b"{}\n",
        out / "report" / "index.html": b"<p>vorig rapport</p>\n",
    }
    for path, data in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def tree(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def test_a_full_disk_leaves_the_previous_outputs_whole(tmp_path, small_disk):
    from pipeline.codebook import load_codebook
    from pipeline.outputs import OutputError
    from pipeline.report import build_outputs

    from .test_matrices import MODEL, build_tiny_store

    point, _ = small_disk
    engine = build_tiny_store(tmp_path)
    out = point / "outputs"
    files = previous_outputs(out)
    before = tree(out)
    filler = point / "vulling"
    with filler.open("wb", buffering=0) as handle:  # fill the disk to its last byte
        try:
            while True:
                handle.write(b"\0" * 4096)
        except OSError:
            pass
    with pytest.raises(OutputError) as refused:
        build_outputs(engine, load_codebook(), out, MODEL)
    message = str(refused.value)
    assert message.startswith(f"{out}: ") and "left as they were" in message and "\n" not in message
    assert tree(out) == before and all(path.read_bytes() == data for path, data in files.items())
    filler.unlink()  # space again: the new outputs replace the old folders whole
    build_outputs(engine, load_codebook(), out, MODEL)
    assert not (out / "matrices" / "oud-document.csv").exists() and (out / "matrices" / "doca.csv").exists()
    assert "vorig rapport" not in (out / "report" / "index.html").read_text("utf-8")
    assert not any(p.name.startswith(".staging-") for p in out.iterdir())


def test_a_read_only_output_folder_is_one_line_and_changes_nothing(tmp_path, small_disk):
    from typer.testing import CliRunner

    from pipeline.cli import app

    from .test_matrices import build_tiny_store

    point, read_only = small_disk
    engine = build_tiny_store(tmp_path)
    out = point / "outputs"
    files = previous_outputs(out)
    read_only()
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--store", str(engine.url)])
    assert result.exit_code == 2, result.output
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(f"error: {out}: ") and "Read-only" in line
    assert all(path.read_bytes() == data for path, data in files.items())


def test_commands_writing_into_a_read_only_folder_say_so_in_one_line(tmp_path, small_disk):
    import subprocess
    import sys

    point, read_only = small_disk
    source = tmp_path / "kort.txt"
    source.write_text(TEXT, "utf-8")
    read_only()
    for args in (["extract", str(source), "--out", str(point / "tekst")], ["matrices", "--out", str(point / "uit")]):
        done = subprocess.run(
            [sys.executable, "-m", "pipeline.cli", *args], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 2, done.stderr
        [line] = done.stderr.strip().splitlines()
        assert line.startswith(f"error: {point}") and line.endswith("Read-only file system"), line
