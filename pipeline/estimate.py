"""Model-assisted estimates of label shares, with intervals that hold, from a random audit sample.

Counting the model's labels gives biased shares whenever the model errs more in
one direction than the other, and that bias differs per study. A simple random
sample of passages coded by an analyst (the *audit sample*) fixes this: the
prediction-powered estimator (PPI, Angelopoulos et al., Science 2023) with the
power-tuned weight of PPI++ (Angelopoulos, Duchi & Zrnic 2023),

    theta = lambda * mean_all(yhat) + mean_audit(y - lambda * yhat),

is unbiased for the document's share whatever the model's quality, because the
audit sample measures the model's error and subtracts it. ``lambda`` (clipped to
[0, 1]) is chosen to minimise the variance: 0 gives the classical estimate from
the audit sample alone, 1 plain PPI. In survey-sampling terms this is the
difference (regression) estimator of a finite population mean (Särndal,
Swensson & Wretman 1992): the document's passages are the whole population and
the model's score is known for each, so only the rectifier term varies.

Intervals: the normal (Wald) interval fails at the audit sizes a team can
afford (20–40 passages per document) when a label is rare: a sample without a
single disagreement gives a zero-width interval. So intervals are inverted
score-style, as Wilson's interval for a proportion: every share ``t`` with

    (theta - t)^2 <= q^2 * t (1 - t) * r * (1 - n/N) / n

where ``q`` is Student's t quantile with n − 1 degrees of freedom, ``1 - n/N``
the finite-population correction and ``r`` the variance ratio
S²(y − λ·yhat) / S²(y) that the model buys, shrunk towards 1 by ``SHRINK``
pseudo-passages (a sample in which the model happens to agree everywhere does
not prove that it always agrees). With ``r = 1`` this is the Wilson interval of
the audit sample; the rule and its coverage are checked by simulation in
``bench/estimate_coverage.py``.

Documents combine into sectors as strata (weights by content passages per
document); a difference between two sectors gets its own interval.

Pure functions over numpy arrays. The estimator is a few lines, written here
rather than taken from ``ppi_py`` (the papers' reference implementation):
``ppi_py`` treats the model's scores as a second independent sample (here they
are known for the whole document), has no small-sample interval, and silences
every warning of the process when imported. The tests check these lines against
``ppi_py`` (a development dependency) where the two designs coincide.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

DEFAULT_CONFIDENCE = 0.95
# Pseudo-passages with no variance reduction mixed into the estimated ratio r; see the module docstring.
SHRINK = 4.0
METHODS = ("ppi", "human", "model")


@dataclass(frozen=True)
class Estimate:
    """One share with its interval and how it was obtained.

    ``method``: ``ppi`` (model plus audit sample), ``human`` (every passage coded by an
    analyst: the share is exact), ``model`` (no audit sample: a model count that may
    be biased; no interval). ``model_share`` is the model's own share: the mean score
    from ``ppi_share``, the plain label count where the matrices pass it in.
    """

    estimate: float
    ci_low: float | None
    ci_high: float | None
    method: str
    n_audit: int
    n_total: int
    model_share: float
    lam: float | None = None
    # Effective sample size of the score interval (inf: exact); strata combine through it.
    n_eff: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _quantile(n: int, confidence: float) -> float:
    """Student's t quantile with n − 1 degrees of freedom (normal for large n)."""
    return float(stats.t.ppf(0.5 + confidence / 2, df=max(1, n - 1)))


def power_tuning(y: np.ndarray, yhat: np.ndarray) -> float:
    """PPI++'s variance-minimising weight for a finite population whose every score is known:
    the regression slope Cov(y, yhat) / Var(yhat), clipped to [0, 1] (0 when yhat does not vary)."""
    if len(y) < 2:
        return 0.0
    var = float(np.var(yhat, ddof=1))
    if var <= 1e-12:
        return 0.0
    cov = float(np.cov(y, yhat, ddof=1)[0, 1])
    return float(min(1.0, max(0.0, cov / var)))


def score_interval(center: float, n_eff: float, q: float) -> tuple[float, float]:
    """All shares t with (center - t)^2 <= q^2 t(1 - t) / n_eff (Wilson's form, any centre in [0, 1])."""
    center = min(1.0, max(0.0, center))
    if n_eff == math.inf:
        return center, center
    k = q * q / n_eff
    a = 1 + k
    b = -(2 * center + k)
    c = center * center
    root = math.sqrt(max(0.0, b * b - 4 * a * c))
    return max(0.0, (-b - root) / (2 * a)), min(1.0, (-b + root) / (2 * a))


def ppi_share(
    y_audit: Sequence[float],
    yhat_audit: Sequence[float],
    yhat_all: Sequence[float],
    confidence: float = DEFAULT_CONFIDENCE,
    lam: float | None = None,
) -> Estimate:
    """The share of passages with a label in a document of ``len(yhat_all)`` passages.

    ``y_audit`` are the analysts' 0/1 labels on a simple random sample, ``yhat_audit`` the
    model's scores (probabilities or 0/1 labels) on those same passages, ``yhat_all`` its
    scores on every passage of the document (the sample included). ``lam`` fixes the
    weight (1: plain PPI, 0: classical); None tunes it (PPI++).
    """
    y = np.asarray(y_audit, dtype=float)
    yh = np.asarray(yhat_audit, dtype=float)
    everything = np.asarray(yhat_all, dtype=float)
    n, N = len(y), len(everything)
    model_share = float(everything.mean()) if N else 0.0
    if N == 0:
        return Estimate(0.0, None, None, "model", 0, 0, 0.0)
    if n == 0:
        return Estimate(model_share, None, None, "model", 0, N, model_share)
    if n > N or len(yh) != n:
        raise ValueError(f"audit sample of {n} labels and {len(yh)} scores does not fit {N} passages")
    if n == N:
        share = float(y.mean())
        return Estimate(share, share, share, "human", n, N, model_share, 0.0, math.inf)
    lam = power_tuning(y, yh) if lam is None else float(lam)
    theta = float(lam * everything.mean() + (y - lam * yh).mean())
    theta = min(1.0, max(0.0, theta))
    var_y = float(np.var(y, ddof=1)) if n > 1 else 0.0
    var_delta = float(np.var(y - lam * yh, ddof=1)) if n > 1 else 0.0
    ratio = min(1.0, var_delta / var_y) if var_y > 1e-12 else 1.0
    ratio = (n * ratio + SHRINK) / (n + SHRINK)
    fpc = 1 - n / N
    n_eff = n / (ratio * fpc) if fpc > 0 else math.inf
    low, high = score_interval(theta, n_eff, _quantile(n, confidence))
    return Estimate(theta, low, high, "ppi", n, N, model_share, lam, n_eff)


def classical_share(y_audit: Sequence[float], n_total: int, confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """The audit sample alone (human labels only): Wilson's interval with the finite-population
    correction and the same t quantile, the baseline PPI++ must beat."""
    y = np.asarray(y_audit, dtype=float)
    n = len(y)
    if n == 0:
        return Estimate(0.0, None, None, "model", 0, n_total, 0.0)
    share = float(y.mean())
    fpc = 1 - n / n_total
    n_eff = n / fpc if fpc > 0 else math.inf
    low, high = score_interval(share, n_eff, _quantile(n, confidence))
    return Estimate(share, low, high, "human" if n == n_total else "classical", n, n_total, share, 0.0)


# --------------------------------------------------------------------------- strata


def combine(estimates: Sequence[Estimate], confidence: float = DEFAULT_CONFIDENCE) -> Estimate:
    """Documents as strata of a sector: the share is the passage-weighted mean of theirs.

    The interval is the score interval again, with the stratified design's effective
    sample size 1 / sum(W_d^2 / m_d) (each document's own effective size m_d; Korn &
    Graubard 1998 use the same device for complex samples) and Student's t with
    sum(n_d) − strata degrees of freedom. A normal interval on the summed variances
    undercovers here, because a document's estimated variance vanishes where its
    share is near 0. A stratum without an audit sample makes the whole a ``model``
    count, since nothing corrects that document's bias."""
    parts = [e for e in estimates if e.n_total > 0]
    total = sum(e.n_total for e in parts)
    if not parts:
        return Estimate(0.0, None, None, "model", 0, 0, 0.0)
    weights = [e.n_total / total for e in parts]
    estimate = sum(w * e.estimate for w, e in zip(weights, parts, strict=True))
    model_share = sum(w * e.model_share for w, e in zip(weights, parts, strict=True))
    n_audit = sum(e.n_audit for e in parts)
    if any(e.method == "model" for e in parts):
        return Estimate(model_share, None, None, "model", n_audit, total, model_share)
    inverse = sum(w * w / e.n_eff for w, e in zip(weights, parts, strict=True) if e.n_eff not in (None, math.inf))
    if all(e.method == "human" for e in parts) or inverse == 0:
        return Estimate(estimate, estimate, estimate, "human", n_audit, total, model_share, None, math.inf)
    sampled = [e for e in parts if e.method != "human"]
    df_n = sum(e.n_audit for e in sampled) - len(sampled) + 1
    low, high = score_interval(estimate, 1 / inverse, _quantile(df_n, confidence))
    return Estimate(estimate, low, high, "ppi", n_audit, total, model_share, None, 1 / inverse)


def difference(a: Estimate, b: Estimate, confidence: float = DEFAULT_CONFIDENCE) -> dict:
    """``a − b`` (e.g. two sectors' shares) with Newcombe's hybrid score interval (1998, method
    10), built from each side's own score interval (independent documents).

    Without an audit sample on either side there is no interval: the difference of
    two model counts carries both models' biases."""
    diff = a.estimate - b.estimate
    if "model" in (a.method, b.method) or None in (a.ci_low, a.ci_high, b.ci_low, b.ci_high):
        return {"difference": diff, "ci_low": None, "ci_high": None, "method": "model"}
    low = diff - math.sqrt((a.estimate - a.ci_low) ** 2 + (b.ci_high - b.estimate) ** 2)
    high = diff + math.sqrt((a.ci_high - a.estimate) ** 2 + (b.estimate - b.ci_low) ** 2)
    method = "human" if a.method == b.method == "human" else "ppi"
    return {"difference": diff, "ci_low": max(-1.0, low), "ci_high": min(1.0, high), "method": method}


def audit_size_for(half_width: float, n_total: int, confidence: float = DEFAULT_CONFIDENCE) -> int:
    """Passages to audit in a document of ``n_total`` so that a share's interval is at most
    ± ``half_width`` whatever the share and the model (worst case: share 0.5, no help from the model)."""
    if n_total <= 0:
        return 0
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    n0 = z * z * 0.25 / (half_width * half_width)
    return int(min(n_total, math.ceil(n0 / (1 + n0 / n_total))))


# --------------------------------------------------------------------------- labels to 0/1


def label_indicator(labels: Mapping | None, field: str, label: str) -> float:
    """1.0 when a coding gives ``field`` the value (or, for multi-label fields, contains) ``label``."""
    value = (labels or {}).get(field)
    if isinstance(value, list | tuple):
        return float(label in value)
    return float(value == label)


def label_score(prediction: Mapping, field: str, label: str, use_scores: bool = True) -> float:
    """The model's score for one label: its calibrated probability where stored, else its 0/1 label."""
    if use_scores:
        value = ((prediction.get("scores") or {}).get(field) or {}).get(label)
        if value is not None:
            return float(value)
    return label_indicator(prediction, field, label)


# --------------------------------------------------------------------------- files (`mgz estimate`)

MAX_LINE_BYTES = 1_000_000


class EstimateInputError(ValueError):
    """A predictions or labels file that cannot be used; the message names the file and line."""


def read_rows(path) -> list[dict]:
    """JSON objects with an ``id``, one per line; every bad line is named, none is skipped.

    Skipping a human label of a random sample would silently change the design, so a
    file with any bad line is refused whole (all problems in one message).
    """
    import json
    from pathlib import Path

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise EstimateInputError(f"{path}: {exc.strerror or exc}") from None
    problems, rows, seen = [], [], set()
    for n, line in enumerate(raw.splitlines(), start=1):
        if not line.strip():
            continue
        if len(line) > MAX_LINE_BYTES:
            problems.append(f"{path}:{n}: line longer than {MAX_LINE_BYTES} bytes")
            continue
        try:
            row = json.loads(line.decode("utf-8"))
        except UnicodeDecodeError:
            problems.append(f"{path}:{n}: not UTF-8")
            continue
        except (json.JSONDecodeError, RecursionError) as exc:
            problems.append(f"{path}:{n}: not JSON ({getattr(exc, 'msg', 'nested too deeply')})")
            continue
        if not isinstance(row, dict):
            problems.append(f"{path}:{n}: not a JSON object")
            continue
        row_id = row.get("id")
        if not isinstance(row_id, str) or not row_id.strip():
            problems.append(f"{path}:{n}: no string id")
            continue
        if row_id in seen:
            problems.append(f"{path}:{n}: duplicate id {row_id!r}")
            continue
        seen.add(row_id)
        rows.append(row)
    if problems:
        more = f"; … {len(problems) - 20} more" if len(problems) > 20 else ""
        raise EstimateInputError("; ".join(problems[:20]) + more)
    if not rows:
        raise EstimateInputError(f"{path}: no rows")
    return rows


def estimate_labels(
    predictions: Sequence[Mapping],
    labels: Mapping[str, Mapping],
    codebook,
    fields: Sequence[str],
    confidence: float = DEFAULT_CONFIDENCE,
    use_scores: bool = True,
) -> list[dict]:
    """Per field and label: the PPI++ estimate of its share over all ``predictions``, with the
    human ``labels`` (a simple random subset, keyed by id) as the rectifier."""
    by_id = {p["id"]: p for p in predictions}
    unknown = [i for i in labels if i not in by_id]
    if unknown:
        raise EstimateInputError(f"labels for ids that have no prediction: {', '.join(sorted(unknown)[:5])}")
    audited = [i for i in by_id if i in labels]
    out = []
    for field_id in fields:
        spec = codebook.fields[field_id]
        for row_id, coding in labels.items():
            if field_id not in coding:
                raise EstimateInputError(f"label row {row_id!r} has no field {field_id!r}")
            value = coding[field_id]
            values = value if isinstance(value, list) else ([] if value is None else [value])
            bad = [v for v in values if v not in spec.ids]
            if bad:
                raise EstimateInputError(f"label row {row_id!r}: {field_id} has unknown label(s) {bad}")
        for label in spec.ids:
            yhat_all = np.array([label_score(p, field_id, label, use_scores) for p in predictions])
            y = np.array([label_indicator(labels[i], field_id, label) for i in audited])
            yhat = np.array([label_score(by_id[i], field_id, label, use_scores) for i in audited])
            e = ppi_share(y, yhat, yhat_all, confidence)
            out.append(
                {
                    "field": field_id,
                    "label": label,
                    "estimate": round(e.estimate, 4),
                    "ci_low": None if e.ci_low is None else round(e.ci_low, 4),
                    "ci_high": None if e.ci_high is None else round(e.ci_high, 4),
                    "model_share": round(float(np.mean([label_indicator(p, field_id, label) for p in predictions])), 4),
                    "method": e.method,
                    "n_labeled": e.n_audit,
                    "n_total": e.n_total,
                }
            )
    return out
