"""Condition matrices per document and the comparison across sectors.

The per-document matrix has the shape of Tabel 1 in the VG report: system
conditions as rows (interaction split into too strong / too weak / good
network), stakeholder groups as columns, and in each cell the number of
barrier (−) and good-practice (+) passages with the ids behind them. Labels come
from an analyst's review where there is one and from the model otherwise; every
count says how much of it rests on the model alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from pipeline.codebook import Codebook

CONTENT_KINDS = ("paragraph", "turn", "table")
SIGNS = {"belemmerend": "−", "bevorderend": "+"}
NO_STAKEHOLDER = "onbepaald"
DEFAULT_CONFIDENCE_THRESHOLD = 0.6


@dataclass(frozen=True)
class CodedPassage:
    """A passage with the labels that count for reporting, and where they came from."""

    passage_id: str
    doc_id: str
    sector: str
    kind: str
    page: int
    text: str
    conditions: tuple[str, ...]
    interactie_type: str | None
    polarity: str | None
    stakeholders: tuple[str, ...]
    source: str  # "review" or "model"
    scores: dict | None = None

    @property
    def is_content(self) -> bool:
        return self.kind in CONTENT_KINDS

    def confidence(self, condition: str) -> float | None:
        """Calibrated confidence of this passage's contribution to a (condition, polarity) cell."""
        if self.source == "review" or not self.scores:
            return None
        cond = self.scores.get("conditions", {}).get(condition)
        pol = self.scores.get("polarity", {}).get(self.polarity or "")
        values = [v for v in (cond, pol) if v is not None]
        return min(values) if values else None


def coded_passages(engine, model_version: str | None) -> list[CodedPassage]:
    """Every passage of every ingested document: reviewed labels override the model's."""
    from pipeline.review import reviewed_labels
    from pipeline.store import document_rows, load_classifications, load_passages

    reviews = reviewed_labels(engine)  # latest decision; on double-coded passages adjudication, else first coder
    out = []
    for doc in document_rows(engine):
        if doc["status"] != "ok":
            continue
        model = load_classifications(engine, doc["doc_id"], model_version) if model_version else {}
        for p in load_passages(engine, doc["doc_id"]):
            if p.id in reviews:
                labels, source, scores = reviews[p.id], "review", None
            elif p.id in model:
                labels, source, scores = model[p.id], "model", model[p.id].get("scores")
            else:
                labels, source, scores = {}, "none", None
            out.append(
                CodedPassage(
                    p.id,
                    doc["doc_id"],
                    doc["sector"],
                    p.kind,
                    p.page_start,
                    p.text,
                    tuple(labels.get("conditions") or ()),
                    labels.get("interactie_type"),
                    labels.get("polarity"),
                    tuple(labels.get("stakeholders") or ()),
                    source,
                    scores,
                )
            )
    return out


def matrix_rows(codebook: Codebook) -> list[tuple[str, str | None]]:
    """Tabel 1's rows: each condition, with interaction split by its types."""
    types = codebook.ids("interactie_type")
    rows: list[tuple[str, str | None]] = []
    for condition in codebook.ids("conditions"):
        if condition == "interactie":
            rows += [(condition, t) for t in ("te_sterk", "te_zwak", "goed") if t in types]
        else:
            rows.append((condition, None))
    return rows


def _check_codebook(codebook: Codebook) -> None:
    missing = [p for p in SIGNS if p not in codebook.ids("polarity")]
    if missing:
        raise ValueError(f"codebook {codebook.id}: matrices need polarity labels {missing}")


def condition_matrix(
    passages: Sequence[CodedPassage], codebook: Codebook, threshold: float = DEFAULT_CONFIDENCE_THRESHOLD
) -> pd.DataFrame:
    """Tidy long Tabel-1 matrix for one document; every cell present, empty cells as zero.

    Columns: doc_id, condition, interactie_type, stakeholder, polarity, n, share,
    passage_ids, n_model_only, low_confidence. ``share`` is n over the
    document's content passages.
    """
    _check_codebook(codebook)
    content = [p for p in passages if p.is_content]
    doc_id = passages[0].doc_id if passages else ""
    stakeholders = [*codebook.ids("stakeholders"), NO_STAKEHOLDER]
    records = []
    for condition, itype in matrix_rows(codebook):
        for stakeholder in stakeholders:
            for polarity in SIGNS:
                hits = [
                    p
                    for p in content
                    if condition in p.conditions
                    and (itype is None or p.interactie_type == itype)
                    and p.polarity == polarity
                    and (stakeholder in p.stakeholders if stakeholder != NO_STAKEHOLDER else not p.stakeholders)
                ]
                model_only = [p for p in hits if p.source == "model"]
                confidences = [c for p in model_only if (c := p.confidence(condition)) is not None]
                records.append(
                    {
                        "doc_id": doc_id,
                        "condition": condition,
                        "interactie_type": itype or "",
                        "stakeholder": "" if stakeholder == NO_STAKEHOLDER else stakeholder,
                        "polarity": polarity,
                        "n": len(hits),
                        "share": round(len(hits) / len(content), 4) if content else 0.0,
                        "passage_ids": " ".join(p.passage_id for p in hits),
                        "n_model_only": len(model_only),
                        "low_confidence": bool(confidences) and float(np.mean(confidences)) < threshold,
                    }
                )
    return pd.DataFrame.from_records(records)


def compact_matrix(passages: Sequence[CodedPassage], codebook: Codebook) -> pd.DataFrame:
    """Condition × polarity: counts and shares of the document's content passages."""
    content = [p for p in passages if p.is_content]
    doc_id = passages[0].doc_id if passages else ""
    records = []
    for condition in [*codebook.ids("conditions"), ""]:
        for polarity in codebook.ids("polarity"):
            n = sum(
                1
                for p in content
                if p.polarity == polarity and (condition in p.conditions if condition else not p.conditions)
            )
            records.append(
                {
                    "doc_id": doc_id,
                    "condition": condition or "geen voorwaarde",
                    "polarity": polarity,
                    "n": n,
                    "share": round(n / len(content), 4) if content else 0.0,
                }
            )
    return pd.DataFrame.from_records(records)


def coverage(passages: Sequence[CodedPassage]) -> dict:
    """How much of a document's content rests on review, on the model alone, or on nothing."""
    content = [p for p in passages if p.is_content]
    return {
        "passages": len(passages),
        "content_passages": len(content),
        "reviewed": sum(p.source == "review" for p in content),
        "model_only": sum(p.source == "model" for p in content),
        "unclassified": sum(p.source == "none" for p in content),
    }


# --------------------------------------------------------------------------- across sectors


def sector_condition_polarity(
    passages: Sequence[CodedPassage], codebook: Codebook, n_boot: int = 1000, seed: int = 0
) -> pd.DataFrame:
    """Per sector, condition and polarity: n, per 100 content passages, bootstrap 95 % interval.

    The bootstrap resamples passages within each document (documents are the
    sampling units a study is made of), so a large document cannot borrow
    passages from a small one.
    """
    rng = np.random.default_rng(seed)
    cells = [(c, p) for c in codebook.ids("conditions") for p in codebook.ids("polarity")]
    records = []
    for sector in sorted({p.sector for p in passages}):
        docs: dict[str, list[CodedPassage]] = {}
        for p in passages:
            if p.sector == sector and p.is_content:
                docs.setdefault(p.doc_id, []).append(p)
        total = sum(len(v) for v in docs.values())
        counts = np.zeros(len(cells))
        boot = np.zeros((n_boot, len(cells)))
        for doc_passages in docs.values():
            M = np.array(
                [[c in p.conditions and p.polarity == pol for c, pol in cells] for p in doc_passages], dtype=float
            )
            counts += M.sum(axis=0)
            weights = rng.multinomial(len(doc_passages), np.full(len(doc_passages), 1 / len(doc_passages)), size=n_boot)
            boot += weights @ M
        per_100 = 100 * counts / total if total else counts
        low, high = (
            np.percentile(100 * boot / total, [2.5, 97.5], axis=0)
            if total
            else (np.zeros(len(cells)), np.zeros(len(cells)))
        )
        for k, (condition, polarity) in enumerate(cells):
            records.append(
                {
                    "sector": sector,
                    "condition": condition,
                    "polarity": polarity,
                    "n": int(counts[k]),
                    "per_100": round(float(per_100[k]), 2),
                    "ci_low": round(float(low[k]), 2),
                    "ci_high": round(float(high[k]), 2),
                }
            )
    return pd.DataFrame.from_records(records)


def adjusted_residuals(observed: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Standardised (adjusted) residuals: about N(0, 1) under independence; |r| > 2 drives a difference."""
    total = observed.sum()
    rows = observed.sum(axis=1, keepdims=True) / total
    cols = observed.sum(axis=0, keepdims=True) / total
    with np.errstate(divide="ignore", invalid="ignore"):
        r = (observed - expected) / np.sqrt(expected * (1 - rows) * (1 - cols))
    return np.nan_to_num(r)


def chi_square(table: pd.DataFrame) -> dict:
    """Chi-square test of independence on a contingency table, with residuals and a small-count warning."""
    table = table.loc[table.sum(axis=1) > 0, table.sum(axis=0) > 0]
    if table.shape[0] < 2 or table.shape[1] < 2:
        return {"testable": False, "warning": "te weinig niet-lege rijen of kolommen voor een toets"}
    observed = table.to_numpy(dtype=float)
    chi2, p, dof, expected = chi2_contingency(observed, correction=False)
    small = float((expected < 5).mean())
    warning = None
    if (expected < 1).any() or small > 0.2:
        warning = (
            f"{small:.0%} van de verwachte aantallen is kleiner dan 5"
            f"{' en er zijn verwachte aantallen onder 1' if (expected < 1).any() else ''}: "
            "de chi-kwadraattoets is hier onbetrouwbaar"
        )
    residuals = adjusted_residuals(observed, expected)
    return {
        "testable": True,
        "chi2": round(float(chi2), 3),
        "dof": int(dof),
        "p_value": float(p),
        "warning": warning,
        "rows": list(map(str, table.index)),
        "columns": list(map(str, table.columns)),
        "observed": observed.astype(int).tolist(),
        "expected": np.round(expected, 2).tolist(),
        "residuals": np.round(residuals, 2).tolist(),
    }


def sector_tests(passages: Sequence[CodedPassage], codebook: Codebook) -> dict:
    """Sector × condition, and sector × polarity within each condition.

    A passage can carry several conditions, so the sector × condition table
    counts mentions, which are not independent; read its p-value as a guide and
    the residuals as the finding.
    """
    content = [p for p in passages if p.is_content]
    sectors = sorted({p.sector for p in content})
    by_condition = pd.DataFrame(
        [
            [sum(c in p.conditions for p in content if p.sector == s) for c in codebook.ids("conditions")]
            for s in sectors
        ],
        index=sectors,
        columns=list(codebook.ids("conditions")),
    )
    result = {"sector_x_condition": chi_square(by_condition), "polarity_within_condition": {}}
    for condition in codebook.ids("conditions"):
        table = pd.DataFrame(
            [
                [
                    sum(p.polarity == pol and condition in p.conditions for p in content if p.sector == s)
                    for pol in codebook.ids("polarity")
                ]
                for s in sectors
            ],
            index=sectors,
            columns=list(codebook.ids("polarity")),
        )
        result["polarity_within_condition"][condition] = chi_square(table)
    return result


def residual_table(test: dict) -> pd.DataFrame:
    """A tidy table of a test's cells: observed, expected and adjusted residual."""
    if not test.get("testable"):
        return pd.DataFrame(columns=["row", "column", "observed", "expected", "residual"])
    return pd.DataFrame(
        [
            {
                "row": r,
                "column": c,
                "observed": test["observed"][i][j],
                "expected": test["expected"][i][j],
                "residual": test["residuals"][i][j],
            }
            for i, r in enumerate(test["rows"])
            for j, c in enumerate(test["columns"])
        ]
    )
