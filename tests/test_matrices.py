"""Matrices and comparison on a hand-built tiny store whose labels are known."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.codebook import load_codebook
from pipeline.matrices import (
    adjusted_residuals,
    coded_passages,
    compact_matrix,
    condition_matrix,
    coverage,
    sector_condition_polarity,
    sector_tests,
)
from pipeline.models import Document, ManifestRow, Passage
from pipeline.report import build_outputs
from pipeline.store import add_review, open_store, save_classifications, save_document

from .conftest import FIXTURES

MODEL = "clf-test"


def labels(conditions, polarity, stakeholders, itype=None, conf=0.9):
    return {
        "conditions": conditions,
        "interactie_type": itype,
        "polarity": polarity,
        "stakeholders": stakeholders,
        "primary_condition": conditions[0] if conditions else None,
        "scores": {"conditions": dict.fromkeys(conditions, conf), "polarity": {polarity: conf}},
        "needs_review": conf < 0.6,
        "model_version": MODEL,
    }


def document(doc_id: str, passages: list[tuple[str, str, str]]) -> Document:
    text, out, offset = [], [], 0
    for pid, kind, body in passages:
        out.append(Passage(pid, kind, body, 1, 1, offset, offset + len(body)))
        text.append(body)
        offset += len(body) + 2
    return Document(doc_id, f"/corpus/{doc_id}.pdf", doc_id * 2, 1, doc_id, "\n\n".join(text), out)


@pytest.fixture()
def tiny(tmp_path):
    return build_tiny_store(tmp_path)


def build_tiny_store(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'tiny.sqlite'}")
    a = document(
        "doca",
        [
            ("a0", "heading", "Kop"),
            ("a1", "paragraph", "Tekort aan AVG's."),
            ("a2", "paragraph", "Vast overleg met de POH."),
            ("a3", "paragraph", "Veertien interviews."),
            ("a4", "turn", "Het zorgkantoor eist veel."),
        ],
    )
    b = document(
        "docb",
        [
            ("b1", "paragraph", "Weinig SO's in de regio."),
            ("b2", "table", "Tekort | opleiding"),
            ("b3", "paragraph", "Methode."),
        ],
    )
    save_document(engine, a, ManifestRow(doc_id="doca", file="a.pdf", title="Document A", sector="vg"), "t")
    save_document(engine, b, ManifestRow(doc_id="docb", file="b.pdf", title="Document B", sector="ouderenzorg"), "t")
    rows_a = {
        "a0": labels([], "neutraal", []),
        "a1": labels(["infrastructuur"], "belemmerend", ["aanbieders"]),
        "a2": labels(["interactie"], "bevorderend", ["aanbieders", "intermediairs"], "goed", conf=0.5),
        "a3": labels([], "neutraal", []),
        "a4": labels(["harde_instituties"], "belemmerend", ["voorwaardenscheppend"]),
    }
    rows_b = {
        "b1": labels(["infrastructuur"], "belemmerend", ["voorwaardenscheppend"]),
        "b2": labels(["infrastructuur", "competenties"], "belemmerend", []),
        "b3": labels([], "neutraal", []),
    }
    save_classifications(engine, "doca", MODEL, [{"id": k, **v} for k, v in rows_a.items()])
    save_classifications(engine, "docb", MODEL, [{"id": k, **v} for k, v in rows_b.items()])
    review = {
        k: v
        for k, v in labels(["zachte_instituties"], "bevorderend", ["gebruikers"]).items()
        if k not in ("scores", "needs_review", "model_version")
    }
    add_review(engine, "a4", "analist-1", {**review, "polarity": "belemmerend"})  # superseded below
    add_review(engine, "a4", "analist-1", review)
    return engine


def cell(long: pd.DataFrame, condition, stakeholder, polarity, itype="") -> pd.Series:
    rows = long[
        (long.condition == condition)
        & (long.stakeholder == stakeholder)
        & (long.polarity == polarity)
        & (long.interactie_type == itype)
    ]
    assert len(rows) == 1
    return rows.iloc[0]


def test_document_matrix_counts_shares_ids_and_zeros(tiny):
    codebook = load_codebook()
    passages = [p for p in coded_passages(tiny, MODEL) if p.doc_id == "doca"]
    long = condition_matrix(passages, codebook)
    assert len(long) == 7 * 5 * 2  # Tabel-1 rows x (4 groups + none) x (-, +): empty cells are zero rows
    infra = cell(long, "infrastructuur", "aanbieders", "belemmerend")
    assert (infra.n, infra.share, infra.passage_ids, infra.low_confidence) == (1, 0.25, "a1", False)
    good = cell(long, "interactie", "intermediairs", "bevorderend", "goed")
    assert (good.n, good.passage_ids, good.low_confidence) == (1, "a2", True)
    assert cell(long, "interactie", "aanbieders", "bevorderend", "te_zwak").n == 0
    # The reviewed label overrides the model's: a4 is zachte_instituties/+/gebruikers, not harde/−.
    soft = cell(long, "zachte_instituties", "gebruikers", "bevorderend")
    assert (soft.n, soft.n_model_only, soft.low_confidence) == (1, 0, False)
    assert long[long.condition == "harde_instituties"].n.sum() == 0
    assert long.n.sum() == 4
    assert coverage(passages) == {
        "passages": 5,
        "content_passages": 4,
        "reviewed": 1,
        "model_only": 3,
        "unclassified": 0,
    }


def test_compact_matrix_and_passages_without_stakeholder(tiny):
    codebook = load_codebook()
    passages = [p for p in coded_passages(tiny, MODEL) if p.doc_id == "docb"]
    compact = compact_matrix(passages, codebook)
    row = compact[(compact.condition == "infrastructuur") & (compact.polarity == "belemmerend")].iloc[0]
    assert (row.n, row.share) == (2, round(2 / 3, 4))
    none = compact[(compact.condition == "geen voorwaarde") & (compact.polarity == "neutraal")].iloc[0]
    assert none.n == 1
    long = condition_matrix(passages, codebook)
    assert cell(long, "competenties", "", "belemmerend").passage_ids == "b2"


def test_sector_table_per_100_and_bootstrap_intervals(tiny):
    codebook = load_codebook()
    table = sector_condition_polarity(coded_passages(tiny, MODEL), codebook, n_boot=500)
    assert len(table) == 2 * 5 * 3
    row = table[
        (table.sector == "ouderenzorg") & (table.condition == "infrastructuur") & (table.polarity == "belemmerend")
    ].iloc[0]
    assert (row.n, row.per_100) == (2, 66.67)
    assert 0 <= row.boot_low <= row.per_100 <= row.boot_high <= 100 and row.boot_low < row.boot_high
    zero = table[(table.sector == "vg") & (table.condition == "competenties")]
    assert (zero.n == 0).all() and (zero.boot_high == 0).all()


def test_chi_square_residuals_match_a_hand_calculation_and_warn_on_small_counts(tiny):
    codebook = load_codebook()
    tests = sector_tests(coded_passages(tiny, MODEL), codebook)
    test = tests["sector_x_condition"]
    assert test["rows"] == ["ouderenzorg", "vg"]
    assert test["columns"] == ["infrastructuur", "zachte_instituties", "interactie", "competenties"]
    observed = np.array([[2, 0, 0, 1], [1, 1, 1, 0]], dtype=float)
    assert test["observed"] == observed.astype(int).tolist()
    n = observed.sum()
    r, c = observed.sum(1), observed.sum(0)
    by_hand = [
        [
            (observed[i, j] - r[i] * c[j] / n) / np.sqrt(r[i] * c[j] / n * (1 - r[i] / n) * (1 - c[j] / n))
            for j in range(4)
        ]
        for i in range(2)
    ]
    assert np.allclose(test["residuals"], np.round(by_hand, 2))
    assert test["warning"] and "kleiner dan 5" in test["warning"]


def test_adjusted_residuals_are_zero_under_exact_independence():
    observed = np.array([[10.0, 20.0], [20.0, 40.0]])
    expected = observed.sum(1, keepdims=True) * observed.sum(0, keepdims=True) / observed.sum()
    assert np.allclose(adjusted_residuals(observed, expected), 0)


def xlsx_layout(path) -> dict:
    """What a reader sees: values, fills and whether a cell has a comment."""
    book = load_workbook(path)
    layout = {}
    for sheet in book.worksheets:
        cells = {}
        for row in sheet.iter_rows():
            for c in row:
                if c.value is None:
                    continue
                fill = c.fill.fgColor.rgb if c.fill and c.fill.fill_type == "solid" else None
                cells[c.coordinate] = [c.value, fill, c.comment is not None]
        layout[sheet.title] = {"cells": cells, "merged": sorted(str(m) for m in sheet.merged_cells.ranges)}
    return layout


def test_outputs_and_golden_xlsx_layout(tiny, tmp_path):
    codebook = load_codebook()
    out = tmp_path / "outputs"
    build_outputs(tiny, codebook, out, MODEL)
    long = pd.read_csv(out / "matrices" / "doca.csv", keep_default_na=False)
    assert list(long.columns) == [
        "doc_id",
        "condition",
        "interactie_type",
        "stakeholder",
        "polarity",
        "n",
        "share",
        "passage_ids",
        "estimate",
        "ci_low",
        "ci_high",
        "method",
        "n_audit",
    ]
    assert (
        pd.read_parquet(out / "matrices" / "matrices.parquet").n.sum() == 4 + 3
    )  # doca: a1, a2 twice, a4; docb: b1, b2 twice
    scp = pd.read_csv(out / "comparison" / "sector_condition_polarity.csv")
    assert list(scp.columns) == [
        "sector", "condition", "polarity", "n", "per_100", "boot_low", "boot_high",
        "estimate", "ci_low", "ci_high", "method", "n_audit",
    ]  # fmt: skip
    html = (out / "report" / "index.html").read_text("utf-8")
    assert (
        "Document A" in html
        and "data:image/png;base64," in html
        and "http" not in html.replace("https://", "").replace("http://", "")
    )
    golden = FIXTURES / "golden-matrices-xlsx.json"
    assert xlsx_layout(out / "matrices" / "matrices.xlsx") == json.loads(golden.read_text("utf-8"))
