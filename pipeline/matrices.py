"""Condition matrices per document and the comparison across sectors.

The per-document matrix has the shape of Tabel 1 in the VG report: system
conditions as rows (interaction split into too strong / too weak / good
network), stakeholder groups as columns, and in each cell the number of
barrier (−) and good-practice (+) passages with the ids behind them. Labels come
from an analyst's review where there is one and from the model otherwise; every
count says how much of it rests on the model alone.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import chi2_contingency

from pipeline.codebook import Codebook
from pipeline.estimate import DEFAULT_CONFIDENCE, Estimate, combine, difference, ppi_share

CONTENT_KINDS = ("paragraph", "turn", "table")
SIGNS = {"belemmerend": "−", "bevorderend": "+"}
NO_STAKEHOLDER = "onbepaald"
DEFAULT_CONFIDENCE_THRESHOLD = 0.6
# The model's calibrated probabilities (not its 0/1 labels) are the PPI predictions: chosen on
# the coverage simulation (bench/estimate_coverage.py; README, "Estimates a methodologist can defend").
USE_SCORES = True


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
    model: dict | None = None  # the model's own labels and scores, also where a review overrides them
    audit: bool = False  # in the random audit sample (pipeline.audit)

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

    @property
    def labels(self) -> dict:
        """The labels that count, as a coding."""
        return {
            "conditions": list(self.conditions),
            "interactie_type": self.interactie_type,
            "polarity": self.polarity,
            "stakeholders": list(self.stakeholders),
        }


@dataclass(frozen=True)
class Cell:
    """One cell of a matrix as a yes/no question about a coding.

    ``condition`` None: passages without any condition; ``stakeholder`` None: any
    stakeholder, ``NO_STAKEHOLDER``: passages without one; ``polarity`` None: any.
    """

    condition: str | None
    polarity: str | None
    interactie_type: str | None = None
    stakeholder: str | None = None

    def holds(self, labels: Mapping) -> bool:
        conditions = labels.get("conditions") or []
        stakeholders = labels.get("stakeholders") or []
        if self.condition is None:
            if conditions:
                return False
        elif self.condition not in conditions:
            return False
        if self.interactie_type and labels.get("interactie_type") != self.interactie_type:
            return False
        if self.polarity is not None and labels.get("polarity") != self.polarity:
            return False
        if self.stakeholder == NO_STAKEHOLDER:
            return not stakeholders
        return self.stakeholder is None or self.stakeholder in stakeholders

    def score(self, prediction: Mapping | None, use_scores: bool = USE_SCORES) -> float:
        """The model's probability of this cell: the product of its parts' calibrated
        probabilities (an approximation; any fixed score keeps PPI valid, a good one narrows
        the interval), or its 0/1 label where scores are missing."""
        if not prediction:
            return 0.0
        scores = prediction.get("scores") or {}
        if not use_scores or not scores.get("conditions") or not scores.get("polarity"):
            return float(self.holds(prediction))
        conditions = scores["conditions"]
        if self.condition is None:
            p = float(np.prod([1 - float(v) for v in conditions.values()]))
        else:
            p = float(conditions.get(self.condition, 0.0))
        if self.interactie_type:
            p *= float((scores.get("interactie_type") or {}).get(self.interactie_type, 0.0))
        if self.polarity is not None:
            p *= float(scores["polarity"].get(self.polarity, 0.0))
        stake = scores.get("stakeholders") or {}
        if self.stakeholder == NO_STAKEHOLDER:
            p *= float(np.prod([1 - float(v) for v in stake.values()]))
        elif self.stakeholder is not None:
            p *= float(stake.get(self.stakeholder, 0.0))
        return min(1.0, max(0.0, p))


def document_method(passages: Sequence[CodedPassage]) -> str:
    """How a document's shares are obtained: ``human`` (every content passage reviewed), ``ppi``
    (model plus at least two reviewed passages of the random audit sample) or ``model``."""
    content = [p for p in passages if p.is_content]
    if content and all(p.source == "review" for p in content):
        return "human"
    if sum(p.audit and p.source == "review" for p in content) >= 2:
        return "ppi"
    return "model"


def estimate_cells(
    passages: Sequence[CodedPassage], cells: Sequence[Cell], confidence: float = DEFAULT_CONFIDENCE
) -> list[Estimate]:
    """Each cell's share of one document's content passages, model-assisted where an audit sample allows.

    Only reviewed passages of the audit sample are human labels here: reviews an analyst
    chose (uncertainty queue, search) are not a random sample, so they count in the plain
    counts but never correct the model's bias. A ``model`` estimate is the plain share.
    """
    content = [p for p in passages if p.is_content]
    method = document_method(content)
    N = len(content)
    out = []
    if method == "ppi":
        audited = [k for k, p in enumerate(content) if p.audit and p.source == "review"]
        for cell in cells:
            yhat_all = np.array([cell.score(p.model) for p in content])
            y = [float(cell.holds(content[k].labels)) for k in audited]
            e = ppi_share(y, yhat_all[audited], yhat_all, confidence)
            plain = sum(cell.holds(p.labels) for p in content) / N
            out.append(Estimate(e.estimate, e.ci_low, e.ci_high, "ppi", e.n_audit, N, plain, e.lam, e.n_eff))
        return out
    for cell in cells:
        share = sum(cell.holds(p.labels) for p in content) / N if N else 0.0
        exact = method == "human"
        bound = share if exact else None
        n_eff = math.inf if exact else None
        out.append(Estimate(share, bound, bound, method, N if exact else 0, N, share, None, n_eff))
    return out


def _estimate_columns(estimates: Sequence[Estimate]) -> dict[str, list]:
    def r(x: float | None) -> float | None:
        return None if x is None else round(float(x), 4)

    return {
        "estimate": [r(e.estimate) for e in estimates],
        "ci_low": [r(e.ci_low) for e in estimates],
        "ci_high": [r(e.ci_high) for e in estimates],
        "method": [e.method for e in estimates],
        "n_audit": [e.n_audit for e in estimates],
    }


def coded_passages(engine, model_version: str | None) -> list[CodedPassage]:
    """Every passage of every ingested document: reviewed labels override the model's."""
    from pipeline.audit import audit_members
    from pipeline.review import reviewed_labels
    from pipeline.store import document_rows, load_classifications, load_passages

    reviews = reviewed_labels(engine)  # latest decision; on double-coded passages adjudication, else first coder
    audit = set().union(*audit_members(engine).values())
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
                    model.get(p.id),
                    p.id in audit,
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
    passages: Sequence[CodedPassage],
    codebook: Codebook,
    threshold: float = DEFAULT_CONFIDENCE_THRESHOLD,
    confidence: float = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """Tidy long Tabel-1 matrix for one document; every cell present, empty cells as zero.

    Columns: doc_id, condition, interactie_type, stakeholder, polarity, n, share,
    passage_ids, n_model_only, low_confidence, and the estimate of the share with its
    interval (estimate, ci_low, ci_high, method, n_audit; see ``estimate_cells``).
    ``share`` is n over the document's content passages.
    """
    _check_codebook(codebook)
    content = [p for p in passages if p.is_content]
    doc_id = passages[0].doc_id if passages else ""
    stakeholders = [*codebook.ids("stakeholders"), NO_STAKEHOLDER]
    records, cells = [], []
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
                cells.append(Cell(condition, polarity, itype, stakeholder))
    frame = pd.DataFrame.from_records(records)
    for column, values in _estimate_columns(estimate_cells(passages, cells, confidence)).items():
        frame[column] = values
    return frame


def compact_matrix(
    passages: Sequence[CodedPassage], codebook: Codebook, confidence: float = DEFAULT_CONFIDENCE
) -> pd.DataFrame:
    """Condition × polarity: counts and shares of the document's content passages, with estimates."""
    content = [p for p in passages if p.is_content]
    doc_id = passages[0].doc_id if passages else ""
    records, cells = [], []
    for condition in [*codebook.ids("conditions"), ""]:
        for polarity in codebook.ids("polarity"):
            cell = Cell(condition or None, polarity)
            n = sum(1 for p in content if cell.holds(p.labels))
            records.append(
                {
                    "doc_id": doc_id,
                    "condition": condition or "geen voorwaarde",
                    "polarity": polarity,
                    "n": n,
                    "share": round(n / len(content), 4) if content else 0.0,
                }
            )
            cells.append(cell)
    frame = pd.DataFrame.from_records(records)
    for column, values in _estimate_columns(estimate_cells(passages, cells, confidence)).items():
        frame[column] = values
    return frame


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
    passages: Sequence[CodedPassage],
    codebook: Codebook,
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = DEFAULT_CONFIDENCE,
) -> pd.DataFrame:
    """Per sector, condition and polarity: n, per 100 content passages with a bootstrap 95 %
    interval (``boot_low``, ``boot_high``), and the share's estimate with its interval
    (``estimate``, ``ci_low``, ``ci_high``, ``method``, ``n_audit``; ``sector_cell_estimates``).

    The bootstrap resamples passages within each document (documents are the
    sampling units a study is made of), so a large document cannot borrow
    passages from a small one. It treats the labels as data, so it says nothing
    about the model's bias: that is what the estimate's interval is for.
    """
    estimates = sector_cell_estimates(passages, codebook, confidence)
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
            e = estimates[sector][(condition, polarity)]
            records.append(
                {
                    "sector": sector,
                    "condition": condition,
                    "polarity": polarity,
                    "n": int(counts[k]),
                    "per_100": round(float(per_100[k]), 2),
                    "boot_low": round(float(low[k]), 2),
                    "boot_high": round(float(high[k]), 2),
                    "estimate": round(e.estimate, 4),
                    "ci_low": None if e.ci_low is None else round(e.ci_low, 4),
                    "ci_high": None if e.ci_high is None else round(e.ci_high, 4),
                    "method": e.method,
                    "n_audit": e.n_audit,
                }
            )
    return pd.DataFrame.from_records(records)


def _by_doc(passages: Sequence[CodedPassage], sector: str | None = None) -> dict[str, list[CodedPassage]]:
    docs: dict[str, list[CodedPassage]] = {}
    for p in passages:
        if p.is_content and (sector is None or p.sector == sector):
            docs.setdefault(p.doc_id, []).append(p)
    return docs


def sector_cell_estimates(
    passages: Sequence[CodedPassage], codebook: Codebook, confidence: float = DEFAULT_CONFIDENCE
) -> dict[str, dict[tuple[str, str], Estimate]]:
    """Sector -> (condition, polarity) -> the share of the sector's content passages, documents
    combined as strata of a stratified design (weights by content passages per document)."""
    cells = [Cell(c, pol) for c in codebook.ids("conditions") for pol in codebook.ids("polarity")]
    out: dict[str, dict[tuple[str, str], Estimate]] = {}
    for sector in sorted({p.sector for p in passages if p.is_content}):
        per_doc = [estimate_cells(doc, cells, confidence) for doc in _by_doc(passages, sector).values()]
        out[sector] = {
            (cell.condition, cell.polarity): combine([d[k] for d in per_doc], confidence)
            for k, cell in enumerate(cells)
        }
    return out


def sector_differences(
    estimates: dict[str, dict[tuple[str, str], Estimate]], confidence: float = DEFAULT_CONFIDENCE
) -> pd.DataFrame:
    """Every pair of sectors, every condition × polarity: the difference in share with its interval.

    This replaces the chi-square test wherever labels rest on the model: the test would
    treat model labels as data and look confident about the model's bias."""
    sectors = sorted(estimates)
    records = []
    for i, a in enumerate(sectors):
        for b in sectors[i + 1 :]:
            for key, ea in estimates[a].items():
                d = difference(ea, estimates[b][key], confidence)
                records.append(
                    {
                        "sector_a": a,
                        "sector_b": b,
                        "condition": key[0],
                        "polarity": key[1],
                        "share_a": round(ea.estimate, 4),
                        "share_b": round(estimates[b][key].estimate, 4),
                        "difference": round(d["difference"], 4),
                        "ci_low": None if d["ci_low"] is None else round(d["ci_low"], 4),
                        "ci_high": None if d["ci_high"] is None else round(d["ci_high"], 4),
                        "method": d["method"],
                    }
                )
    columns = ["sector_a", "sector_b", "condition", "polarity", "share_a", "share_b", "difference", "ci_low",
               "ci_high", "method"]  # fmt: skip
    return pd.DataFrame.from_records(records, columns=columns)


def all_human(passages: Sequence[CodedPassage]) -> bool:
    """Every content passage's labels come from an analyst (the only case a chi-square test may use)."""
    content = [p for p in passages if p.is_content]
    return bool(content) and all(p.source == "review" for p in content)


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
