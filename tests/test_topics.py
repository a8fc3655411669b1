"""BERTopic themes on two real bundled reports: reproducible, Dutch, outliers bounded, outputs complete."""

from __future__ import annotations

import csv
import json
import shutil
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from markupsafe import escape
from sklearn.metrics import adjusted_rand_score
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.corpus import ingest_corpus
from pipeline.embeddings import embed, make_encoder
from pipeline.store import add_review, document_rows, load_passages, open_store
from pipeline.topics import (
    BOILERPLATE,
    MIN_PASSAGES,
    MIN_WORDS,
    TopicParams,
    TopicsError,
    build_topics,
    cached_backend,
    centre_embeddings,
    fit_topics,
    load_topic_model,
    load_topic_result,
    make_vectorizer,
    npmi_coherence,
    place_passages,
    seed_topics,
    shared_vocabulary,
    topic_diversity,
    topic_passages,
    topic_view,
    topic_words,
)

from .conftest import CORPUS

DOCS = ["vg-deelsessie-huisartsenzorg", "ouderenzorg-mgz-in-de-regio-2023"]


def make_corpus(folder, docs):
    folder.mkdir()
    with (CORPUS / "manifest.csv").open(encoding="utf-8") as handle:
        rows = [r for r in csv.DictReader(handle) if r["doc_id"] in docs]
    for row in rows:
        shutil.copy(CORPUS / row["file"], folder)
    with (folder / "manifest.csv").open("w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return folder


@pytest.fixture(scope="module")
def corpus_store(tmp_path_factory):
    root = tmp_path_factory.mktemp("topics")
    engine = open_store(f"sqlite:///{root / 'store.sqlite'}")
    ingest_corpus(make_corpus(root / "corpus", DOCS), engine, workers=1)
    return root, engine


@pytest.fixture(scope="module")
def built(corpus_store):
    root, engine = corpus_store
    summary = build_topics(engine, load_codebook(), root / "out", make_encoder("e5"), None)
    return root, engine, summary


def test_two_fits_on_the_same_corpus_assign_identical_topics(corpus_store):
    _, engine = corpus_store
    encoder = make_encoder("e5")
    passages = topic_passages(engine)
    embeddings = embed([p.text for p in passages], encoder, engine)
    params = TopicParams.for_corpus(len(passages))
    first = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name)
    second = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name)
    assert len(set(first.topics) - {-1}) >= 3
    assert adjusted_rand_score(first.topics, second.topics) == 1.0
    assert topic_words(first) == topic_words(second)


def test_topic_words_are_dutch_and_free_of_boilerplate(built):
    root, _, _ = built
    table = pd.read_csv(root / "out" / "topics" / "topics.csv")
    words = {w.strip() for cell in table["words"] for w in cell.split(",")}
    assert any(ch in w for w in words for ch in "ëéïü"), "Dutch letters were stripped from the topic words"
    assert not any("patinten" in w or "clinten" in w for w in words)
    assert not any(ch.isdigit() for w in words for ch in w), "page numbers or other digits in topic words"
    assert not {t for w in words for t in w.split()} & BOILERPLATE


def test_vectorizer_keeps_dutch_letters_and_drops_numbers_boilerplate_and_stop_words():
    analyzer = make_vectorizer(TopicParams.for_corpus(60, ngram_range=(1, 1))).build_analyzer()
    tokens = analyzer("Pagina 12: de patiënten en cliënten (tabel 3.1, figuur 4): continuïteit, 2023, zie bijlage B")
    assert tokens == ["patiënten", "cliënten", "continuïteit"]


def test_headings_and_fragments_form_no_topics(corpus_store):
    _, engine = corpus_store
    kinds = {p.id: (p.kind, p.text) for d in document_rows(engine) for p in load_passages(engine, d["doc_id"])}
    ids = [p.passage_id for p in topic_passages(engine)]
    assert any(kind == "heading" for kind, _ in kinds.values())  # the reports have headings, left out below
    assert ids and all(kinds[i][0] != "heading" and len(kinds[i][1].split()) >= MIN_WORDS for i in ids)
    short = [i for i, (kind, text) in kinds.items() if kind != "heading" and len(text.split()) < MIN_WORDS]
    assert short and not set(short) & set(ids)


def test_outliers_are_reduced_and_reported(built):
    root, engine, summary = built
    assert summary["outliers_after_reduction"] <= 0.15
    assert summary["outliers_before_reduction"] >= summary["outliers_after_reduction"]
    assignments = pd.read_csv(root / "out" / "topics" / "passage_topics.csv")
    assert len(assignments) == summary["n_passages"] == len(topic_passages(engine))
    assert (assignments["topic"] == -1).mean() == pytest.approx(summary["outliers_after_reduction"], abs=1e-3)


def test_outputs_tables_figures_and_model(built):
    root, engine, summary = built
    folder = root / "out" / "topics"
    table = pd.read_csv(folder / "topics.csv")
    assignments = pd.read_csv(folder / "passage_topics.csv")
    assert list(table.columns) == [
        "topic", "size", "share", "label", "words", "keybert", "mmr", "representative_passages", "seeds_found",
    ]  # fmt: skip
    assert table.loc[table.topic != -1, "seeds_found"].between(1, summary["params"]["seed_runs"]).all()
    for row in table[table.topic != -1].itertuples():
        members = set(assignments.loc[assignments.topic == row.topic, "passage_id"])
        examples = row.representative_passages.split()
        assert len(examples) == 3 and set(examples) <= members
        assert row.size == len(members)
        assert row.keybert and row.mmr
    sectors = pd.read_csv(folder / "sector_topics.csv", index_col=0)
    assert set(sectors.index) == {"vg", "ouderenzorg"}
    assert np.allclose(sectors.sum(axis=1), 1.0, atol=1e-3)
    per_sector = pd.read_csv(folder / "topics_per_sector.csv")
    assert {"Topic", "Words", "Frequency", "Class"} <= set(per_sector.columns)
    assert set(pd.read_csv(folder / "study_topics.csv", index_col=0).index) == set(assignments["study"])
    for name in ("intertopic_map", "sector_topic_heatmap"):
        html = (folder / f"{name}.html").read_text("utf-8")
        assert "plotly.js" in html.lower() and "<script src" not in html  # standalone: plotly.js inline
        assert (folder / f"{name}.png").read_bytes()[:4] == b"\x89PNG"
    meta = json.loads((folder / "model" / "mgz_topics.json").read_text("utf-8"))
    assert meta["corpus_hash"] == summary["corpus_hash"] and meta["params"] == summary["params"]
    assert (folder / "model" / "topics.json").exists()
    assert list((folder / "model").glob("*.safetensors")) and not list((folder / "model").glob("*.pkl"))

    loaded = load_topic_model(folder / "model", make_encoder("e5"), engine)
    assert set(loaded.get_topic_info()["Topic"]) == set(table["topic"])
    # placed again from the saved model (centred and whitened as in the fit), a representative passage
    # lands on its own theme
    doc = assignments.loc[assignments.passage_id == examples[0], "doc_id"].iloc[0]
    own = [p for p in topic_passages(engine) if p.doc_id == doc]
    saved = load_topic_result(folder / "model", make_encoder("e5"), engine)
    assert saved.whitening is not None and saved.params.centring == "whiten"
    placed = place_passages(saved, own, embed([p.text for p in own], make_encoder("e5"), engine))
    assert placed[next(i for i, p in enumerate(own) if p.passage_id == examples[0])] == row.topic


def assignments_text(engine, passage_id):
    return next(p.text for p in topic_passages(engine) if p.passage_id == passage_id)


def test_crosstabs_follow_reviews_without_refitting(built):
    root, engine, summary = built
    folder = root / "out" / "topics"
    assignments = pd.read_csv(folder / "passage_topics.csv")
    before = pd.read_csv(folder / "topic_condition.csv", index_col=0)
    assert (before.sum(axis=1) == assignments.groupby("topic").size()).all()  # uncoded: all "geen_voorwaarde"
    target = assignments[assignments.topic != -1].iloc[0]
    add_review(engine, target.passage_id, "analist", {"conditions": ["infrastructuur"], "polarity": "belemmerend"})
    again = build_topics(engine, load_codebook(), root / "out", make_encoder("e5"), None)
    assert again["reused"] and again["corpus_hash"] == summary["corpus_hash"]
    after = pd.read_csv(folder / "topic_condition.csv", index_col=0)
    assert after.loc[target.topic, "infrastructuur"] == before.loc[target.topic, "infrastructuur"] + 1
    assert after.loc[target.topic, "geen_voorwaarde"] == before.loc[target.topic, "geen_voorwaarde"] - 1
    polarity = pd.read_csv(folder / "topic_polarity.csv", index_col=0)
    assert polarity.loc[target.topic, "belemmerend"] == 1


def test_too_small_corpus_gets_a_message_and_no_model(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'small.sqlite'}")
    ingest_corpus(make_corpus(tmp_path / "corpus", ["vg-deelsessie-huisartsenzorg"]), engine, workers=1)
    n = len(topic_passages(engine))
    with pytest.raises(TopicsError, match="te weinig"):
        TopicParams.for_corpus(MIN_PASSAGES - 1)
    assert n >= MIN_PASSAGES  # the single report is just large enough; cut it below the minimum:
    from sqlalchemy import text

    with engine.begin() as connection:
        connection.execute(text("DELETE FROM passages WHERE seq > 40"))
    result = CliRunner().invoke(app, ["topics", "--out", str(tmp_path / "out"), "--store", str(engine.url)])
    assert result.exit_code == 2
    assert "te weinig inhoudelijke passages" in result.output
    assert not (tmp_path / "out" / "topics").exists()
    # a model left from when the corpus was larger is not kept as if it described this one
    stale = tmp_path / "out" / "topics"
    (stale / "model").mkdir(parents=True)
    (stale / "model" / "mgz_topics.json").write_text("{}", "utf-8")
    (stale / "summary.json").write_text("{}", "utf-8")
    result = CliRunner().invoke(app, ["topics", "--out", str(tmp_path / "out"), "--store", str(engine.url)])
    assert result.exit_code == 2 and not stale.exists()


def test_guided_mode_seeds_topics_from_the_codebook(corpus_store):
    _, engine = corpus_store
    encoder = make_encoder("e5")
    passages = topic_passages(engine)
    embeddings = embed([p.text for p in passages], encoder, engine)
    seeds = seed_topics(load_codebook(), None)
    assert len(seeds) == len(load_codebook().ids("conditions")) and all(seeds)
    assert "capaciteit" in seeds[0] and "cultuur" in seeds[2]  # infrastructuur, zachte instituties
    params = TopicParams.for_corpus(len(passages), guided=True)
    result = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name, seeds)
    assert result.model.seed_topic_list == seeds
    unguided = fit_topics(passages, embeddings, replace(params, guided=False), cached_backend(encoder, engine), "e5")
    assert unguided.model.seed_topic_list is None
    assert adjusted_rand_score(result.topics, unguided.topics) < 1.0  # the seeds do steer the clustering


def test_params_adapt_to_corpus_size():
    small, large = TopicParams.for_corpus(60), TopicParams.for_corpus(20_000)
    assert small.min_topic_size < large.min_topic_size and small.max_topics < large.max_topics
    assert small.min_samples <= small.min_topic_size and large.min_samples <= large.min_topic_size
    assert small.n_neighbors == TopicParams.for_corpus(1_586).n_neighbors == 15 < large.n_neighbors <= 50
    assert TopicParams.for_corpus(60, min_topic_size=7).min_topic_size == 7


def test_coherence_and_diversity_by_hand():
    texts = ["huisarts overleg", "huisarts overleg", "tekort geld", "tekort geld", "huisarts geld"]
    params = TopicParams.for_corpus(60, ngram_range=(1, 1))
    # p(huisarts)=3/5, p(overleg)=2/5, p(both)=2/5: NPMI = log((2/5)/(6/25)) / -log(2/5)
    expected = np.log((2 / 5) / (3 / 5 * 2 / 5)) / -np.log(2 / 5)
    assert npmi_coherence([["huisarts", "overleg"]], texts, params) == pytest.approx(expected, abs=1e-4)
    assert npmi_coherence([["overleg", "tekort"]], texts, params) == -1.0
    assert topic_diversity([["a", "b"], ["b", "c"]]) == 0.75


def test_centring_takes_out_what_a_document_shares_and_keeps_how_its_passages_differ():
    rng = np.random.default_rng(0)
    themes = rng.normal(size=(6, 16))
    style = {"a": 5 * rng.normal(size=16), "b": 5 * rng.normal(size=16)}  # each document's own register
    groups = ["a"] * 6 + ["b"] * 6
    raw = np.vstack([themes + style["a"], themes + style["b"]])
    centred = centre_embeddings(raw, groups, "document")
    same_theme = [float(centred[i] @ centred[i + 6]) for i in range(6)]
    assert min(same_theme) == pytest.approx(1.0, abs=1e-5)  # theme i in document a == theme i in b
    normed = raw / np.linalg.norm(raw, axis=1, keepdims=True)
    assert max(float(normed[i] @ normed[i + 6]) for i in range(6)) < 0.9  # raw: documents apart first
    assert centre_embeddings(raw, groups, "none") is raw


def test_a_document_floor_keeps_one_documents_words_out_of_the_topic_words(corpus_store):
    _, engine = corpus_store
    encoder = make_encoder("e5")
    passages = topic_passages(engine)
    params = TopicParams.for_corpus(len(passages), min_documents=2, seed_runs=1)
    assert shared_vocabulary(passages, replace(params, min_documents=1)) is None  # no floor: vectorizer's own
    vocabulary = set(shared_vocabulary(passages, params))
    analyzer = make_vectorizer(params).build_analyzer()
    by_doc: dict[str, set[str]] = {}
    for p in passages:
        by_doc.setdefault(p.doc_id, set()).update(analyzer(p.text))
    own = set.union(*by_doc.values()) - set.intersection(*by_doc.values())  # terms of one document only
    assert own and not own & vocabulary
    embeddings = embed([p.text for p in passages], encoder, engine)
    result = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name, label=False)
    words = {w for topic in topic_words(result) for w in topic if w}  # BERTopic pads short lists with ""
    assert words and words <= vocabulary


def test_comparison_outputs_per_sector_and_study(built):
    root, engine, summary = built
    folder = root / "out" / "topics"
    assignments = pd.read_csv(folder / "passage_topics.csv", dtype={"passage_id": str})
    prevalence = pd.read_csv(folder / "theme_prevalence_sector.csv")
    assert set(prevalence["sector"]) == set(assignments["sector"])
    assert (prevalence["low"] <= prevalence["share"]).all() and (prevalence["share"] <= prevalence["high"]).all()
    assert set(prevalence["resampled"]) == {"passages"}  # one document per sector in this corpus
    for sector, part in prevalence.groupby("sector"):
        assert part["share"].sum() == pytest.approx(1.0, abs=1e-3)
        counts = assignments[assignments.sector == sector].topic.value_counts()
        assert dict(zip(part.topic, part.n, strict=True)) == {t: int(counts.get(t, 0)) for t in part.topic}
    side = pd.read_csv(folder / "theme_sector_passages.csv", dtype={"passage_id": str})
    members = dict(zip(assignments.passage_id, zip(assignments.topic, assignments.sector, strict=True), strict=True))
    rows = zip(side.passage_id, side.topic, side.sector, strict=True)
    assert len(side) and all(members[p] == (t, s) for p, t, s in rows)
    per_sector = pd.read_csv(folder / "topic_condition_per_sector.csv")
    assert per_sector.groupby("sector")["n"].sum().to_dict() == assignments.groupby("sector").size().to_dict()
    assert 0 <= summary["two_sector_share"] <= 1 and -1 <= summary["seed_ari"] <= 1


def test_a_left_out_document_is_placed_on_the_existing_themes(corpus_store):
    _, engine = corpus_store
    encoder = make_encoder("e5")
    passages = topic_passages(engine)
    embeddings = embed([p.text for p in passages], encoder, engine)
    params = TopicParams.for_corpus(len(passages))
    result = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name, label=False)
    placed = place_passages(result, passages, embeddings)  # the fitted passages themselves, as if new
    agree = np.mean([a == b for a, b in zip(placed, result.topics, strict=True) if b != -1])
    assert agree > 0.6 and set(placed) <= set(result.topics)


def test_report_section_compares_shared_themes_per_sector(built):
    root, _, summary = built
    folder = root / "out" / "topics"
    view = topic_view(folder, load_codebook())
    html = str(view["section"])
    table = pd.read_csv(folder / "topics.csv").set_index("topic")
    shown = [t for t in summary["shared_themes"] if t not in summary["themes_in_one_seed_only"]]
    assert "Hetzelfde thema per sector, naast elkaar" in html and "bootstrapinterval" in html
    for topic in shown:
        assert str(escape(table.loc[topic, "label"])) in html
    for topic in summary["themes_in_one_seed_only"]:  # listed apart, not as a finding
        assert html.count(str(escape(table.loc[topic, "label"]))) == 1
    side = pd.read_csv(folder / "theme_sector_passages.csv")
    first = side[(side.topic == shown[0]) & (side["rank"] == 1)]
    assert all(str(escape(text[:80])) in html for text in first.text)  # each sector's passage, side by side
