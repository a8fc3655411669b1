"""The reference coding covers every passage of the bundled corpus, with valid ids."""

from __future__ import annotations

import json

import pytest

from pipeline.annotations import (
    AnnotationSet,
    Coding,
    agreement,
    by_text_hash,
    quote_box_check,
    read_codings,
)
from pipeline.codebook import load_codebook
from pipeline.ingest import extract_document
from pipeline.models import Passage, text_hash

from .conftest import BUNDLED, CORPUS, ROOT

ANNOTATIONS = AnnotationSet(ROOT / "data" / "annotations")


@pytest.fixture(scope="module")
def codebook():
    return load_codebook()


@pytest.fixture(scope="module")
def reference(codebook):
    return by_text_hash(read_codings([ANNOTATIONS.reference], codebook))


@pytest.mark.parametrize("doc_id", BUNDLED)
def test_every_passage_of_the_bundled_corpus_is_coded(nlp, reference, doc_id):
    doc = extract_document(CORPUS / f"{doc_id}.pdf", nlp, doc_id)
    missing = [p.text[:60] for p in doc.passages if text_hash(p.text) not in reference]
    assert not missing, f"{len(missing)} uncoded passages, e.g. {missing[:3]}"


def test_reference_is_built_from_the_raw_files_and_uses_only_codebook_ids(codebook, reference, tmp_path):
    rebuilt = AnnotationSet(tmp_path)
    (tmp_path / "raw").mkdir()
    for path in ANNOTATIONS.primary + ANNOTATIONS.second:
        (tmp_path / "raw" / path.name).write_text(path.read_text("utf-8"), "utf-8")
    for path in (ANNOTATIONS.adjudicated, ANNOTATIONS.extra):
        (tmp_path / path.name).write_text(path.read_text("utf-8"), "utf-8")
    final = rebuilt.build(codebook)
    assert by_text_hash(final) == reference
    for coding in final:
        assert codebook.validate(coding.to_json()) == []
        assert coding.coder and coding.date


def test_invalid_annotation_lines_are_refused_with_file_and_line(codebook, tmp_path):
    path = tmp_path / "fout.jsonl"
    record = {
        "text_hash": "x",
        "conditions": ["klimaat"],
        "interactie_type": None,
        "polarity": "neutraal",
        "stakeholders": [],
        "primary_condition": None,
    }
    path.write_text(json.dumps(record) + "\n", "utf-8")
    with pytest.raises(ValueError, match=r"fout.jsonl:1: conditions: unknown label"):
        read_codings([path], codebook)


def coding(h: str, polarity: str, conditions: list[str]) -> Coding:
    labels = {
        "conditions": conditions,
        "interactie_type": "goed" if "interactie" in conditions else None,
        "polarity": polarity,
        "stakeholders": [],
        "primary_condition": conditions[0] if conditions else None,
    }
    return Coding(h, h, "d", labels, "c", "2026-11-23")


def test_agreement_is_perfect_for_identical_coders_and_drops_when_they_differ(codebook):
    a = [
        coding(
            str(i), ["belemmerend", "bevorderend", "neutraal"][i % 3], [["infrastructuur"], [], ["interactie"]][i % 3]
        )
        for i in range(30)
    ]
    same = agreement(a, a, codebook)
    assert same["fields"]["polarity"]["kappa"] == 1.0
    assert same["fields"]["conditions"]["alpha_masi"] == 1.0
    flipped = [coding(c.text_hash, "neutraal", []) if int(c.text_hash) % 2 else c for c in a]
    worse = agreement(a, flipped, codebook)
    assert worse["fields"]["polarity"]["kappa"] < 0.7
    assert worse["fields"]["conditions"]["alpha_masi"] < 0.8


def test_quote_box_check_reads_the_box_direction():
    def p(text: str) -> Passage:
        return Passage(text_hash(text), "paragraph", text, 1, 1, 0, len(text))

    passages = [
        p("Illustrerende citaten ‘privacy belemmert casus-overleg’"),
        p("“Dat mag niet van de wet.” (Huisarts)"),
        p("Gewone tekst daarna."),
        p("“Los citaat.”"),
    ]
    ref = {text_hash(x.text): coding(text_hash(x.text), "belemmerend", ["harde_instituties"]) for x in passages}
    check = quote_box_check(passages, ref)
    assert (check.n, check.agree) == (1, 1)


def test_stats_json_has_the_documented_shape_and_full_coverage(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    result = CliRunner().invoke(
        app,
        [
            "annotations",
            "stats",
            "--json",
            "--corpus",
            str(CORPUS),
            "--out",
            str(tmp_path),
            "--annotations",
            str(ANNOTATIONS.root),
        ],
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)
    assert {"documents", "passages", "coded", "double_coded", "agreement"} <= set(stats)
    assert stats["documents"] == 4 and stats["coded"] == stats["passages"] > 1500
    assert stats["double_coded"] >= 250
    assert set(stats["agreement"]) == {
        "polarity_kappa",
        "primary_condition_kappa",
        "interactie_type_kappa",
        "conditions_alpha",
        "stakeholders_alpha",
    }
    assert all(0 < v <= 1 for v in stats["agreement"].values())
    assert {c["doc_id"] for c in stats["structure_checks"]} == {
        "vg-verkenning-convenant-mgz",
        "eerstelijn-parkstad-samenwerking",
    }
