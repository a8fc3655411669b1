"""Fit time of the topic model (the extra seed fits that flag unstable themes timed apart): the bundled
corpus and the corpus replicated ×10 (distinct passage ids), with passage embeddings already in the
store's cache and without, all in one run. Ratios are against the first
measurement (bundled corpus, cached), taken in this same process.

The ×10 copies repeat the texts, so the embedding cache (keyed by text hash) embeds each text once:
"uncached" ×10 costs one embedding pass of the bundled corpus plus the ×10 fit.

    python bench/topics_speed.py [--store sqlite:///outputs/mgz.sqlite] [--skip-uncached]
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from dataclasses import replace

from pipeline.embeddings import embed, make_encoder
from pipeline.store import open_store
from pipeline.topics import TopicParams, cached_backend, fit_topics, seed_stability, topic_passages

# The setting before issue 23 (raw vectors, plain kNN, 40 themes), timed in the same process with --today.
TODAY = {"centring": "none", "neighbours": "all", "max_topics": 40, "seed_runs": 1}


def timed_fit(passages, engine, encoder, **overrides) -> tuple[float, dict]:
    start = time.perf_counter()
    embeddings = embed([p.text for p in passages], encoder, engine)
    embedded = time.perf_counter() - start
    params = TopicParams.for_corpus(len(passages), **overrides)
    result = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name)
    fitted = time.perf_counter() - start
    seed_stability(result, embeddings, cached_backend(encoder, engine))  # what build_topics adds per fit
    total = time.perf_counter() - start
    return total, {
        "embed_s": round(embedded, 1),
        "fit_s": round(fitted - embedded, 1),
        "stability_s": round(total - fitted, 1),
        "seed_runs": params.seed_runs,
        "topics": len(set(result.topics) - {-1}),
        "outliers": result.outliers_after,
        "min_topic_size": params.min_topic_size,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="sqlite:///outputs/mgz.sqlite", help="Store with the ingested corpus.")
    parser.add_argument("--skip-uncached", action="store_true", help="Leave out the runs that embed from scratch.")
    parser.add_argument("--skip-replicated", action="store_true", help="Leave out the ×10 corpus.")
    parser.add_argument("--today", action="store_true", help="Also time the setting before issue 23 (×1, cached).")
    args = parser.parse_args()
    engine = open_store(args.store)
    encoder = make_encoder("e5")
    bundled = topic_passages(engine)
    replicated = [replace(p, passage_id=f"{p.passage_id}-{k}") for k in range(10) for p in bundled]
    embed([p.text for p in bundled], encoder, engine)  # make sure "cached" means cached

    rows = []
    baseline = None
    if args.today:  # first, so it pays the process's one-time costs (numba compiling UMAP/HDBSCAN), not ours
        seconds, info = timed_fit(bundled, engine, make_encoder("e5"), **TODAY)
        print(f"  ×1 setting before issue 23, cached: {seconds:7.1f} s {info}", flush=True)
    cases = [("×1", bundled, True), ("×10", replicated, True)]
    if not args.skip_uncached:
        cases += [("×1", bundled, False), ("×10", replicated, False)]
    if args.skip_replicated:
        cases = [case for case in cases if case[0] == "×1"]
    for name, passages, cached in cases:
        with tempfile.TemporaryDirectory() as scratch:
            store = engine if cached else open_store(f"sqlite:///{scratch}/empty.sqlite")
            seconds, info = timed_fit(passages, store, make_encoder("e5"))
        baseline = baseline or seconds
        rows.append((name, len(passages), "cached" if cached else "not cached", seconds, info))
        print(
            f"{name:>4} {len(passages):>6} passages, embeddings {rows[-1][2]:<10}: {seconds:7.1f} s "
            f"(×{seconds / baseline:.2f} of ×1 cached) {info}",
            flush=True,
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS {peak:.0f} MiB")


if __name__ == "__main__":
    main()
