"""Analysts' reviews feed training and evaluation: reviewed labels win over the bundled annotations
for the same passage, and the model is scored against the decisions on what it showed the analyst."""

from __future__ import annotations

from pipeline.codebook import load_codebook
from pipeline.corpus import ingest_corpus
from pipeline.evaluation import build_training_set, model_vs_reviewers, with_reviews
from pipeline.models import text_hash
from pipeline.nlp import load_glossary, make_nlp
from pipeline.store import add_review, load_passages, open_store

from .test_store import DOC, small_corpus


def coding(conditions, polarity, primary=None, stakeholders=()):
    return {
        "conditions": list(conditions),
        "interactie_type": None,
        "primary_condition": primary or (conditions[0] if conditions else None),
        "polarity": polarity,
        "stakeholders": list(stakeholders),
    }


def store_with_document(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'store.sqlite'}")
    ingest_corpus(small_corpus(tmp_path), engine, workers=1)
    return engine, [p for p in load_passages(engine, DOC) if p.kind == "paragraph"]


def test_reviewed_labels_take_precedence_in_the_training_set(tmp_path):
    engine, passages = store_with_document(tmp_path)
    codebook = load_codebook()
    annotated, reviewed, only_reviewed = passages[0], passages[1], passages[2]
    reference = {
        text_hash(annotated.text): coding(["infrastructuur"], "belemmerend"),
        text_hash(reviewed.text): coding(["infrastructuur"], "belemmerend"),
    }
    add_review(engine, reviewed.id, "anna", coding(["zachte_instituties"], "bevorderend"))
    add_review(engine, only_reviewed.id, "anna", {"conditions": ["competenties"], "polarity": "belemmerend"})
    merged, n = with_reviews(reference, engine, codebook)
    assert n == 2
    assert merged[text_hash(annotated.text)]["conditions"] == ["infrastructuur"]
    assert merged[text_hash(reviewed.text)]["conditions"] == ["zachte_instituties"]
    assert merged[text_hash(only_reviewed.text)]["stakeholders"] == []  # missing fields filled in

    from pipeline.embeddings import make_encoder

    data = build_training_set(engine, merged, make_nlp(load_glossary(), lemmas=False), make_encoder("e5"), codebook)
    by_id = {item.id: c for item, c in zip(data.items, data.codings, strict=True)}
    assert set(by_id) == {annotated.id, reviewed.id, only_reviewed.id}
    assert by_id[reviewed.id]["polarity"] == "bevorderend"
    assert by_id[only_reviewed.id]["conditions"] == ["competenties"]


def test_model_is_scored_on_what_it_showed_the_reviewer(tmp_path):
    engine, passages = store_with_document(tmp_path)
    codebook = load_codebook()
    assert model_vs_reviewers(engine, codebook) == {"n": 0}
    shown = coding(["infrastructuur"], "belemmerend")
    add_review(engine, passages[0].id, "anna", shown, labels_shown=shown, model_version="m1")  # accepted
    add_review(engine, passages[1].id, "anna", coding(["infrastructuur"], "bevorderend"), shown, "m1")  # corrected
    add_review(engine, passages[2].id, "bram", coding(["competenties"], "belemmerend"))  # imported: nothing shown
    result = model_vs_reviewers(engine, codebook)
    assert result["n"] == 2 and result["model_versions"] == {"m1": 2}
    assert result["fields"]["conditions"]["micro_f1"] == 1.0
    assert result["fields"]["polarity"]["accuracy"] == 0.5
