"""REFI-QDA import against hostile or odd files (issue 16): one member read once and a budget per
import, a 1,000-deep code tree, QualCoder's CRLF counting, plain paths inside the archive, and
the counts of what the file held."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import quoteattr

import pytest
from typer.testing import CliRunner

from pipeline import exchange
from pipeline.cli import app
from pipeline.exchange import ExchangeError, import_project, read_project
from pipeline.store import latest_reviews, load_passages

from .test_exchange import CODEBOOK, TXT_DOC, _zip, built, doc_text, engine, label_name, review_count  # noqa: F401

USER = "11111111-2222-4333-8444-555555555555"


def project_xml(sources_xml: str, codes: dict[str, str], origin: str = "QualCoder 3.5", codes_xml: str = "") -> bytes:
    code_xml = codes_xml or "".join(
        f'<Code guid="{g}" name={quoteattr(n)} isCodable="true"/>' for n, g in codes.items()
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="{exchange.PROJECT_NS}" name="p" '
        f'origin={quoteattr(origin)}><Users><User guid="{USER}" name="Onderzoeker"/></Users>'
        f"<CodeBook><Codes>{code_xml}</Codes></CodeBook><Sources>{sources_xml}</Sources></Project>"
    ).encode()


def selection_xml(n: int, start: int, end: int, name: str, code_guids: list[str]) -> str:
    codings = "".join(
        f'<Coding guid="e{n:07d}-0000-4000-8000-{j:012d}" creatingUser="{USER}"><CodeRef targetGUID="{g}"/></Coding>'
        for j, g in enumerate(code_guids)
    )
    return (
        f'<PlainTextSelection guid="d{n:07d}-0000-4000-8000-000000000001" name={quoteattr(name)} '
        f'startPosition="{start}" endPosition="{end}" creatingUser="{USER}">{codings}</PlainTextSelection>'
    )


def codes() -> dict[str, str]:
    """Code name -> GUID: one polarity and one stakeholder code, named as our codebook names them."""
    names = [label_name("polarity", "bevorderend"), label_name("stakeholders", "gebruikers")]
    return {name: f"c{i:07d}-0000-4000-8000-{i:012d}" for i, name in enumerate(names, start=1)}


def qualcoder_crlf(path: Path, text: str, passages, positions: str) -> Path:
    """QualCoder's export with "line endings for MAXQDA": CRLF in the file; ``positions`` says how
    they are counted: "one" (what QualCoder does), "two", or "neither" (shifted: fits no rule)."""
    guids = list(codes().values())
    selections = []
    for n, p in enumerate(passages):
        start, end = p.char_start, p.char_end
        if positions == "two":
            start, end = start + text.count("\n", 0, start), end + text.count("\n", 0, end)
        elif positions == "neither":
            start, end = start + 7, end + 7
        selections.append(selection_xml(n, start, end, text[p.char_start : p.char_end], guids))
    guid = "ABCDEF01-2345-4789-8BCD-EF0123456789"
    source = (
        f'<TextSource guid="{guid}" name="interview.txt" plainTextPath="internal://{guid}.txt">'
        + "".join(selections)
        + "</TextSource>"
    )
    return _zip(
        path,
        {"project.qde": project_xml(source, codes()), f"sources/{guid}.txt": text.replace("\n", "\r\n").encode()},
    )


def test_qualcoder_crlf_counted_as_one_character_lands_on_the_right_passages(engine, tmp_path):  # noqa: F811
    text = doc_text(engine, TXT_DOC)
    assert "\n" in text
    passages = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"][1:]
    for rule in ("one", "two"):
        path = qualcoder_crlf(tmp_path / f"qualcoder-{rule}.qdpx", text, passages, rule)
        [source] = read_project(path).sources
        assert [source.text[s.start : s.end] for s in source.selections] == [p.text for p in passages], rule
    report = import_project(engine, CODEBOOK, tmp_path / "qualcoder-one.qdpx", coder="expert")
    assert report.complete and report.stored == len(passages) and report.conflicts == 0
    latest = latest_reviews(engine)
    for p in passages:
        assert latest[p.id]["labels"]["polarity"] == "bevorderend"
        assert latest[p.id]["labels"]["stakeholders"] == ["gebruikers"]


def test_selected_text_fitting_no_counting_rule_refuses_that_source_only(engine, tmp_path):  # noqa: F811
    text = doc_text(engine, TXT_DOC)
    passages = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"][1:]
    path = qualcoder_crlf(tmp_path / "shifted.qdpx", text, passages, "neither")
    before = review_count(engine)
    report = import_project(engine, CODEBOOK, path, coder="expert")
    assert not report.complete and report.stored == 0 and review_count(engine) == before
    [line] = report.refused_sources
    assert line.startswith("interview.txt: ") and "neither" in line and "\n" not in line
    result = CliRunner().invoke(app, ["import", "qdpx", str(path), "--coder", "x", "--store", str(engine.url)])
    assert result.exit_code == 1
    assert sum("interview.txt" in line for line in result.stderr.splitlines()) == 1


def test_a_plain_text_path_without_scheme_inside_the_archive_is_read(engine, tmp_path):  # noqa: F811
    text = doc_text(engine, TXT_DOC)
    passage = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"][1]
    guids = list(codes().values())
    sources = "".join(
        f'<TextSource guid="ABCDEF01-2345-4789-8BCD-EF012345678{k}" name="bron {k}" plainTextPath="{location}">'
        + selection_xml(k, passage.char_start, passage.char_end, passage.text, guids)
        + "</TextSource>"
        for k, location in enumerate(["sources/bron.txt", "bron.txt", "relative://bron.txt"])
    )
    path = _zip(
        tmp_path / "plain.qdpx", {"project.qde": project_xml(sources, codes()), "sources/bron.txt": text.encode()}
    )
    report = import_project(engine, CODEBOOK, path, coder="expert")
    assert report.unreadable_sources == [] and [s["doc_id"] for s in report.sources] == [TXT_DOC] * 3
    assert report.complete and report.stored == 1
    # A file that really is elsewhere is reported, and the import is not complete (exit 1).
    gone = sources.replace('plainTextPath="bron.txt"', 'plainTextPath="absolute:///C:/data/bron.txt"')
    path = _zip(tmp_path / "gone.qdpx", {"project.qde": project_xml(gone, codes()), "sources/bron.txt": text.encode()})
    report = import_project(engine, CODEBOOK, path, coder="expert", dry_run=True)
    assert report.unreadable_sources == ["bron 1 (file outside the archive)"] and not report.complete


def test_the_report_counts_what_the_file_held_before_alignment(engine, tmp_path):  # noqa: F811
    text = doc_text(engine, TXT_DOC)
    passages = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"][1:]
    path = qualcoder_crlf(tmp_path / "q.qdpx", text, passages, "one")
    report = import_project(engine, CODEBOOK, path, coder="expert", dry_run=True)
    assert report.read == {
        "users": 1,
        "codes": 2,
        "sources": 1,
        "selections": len(passages),
        "codings": 2 * len(passages),
    }
    assert report.to_json()["read"] == report.read
    result = CliRunner().invoke(
        app, ["import", "qdpx", str(path), "--coder", "x", "--store", str(engine.url), "--dry-run"]
    )
    assert f"gelezen: 1 gebruikers, 2 codes, 1 bronnen, {len(passages)} selecties" in result.stderr.replace("\n", " ")


def test_a_code_tree_nested_a_thousand_deep_is_one_line_exit_2(engine, tmp_path):  # noqa: F811
    nested = "".join(
        f'<Code guid="a{i:07d}-0000-4000-8000-000000000000" name="c{i}" isCodable="true">' for i in range(1000)
    )
    nested += "</Code>" * 1000
    path = _zip(tmp_path / "deep.qdpx", {"project.qde": project_xml("", {}, codes_xml=nested)})
    with pytest.raises(ExchangeError, match="nested more than"):
        read_project(path)
    result = CliRunner().invoke(app, ["import", "qdpx", str(path), "--coder", "x", "--store", str(engine.url)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1 and "nested more than" in result.stderr


def test_many_sources_on_one_member_read_it_once_and_the_budget_refuses_too_much(engine, tmp_path, monkeypatch):  # noqa: F811
    text = doc_text(engine, TXT_DOC)
    sources = "".join(
        f'<TextSource guid="ABCDEF01-2345-4789-8BCD-{k:012d}" name="kopie {k}" plainTextPath="internal://een.txt"/>'
        for k in range(48)
    )
    path = _zip(
        tmp_path / "many.qdpx", {"project.qde": project_xml(sources, codes()), "sources/een.txt": text.encode()}
    )
    reads: list[str] = []
    original = exchange._read_member

    def counting(path, archive, info, limit):
        reads.append(info.filename)
        return original(path, archive, info, limit)

    monkeypatch.setattr(exchange, "_read_member", counting)
    project = read_project(path)
    assert len(project.sources) == 48 and reads.count("sources/een.txt") == 1
    # 48 × the words of one source: over a budget of 40 sources' worth, refused in one line.
    words = len(text.split())
    monkeypatch.setattr(exchange, "MAX_IMPORT_WORDS", 40 * words)
    before = review_count(engine)
    with pytest.raises(ExchangeError) as refused:
        import_project(engine, CODEBOOK, path, coder="expert")
    assert "words together" in str(refused.value) and "\n" not in str(refused.value)
    assert review_count(engine) == before
    monkeypatch.setattr(exchange, "MAX_IMPORT_CHARS", 10 * len(text))
    with pytest.raises(ExchangeError, match="characters together"):
        read_project(path)


def test_include_model_uses_the_configured_models_folder(engine, tmp_path, monkeypatch):  # noqa: F811
    import json

    from pipeline.classify import CARD_FILE

    from .test_exchange import MODEL

    models = tmp_path / "elders" / "modellen"
    models.mkdir(parents=True)
    (models / CARD_FILE).write_text(json.dumps({"model_version": MODEL}), "utf-8")
    monkeypatch.chdir(tmp_path)  # no models/ here
    monkeypatch.setenv("MGZ_MODELS_DIR", str(models))
    out = tmp_path / "met-model.qdpx"
    args = ["export", "qdpx", "--out", str(out), "--store", str(engine.url), "--include-model"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert exchange.MODEL_USER.encode() in __import__("zipfile").ZipFile(out).read("project.qde")
    monkeypatch.setenv("MGZ_MODELS_DIR", str(tmp_path / "leeg"))
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and len(result.stderr.strip().splitlines()) == 1 and "model card" in result.stderr
