"""Model-assisted estimates on hand-built data with known truth: the estimator against the papers'
reference implementation, its unbiasedness and coverage where the model is biased, strata,
differences, the audit sample in the store, the report text for the three methods, `mgz estimate`."""

from __future__ import annotations

import json
import math
import warnings

import numpy as np
import pytest
from typer.testing import CliRunner

from pipeline.audit import AuditError, audit_draws, audit_members, draw_audit
from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.estimate import (
    Estimate,
    _quantile,
    classical_share,
    combine,
    difference,
    power_tuning,
    ppi_share,
    score_interval,
)
from pipeline.matrices import Cell, coded_passages, estimate_cells
from pipeline.models import Document, ManifestRow, Passage
from pipeline.report import build_outputs
from pipeline.store import add_review, open_store, save_classifications, save_document

MODEL = "clf-estimate"


def biased_population(N: int = 400, p: float = 0.2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """True labels and a model that calls far too many passages positive (share ~0.45 for 0.2)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(N) < p).astype(float)
    score = np.clip(0.35 + 0.45 * y + rng.normal(0, 0.12, N), 0, 1)
    return y, score


# --------------------------------------------------------------------------- the estimator


def test_point_estimate_equals_the_reference_implementation_for_fixed_weights():
    with warnings.catch_warnings():  # ppi_py silences every warning when imported
        import ppi_py
    y, s = biased_population()
    idx = np.random.default_rng(1).choice(len(y), 40, replace=False)
    for lam in (0.0, 0.4, 1.0):
        ours = ppi_share(y[idx], s[idx], s, lam=lam).estimate
        theirs = float(np.ravel(ppi_py.ppi_mean_pointestimate(y[idx], s[idx], s, lam=lam))[0])
        assert ours == pytest.approx(min(1.0, max(0.0, theirs)), abs=1e-12)
    assert ppi_share(y[idx], s[idx], s, lam=0.0).estimate == pytest.approx(y[idx].mean())


def test_interval_matches_the_reference_normal_interval_at_large_samples():
    """With n large and N much larger the score interval and ppi_py's CLT interval coincide."""
    with warnings.catch_warnings():
        import ppi_py
    y, s = biased_population(N=200_000, p=0.3, seed=2)
    idx = np.random.default_rng(3).choice(len(y), 4_000, replace=False)
    lam = power_tuning(y[idx], s[idx])
    e = ppi_share(y[idx], s[idx], s, lam=lam)
    low, high = ppi_py.ppi_mean_ci(y[idx], s[idx], s, alpha=0.05, lam=lam)
    assert e.ci_low == pytest.approx(float(low[0]), abs=0.004)
    assert e.ci_high == pytest.approx(float(high[0]), abs=0.004)


def test_unbiased_and_covering_where_the_model_is_biased():
    y, s = biased_population()
    truth = y.mean()
    assert s.mean() - truth > 0.2  # the plain model share is far off
    rng = np.random.default_rng(4)
    estimates, covered, widths, classical_widths = [], 0, [], []
    for _ in range(400):
        idx = rng.choice(len(y), 30, replace=False)
        e = ppi_share(y[idx], s[idx], s)
        c = classical_share(y[idx], len(y))
        estimates.append(e.estimate)
        covered += e.ci_low <= truth <= e.ci_high
        widths.append(e.ci_high - e.ci_low)
        classical_widths.append(c.ci_high - c.ci_low)
    assert abs(np.mean(estimates) - truth) < 0.01
    assert covered / 400 >= 0.92
    assert np.mean(widths) < 0.9 * np.mean(classical_widths)  # the model helps: narrower than human labels alone


def test_small_samples_without_any_positive_still_get_an_interval():
    y = np.zeros(20)
    s = np.full(500, 0.01)
    e = ppi_share(y, s[:20], s)
    assert e.method == "ppi" and e.ci_low == 0.0 and e.ci_high > 0.03  # a Wald interval would be [0, 0]


def test_methods_human_model_and_errors():
    s = np.array([0.2, 0.9, 0.4, 0.7])
    whole = ppi_share([0, 1, 0, 1], s, s)
    assert (whole.method, whole.estimate, whole.ci_low, whole.ci_high) == ("human", 0.5, 0.5, 0.5)
    none = ppi_share([], [], s)
    assert none.method == "model" and none.ci_low is None and none.estimate == pytest.approx(s.mean())
    with pytest.raises(ValueError):
        ppi_share([1, 0], [0.5], s)


def test_score_interval_is_wilson_at_the_sample_share():
    low, high = score_interval(0.3, 50, 1.96)
    z, n, p = 1.96, 50, 0.3
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z / (1 + z * z / n) * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    assert (low, high) == pytest.approx((centre - half, centre + half))


def test_strata_combine_by_passages_and_differences_add_variances():
    a = Estimate(0.2, 0.1, 0.3, "ppi", 30, 300, 0.25, n_eff=60.0)
    b = Estimate(0.6, 0.4, 0.8, "ppi", 20, 100, 0.5, n_eff=25.0)
    both = combine([a, b])
    assert both.estimate == pytest.approx(0.75 * 0.2 + 0.25 * 0.6)
    assert both.n_total == 400 and both.n_audit == 50 and both.method == "ppi"
    m = 1 / (0.75**2 / 60 + 0.25**2 / 25)  # the stratified design's effective sample size
    assert both.n_eff == pytest.approx(m)
    assert (both.ci_low, both.ci_high) == pytest.approx(score_interval(0.3, m, _quantile(49, 0.95)))
    assert combine([a, Estimate(0.5, None, None, "model", 0, 100, 0.5)]).method == "model"
    exact = Estimate(0.4, 0.4, 0.4, "human", 100, 100, 0.4)
    assert combine([exact, exact]).method == "human"
    d = difference(a, b)  # Newcombe's hybrid score interval from the two sides' own intervals
    assert d["difference"] == pytest.approx(-0.4)
    half = math.sqrt(0.1**2 + 0.2**2)
    assert (d["ci_low"], d["ci_high"]) == pytest.approx((-0.4 - half, -0.4 + half))
    assert difference(a, Estimate(0.5, None, None, "model", 0, 10, 0.5))["ci_low"] is None


# --------------------------------------------------------------------------- store, matrices, report


def coding(conditions, polarity, stakeholders=(), conf=0.8):
    return {
        "conditions": list(conditions),
        "interactie_type": None,
        "polarity": polarity,
        "stakeholders": list(stakeholders),
        "primary_condition": conditions[0] if conditions else None,
    }


def build_store(tmp_path, n: int = 60):
    """Two documents; the model calls every passage a barrier on infrastructure, but only the
    first fifth are (the analysts know)."""
    engine = open_store(f"sqlite:///{tmp_path / 'est.sqlite'}")
    truth = {}
    for doc_id, sector in (("doc-vg", "vg"), ("doc-oz", "ouderenzorg")):
        texts = [f"Passage {k} van {doc_id} over de zorg." for k in range(n)]
        passages, offset = [], 0
        for k, t in enumerate(texts):
            passages.append(Passage(f"{doc_id}-{k}", "paragraph", t, 1, 1, offset, offset + len(t)))
            offset += len(t) + 2
        doc = Document(doc_id, f"/corpus/{doc_id}.pdf", doc_id * 4, 1, doc_id, "\n\n".join(texts), passages)
        save_document(engine, doc, ManifestRow(doc_id=doc_id, file=f"{doc_id}.pdf", title=doc_id, sector=sector), "t")
        rows = []
        for k, p in enumerate(passages):
            real = k < n // 5
            truth[p.id] = coding(["infrastructuur"], "belemmerend") if real else coding([], "neutraal")
            rows.append(
                {
                    "id": p.id,
                    **coding(["infrastructuur"], "belemmerend"),
                    "scores": {
                        "conditions": {"infrastructuur": 0.9 if real else 0.7},
                        "polarity": {"belemmerend": 0.9 if real else 0.6, "neutraal": 0.1 if real else 0.4},
                    },
                    "needs_review": False,
                    "model_version": MODEL,
                }
            )
        save_classifications(engine, doc_id, MODEL, rows)
    return engine, truth


def test_audit_draw_is_recorded_repeatable_and_grows_from_the_rest(tmp_path):
    engine, _ = build_store(tmp_path)
    first = draw_audit(engine, per_document=10, seed=7, drawn_by="anna")
    assert first.per_document == {"doc-oz": 10, "doc-vg": 10} and first.content == {"doc-oz": 60, "doc-vg": 60}
    again, _ = build_store(tmp_path / "again")
    assert audit_members(again) == {}
    draw_audit(again, per_document=10, seed=7)
    assert audit_members(again) == audit_members(engine)  # same seed, same sample
    second = draw_audit(engine, share=0.25, doc_id="doc-vg", seed=8)
    assert second.per_document == {"doc-vg": 5} and second.sample_size == {"doc-vg": 15}
    members = audit_members(engine)
    assert len(members["doc-vg"]) == 15 and len(members["doc-oz"]) == 10
    draws = audit_draws(engine)
    assert [(d["rule"], d["value"], d["seed"], d["passages"], d["drawn_by"]) for d in draws] == [
        ("per_document", 10.0, 7, 20, "anna"),
        ("share", 0.25, 8, 5, "mgz"),
    ]
    assert draws[0]["blind"] is True
    with pytest.raises(AuditError):
        draw_audit(engine, per_document=5, share=0.1)
    with pytest.raises(AuditError):
        draw_audit(engine, share=1.5)
    with pytest.raises(AuditError):
        draw_audit(engine, per_document=3, doc_id="missing")


def test_only_the_audit_sample_corrects_and_analysts_choices_do_not(tmp_path):
    engine, truth = build_store(tmp_path)
    cell = Cell("infrastructuur", "belemmerend")
    # Reviews the analyst chose, all on true barriers: not a random sample, they must not rectify.
    for k in range(12):
        add_review(engine, f"doc-vg-{k}", "anna", truth[f"doc-vg-{k}"])
    before = estimate_cells([p for p in coded_passages(engine, MODEL) if p.doc_id == "doc-vg"], [cell])[0]
    assert before.method == "model" and before.ci_low is None
    draw_audit(engine, per_document=20, seed=3)
    for pid in audit_members(engine)["doc-vg"]:
        add_review(engine, pid, "bert", truth[pid])
    passages = [p for p in coded_passages(engine, MODEL) if p.doc_id == "doc-vg"]
    e = estimate_cells(passages, [cell])[0]
    true_share = sum(truth[p.passage_id]["polarity"] == "belemmerend" for p in passages) / len(passages)
    assert e.method == "ppi" and e.n_audit == 20
    assert e.ci_low <= true_share <= e.ci_high
    assert e.model_share > 0.6  # plain counts: every unreviewed passage a barrier (truth 0.2)
    # The analyst's own choices, whatever they say, leave the estimate as it is (they move the plain count).
    chosen = [p.passage_id for p in passages if p.source == "review" and not p.audit]
    assert chosen
    for pid in chosen:
        add_review(engine, pid, "anna", coding(["competenties"], "bevorderend"))
    changed = [p for p in coded_passages(engine, MODEL) if p.doc_id == "doc-vg"]
    again = estimate_cells(changed, [cell])[0]
    assert again.estimate == pytest.approx(e.estimate) and again.model_share < e.model_share


def test_report_says_how_each_figure_was_obtained(tmp_path):
    engine, truth = build_store(tmp_path)
    codebook = load_codebook()
    out = tmp_path / "out"
    build_outputs(engine, codebook, out, MODEL)
    html = (out / "report" / "index.html").read_text("utf-8")
    assert "Indicatief" in html and "geen aselecte steekproef" in html and "mgz audit draw --per-document" in html
    chi = json.loads((out / "comparison" / "chi_square.json").read_text("utf-8"))
    assert chi["sector_x_condition"]["testable"] is False  # model labels: no chi-square

    draw_audit(engine, per_document=20, seed=5)
    for pid in audit_members(engine)["doc-vg"]:
        add_review(engine, pid, "bert", truth[pid])
    for k in range(60):  # every passage of the other document decided by analysts
        add_review(engine, f"doc-oz-{k}", "bert", truth[f"doc-oz-{k}"])
    build_outputs(engine, codebook, out, MODEL)
    html = (out / "report" / "index.html").read_text("utf-8")
    assert "aselecte steekproef van 20 van de 60 passages" in html  # doc-vg: PPI
    assert "Alle 60 inhoudelijke passages zijn door analisten gecodeerd" in html  # doc-oz: exact
    assert "Indicatief" not in html
    import pandas as pd

    vg = pd.read_csv(out / "matrices" / "doc-vg.csv", keep_default_na=False)
    row = vg[(vg.condition == "infrastructuur") & (vg.polarity == "belemmerend") & (vg.stakeholder == "")].iloc[0]
    assert row.method == "ppi" and row.n_audit == 20 and float(row.ci_low) <= 0.2 <= float(row.ci_high)
    assert float(row.share) > 0.5  # the plain count, which the estimate corrects
    oz = pd.read_csv(out / "matrices" / "compact.csv")
    exact = oz[(oz.doc_id == "doc-oz") & (oz.condition == "infrastructuur") & (oz.polarity == "belemmerend")].iloc[0]
    assert exact.method == "human" and exact.estimate == exact.ci_low == exact.ci_high == 0.2
    diffs = pd.read_csv(out / "comparison" / "sector_differences.csv")
    d = diffs[(diffs.condition == "infrastructuur") & (diffs.polarity == "belemmerend")].iloc[0]
    assert d.method == "ppi" and d.ci_low < d.difference < d.ci_high


# --------------------------------------------------------------------------- mgz estimate, mgz audit


def test_estimate_command_prints_json_per_label(tmp_path):
    y, s = biased_population(N=300, seed=9)
    preds = tmp_path / "p.jsonl"
    preds.write_text(
        "".join(
            json.dumps({"id": f"p{i}", "polarity": "belemmerend" if s[i] > 0.4 else "neutraal",
                        "scores": {"polarity": {"belemmerend": s[i], "neutraal": 1 - s[i], "bevorderend": 0.0}}})
            + "\n"
            for i in range(len(y))
        )  # fmt: skip
    )
    idx = np.random.default_rng(10).choice(len(y), 40, replace=False)
    labels = tmp_path / "l.jsonl"
    labels.write_text(
        "".join(json.dumps({"id": f"p{i}", "polarity": "belemmerend" if y[i] else "neutraal"}) + "\n" for i in idx)
    )
    result = CliRunner().invoke(
        app, ["estimate", "--predictions", str(preds), "--labels", str(labels), "--field", "polarity", "--json"]
    )
    assert result.exit_code == 0, result.output
    rows = {r["label"]: r for r in json.loads(result.stdout)}
    bel = rows["belemmerend"]
    assert set(bel) >= {"label", "estimate", "ci_low", "ci_high", "model_share", "n_labeled", "n_total"}
    assert (bel["n_labeled"], bel["n_total"]) == (40, 300)
    assert bel["ci_low"] <= y.mean() <= bel["ci_high"] and bel["model_share"] > y.mean() + 0.1

    labels.write_text(labels.read_text() + '{"id": "p1", "polarity": "onzin"}\n{"broken\n')
    bad = CliRunner().invoke(app, ["estimate", "--predictions", str(preds), "--labels", str(labels)])
    assert bad.exit_code == 2 and "l.jsonl:42: not JSON" in bad.output and "Traceback" not in bad.output


def test_audit_command_draws_and_lists(tmp_path):
    engine, _ = build_store(tmp_path)
    url = f"sqlite:///{tmp_path / 'est.sqlite'}"
    runner = CliRunner()
    result = runner.invoke(app, ["audit", "draw", "--per-document", "5", "--seed", "11", "--store", url])
    assert result.exit_code == 0, result.output
    assert "doc-vg: 5 passages getrokken, steekproef nu 5 van 60" in result.output
    assert sum(len(v) for v in audit_members(engine).values()) == 10
    listed = runner.invoke(app, ["audit", "list", "--store", url])
    assert listed.exit_code == 0
    assert "trekking 1: 5 per document, alle documenten, seed 11, blind, 10 passages" in listed.output
    refused = runner.invoke(app, ["audit", "draw", "--share", "2", "--store", url])
    assert refused.exit_code == 2 and "--share" in refused.output
