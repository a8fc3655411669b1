"""Cross-study comparison of inductive themes: which themes reach several sectors, how prevalent each
theme is per sector and per study (with an interval), and what the same theme sounds like in each sector.

Plain functions over a passage frame (one row per passage: ``passage_id``, ``doc_id``, ``study``,
``sector``, ``topic``), so the topic stage, the benchmarks and the report share one definition of
"a theme shared across sectors". Nothing here fits a model.

Why these measures: on a handful of documents of different genres the embedding space separates
documents (style, vocabulary, speakers) before it separates themes, and a topic model then mostly
re-discovers the documents. A theme only supports a cross-sector comparison when passages of at least
two sectors form a real part of it, so that is what :func:`theme_spread` counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import combinations

import numpy as np
import pandas as pd

SECTOR_FLOOR = 0.10  # a sector "is in" a theme when it holds at least this share of the theme's passages
DOCUMENT_DOMINANCE = 0.90  # a theme drawn this much from one document is study-specific
BOOTSTRAP_ROUNDS = 1000
MATCH_JACCARD = 0.5  # a theme recurs in another seed's fit when some theme there shares this much of its passages


def theme_spread(frame: pd.DataFrame) -> dict:
    """Share of themed passages in themes reaching two sectors (each ≥ 10 % of the theme), the themes
    drawn ≥ 90 % from one document, the number of themes and the largest theme's share of all passages."""
    themed = frame[frame["topic"] != -1]
    if themed.empty:
        return {"themes": 0, "two_sector_share": 0.0, "document_themes": [], "document_theme_share": 0.0,
                "largest_share": 0.0}  # fmt: skip
    by_sector = pd.crosstab(themed["topic"], themed["sector"])
    sector_shares = by_sector.div(by_sector.sum(axis=1), axis=0)
    shared = sector_shares.index[(sector_shares >= SECTOR_FLOOR).sum(axis=1) >= 2]
    by_doc = pd.crosstab(themed["topic"], themed["doc_id"])
    doc_shares = by_doc.div(by_doc.sum(axis=1), axis=0)
    dominated = sorted(int(t) for t in doc_shares.index[doc_shares.max(axis=1) >= DOCUMENT_DOMINANCE])
    sizes = themed["topic"].value_counts()
    return {
        "themes": int(len(sizes)),
        "two_sector_share": round(float(by_sector.loc[shared].to_numpy().sum() / len(themed)), 4),
        "shared_themes": sorted(int(t) for t in shared),
        "document_themes": dominated,
        "document_theme_share": round(len(dominated) / len(sizes), 4),
        "largest_share": round(float(sizes.max() / len(frame)), 4),
    }


def prevalence_intervals(
    frame: pd.DataFrame, by: str, rounds: int = BOOTSTRAP_ROUNDS, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Per theme and group (``by``: sector or study) the share of the group's passages in the theme, with a
    percentile bootstrap interval. The resampling unit is stated per row: documents within the group when
    it has several (passages of one document are not independent, so the document is what varies between
    studies), passages otherwise (then the interval says only how precisely this one document's mix is
    measured)."""
    rng = np.random.default_rng(seed)
    topics = sorted(int(t) for t in frame["topic"].unique())
    rows = []
    low, high = (1 - level) / 2, 1 - (1 - level) / 2
    for group in sorted(frame[by].unique()):
        part = frame[frame[by] == group]
        docs = sorted(part["doc_id"].unique())
        counts = pd.crosstab(part["doc_id"], part["topic"]).reindex(index=docs, columns=topics, fill_value=0)
        matrix = counts.to_numpy(dtype=float)
        if len(docs) > 1:
            unit = "documenten"
            picks = rng.integers(0, len(docs), size=(rounds, len(docs)))
            sampled = matrix[picks].sum(axis=1)  # rounds × topics
        else:
            unit = "passages"
            total = int(matrix.sum())
            sampled = rng.multinomial(total, matrix[0] / total, size=rounds).astype(float)
        shares = sampled / sampled.sum(axis=1, keepdims=True)
        point = matrix.sum(axis=0) / matrix.sum()
        for j, topic in enumerate(topics):
            rows.append(
                {
                    by: group,
                    "topic": topic,
                    "n": int(matrix[:, j].sum()),
                    "share": round(float(point[j]), 4),
                    "low": round(float(np.quantile(shares[:, j], low)), 4),
                    "high": round(float(np.quantile(shares[:, j], high)), 4),
                    "resampled": unit,
                    "n_documents": len(docs),
                }
            )
    return pd.DataFrame(rows)


def sector_representatives(
    frame: pd.DataFrame, embeddings: np.ndarray, texts: Sequence[str], n: int = 2
) -> pd.DataFrame:
    """Per theme and sector the ``n`` passages of that sector nearest the theme's centroid: the same theme
    side by side as the VG, the ouderenzorg and the eerstelijn documents put it."""
    normed = embeddings / np.linalg.norm(embeddings, axis=1, keepdims=True)
    topics = frame["topic"].to_numpy()
    sectors = frame["sector"].to_numpy()
    rows = []
    for topic in sorted(int(t) for t in set(topics) - {-1}):
        members = np.flatnonzero(topics == topic)
        centroid = normed[members].mean(axis=0)
        for sector in sorted(set(sectors[members])):
            inside = members[sectors[members] == sector]
            order = inside[np.argsort(-(normed[inside] @ centroid), kind="stable")][:n]
            for rank, i in enumerate(order, 1):
                rows.append(
                    {
                        "topic": topic,
                        "sector": sector,
                        "rank": rank,
                        "passage_id": frame["passage_id"].iloc[i],
                        "doc_id": frame["doc_id"].iloc[i],
                        "text": texts[i],
                    }
                )
    return pd.DataFrame(rows, columns=["topic", "sector", "rank", "passage_id", "doc_id", "text"])


def seed_recurrence(reference: Sequence[int], others: Sequence[Sequence[int]]) -> dict[int, int]:
    """Per theme of the reference fit: in how many fits in all (itself included) a theme with at least half
    of its passages in common (Jaccard ≥ 0.5) exists. A theme found in one fit only is an accident of the
    random seed, not a finding."""
    ref = np.asarray(reference)
    out = {}
    for topic in sorted(int(t) for t in set(reference) - {-1}):
        members = set(np.flatnonzero(ref == topic))
        found = 1
        for other in others:
            assigned = np.asarray(other)
            best = 0.0
            for candidate in set(assigned[list(members)]) - {-1}:
                theirs = set(np.flatnonzero(assigned == candidate))
                best = max(best, len(members & theirs) / len(members | theirs))
            found += best >= MATCH_JACCARD
        out[topic] = found
    return out


def mean_pairwise_ari(assignments: Sequence[Sequence[int]]) -> float:
    """Mean adjusted Rand index over all pairs of fits (passage → theme, outliers included as one group)."""
    from sklearn.metrics import adjusted_rand_score

    pairs = [adjusted_rand_score(a, b) for a, b in combinations(assignments, 2)]
    return round(float(np.mean(pairs)), 4) if pairs else 1.0


def per_sector_crosstab(by_sector: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Long table sector × theme × condition (non-zero counts) from per-sector topic × condition tables."""
    rows = []
    for sector, table in sorted(by_sector.items()):
        long = table.reset_index().melt(id_vars="topic", var_name="condition", value_name="n")
        long.insert(0, "sector", sector)
        rows.append(long[long["n"] > 0])
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=["sector", "topic", "condition", "n"])


def write_theme_comparison(frame: pd.DataFrame, space: np.ndarray, texts: Sequence[str], folder) -> dict:
    """``theme_prevalence_{sector,study}.csv`` (share with bootstrap interval and the unit resampled),
    ``theme_sector_passages.csv`` (the same theme's nearest passages per sector, side by side) and the
    spread figures; returns the spread for the summary."""
    from pipeline.corpus import write_atomic

    for by in ("sector", "study"):
        write_atomic(folder / f"theme_prevalence_{by}.csv", prevalence_intervals(frame, by).to_csv(index=False))
    write_atomic(folder / "theme_sector_passages.csv", sector_representatives(frame, space, texts).to_csv(index=False))
    return theme_spread(frame)
