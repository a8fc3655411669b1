"""Passage-intrusion test (Chang et al. 2009, "Reading tea leaves", with passages instead of words).

``make``: for each theme of each setting, the four passages nearest the theme's centroid and one intruder
(the passage nearest the centroid of another, randomly drawn theme), shuffled. All items of all settings
are mixed in one file under opaque ids, so a reader sees only texts: no theme labels, no setting, no key.
The key goes to a separate file that readers must not be given.

``score``: reads every ``answers-*.csv`` (item,choice) next to the key and prints the accuracy per
setting and reader (chance is 20 %).

    python bench/topic_intrusion.py make [--store ...] [--out data/topic-intrusion] [--chars 450]
    python bench/topic_intrusion.py score [--out data/topic-intrusion]
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.embeddings import embed, make_encoder
from pipeline.store import open_store
from pipeline.topics import TopicParams, cached_backend, fit_topics, topic_passages

SETTINGS = {
    "vandaag": {"centring": "none", "min_documents": 1, "neighbours": "all", "max_topics": 40},
    "gekozen": {},
}
LETTERS = "ABCDE"


def nearest(members: np.ndarray, space: np.ndarray) -> np.ndarray:
    normed = space[members] / np.linalg.norm(space[members], axis=1, keepdims=True)
    centroid = normed.mean(axis=0)
    return members[np.argsort(-(normed @ centroid), kind="stable")]


def make(args) -> None:
    engine = open_store(args.store)
    passages = topic_passages(engine)
    encoder = make_encoder("e5")
    embeddings = embed([p.text for p in passages], encoder, engine)
    rng = random.Random(23)
    items, key = [], []
    for setting, overrides in SETTINGS.items():
        params = TopicParams.for_corpus(len(passages), **overrides)
        result = fit_topics(passages, embeddings, params, cached_backend(encoder, engine), encoder.name, label=False)
        topics = np.asarray(result.topics)
        space = result.space if result.space is not None else embeddings
        ranked = {int(t): nearest(np.flatnonzero(topics == t), space) for t in sorted(set(result.topics) - {-1})}
        for theme, order in ranked.items():
            if len(order) < 4:
                continue
            other = rng.choice([t for t in ranked if t != theme])
            intruder = next(int(i) for i in ranked[other] if int(i) not in set(order[:4].tolist()))
            chosen = [int(i) for i in order[:4]] + [intruder]
            rng.shuffle(chosen)
            items.append({"chosen": chosen, "setting": setting, "theme": theme, "intruder": intruder})
    rng.shuffle(items)
    lines = [
        "# Welke passage hoort er niet bij?",
        "",
        "Elk item heeft vijf passages uit onderzoeksrapporten over medisch generalistische zorg. Vier gaan over",
        "hetzelfde thema, één niet. Kies per item de letter van de passage die er niet bij hoort. Schrijf je",
        "antwoorden naar een CSV-bestand met de kolommen `item,choice` (bijvoorbeeld `q017,C`), één regel per item.",
        "Kies altijd één letter, ook als je twijfelt.",
        "",
    ]
    for n, item in enumerate(items, 1):
        item_id = f"q{n:03d}"
        lines.append(f"## {item_id}")
        lines.append("")
        for letter, index in zip(LETTERS, item["chosen"], strict=True):
            text = " ".join(passages[index].text.split())
            lines.append(f"{letter}. {text[: args.chars]}{'…' if len(text) > args.chars else ''}")
            lines.append("")
        key.append(
            {
                "item": item_id,
                "setting": item["setting"],
                "theme": item["theme"],
                "answer": LETTERS[item["chosen"].index(item["intruder"])],
                "passages": " ".join(passages[i].passage_id for i in item["chosen"]),
            }
        )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "items.md").write_text("\n".join(lines), "utf-8")
    pd.DataFrame(key).to_csv(args.out / "key.csv", index=False)
    print(f"{len(items)} items → {args.out / 'items.md'}; key in {args.out / 'key.csv'} (not for readers)")


def score(args) -> None:
    key = pd.read_csv(args.out / "key.csv")
    rows = []
    for path in sorted(args.out.glob("answers-*.csv")):
        answers = pd.read_csv(path)
        answers["choice"] = answers["choice"].astype(str).str.strip().str.upper()
        merged = key.merge(answers, on="item", how="left")
        merged["correct"] = merged["choice"] == merged["answer"]
        for setting, part in merged.groupby("setting"):
            rows.append(
                {
                    "reader": path.stem.removeprefix("answers-"),
                    "setting": setting,
                    "items": len(part),
                    "answered": int(part["choice"].isin(list(LETTERS)).sum()),
                    "correct": int(part["correct"].sum()),
                    "accuracy": round(float(part["correct"].mean()), 3),
                }
            )
    table = pd.DataFrame(rows)
    table.to_csv(args.out / "scores.csv", index=False)
    print(table.to_string(index=False))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("command", choices=["make", "score"])
    parser.add_argument("--store", default="sqlite:///outputs/mgz.sqlite")
    parser.add_argument("--out", type=Path, default=Path("data/topic-intrusion"))
    parser.add_argument("--chars", type=int, default=450, help="Passages are cut after this many characters.")
    args = parser.parse_args()
    make(args) if args.command == "make" else score(args)


if __name__ == "__main__":
    main()
