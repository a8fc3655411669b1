"""The passage classifier: input rows, decisions that obey the codebook, persistence, the store."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.classify import (
    CLASSIFIER_VERSION,
    ModelError,
    PassageClassifier,
    classify_corpus,
    load_model,
    read_input_rows,
    save_model,
)
from pipeline.cli import app
from pipeline.codebook import load_codebook, parse_codebook
from pipeline.store import classified_passage_ids, load_classifications, open_store

from .conftest import ROOT

MODELS = ROOT / "models"
GOOD = {
    "conditions": ["interactie"],
    "interactie_type": "goed",
    "polarity": "bevorderend",
    "stakeholders": ["aanbieders"],
    "primary_condition": "interactie",
}
BAD = {
    "conditions": ["infrastructuur"],
    "interactie_type": None,
    "polarity": "belemmerend",
    "stakeholders": ["voorwaardenscheppend"],
    "primary_condition": "infrastructuur",
}
NONE = {
    "conditions": [],
    "interactie_type": None,
    "polarity": "neutraal",
    "stakeholders": [],
    "primary_condition": None,
}


def test_bad_rows_are_reported_with_line_numbers_and_skipped(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_text(
        '{"id": "a", "text": "De huisarts werkt goed samen met de AVG."}\n'
        "dit is geen json\n"
        '{"id": "b", "text": ""}\n'
        '{"id": "c", "text": "Tekort aan SO", "sector": "ziekenhuis"}\n'
        '{"id": "a", "text": "Dubbel"}\n'
        '{"id": "d", "text": "Korte lijnen met de POH.", "sector": "eerstelijn", "section": "Resultaten"}\n',
        "utf-8",
    )
    items, problems = read_input_rows(path)
    assert [i.id for i in items] == ["a", "d"]
    assert items[1].sector == "eerstelijn" and items[1].section == "Resultaten"
    assert [str(p) for p in problems] == [
        "line 2: not JSON (Expecting value)",
        "line 3: no text",
        "line 4: unknown sector 'ziekenhuis'",
        "line 5: duplicate id 'a'",
    ]
    csv_path = tmp_path / "in.csv"
    csv_path.write_text("id,text,sector\nx,Goede samenwerking,vg\ny,,vg\n", "utf-8")
    items, problems = read_input_rows(csv_path)
    assert [i.id for i in items] == ["x"] and [str(p) for p in problems] == ["line 3: no text"]


@pytest.fixture(scope="module")
def tiny_model():
    """A model fitted on a small synthetic set: enough to test decisions and persistence."""
    codebook = load_codebook()
    texts = (
        ["De huisarts en de AVG werken goed samen in een vast overleg."] * 12
        + ["Er is een groot tekort aan huisartsen en geld in de regio."] * 12
        + ["In totaal zijn veertien interviews gehouden."] * 12
    )
    codings = [GOOD] * 12 + [BAD] * 12 + [NONE] * 12
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 16))
    embeddings = np.vstack([centres[i // 12] + 0.1 * rng.normal(size=16) for i in range(36)])
    groups = [f"doc{i % 3}" for i in range(36)]
    model = PassageClassifier.for_codebook(codebook).fit(texts, texts, embeddings, codings, groups, codebook)
    return model, centres, codebook


def test_predictions_obey_the_codebook_rules(tiny_model):
    model, centres, codebook = tiny_model
    texts = ["Vast overleg tussen huisarts en AVG werkt goed.", "Tekort aan huisartsen.", "Interviews gehouden."]
    predictions = model.predict(["1", "2", "3"], texts, texts, centres, "test")
    assert [p["polarity"] for p in predictions] == ["bevorderend", "belemmerend", "neutraal"]
    assert predictions[0]["interactie_type"] == "goed"
    assert predictions[2]["conditions"] == [] and predictions[2]["primary_condition"] is None
    # What the coding always says of passages without a finding is learnt, not hard-coded.
    assert model.gate == "conditions"
    assert model.implied == {
        "interactie_type": None,
        "polarity": "neutraal",
        "stakeholders": [],
        "primary_condition": None,
    }
    for p in predictions:
        assert codebook.validate(p) == []
        # Polarity scores are marginal over the gate: P(neutraal) includes P(no finding).
        assert sum(p["scores"]["polarity"].values()) == pytest.approx(1.0, abs=0.01)
        assert set(p["scores"]) == set(codebook.fields) - (
            {"interactie_type"} if p["interactie_type"] is None else set()
        )


def test_model_round_trips_through_skops_and_refuses_another_codebook(tiny_model, tmp_path):
    model, centres, codebook = tiny_model
    card = {
        "model_version": "clf-test",
        "codebook_id": codebook.id,
        "codebook_version": codebook.version,
        "encoder": "test",
        "classifier_version": CLASSIFIER_VERSION,
    }
    save_model(tmp_path, model, card)
    loaded, loaded_card = load_model(tmp_path, codebook)
    texts = ["Tekort aan huisartsen."]
    assert loaded.predict(["x"], texts, texts, centres[1:2], "v") == model.predict(
        ["x"], texts, texts, centres[1:2], "v"
    )
    data = yaml.safe_load((ROOT / "pipeline" / "data" / "codebook.yaml").read_text("utf-8"))
    data["version"] = "99"
    with pytest.raises(ModelError, match="trained for codebook systeem-framework-mgz 1.0.*99"):
        load_model(tmp_path, parse_codebook(data))
    save_model(tmp_path, model, {**card, "classifier_version": "classify-0"})
    with pytest.raises(ModelError, match="made by classifier classify-0.*retrain with `mgz train`"):
        load_model(tmp_path, codebook)


def test_missing_model_gets_a_clear_error(tmp_path):
    with pytest.raises(ModelError, match="no trained model here; run `mgz train` first"):
        load_model(tmp_path, load_codebook())


@pytest.mark.skipif(not (MODELS / "classifier.skops").exists(), reason="no trained model bundled")
def test_bundled_model_classifies_a_file_via_the_cli(tmp_path):
    rows = [
        {
            "id": "1",
            "text": "Door de arbeidsmarktkrapte zijn er te weinig huisartsen voor cliënten met een VB.",
            "sector": "vg",
        },
        {"id": "2", "text": "De huisarts en de AVG hebben een vast maandelijks overleg; dat werkt goed."},
    ]
    src = tmp_path / "in.jsonl"
    src.write_text("".join(json.dumps(r) + "\n" for r in rows) + "kapot\n", "utf-8")
    result = CliRunner().invoke(
        app,
        [
            "classify",
            "--in",
            str(src),
            "--out",
            str(tmp_path / "out.jsonl"),
            "--store",
            f"sqlite:///{tmp_path / 's.sqlite'}",
        ],
    )
    assert result.exit_code == 1  # one bad row
    assert "line 3: not JSON" in result.output
    out = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text("utf-8").splitlines()]
    codebook = load_codebook()
    assert [o["id"] for o in out] == ["1", "2"]
    for o in out:
        assert set(o) == {"id", *codebook.fields, "scores", "needs_review", "model_version"}
        assert codebook.validate(o) == []
    assert out[0]["polarity"] == "belemmerend" and "infrastructuur" in out[0]["conditions"]


def test_a_new_model_version_reclassifies_stored_passages_without_reingesting(tiny_model, tmp_path, nlp):
    from pipeline.corpus import ingest_corpus

    from .test_store import small_corpus

    model, _, _ = tiny_model
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    ingest_corpus(small_corpus(tmp_path), engine, workers=1)

    class FakeEncoder:  # the tiny model was fitted on 16-dim vectors
        name, dim = "fake-16", 16

        def encode(self, texts):
            return np.ones((len(texts), 16), dtype=np.float32)

    first = classify_corpus(engine, model, {"model_version": "v1"}, nlp, FakeEncoder())
    assert list(first) == ["vg-deelsessie-huisartsenzorg"] and first["vg-deelsessie-huisartsenzorg"] > 0
    assert classify_corpus(engine, model, {"model_version": "v1"}, nlp, FakeEncoder()) == {}
    second = classify_corpus(engine, model, {"model_version": "v2"}, nlp, FakeEncoder())
    assert second == first
    stored = load_classifications(engine, "vg-deelsessie-huisartsenzorg", "v2")
    assert set(stored) == classified_passage_ids(engine, "vg-deelsessie-huisartsenzorg", "v1")


def test_bundled_synthetic_passages_are_valid_and_a_bad_line_is_named(tmp_path):
    from pipeline.annotations import AnnotationSet, read_synthetic

    codebook = load_codebook()
    rows = read_synthetic(AnnotationSet(ROOT / "data" / "annotations").synthetic, codebook)
    assert len(rows) >= 1000 and all(codebook.validate(r) == [] and r["text"].strip() for r in rows)
    coded = {}
    for r in rows:  # a text written twice (a bare heading) is coded the same way both times
        coding = {f: r[f] for f in codebook.fields}
        assert coded.setdefault(r["text"], coding) == coding, r["source"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        json.dumps({"text": "Goede samenwerking.", **GOOD})
        + "\n"
        + json.dumps({"text": "Tekort.", **BAD, "conditions": ["geld"]})
        + "\n",
        "utf-8",
    )
    with pytest.raises(ValueError, match=r"bad.jsonl:2: conditions: unknown label"):
        read_synthetic([bad], codebook)


def test_synthetic_passages_train_but_are_never_tested(nlp):
    from pipeline.classify import PassageInput
    from pipeline.evaluation import SYNTHETIC_DOC, TrainingSet, lodo

    codebook = load_codebook()
    texts = ["De huisarts en de AVG werken goed samen.", "Tekort aan huisartsen in de regio.", "Veertien interviews."]
    codings = [GOOD, BAD, NONE]
    rng = np.random.default_rng(1)

    def training_set(doc_ids: list[str]) -> TrainingSet:
        items = [PassageInput(f"{d}-{k}", texts[k % 3], doc_id=d) for d in doc_ids for k in range(9)]
        return TrainingSet(
            items, [codings[k % 3] for _ in doc_ids for k in range(9)], [i.text for i in items],
            rng.normal(size=(len(items), 8)),
        )  # fmt: skip

    real, synthetic = training_set(["a", "b", "c"]), training_set([SYNTHETIC_DOC])
    report = lodo(real, codebook, nlp, synthetic=synthetic)
    assert sorted(report["folds"]) == ["a", "b", "c"]
    assert all(
        f["n_train"] == 18 and f["n_train_synthetic"] == 9 and f["n_test"] == 9 for f in report["folds"].values()
    )


def test_adaptation_curve_scores_only_the_uncoded_rest_and_learns_a_new_studys_wording(nlp):
    """A document worded unlike the others: the model cannot know it unseen (LODO), but once
    half of it is coded the rest is classified from that half; coded passages are never scored."""
    from pipeline.classify import PassageInput
    from pipeline.evaluation import TrainingSet, adaptation_curve, lodo

    codebook = load_codebook()
    wording = {
        "old": ["De huisarts en de AVG werken goed samen.", "Tekort aan huisartsen.", "Veertien interviews."],
        "new": ["Kortelijnenberaad loopt voortreffelijk.", "Personeelsgat gaapt wijd.", "Gespreksronde afgesloten."],
    }
    codings = [GOOD, BAD, NONE]
    rng = np.random.default_rng(2)
    items, labels = [], []
    for doc_id in ("a", "b", "c"):
        texts = wording["new" if doc_id == "c" else "old"]
        for k in range(18):
            items.append(PassageInput(f"{doc_id}-{k}", texts[k % 3], doc_id=doc_id))
            labels.append(codings[k % 3])
    data = TrainingSet(items, labels, [i.text for i in items], rng.normal(size=(len(items), 8)))

    rows = adaptation_curve(data, codebook, shares=[0.5])
    fold_c = {(r["field"], r["measure"]): r for r in rows if r["fold"] == "c"}
    conditions = fold_c[("conditions", "micro_f1")]
    assert (conditions["n_coded"], conditions["n_scored"], conditions["share_coded"]) == (9, 9, 0.5)
    unseen = lodo(data, codebook, nlp)["folds"]["c"]["model"]["conditions"]["micro_f1"]
    assert conditions["model"] == 1.0 and unseen < 0.7
    assert {r["fold"] for r in rows} == {"a", "b", "c"} and len(rows) == 3 * 3


def test_evaluate_refuses_a_share_outside_zero_to_one():
    result = CliRunner().invoke(app, ["evaluate", "--adaptation", "0.2,1.5"])
    assert result.exit_code == 2 and "between 0 and 1" in result.output


def test_evaluation_folder_describes_one_run(tmp_path):
    from pipeline.evaluation import write_report

    headline = [{"fold": "a", "field": "conditions", "measure": "micro_f1", "model": 0.5}]
    adaptation = [{"fold": "a", "share_coded": 0.1, "n_coded": 1, "n_scored": 9, "model": 0.6}]
    write_report(tmp_path, {"headline": headline, "adaptation": adaptation})
    assert (tmp_path / "adaptation.csv").read_text("utf-8").splitlines()[1] == "a,0.1,1,9,0.6"
    write_report(tmp_path, {"headline": headline})
    assert not (tmp_path / "adaptation.csv").exists()
    lodo_csv = (tmp_path / "lodo.csv").read_text("utf-8").splitlines()
    assert lodo_csv == ["fold,field,measure,model", "a,conditions,micro_f1,0.5"]
