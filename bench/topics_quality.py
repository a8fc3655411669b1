"""Topic coherence (NPMI over the corpus's own tokens) and topic diversity for the chosen topic-model
setting and its alternatives, on the bundled corpus, so the choice rests on numbers.

Alternatives: HDBSCAN's "eom" cluster selection with its default min_samples (BERTopic's default
clustering) at two minimum topic sizes, larger minimum topic sizes with "leaf", and the other bundled
encoder (USE multilingual). Besides NPMI and diversity: the outlier shares, the largest topic's share
(a collapse into one topic shows there), and the share of topics that mix sectors (no sector above
90 % of the topic).
Writes docs/topics-evaluation.csv.

    python bench/topics_quality.py [--store sqlite:///outputs/mgz.sqlite] [--out docs/topics-evaluation.csv]
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from pathlib import Path

import pandas as pd

from pipeline.embeddings import embed, make_encoder
from pipeline.store import open_store
from pipeline.topics import (
    TopicParams,
    cached_backend,
    fit_topics,
    npmi_coherence,
    topic_diversity,
    topic_passages,
    topic_words,
)


def mixed_sector_share(result) -> float:
    """Share of topics whose passages do not all come from one sector (no sector above 90 %): a topic
    that only mirrors one sector's documents cannot show how sectors differ on a theme."""
    by_topic: dict[int, Counter] = {}
    for passage, topic in zip(result.passages, result.topics, strict=True):
        if topic != -1:
            by_topic.setdefault(topic, Counter())[passage.sector] += 1
    mixed = [t for t, c in by_topic.items() if max(c.values()) / sum(c.values()) <= 0.9]
    return round(len(mixed) / len(by_topic), 3) if by_topic else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--store", default="sqlite:///outputs/mgz.sqlite", help="Store with the ingested corpus.")
    parser.add_argument("--out", type=Path, default=Path("docs/topics-evaluation.csv"))
    args = parser.parse_args()
    engine = open_store(args.store)
    passages = topic_passages(engine)
    texts = [p.text for p in passages]
    chosen = TopicParams.for_corpus(len(passages))
    settings = [
        ("gekozen: e5, leaf, min_topic_size aangepast", "e5", chosen),
        ("e5, eom (BERTopic-standaard clustering)", "e5", TopicParams.for_corpus(
            len(passages), cluster_selection="eom", min_samples=chosen.min_topic_size)),
        ("e5, eom, min_topic_size 16", "e5", TopicParams.for_corpus(
            len(passages), cluster_selection="eom", min_topic_size=16, min_samples=16)),
        ("e5, leaf, min_topic_size 16", "e5", TopicParams.for_corpus(len(passages), min_topic_size=16)),
        ("e5, leaf, min_topic_size 25", "e5", TopicParams.for_corpus(len(passages), min_topic_size=25)),
        ("USE multilingual, leaf", "use", chosen),
    ]  # fmt: skip
    rows = []
    for name, encoder_key, params in settings:
        encoder = make_encoder(encoder_key)
        embeddings = embed(texts, encoder, engine)
        start = time.perf_counter()
        result = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name)
        words = topic_words(result)
        sizes = Counter(t for t in result.topics if t != -1)
        rows.append(
            {
                "setting": name,
                "encoder": encoder.name,
                "min_topic_size": params.min_topic_size,
                "min_samples": params.min_samples,
                "cluster_selection": params.cluster_selection,
                "topics": len(words),
                "outliers_before": result.outliers_before,
                "outliers_after": result.outliers_after,
                "largest_topic_share": round(max(sizes.values()) / len(result.topics), 3) if sizes else None,
                "mixed_sector_topics": mixed_sector_share(result),
                "npmi": npmi_coherence(words, texts, params),
                "diversity": topic_diversity(words),
                "fit_s": round(time.perf_counter() - start, 1),
            }
        )
        print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out, index=False)
    print(table.to_string(index=False))


if __name__ == "__main__":
    main()
