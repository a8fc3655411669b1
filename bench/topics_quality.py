"""Topic-model settings compared on what a cross-sector synthesis needs (issue 23), on the bundled corpus.

Per setting: the number of themes and the largest theme's share; the share of themed passages in themes
that reach two sectors (each ≥ 10 % of the theme); the share of themes drawn ≥ 90 % from one document;
NPMI over the corpus's own tokens and topic diversity (unique share of the top-10 words, c-TF-IDF); outlier
shares and the time of the fit without KeyBERT/MMR labels. The steps that take the document signal out
are measured one at a time on top of today's setting: per-document centring (or whitening) of the
passage vectors before UMAP, topic words from at least two documents (c-TF-IDF document-frequency floor),
seeded zero-shot themes from the codebook and guidelines, merging near-duplicate themes (hierarchical
topics), and UMAP's neighbours drawn from every document in equal numbers. Earlier comparisons (eom vs
leaf, sizes, the USE encoder) stay in the README.

``--seeds`` refits the named settings with five UMAP seeds: mean pairwise ARI of the passage assignments
and the share of themes that recur (Jaccard ≥ 0.5) in at least one other seed. ``--lodo`` leaves each
document out of the fit and places it with ``place_passages`` (BERTopic's transform by similarity to
the themes' centroids): the share of its passages that land in an
existing theme, and in a theme shared by two sectors of the remaining corpus.

Writes docs/topics-evaluation.csv (settings), docs/topics-stability.csv, docs/topics-lodo.csv.

    python bench/topics_quality.py [--store sqlite:///outputs/mgz.sqlite] [--only NAME ...] [--seeds NAME ...]
        [--lodo NAME ...]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd

from pipeline.embeddings import embed, make_encoder
from pipeline.store import open_store
from pipeline.theme_comparison import mean_pairwise_ari, seed_recurrence, theme_spread
from pipeline.topics import (
    TopicParams,
    cached_backend,
    fit_topics,
    npmi_coherence,
    passage_table,
    place_passages,
    topic_diversity,
    topic_passages,
    topic_words,
)

SEEDS = (42, 1, 2, 3, 4)


def settings(n_passages: int) -> dict[str, TopicParams]:
    """Today's setting, then each step on top of it; the chosen one is the default."""
    chosen = TopicParams.for_corpus(n_passages)
    today = replace(chosen, centring="none", min_documents=1, neighbours="all", max_topics=40)
    centred = replace(today, centring="document")
    floor = replace(centred, min_documents=2)
    return {
        "vandaag: e5, leaf, min_topic_size 10, 40 thema's": today,
        "+ centreren per document": centred,
        "+ centreren en witten": replace(today, centring="whiten"),
        "+ centreren, woorden uit ≥ 2 documenten": floor,
        "+ centreren, ≥ 2 documenten, zero-shot zaadthema's": replace(floor, zeroshot=True),
        "+ centreren, ≥ 2 documenten, bijna-dubbele thema's samengevoegd": replace(floor, merge_distance=0.65),
        "+ centreren, buren per document": replace(centred, neighbours="per_document"),
        "+ witten, buren per document, 25 thema's, woorden uit ≥ 2 documenten": replace(chosen, min_documents=2),
        "gekozen: witten, buren per document, 25 thema's": chosen,
        "gekozen, bijna-dubbele thema's samengevoegd": replace(chosen, merge_distance=0.65),
    }


def measure(name, passages, embeddings, params, encoder, engine) -> tuple[dict, object]:
    texts = [p.text for p in passages]
    start = time.perf_counter()
    # label=False: NPMI and diversity are over the c-TF-IDF words, which KeyBERT/MMR do not change; the
    # fit time with labels is bench/topics_speed.py's.
    result = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name, label=False)
    seconds = time.perf_counter() - start
    words = topic_words(result)
    spread = theme_spread(passage_table(result))
    sizes = Counter(t for t in result.topics if t != -1)
    row = {
        "setting": name,
        "centring": params.centring,
        "min_documents": params.min_documents,
        "zeroshot": params.zeroshot,
        "merge_distance": params.merge_distance,
        "neighbours": params.neighbours,
        "max_topics": params.max_topics,
        "min_topic_size": params.min_topic_size,
        "themes": len(sizes),
        "largest_theme_share": spread["largest_share"],
        "two_sector_passage_share": spread["two_sector_share"],
        "document_theme_share": spread["document_theme_share"],
        "document_themes": len(spread["document_themes"]),
        "npmi": npmi_coherence(words, texts, params),
        "diversity": topic_diversity(words),
        "outliers_before": result.outliers_before,
        "outliers_after": result.outliers_after,
        "fit_unlabelled_s": round(seconds, 1),
    }
    return row, result


def write(rows: list[dict], path: Path, key: str) -> None:
    """Merge into an existing CSV by ``key``, so a partial rerun (--only) keeps the other rows."""
    table = pd.DataFrame(rows)
    if path.exists():
        old = pd.read_csv(path)
        if key in old.columns:
            table = pd.concat([old[~old[key].isin(table[key])], table], ignore_index=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(path, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="sqlite:///outputs/mgz.sqlite", help="Store with the ingested corpus.")
    parser.add_argument("--docs", type=Path, default=Path("docs"))
    parser.add_argument("--only", nargs="*", help="Settings to fit (default: all).")
    parser.add_argument("--seeds", nargs="*", default=[], help="Settings to refit with five seeds.")
    parser.add_argument("--lodo", nargs="*", default=[], help="Settings to evaluate leaving each document out.")
    args = parser.parse_args()
    engine = open_store(args.store)
    passages = topic_passages(engine)
    encoder = make_encoder("e5")
    embeddings = embed([p.text for p in passages], encoder, engine)
    table = settings(len(passages))
    names = list(table) if args.only is None else [n for n in table if any(o in n for o in args.only)]
    rows = []
    for name in names:
        row, _ = measure(name, passages, embeddings, table[name], encoder, engine)
        rows.append(row)
        print(row, flush=True)
        write([row], args.docs / "topics-evaluation.csv", "setting")  # row by row: a long run keeps what it has

    stability = []
    for name in [n for n in table if any(o in n for o in args.seeds)]:
        fits = []
        for seed in SEEDS:
            params = replace(table[name], random_state=seed)
            result = fit_topics(
                passages, embeddings, params, cached_backend(encoder, engine), encoder.name, label=False
            )
            fits.append(result.topics)
        recurrence = seed_recurrence(fits[0], fits[1:])
        stability.append(
            {
                "setting": name,
                "seeds": " ".join(map(str, SEEDS)),
                "mean_pairwise_ari": mean_pairwise_ari(fits),
                "themes_seed_42": len(recurrence),
                "themes_in_one_seed_only": sum(v == 1 for v in recurrence.values()),
                "themes_in_all_seeds": sum(v == len(SEEDS) for v in recurrence.values()),
                "themes_per_seed": " ".join(str(len(set(f) - {-1})) for f in fits),
            }
        )
        print(stability[-1], flush=True)
    if stability:
        write(stability, args.docs / "topics-stability.csv", "setting")

    lodo = []
    for name in [n for n in table if any(o in n for o in args.lodo)]:
        for held in sorted({p.doc_id for p in passages}):
            train = [i for i, p in enumerate(passages) if p.doc_id != held]
            test = [i for i, p in enumerate(passages) if p.doc_id == held]
            kept = [passages[i] for i in train]
            result = fit_topics(
                kept, embeddings[train], table[name], cached_backend(encoder, engine), encoder.name, label=False
            )
            spread = theme_spread(passage_table(result))
            placed = place_passages(result, [passages[i] for i in test], embeddings[test])
            shared = set(spread["shared_themes"])
            counts = Counter(placed)
            top_theme, top_n = max(((t, n) for t, n in counts.items() if t != -1), key=lambda x: x[1], default=(-1, 0))
            lodo.append(
                {
                    "setting": name,
                    "held_out": held,
                    "sector": passages[test[0]].sector,
                    "passages": len(test),
                    "in_existing_theme": round(sum(t != -1 for t in placed) / len(test), 4),
                    "in_shared_theme": round(sum(t in shared for t in placed) / len(test), 4),
                    "largest_single_theme": round(top_n / len(test), 4),
                    "themes_reached": len(set(placed) - {-1}),
                    "themes_in_fit": len(set(result.topics) - {-1}),
                }
            )
            print(lodo[-1], flush=True)
    if lodo:
        table_lodo = pd.DataFrame(lodo)
        old = args.docs / "topics-lodo.csv"
        if old.exists():
            previous = pd.read_csv(old)
            table_lodo = pd.concat([previous[~previous["setting"].isin(table_lodo["setting"])], table_lodo])
        table_lodo.to_csv(old, index=False)


if __name__ == "__main__":
    main()
