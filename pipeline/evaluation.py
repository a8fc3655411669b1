"""Evaluation of the passage classifier: metrics, baselines and leave-one-document-out CV.

Random passage splits leak a document's style into training and overstate what
a new study will get, so every figure here comes from training on all other
documents and testing on one, all ways round.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.metrics import cohen_kappa_score, f1_score, precision_recall_fscore_support
from spacy.language import Language

from pipeline.classify import PassageClassifier, PassageInput
from pipeline.codebook import Codebook

NONE = "(geen)"


@dataclass
class TrainingSet:
    items: list[PassageInput]
    codings: list[dict]  # field id -> value, from the reference (or reviewed) coding
    lemmas: list[str]
    embeddings: np.ndarray

    @property
    def groups(self) -> list[str]:
        return [item.doc_id for item in self.items]

    def subset(self, index: Sequence[int]) -> TrainingSet:
        return TrainingSet(
            [self.items[i] for i in index],
            [self.codings[i] for i in index],
            [self.lemmas[i] for i in index],
            self.embeddings[list(index)],
        )

    def joined(self, other: TrainingSet | None) -> tuple[TrainingSet, list[bool]]:
        """This set followed by ``other`` (the synthetic passages), and which rows are other's."""
        if other is None or not other.items:
            return self, [False] * len(self.items)
        joined = TrainingSet(
            self.items + other.items,
            self.codings + other.codings,
            self.lemmas + other.lemmas,
            np.vstack([self.embeddings, other.embeddings]),
        )
        return joined, [False] * len(self.items) + [True] * len(other.items)


SYNTHETIC_DOC = "synthetic"  # doc_id of invented training passages: they train, they are never tested


def _f(x) -> float | None:
    return None if x is None else round(float(x), 3)


def field_metrics(truth: Sequence[dict], pred: Sequence[dict], codebook: Codebook) -> dict:
    """Per field and per label precision, recall, F1 and Cohen's kappa."""
    out: dict = {}
    for f in codebook.fields.values():
        if f.multi:
            Y = np.array([[label in t[f.id] for label in f.ids] for t in truth], dtype=int)
            P = np.array([[label in p[f.id] for label in f.ids] for p in pred], dtype=int)
            per_label = {}
            for k, label in enumerate(f.ids):
                pr, rc, f1, _ = precision_recall_fscore_support(Y[:, k], P[:, k], average="binary", zero_division=0)
                kappa = cohen_kappa_score(Y[:, k], P[:, k]) if len(set(Y[:, k]) | set(P[:, k])) > 1 else 1.0
                per_label[label] = {
                    "precision": _f(pr),
                    "recall": _f(rc),
                    "f1": _f(f1),
                    "kappa": _f(kappa),
                    "support": int(Y[:, k].sum()),
                }
            out[f.id] = {
                "micro_f1": _f(f1_score(Y, P, average="micro", zero_division=0)),
                "macro_f1": _f(f1_score(Y, P, average="macro", zero_division=0)),
                "labels": per_label,
                "n": len(truth),
            }
        else:
            rows = range(len(truth))
            if f.requires:  # judged where the reference says the field applies
                req_field, req_label = f.requires
                rows = [i for i in rows if req_label in (truth[i].get(req_field) or [])]
            t = [truth[i][f.id] or NONE for i in rows]
            p = [pred[i][f.id] or NONE for i in rows]
            if not t:
                out[f.id] = {"n": 0}
                continue
            labels = sorted(set(t) | set(p))
            pr, rc, f1, support = precision_recall_fscore_support(t, p, labels=labels, zero_division=0)
            kappa = cohen_kappa_score(t, p) if len(set(t) | set(p)) > 1 else 1.0
            out[f.id] = {
                "macro_f1": _f(f1_score(t, p, labels=sorted(set(t)), average="macro", zero_division=0)),
                "accuracy": _f(np.mean([a == b for a, b in zip(t, p, strict=True)])),
                "kappa": _f(kappa),
                "labels": {
                    lab: {"precision": _f(pr[k]), "recall": _f(rc[k]), "f1": _f(f1[k]), "support": int(support[k])}
                    for k, lab in enumerate(labels)
                },
                "n": len(t),
            }
    return out


# --------------------------------------------------------------------------- baselines


def majority_baseline(train: Sequence[dict], codebook: Codebook) -> Callable[[Sequence[PassageInput]], list[dict]]:
    """Every passage gets the most frequent value per field (labels present in > half for multi-label)."""
    decided: dict = {}
    for f in codebook.fields.values():
        if f.multi:
            decided[f.id] = [lab for lab in f.ids if sum(lab in c[f.id] for c in train) > len(train) / 2]
        else:
            decided[f.id] = Counter(c[f.id] for c in train).most_common(1)[0][0]
    if decided.get("primary_condition") is not None and not decided.get("conditions"):
        decided["primary_condition"] = None
    return lambda items: [dict(decided) for _ in items]


def keyword_lexicon(codebook: Codebook, nlp: Language) -> dict[str, dict[str, set[str]]]:
    """Per field and label, the lemmas of the codebook's own name, definition and inclusion terms,
    minus stop words and minus lemmas that several labels of the field share."""
    lexicon: dict[str, dict[str, set[str]]] = {}
    for f in codebook.fields.values():
        if f.labels_from:
            continue
        words: dict[str, set[str]] = {}
        for label in f.labels:
            text = " ".join([label.name, label.definition, *label.include])
            words[label.id] = {
                (t.lemma_ or t.text).lower() for t in nlp(text) if t.is_alpha and not t.is_stop and len(t.text) > 3
            }
        shared = Counter(w for ws in words.values() for w in ws)
        lexicon[f.id] = {label: {w for w in ws if shared[w] == 1} for label, ws in words.items()}
    return lexicon


def keyword_baseline(codebook: Codebook, nlp: Language) -> Callable[[Sequence[PassageInput]], list[dict]]:
    """Keyword rules derived from the codebook: a label applies when one of its lemmas occurs."""
    lexicon = keyword_lexicon(codebook, nlp)

    def predict(items: Sequence[PassageInput]) -> list[dict]:
        out = []
        for doc in nlp.pipe([i.text for i in items]):
            lemmas = {(t.lemma_ or t.text).lower() for t in doc}
            hits = {f: {lab: len(ws & lemmas) for lab, ws in labels.items()} for f, labels in lexicon.items()}
            row: dict = {}
            for f in codebook.fields.values():
                if f.labels_from:
                    continue
                if f.multi:
                    row[f.id] = [lab for lab, n in hits[f.id].items() if n]
                else:
                    best = max(hits[f.id].items(), key=lambda kv: kv[1])
                    fallback = "neutraal" if "neutraal" in f.ids else None
                    row[f.id] = best[0] if best[1] else fallback
            for f in codebook.fields.values():
                if f.labels_from:
                    source = hits.get(f.labels_from, {})
                    chosen = row.get(f.labels_from) or []
                    row[f.id] = max(chosen, key=lambda lab: source.get(lab, 0)) if chosen else None
                if f.requires and f.requires[1] not in (row.get(f.requires[0]) or []):
                    row[f.id] = None
            out.append(row)
        return out

    return predict


def review_split(truth: Sequence[dict], pred: Sequence[dict]) -> dict:
    """Is ``needs_review`` worth anything? Accuracy of flagged vs unflagged passages."""

    def accuracy(rows: list[int]) -> dict:
        if not rows:
            return {"n": 0}
        return {
            "n": len(rows),
            "polarity_accuracy": _f(np.mean([truth[i]["polarity"] == pred[i]["polarity"] for i in rows])),
            "conditions_exact": _f(np.mean([set(truth[i]["conditions"]) == set(pred[i]["conditions"]) for i in rows])),
        }

    flagged = [i for i, p in enumerate(pred) if p["needs_review"]]
    clear = [i for i, p in enumerate(pred) if not p["needs_review"]]
    return {
        "share_flagged": _f(len(flagged) / max(1, len(pred))),
        "flagged": accuracy(flagged),
        "not_flagged": accuracy(clear),
    }


# --------------------------------------------------------------------------- LODO


def _fit_predict(
    real: TrainingSet,
    test: TrainingSet,
    codebook: Codebook,
    params: dict | None,
    prototypes: np.ndarray | None,
    synthetic: TrainingSet | None,
) -> list[dict]:
    """Predictions for ``test`` from a model on ``real`` passages plus the synthetic ones
    (which train but are never scored)."""
    train, augment = real.joined(synthetic)
    model = PassageClassifier.for_codebook(codebook, prototypes=prototypes, **(params or {})).fit(
        train.lemmas,
        [i.text for i in train.items],
        train.embeddings,
        train.codings,
        train.groups,
        codebook,
        augment=augment,
    )
    return model.predict([i.id for i in test.items], test.lemmas, [i.text for i in test.items], test.embeddings, "lodo")


def lodo(
    data: TrainingSet,
    codebook: Codebook,
    nlp: Language,
    params: dict | None = None,
    prototypes: np.ndarray | None = None,
    synthetic: TrainingSet | None = None,
) -> dict:
    """Leave-one-document-out: model, majority and keyword baselines on each held-out document.

    Synthetic passages (if any) join every training set and are never tested; the
    baselines see only the real training documents.
    """
    folds = {}
    docs = sorted(set(data.groups))
    keywords = keyword_baseline(codebook, nlp)
    for doc_id in docs:
        train_idx = [i for i, g in enumerate(data.groups) if g != doc_id]
        test_idx = [i for i, g in enumerate(data.groups) if g == doc_id]
        real_train, test = data.subset(train_idx), data.subset(test_idx)
        predicted = _fit_predict(real_train, test, codebook, params, prototypes, synthetic)
        folds[doc_id] = {
            "n_train": len(train_idx),
            "n_train_synthetic": len(synthetic.items) if synthetic is not None else 0,
            "n_test": len(test_idx),
            "model": field_metrics(test.codings, predicted, codebook),
            "majority": field_metrics(
                test.codings, majority_baseline(real_train.codings, codebook)(test.items), codebook
            ),
            "keywords": field_metrics(test.codings, keywords(test.items), codebook),
            "review": review_split(test.codings, predicted),
        }
    return {"folds": folds}


HEADLINE = (
    ("conditions", "micro_f1"),
    ("conditions", "macro_f1"),
    ("polarity", "macro_f1"),
    ("polarity", "kappa"),
    ("primary_condition", "kappa"),
    ("interactie_type", "kappa"),
    ("stakeholders", "micro_f1"),
)

BARS = {("conditions", "micro_f1"): 0.70, ("polarity", "macro_f1"): 0.70, ("primary_condition", "kappa"): 0.55}


ADAPTATION_MEASURES = (("conditions", "micro_f1"), ("polarity", "macro_f1"), ("primary_condition", "kappa"))


def adaptation_curve(
    data: TrainingSet,
    codebook: Codebook,
    shares: Sequence[float],
    params: dict | None = None,
    prototypes: np.ndarray | None = None,
    synthetic: TrainingSet | None = None,
    seed: int = 0,
) -> list[dict]:
    """How agreement on a new study grows once analysts have coded part of it.

    LODO answers "what does a study the model has never seen get?"; a team that
    takes the model to a new study will review some of its passages first, and
    reviewed labels join the training data (``with_reviews``). For every document
    and share, a random sample of that share of its passages joins the other
    documents in training, and the model is scored on the document's remaining
    passages only. The sample is random, not chosen by uncertainty, so the
    figures say what coding a plain sample buys.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for doc_id in sorted(set(data.groups)):
        others = [i for i, g in enumerate(data.groups) if g != doc_id]
        own = np.array([i for i, g in enumerate(data.groups) if g == doc_id])
        for share in shares:
            order = rng.permutation(len(own))
            n_coded = int(round(share * len(own)))
            coded, scored = sorted(own[order[:n_coded]]), sorted(own[order[n_coded:]])
            test = data.subset(scored)
            predicted = _fit_predict(data.subset(others + coded), test, codebook, params, prototypes, synthetic)
            metrics = field_metrics(test.codings, predicted, codebook)
            rows += [
                {
                    "fold": doc_id,
                    "share_coded": share,
                    "n_coded": n_coded,
                    "n_scored": len(scored),
                    "field": field_id,
                    "measure": measure,
                    "model": metrics.get(field_id, {}).get(measure),
                    "bar": BARS.get((field_id, measure)),
                }
                for field_id, measure in ADAPTATION_MEASURES
            ]
    return rows


def headline_rows(report: dict, human: dict | None = None) -> list[dict]:
    """One row per fold and measure: model, baselines, human agreement, and the bar."""
    rows = []
    for doc_id, fold in report["folds"].items():
        for field_id, measure in HEADLINE:
            rows.append(
                {
                    "fold": doc_id,
                    "field": field_id,
                    "measure": measure,
                    "model": fold["model"].get(field_id, {}).get(measure),
                    "majority": fold["majority"].get(field_id, {}).get(measure),
                    "keywords": fold["keywords"].get(field_id, {}).get(measure),
                    "human_a_vs_b": (human or {}).get(field_id, {}).get(measure),
                    "bar": BARS.get((field_id, measure)),
                }
            )
    return rows


def build_training_set(engine, reference: dict, nlp: Language, encoder, codebook: Codebook) -> TrainingSet:
    """Every stored passage that has a reference coding, with features and cached embeddings."""
    from pipeline.classify import lemma_documents
    from pipeline.embeddings import embed
    from pipeline.models import text_hash
    from pipeline.store import document_rows, load_passages

    items, codings = [], []
    for doc in document_rows(engine):
        if doc["status"] != "ok":
            continue
        for p in load_passages(engine, doc["doc_id"]):
            coding = reference.get(text_hash(p.text))
            if coding is None:
                continue
            labels = coding.labels if hasattr(coding, "labels") else coding
            items.append(
                PassageInput(
                    p.id, p.text, " > ".join(p.section), doc["sector"], doc.get("doc_type", ""), p.kind, doc["doc_id"]
                )
            )
            codings.append({f: labels[f] for f in codebook.fields})
    lemmas = lemma_documents(nlp, items)
    vectors = embed([i.text for i in items], encoder, engine)
    return TrainingSet(items, codings, lemmas, vectors)


def synthetic_training_set(
    rows: Sequence[dict], nlp: Language, encoder, codebook: Codebook, engine=None
) -> TrainingSet:
    """Invented, coded passages (``read_synthetic``) as training rows of their own document."""
    from pipeline.classify import lemma_documents
    from pipeline.embeddings import embed

    items = [
        PassageInput(
            f"{SYNTHETIC_DOC}:{r['source']}",
            r["text"],
            r.get("section") or "",
            r.get("sector") or "",
            r.get("doc_type") or "",
            "paragraph",
            SYNTHETIC_DOC,
        )
        for r in rows
    ]
    codings = [{f: r[f] for f in codebook.fields} for r in rows]
    vectors = embed([i.text for i in items], encoder, engine) if items else np.zeros((0, encoder.dim), np.float32)
    return TrainingSet(items, codings, lemma_documents(nlp, items), vectors)


@dataclass
class EvaluationRun:
    """A LODO report plus what training on all documents needs next (no second embedding pass)."""

    report: dict
    data: TrainingSet
    prototypes: np.ndarray
    synthetic: TrainingSet | None = None


def evaluate_corpus(
    engine,
    reference: dict,
    human_pairs: tuple[list[dict], list[dict]],
    nlp: Language,
    encoder,
    codebook: Codebook,
    params: dict | None = None,
    synthetic_rows: Sequence[dict] = (),
) -> EvaluationRun:
    """Build the training set from the store, run LODO, and score the human double coding alike."""
    from pipeline.classify import codebook_prototypes

    data = build_training_set(engine, reference, nlp, encoder, codebook)
    synthetic = synthetic_training_set(synthetic_rows, nlp, encoder, codebook, engine) if synthetic_rows else None
    prototypes = codebook_prototypes(codebook, encoder)
    report = lodo(data, codebook, nlp, params, prototypes, synthetic)
    human = field_metrics(human_pairs[0], human_pairs[1], codebook)
    report["human_a_vs_b"] = human
    report["headline"] = headline_rows(report, human)
    report["encoder"] = encoder.name
    report["n_passages"] = len(data.items)
    report["n_synthetic"] = len(synthetic.items) if synthetic else 0
    return EvaluationRun(report, data, prototypes, synthetic)


def write_report(out_dir, report: dict) -> None:
    """``lodo.json`` (everything), ``lodo.csv`` (the headline rows) and, when measured,
    ``adaptation.csv`` (``adaptation_curve``), each written atomically. An ``adaptation.csv``
    left by an earlier run is removed when this run did not measure it, so the folder
    always describes one evaluation."""
    import csv
    import io

    from pipeline.corpus import write_atomic, write_json

    write_json(out_dir / "lodo.json", report)
    for name, rows in (("lodo.csv", report["headline"]), ("adaptation.csv", report.get("adaptation"))):
        if not rows:
            (out_dir / name).unlink(missing_ok=True)
            continue
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        write_atomic(out_dir / name, buffer.getvalue())


# --------------------------------------------------------------------------- analysts' reviews


def full_coding(labels: dict, codebook: Codebook) -> dict:
    """Every field present (reviews may leave empty fields out)."""
    return {f.id: labels.get(f.id) or ([] if f.multi else None) for f in codebook.fields.values()}


def with_reviews(reference: dict, engine, codebook: Codebook) -> tuple[dict, int]:
    """The reference coding (keyed by text hash) with analysts' reviewed labels taking precedence for
    the same passage; returns the merged reference and how many passages a review decided."""
    from pipeline.review import reviewed_labels
    from pipeline.store import passage_text_hashes

    reviewed = reviewed_labels(engine)
    hashes = passage_text_hashes(engine, list(reviewed))
    merged = {h: (c.labels if hasattr(c, "labels") else c) for h, c in reference.items()}
    for passage_id, labels in reviewed.items():
        if passage_id in hashes:
            merged[hashes[passage_id]] = full_coding(labels, codebook)
    return merged, len(hashes)


def model_vs_reviewers(engine, codebook: Codebook) -> dict:
    """The model against analysts on the passages they reviewed: the labels each analyst was shown
    (the model's output at review time, stored with the decision) against the decision that counts."""
    from pipeline.review import reviewed_decisions

    truth, shown, versions = [], [], Counter()
    for decision in reviewed_decisions(engine).values():
        if not decision.labels_shown:
            continue  # imported or hand-entered coding: no model output was shown
        truth.append(full_coding(decision.labels, codebook))
        shown.append(full_coding(decision.labels_shown, codebook))
        versions[decision.model_version or "?"] += 1
    if not truth:
        return {"n": 0}
    return {"n": len(truth), "model_versions": dict(versions), "fields": field_metrics(truth, shown, codebook)}
