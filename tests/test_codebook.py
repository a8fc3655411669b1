"""The codebook is data: label ids, validation rules, and a second codebook without code changes."""

from __future__ import annotations

import pytest

from pipeline.codebook import CodebookError, load_codebook

from .conftest import FIXTURES

VALID = {
    "conditions": ["interactie", "infrastructuur"],
    "interactie_type": "te_zwak",
    "polarity": "belemmerend",
    "stakeholders": ["aanbieders"],
    "primary_condition": "interactie",
}


def test_bundled_codebook_has_the_agreed_ids_and_complete_entries():
    codebook = load_codebook()
    assert codebook.ids("conditions") == (
        "infrastructuur",
        "harde_instituties",
        "zachte_instituties",
        "interactie",
        "competenties",
    )
    assert codebook.ids("interactie_type") == ("te_zwak", "te_sterk", "goed")
    assert codebook.ids("polarity") == ("belemmerend", "bevorderend", "neutraal")
    assert codebook.ids("stakeholders") == ("aanbieders", "gebruikers", "intermediairs", "voorwaardenscheppend")
    assert codebook.ids("primary_condition") == codebook.ids("conditions")
    for field_id in ("conditions", "interactie_type", "polarity", "stakeholders"):
        for label in codebook.fields[field_id].labels:
            assert label.name and label.definition and label.colour.startswith("#")
            assert len(label.examples) >= 2 and label.include and label.exclude, label.id


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"conditions": ["klimaat"]}, "unknown label"),
        ({"interactie_type": None}, "required when conditions has 'interactie'"),
        ({"conditions": ["infrastructuur"], "primary_condition": "infrastructuur"}, "lacks 'interactie'"),
        ({"primary_condition": "competenties"}, "not among conditions"),
        ({"primary_condition": None}, "empty although conditions"),
        ({"polarity": None}, "may not be empty"),
    ],
)
def test_validation_catches_each_rule(change, problem):
    codebook = load_codebook()
    assert codebook.validate(VALID) == []
    problems = codebook.validate({**VALID, **change})
    assert any(problem in p for p in problems), problems


def test_a_second_codebook_loads_and_validates_without_code_changes():
    codebook = load_codebook(FIXTURES / "codebook-eerstelijn-aspecten.yaml")
    assert codebook.ids("aspecten") == ("financieel", "organisatorisch", "cultureel", "fysiek", "inhoudelijk")
    assert codebook.validate({"aspecten": ["fysiek"], "richting": "faciliterend"}) == []
    assert codebook.validate({"aspecten": ["infrastructuur"], "richting": "faciliterend"})


def test_a_broken_codebook_gets_a_clear_error(tmp_path):
    path = tmp_path / "kapot.yaml"
    path.write_text("fields:\n  x:\n    labels: []\n", "utf-8")
    with pytest.raises(CodebookError, match="kapot.yaml: field x has no labels"):
        load_codebook(path)
