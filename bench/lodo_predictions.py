"""Leave-one-document-out predictions of the real classifier, one JSON line per passage.

Each bundled document is predicted by a model trained on the other documents
plus the synthetic passages (never on itself), so these predictions are what the
model would say about a study it has never seen. `bench/estimate_coverage.py`
uses them to check that model-assisted estimates keep their nominal coverage.

    python bench/lodo_predictions.py [--out outputs/bench/lodo-predictions.jsonl]

Slow (four fits, about 10 minutes on 2 cores); the output is a cache that the
coverage benchmark reuses.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

from pipeline.annotations import AnnotationSet, by_text_hash, read_codings, read_synthetic
from pipeline.classify import codebook_prototypes
from pipeline.codebook import load_codebook
from pipeline.corpus import ingest_corpus
from pipeline.embeddings import make_encoder
from pipeline.evaluation import _fit_predict, build_training_set, synthetic_training_set
from pipeline.nlp import load_glossary, make_nlp
from pipeline.store import open_store

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "outputs" / "bench" / "lodo-predictions.jsonl"


def lodo_predictions(store_url: str, corpus: Path, annotations: Path) -> list[dict]:
    """Per passage: document, sector, kind, the reference coding and the held-out model's prediction."""
    codebook = load_codebook()
    engine = open_store(store_url)
    ingest_corpus(corpus, engine, 2)
    nlp = make_nlp(load_glossary())
    encoder = make_encoder("e5")
    sets = AnnotationSet(annotations)
    reference = by_text_hash(read_codings([sets.reference], codebook))
    data = build_training_set(engine, reference, nlp, encoder, codebook)
    synthetic = synthetic_training_set(read_synthetic(sets.synthetic, codebook), nlp, encoder, codebook, engine)
    prototypes = codebook_prototypes(codebook, encoder)
    rows = []
    for doc_id in sorted(set(data.groups)):
        train = data.subset([i for i, g in enumerate(data.groups) if g != doc_id])
        test = data.subset([i for i, g in enumerate(data.groups) if g == doc_id])
        predicted = _fit_predict(train, test, codebook, None, prototypes, synthetic)
        for item, truth, pred in zip(test.items, test.codings, predicted, strict=True):
            rows.append(
                {
                    "id": item.id,
                    "doc_id": doc_id,
                    "sector": item.sector,
                    "kind": item.kind,
                    "reference": truth,
                    "prediction": {k: v for k, v in pred.items() if k != "model_version"},
                }
            )
        print(f"{doc_id}: {len(test.items)} passages predicted", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--corpus", type=Path, default=ROOT / "corpus")
    parser.add_argument("--annotations", type=Path, default=ROOT / "data" / "annotations")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        rows = lodo_predictions(f"sqlite:///{tmp}/lodo.sqlite", args.corpus, args.annotations)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    print(f"{len(rows)} predictions written to {args.out}")


if __name__ == "__main__":
    main()
