"""Passage classifier: conditions, interaction type, primary condition, polarity, stakeholders.

Two views of a passage are modelled separately and combined:

* a linear model on TF-IDF of Dutch lookup lemmas (word 1–2-grams, with glossary
  expansions and context tokens for section path, sector, document type and
  passage kind) plus character 2–5-grams of the raw text;
* a linear model on sentence embeddings from an offline multilingual encoder.

Per label (multi-label fields) or per field (single-label fields) the two
probabilities are mixed with a weight chosen on out-of-fold predictions, then
calibrated with isotonic regression on those same out-of-fold scores, and
multi-label thresholds are tuned there too. Out-of-fold means grouped by
document, so every choice is made for documents the model has not seen.

A passage is first a finding or not: a gate head (does any condition apply?)
decides that, and only then are conditions chosen (those above their
threshold, at least the most likely one). What the training coding always
says about passages without a finding (polarity neutraal, no stakeholders) is
learned as an implication and applied, so the field heads only learn from
findings and report probabilities marginalised over the gate.

The estimator follows scikit-learn's fit/predict shape and holds only standard
scikit-learn objects, NumPy arrays and plain data, so it persists with skops.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold
from spacy.language import Language

from pipeline.codebook import Codebook

CLASSIFIER_VERSION = "classify-3"  # bump when training or decision rules change
MIX_WEIGHTS = (0.0, 0.25, 0.5, 0.75, 1.0)
REVIEW_MIN_CONFIDENCE = 0.6  # a decision whose calibrated probability is below this needs review
ANY = "__any__"  # the gate head of a multi-label field: does any of its labels apply?


@dataclass(frozen=True)
class PassageInput:
    """What the classifier sees of a passage."""

    id: str
    text: str
    section: str = ""
    sector: str = ""
    doc_type: str = ""
    kind: str = "paragraph"
    doc_id: str = ""


def lemma_document(nlp: Language, item: PassageInput, doc=None) -> str:
    """Content lemmas, glossary expansions and context tokens as one string for TF-IDF."""
    doc = doc if doc is not None else nlp(item.text)
    tokens = []
    for t in doc:
        if t.is_alpha and not t.is_stop:
            tokens.append((t.lemma_ or t.text).lower())
        if t._.expansion:
            tokens.extend(w.lower() for w in t._.expansion.split() if len(w) > 2)
    section = nlp.make_doc(item.section.lower()) if item.section else []
    tokens += [f"sec_{t.text}" for t in section if t.is_alpha and not t.is_stop and len(t.text) > 2]
    tokens += [
        f"ctx_sector_{item.sector or 'onbekend'}",
        f"ctx_type_{item.doc_type or 'onbekend'}",
        f"ctx_kind_{item.kind}",
    ]
    return " ".join(tokens)


def lemma_documents(nlp: Language, items: Sequence[PassageInput]) -> list[str]:
    docs = nlp.pipe([i.text for i in items], batch_size=256)
    return [lemma_document(nlp, item, doc) for item, doc in zip(items, docs, strict=True)]


@dataclass
class TextFeatures:
    """Word TF-IDF on lemma documents plus char TF-IDF on raw text."""

    words: TfidfVectorizer = field(
        default_factory=lambda: TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True, token_pattern=r"\S+")
    )
    chars: TfidfVectorizer = field(
        default_factory=lambda: TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True, max_features=60000, lowercase=True
        )
    )

    def fit_transform(self, lemmas: Sequence[str], texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([self.words.fit_transform(lemmas), self.chars.fit_transform(texts)]).tocsr()

    def transform(self, lemmas: Sequence[str], texts: Sequence[str]) -> sparse.csr_matrix:
        return sparse.hstack([self.words.transform(lemmas), self.chars.transform(texts)]).tocsr()


def gate_field(codebook: Codebook) -> str | None:
    """The multi-label field another field takes its labels from (conditions): whether it is
    empty separates findings from the rest of a report."""
    for f in codebook.fields.values():
        if f.labels_from and codebook.fields[f.labels_from].multi:
            return f.labels_from
    return None


def _targets(codings: Sequence[dict], codebook: Codebook) -> dict[str, tuple[list[str], np.ndarray]]:
    """Per model: (class ids, y). Multi-label fields become one binary target per label,
    and the gate field gets one more: does any of its labels apply."""
    targets: dict[str, tuple[list[str], np.ndarray]] = {}
    gate = gate_field(codebook)
    for f in codebook.fields.values():
        if f.id == gate:
            targets[f"{f.id}:{ANY}"] = (["0", "1"], np.array([int(bool(c[f.id])) for c in codings]))
        if f.multi:
            for label in f.ids:
                targets[f"{f.id}:{label}"] = (["0", "1"], np.array([int(label in c[f.id]) for c in codings]))
        else:
            classes = [*f.ids, "__none__"]
            targets[f.id] = (
                classes,
                np.array([classes.index(c[f.id] if c[f.id] is not None else "__none__") for c in codings]),
            )
    return targets


def _lr(C: float) -> LogisticRegression:
    return LogisticRegression(C=C, max_iter=3000, class_weight="balanced")


def _compact(model: LogisticRegression) -> LogisticRegression:
    """float32 coefficients: half the file size, no measurable change in predictions."""
    model.coef_ = model.coef_.astype(np.float32)
    model.intercept_ = model.intercept_.astype(np.float32)
    return model


def _fit_predict(X_fit, y_fit, X_pred, n_classes: int, C: float) -> np.ndarray:
    """Probabilities for every class index (columns for classes absent from y_fit stay 0)."""
    out = np.zeros((X_pred.shape[0], n_classes))
    present = np.unique(y_fit)
    if len(present) == 1:
        out[:, present[0]] = 1.0
        return out
    model = _lr(C).fit(X_fit, y_fit)
    out[:, model.classes_] = model.predict_proba(X_pred)
    return out


@dataclass
class _Head:
    """One target: its two linear models, mix weight, calibrators, and threshold."""

    classes: list[str]
    text_model: LogisticRegression | None
    embed_model: LogisticRegression | None
    constant: int | None
    weight: float
    calibrators: list[IsotonicRegression]
    threshold: float = 0.5

    def raw(self, X_text, X_embed) -> np.ndarray:
        n = X_text.shape[0]
        if self.constant is not None:
            out = np.zeros((n, len(self.classes)))
            out[:, self.constant] = 1.0
            return out
        p = np.zeros((n, len(self.classes)))
        q = np.zeros((n, len(self.classes)))
        p[:, self.text_model.classes_] = self.text_model.predict_proba(X_text)
        q[:, self.embed_model.classes_] = self.embed_model.predict_proba(X_embed)
        return self.weight * p + (1 - self.weight) * q


def _calibrate(raw: np.ndarray, calibrators: list[IsotonicRegression]) -> np.ndarray:
    if not calibrators:
        return raw
    out = np.column_stack([cal.predict(raw[:, k]) for k, cal in enumerate(calibrators)])
    if out.shape[1] > 2:  # one-vs-rest calibration of a multi-class field: renormalise
        total = out.sum(axis=1, keepdims=True)
        out = np.where(total > 0, out / np.where(total == 0, 1, total), raw)
    else:
        out[:, 0] = 1 - out[:, 1]
    return out


def _best_threshold(scores: np.ndarray, y: np.ndarray) -> float:
    best, best_f1 = 0.5, -1.0
    for t in np.arange(0.1, 0.91, 0.025):
        pred = scores >= t
        tp = int((pred & (y == 1)).sum())
        fp = int((pred & (y == 0)).sum())
        fn = int((~pred & (y == 1)).sum())
        f1 = 2 * tp / max(1, 2 * tp + fp + fn)
        if f1 > best_f1 + 1e-9:
            best, best_f1 = float(t), f1
    return best


def _score(prob: np.ndarray, y: np.ndarray, binary: bool) -> float:
    """Selection criterion on out-of-fold predictions: best F1 for a label, macro-F1 for a field."""
    if binary:
        t = _best_threshold(prob[:, 1], y)
        pred = (prob[:, 1] >= t).astype(int)
        tp = int(((pred == 1) & (y == 1)).sum())
        return 2 * tp / max(1, 2 * tp + int(((pred == 1) & (y == 0)).sum()) + int(((pred == 0) & (y == 1)).sum()))
    pred = prob.argmax(axis=1)
    f1s = []
    for k in np.unique(y):
        tp = int(((pred == k) & (y == k)).sum())
        f1s.append(2 * tp / max(1, int((pred == k).sum()) + int((y == k).sum())))
    return float(np.mean(f1s))


@dataclass
class PassageClassifier:
    """Fit on passages with reference codings; predict codebook labels with calibrated scores."""

    codebook_id: str
    codebook_version: str
    fields: dict[str, dict]  # field id -> {"multi": bool, "ids": [...], "requires": (field, label) | None}
    C_text: float = 4.0
    C_embed: float = 1.0
    inner_folds: int = 3
    features: TextFeatures = field(default_factory=TextFeatures)
    heads: dict[str, _Head] = field(default_factory=dict)
    single_decision: str = "raw"  # or "calibrated": argmax of the calibrated probabilities
    prototypes: np.ndarray | None = None  # unit vectors, one per codebook label
    prototype_mean: np.ndarray | None = None
    prototype_std: np.ndarray | None = None
    gate: str | None = None  # the gate field (conditions), see gate_field()
    gate_threshold: float = 0.5
    implied: dict = field(default_factory=dict)  # field -> the value it always has when the gate field is empty

    def _embedding_view(self, embeddings: np.ndarray, fit: bool = False) -> np.ndarray:
        """Embeddings plus their standardised similarity to each label's codebook prototype.

        The prototypes (definition, inclusion terms and examples of each label,
        embedded) are the few-shot help the codebook itself gives; they carry
        over to documents whose wording the training set never saw.
        """
        E = np.asarray(embeddings, dtype=np.float64)
        if self.prototypes is None or self.prototypes.shape[1] != E.shape[1]:
            return E
        S = E @ self.prototypes.T
        if fit:
            self.prototype_mean = S.mean(axis=0)
            self.prototype_std = S.std(axis=0) + 1e-9
        return np.hstack([E, (S - self.prototype_mean) / self.prototype_std])

    @classmethod
    def for_codebook(cls, codebook: Codebook, **params) -> PassageClassifier:
        return cls(
            codebook_id=codebook.id,
            codebook_version=codebook.version,
            fields={
                f.id: {
                    "multi": f.multi,
                    "ids": list(f.ids),
                    "requires": list(f.requires) if f.requires else None,
                    "labels_from": f.labels_from,
                }
                for f in codebook.fields.values()
            },
            **params,
        )

    def fit(
        self,
        lemmas: Sequence[str],
        texts: Sequence[str],
        embeddings: np.ndarray,
        codings: Sequence[dict],
        groups: Sequence[str],
        codebook: Codebook,
        augment: Sequence[bool] | None = None,
    ) -> PassageClassifier:
        """Fit every head. ``groups`` name each passage's document; inner folds leave documents out.

        ``augment`` marks passages that only ever train (the invented, coded examples
        of ``data/annotations/synthetic``): they are in every inner training fold and
        never scored out of fold, so mixing weights, calibration and thresholds are
        chosen on real documents only.
        """
        X_text = self.features.fit_transform(lemmas, texts)
        X_embed = self._embedding_view(embeddings, fit=True)
        groups = np.asarray(groups)
        scored = ~np.asarray(augment, dtype=bool) if augment is not None else np.ones(len(groups), bool)
        real = np.flatnonzero(scored)
        extra = np.flatnonzero(~scored)
        n_splits = min(self.inner_folds, len(set(groups[real])))
        folds = (
            [
                (np.concatenate([real[train], extra]), real[test])
                for train, test in GroupKFold(n_splits=n_splits).split(real, groups=groups[real])
            ]
            if n_splits >= 2
            else []
        )
        requires = {f.id: f.requires for f in codebook.fields.values()}
        self.gate = gate_field(codebook)
        findings = np.array([bool(c[self.gate]) for c in codings]) if self.gate else np.ones(len(codings), bool)
        self.implied = self._implications(codings, findings) if self.gate else {}
        oof: dict[str, np.ndarray] = {}
        for name, (classes, y) in _targets(codings, codebook).items():
            field_id = name.split(":")[0]
            rows = np.arange(len(y))
            req = requires.get(name)
            if req is not None:  # interactie_type: learn only where interactie applies
                rows = np.array([i for i, c in enumerate(codings) if req[1] in (c.get(req[0]) or [])])
            if field_id in self.implied:  # decided by the gate elsewhere: learn from findings only
                rows = np.array([i for i in rows if findings[i]], dtype=int)
            if len(rows) == 0:
                continue
            self.heads[name], scores = self._fit_head(X_text, X_embed, y, rows, folds, classes, scored)
            if field_id == self.gate and scores is not None:
                oof[name] = scores[real]
        if self.gate and folds and f"{self.gate}:{ANY}" in oof:
            self._tune_gate(oof, [codings[i] for i in real])
        return self

    def _implications(self, codings: Sequence[dict], findings: np.ndarray) -> dict:
        """Fields whose value is the same on every training passage without a finding
        (polarity neutraal, no stakeholders, no primary condition): the rule the coding follows."""
        implied = {}
        empty = [c for c, is_finding in zip(codings, findings, strict=True) if not is_finding]
        if not empty:
            return implied
        for f in self.fields:
            if f == self.gate:
                continue
            values = {json.dumps(c[f], sort_keys=True) for c in empty}
            if len(values) == 1:
                implied[f] = json.loads(values.pop())
        return implied

    def _tune_gate(self, oof: dict[str, np.ndarray], codings: Sequence[dict]) -> None:
        """Gate threshold and label thresholds chosen together for micro-F1 of the gate field
        on out-of-fold scores: a finding gets its labels above threshold, at least the top one."""
        labels = [lab for lab in self.fields[self.gate]["ids"] if f"{self.gate}:{lab}" in oof]
        if not labels:
            return
        any_score = oof[f"{self.gate}:{ANY}"][:, 1]
        S = np.column_stack([oof[f"{self.gate}:{lab}"][:, 1] for lab in labels])
        Y = np.array([[lab in c[self.gate] for lab in labels] for c in codings], dtype=bool)
        top = S.argmax(axis=1)
        best = (-1.0, self.gate_threshold, [self.heads[f"{self.gate}:{lab}"].threshold for lab in labels])
        for gate_t in np.arange(0.2, 0.81, 0.05):
            passed = any_score >= gate_t
            thresholds = [
                _best_threshold(np.where(passed, S[:, k], 0.0), Y[:, k].astype(int)) for k in range(len(labels))
            ]
            P = passed[:, None] & (S >= np.array(thresholds))
            P[np.arange(len(P)), top] |= passed
            tp = int((P & Y).sum())
            f1 = 2 * tp / max(1, int(P.sum()) + int(Y.sum()))
            if f1 > best[0] + 1e-9:
                best = (f1, float(gate_t), thresholds)
        _, self.gate_threshold, thresholds = best
        for lab, t in zip(labels, thresholds, strict=True):
            self.heads[f"{self.gate}:{lab}"].threshold = t

    def _fit_head(self, X_text, X_embed, y, rows, folds, classes, scored) -> tuple[_Head, np.ndarray | None]:
        """Fit one target on ``rows``; the decision layer (mix weight, calibration, threshold)
        is chosen on out-of-fold scores of the ``scored`` rows among them."""
        n_classes = len(classes)
        binary = classes == ["0", "1"]
        y_rows = y[rows]
        present = np.unique(y_rows)
        if len(present) == 1:
            return _Head(classes, None, None, int(present[0]), 1.0, [], 0.5), None
        oof_rows = rows[scored[rows]]
        y_oof = y[oof_rows]
        oof_text = np.zeros((len(oof_rows), n_classes))
        oof_embed = np.zeros((len(oof_rows), n_classes))
        position = {r: i for i, r in enumerate(oof_rows)}
        fit_rows = set(rows.tolist())
        for train, test in folds:
            tr = [r for r in train if r in fit_rows]
            te = [r for r in test if r in position]
            if not te or not tr:
                continue
            idx = [position[r] for r in te]
            oof_text[idx] = _fit_predict(X_text[tr], y[tr], X_text[te], n_classes, self.C_text)
            oof_embed[idx] = _fit_predict(X_embed[tr], y[tr], X_embed[te], n_classes, self.C_embed)
        tuned = bool(folds) and len(np.unique(y_oof)) > 1
        weight = (
            max(MIX_WEIGHTS, key=lambda w: _score(w * oof_text + (1 - w) * oof_embed, y_oof, binary)) if tuned else 0.5
        )
        oof = weight * oof_text + (1 - weight) * oof_embed
        calibrators = (
            [
                IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(
                    oof[:, k], (y_oof == k).astype(float)
                )
                for k in range(n_classes)
            ]
            if tuned
            else []
        )
        threshold = _best_threshold(_calibrate(oof, calibrators)[:, 1], y_oof) if binary and tuned else 0.5
        text_model = _compact(_lr(self.C_text).fit(X_text[rows], y_rows))
        embed_model = _compact(_lr(self.C_embed).fit(X_embed[rows], y_rows))
        head = _Head(classes, text_model, embed_model, None, weight, calibrators, threshold)
        scores = np.zeros((len(y), n_classes))  # calibrated out-of-fold scores, on all rows of y
        scores[oof_rows] = _calibrate(oof, calibrators)
        return head, (scores if tuned else None)

    # ------------------------------------------------------------------ predict

    def predict(
        self,
        ids: Sequence[str],
        lemmas: Sequence[str],
        texts: Sequence[str],
        embeddings: np.ndarray,
        model_version: str,
    ) -> list[dict]:
        """Labels, per-label calibrated scores and ``needs_review`` for each passage."""
        X_text = self.features.transform(lemmas, texts)
        X_embed = self._embedding_view(embeddings)
        raw = {name: head.raw(X_text, X_embed) for name, head in self.heads.items()}
        probs = {name: _calibrate(raw[name], self.heads[name].calibrators) for name in raw}
        return [self._decide(i, probs, raw, ids[i], model_version) for i in range(len(ids))]

    def _decide(
        self, i: int, probs: dict[str, np.ndarray], raw: dict[str, np.ndarray], passage_id: str, model_version: str
    ) -> dict:
        labels: dict = {}
        scores: dict = {}
        uncertain = []
        # The gate: is this passage a finding at all?
        p_finding = 1.0
        any_head = self.heads.get(f"{self.gate}:{ANY}") if self.gate else None
        if any_head is not None:
            p_finding = float(probs[f"{self.gate}:{ANY}"][i, 1])
            if max(p_finding, 1 - p_finding) < REVIEW_MIN_CONFIDENCE:
                uncertain.append(self.gate)
        is_finding = p_finding >= self.gate_threshold if any_head is not None else True
        if self.gate in self.fields:
            labels[self.gate], scores[self.gate] = self._multi(self.gate, i, probs, uncertain if is_finding else [])
            if any_head is not None:
                chosen = labels[self.gate] if is_finding else []
                if is_finding and not chosen and scores[self.gate]:  # a finding has at least its top condition
                    chosen = [max(scores[self.gate], key=scores[self.gate].get)]
                labels[self.gate] = [lab for lab in self.fields[self.gate]["ids"] if lab in chosen]
        finding = bool(labels.get(self.gate)) if self.gate else True
        for f, spec in self.fields.items():
            if not spec["multi"] or f == self.gate:
                continue
            if f in self.implied:  # heads learnt on findings: report P(label) = P(finding) * P(label | finding)
                chosen, conditional = self._multi(f, i, probs, uncertain if finding else [])
                labels[f] = chosen if finding else self.implied[f]
                scores[f] = {lab: round(p_finding * p, 4) for lab, p in conditional.items()}
            else:
                labels[f], scores[f] = self._multi(f, i, probs, uncertain)
        for f, spec in self.fields.items():
            if spec["multi"]:
                continue
            head = self.heads.get(f)
            if head is None:
                labels[f] = self.implied.get(f)
                continue
            p = probs[f][i]
            if f in self.implied:  # marginalise over the gate, so the score is P(value)
                implied = self.implied[f] if self.implied[f] is not None else "__none__"
                p = p_finding * p
                if implied in head.classes:
                    p[head.classes.index(implied)] += 1 - p_finding
            allowed = list(range(len(head.classes)))
            if spec["labels_from"]:  # primary_condition: one of the predicted conditions, or none
                chosen = labels.get(spec["labels_from"], [])
                allowed = [k for k, c in enumerate(head.classes) if c in chosen] or [head.classes.index("__none__")]
            if spec["requires"]:
                req_field, req_label = spec["requires"]
                if req_label not in labels.get(req_field, []):
                    labels[f] = None
                    continue
                allowed = [k for k, c in enumerate(head.classes) if c != "__none__"]
            scores[f] = {c: round(float(p[k]), 4) for k, c in enumerate(head.classes) if c != "__none__"}
            if f in self.implied and not finding:
                labels[f] = self.implied[f]
                continue
            # Decide on the class-balanced mixed scores (calibration would favour the
            # majority class); report the calibrated probabilities.
            decision = raw[f][i] if self.single_decision == "raw" else p
            best = max(allowed, key=lambda k: decision[k])
            value = head.classes[best]
            labels[f] = None if value == "__none__" else value
            confidence = float(p[best]) / max(1e-9, float(sum(p[k] for k in allowed)))
            if confidence < REVIEW_MIN_CONFIDENCE:
                uncertain.append(f)
        return {
            "id": passage_id,
            **{f: labels[f] for f in self.fields},
            "scores": scores,
            "needs_review": bool(uncertain),
            "uncertain": uncertain,
            "model_version": model_version,
        }

    def _multi(self, f: str, i: int, probs: dict[str, np.ndarray], uncertain: list[str]) -> tuple[list[str], dict]:
        """Labels of a multi-label field above their thresholds, and their calibrated scores."""
        chosen, scores = [], {}
        for label in self.fields[f]["ids"]:
            head = self.heads.get(f"{f}:{label}")
            if head is None:
                continue
            p = float(probs[f"{f}:{label}"][i, 1])
            scores[label] = round(p, 4)
            if p >= head.threshold:
                chosen.append(label)
            # Calibrated probability that this yes/no decision is right.
            if (p if p >= head.threshold else 1 - p) < REVIEW_MIN_CONFIDENCE:
                uncertain.append(f"{f}:{label}")
        return chosen, scores


def codebook_prototypes(codebook: Codebook, encoder) -> np.ndarray:
    """One unit vector per label of every field with its own labels: the mean embedding of
    the label's name with definition, its inclusion terms and its examples."""
    from pipeline.embeddings import embed

    vectors = []
    for f in codebook.fields.values():
        if f.labels_from:
            continue
        for label in f.labels:
            texts = [f"{label.name}: {label.definition}", *label.include, *label.examples]
            vectors.append(embed(texts, encoder).mean(axis=0))
    P = np.vstack(vectors)
    return P / np.linalg.norm(P, axis=1, keepdims=True)


# --------------------------------------------------------------------------- persistence

MODEL_FILE = "classifier.skops"
CARD_FILE = "model-card.json"
# Our own classes inside the skops file; anything else untrusted refuses to load.
TRUSTED_TYPES = {
    "pipeline.classify.PassageClassifier",
    "pipeline.classify._Head",
    "pipeline.classify.TextFeatures",
}


class ModelError(RuntimeError):
    """A model that cannot be used: missing, tampered with, or made for another codebook."""


def save_model(directory: Path, model: PassageClassifier, card: dict) -> None:
    """Write the model (skops, no pickle) and its card; the card's version names the pair."""
    import skops.io as sio

    directory.mkdir(parents=True, exist_ok=True)
    tmp = directory / f".{MODEL_FILE}.tmp"
    sio.dump(model, tmp)
    tmp.replace(directory / MODEL_FILE)
    (directory / CARD_FILE).write_text(json.dumps(card, ensure_ascii=False, indent=2) + "\n", "utf-8")


def load_model(directory: Path, codebook: Codebook) -> tuple[PassageClassifier, dict]:
    """Load a saved model, refusing unknown types and a codebook that does not match."""
    import skops.io as sio

    path, card_path = directory / MODEL_FILE, directory / CARD_FILE
    if not path.exists() or not card_path.exists():
        raise ModelError(f"{directory}: no trained model here; run `mgz train` first")
    card = json.loads(card_path.read_text("utf-8"))
    if (card.get("codebook_id"), card.get("codebook_version")) != (codebook.id, codebook.version):
        raise ModelError(
            f"{path}: trained for codebook {card.get('codebook_id')} {card.get('codebook_version')}, "
            f"but the codebook in use is {codebook.id} {codebook.version}; retrain with `mgz train`"
        )
    if card.get("classifier_version") != CLASSIFIER_VERSION:
        raise ModelError(
            f"{path}: made by classifier {card.get('classifier_version')}, but this code is {CLASSIFIER_VERSION}; "
            "retrain with `mgz train`"
        )
    untrusted = set(sio.get_untrusted_types(file=path))
    unexpected = {t for t in untrusted if t not in TRUSTED_TYPES and not t.startswith(("sklearn.", "numpy.", "scipy."))}
    if unexpected:
        raise ModelError(f"{path}: refuses to load unexpected types {sorted(unexpected)}")
    model = sio.load(path, trusted=sorted(untrusted))
    return model, card


# --------------------------------------------------------------------------- applying the stage


def training_fingerprint(items: Sequence[PassageInput], codings: Sequence[dict], params: dict, encoder: str) -> str:
    """Hash of what a model was trained on: texts, labels, parameters and encoder."""
    digest = hashlib.sha256()
    for item, coding in zip(items, codings, strict=True):
        digest.update(item.text.encode())
        digest.update(json.dumps(coding, sort_keys=True).encode())
    digest.update(json.dumps(params, sort_keys=True).encode())
    digest.update(encoder.encode())
    digest.update(CLASSIFIER_VERSION.encode())
    return digest.hexdigest()


def train(
    items: Sequence[PassageInput],
    lemmas: Sequence[str],
    embeddings: np.ndarray,
    codings: Sequence[dict],
    codebook: Codebook,
    encoder_name: str,
    params: dict | None = None,
    evaluation: dict | None = None,
    prototypes: np.ndarray | None = None,
    augment: Sequence[bool] | None = None,
) -> tuple[PassageClassifier, dict]:
    """Fit on every coded passage; return the model and its card (version, data hash, CV figures).

    ``augment`` marks synthetic passages (see ``PassageClassifier.fit``)."""
    params = params or {}
    model = PassageClassifier.for_codebook(codebook, prototypes=prototypes, **params).fit(
        lemmas, [i.text for i in items], embeddings, codings, [i.doc_id for i in items], codebook, augment=augment
    )
    n_synthetic = int(sum(augment)) if augment is not None else 0
    fingerprint = training_fingerprint(items, codings, params, encoder_name)
    card = {
        "model_version": f"clf-{fingerprint[:12]}",
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "codebook_id": codebook.id,
        "codebook_version": codebook.version,
        "encoder": encoder_name,
        "classifier_version": CLASSIFIER_VERSION,
        "training_data_sha256": fingerprint,
        "n_passages": len(items) - n_synthetic,
        "n_synthetic_passages": n_synthetic,
        "documents": sorted({i.doc_id for i, a in zip(items, augment or [False] * len(items), strict=True) if not a}),
        "gate_threshold": model.gate_threshold,
        "implied_without_finding": model.implied,
        "params": params,
        "mix_weights_text": {name: head.weight for name, head in model.heads.items()},
        "thresholds": {name: head.threshold for name, head in model.heads.items() if head.classes == ["0", "1"]},
        "evaluation": evaluation or {},
    }
    return model, card


VALID_SECTORS = ("ouderenzorg", "vg", "eerstelijn", "")


@dataclass(frozen=True)
class RowProblem:
    """One input row's problem; ``skipped`` False when the row was still classified (a warning)."""

    line: int
    reason: str
    skipped: bool = True

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


# A passage is one to three sentences; a longer text is classified on its first this many
# characters (with a warning): the tokenizer's abbreviation rules make a megabyte row run for minutes.
MAX_INPUT_CHARS = 10_000
_SURROGATE = re.compile("[\ud800-\udfff]")
_TEXT_FIELDS = ("section", "sector", "doc_type", "kind")


def _jsonl_rows(path: Path, problems: list[RowProblem]) -> list[tuple[int, dict]]:
    """JSON objects per line; each line decoded and parsed on its own, so one bad line costs only itself."""
    rows = []
    for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
        except UnicodeDecodeError:
            problems.append(RowProblem(n, "not UTF-8 text (Latin-1 or another encoding?)"))
            continue
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(RowProblem(n, f"not JSON ({exc.msg})"))
            continue
        except RecursionError:
            problems.append(RowProblem(n, "JSON nested too deeply"))
            continue
        if not isinstance(row, dict):
            problems.append(RowProblem(n, "not a JSON object"))
            continue
        rows.append((n, row))
    return rows


def _csv_rows(path: Path, problems: list[RowProblem]) -> list[tuple[int, dict]]:
    """CSV rows by line number; bytes that are not UTF-8 are kept as surrogates and the row is refused."""
    import csv

    text = path.read_bytes().decode("utf-8", errors="surrogateescape").removeprefix("\ufeff")
    rows = []
    reader = csv.DictReader(io.StringIO(text, newline=""))
    try:
        for row in reader:
            rows.append((reader.line_num, dict(row)))
    except csv.Error as exc:
        problems.append(RowProblem(reader.line_num, f"not readable CSV ({exc}); the rest of the file is left out"))
    return rows


def _row_problem(row: dict) -> str | None:
    """Why a parsed row cannot be classified: wrong types or text that is not text."""
    text, row_id = row.get("text"), row.get("id")
    if text is not None and not isinstance(text, str):
        return f"text is a {type(text).__name__}, not a string"
    if row_id is not None and (isinstance(row_id, bool) or not isinstance(row_id, str | int)):
        return f"id is a {type(row_id).__name__}, not a string or integer"
    for name in _TEXT_FIELDS:
        if row.get(name) is not None and not isinstance(row[name], str):
            return f"{name} is a {type(row[name]).__name__}, not a string"
    for name in ("text", "id", *_TEXT_FIELDS):
        value = row.get(name)
        if isinstance(value, str) and _SURROGATE.search(value):
            return f"{name} holds a lone surrogate or bytes that are not UTF-8"
    return None


def read_input_rows(path: Path) -> tuple[list[PassageInput], list[RowProblem]]:
    """Rows ``{id, text}`` (+ section, sector, doc_type) from JSONL or CSV; bad rows reported, not fatal.

    Each bad row (not UTF-8, not JSON, nested too deeply, a lone surrogate, a number or
    list where text belongs, no text, a duplicate id, an unknown sector) is reported with
    its line number and skipped; a text longer than ``MAX_INPUT_CHARS`` is cut there, with
    a warning (``skipped`` False)."""
    problems: list[RowProblem] = []
    raw_rows = _csv_rows(path, problems) if path.suffix.lower() == ".csv" else _jsonl_rows(path, problems)
    items = []
    seen: set[str] = set()
    for n, row in raw_rows:
        wrong = _row_problem(row)
        if wrong:
            problems.append(RowProblem(n, wrong))
            continue
        text = str(row.get("text") or "").strip()
        row_id = str(row.get("id") if row.get("id") is not None else "").strip()
        sector = str(row.get("sector") or "").strip()
        if not text:
            problems.append(RowProblem(n, "no text"))
        elif not row_id:
            problems.append(RowProblem(n, "no id"))
        elif row_id in seen:
            problems.append(RowProblem(n, f"duplicate id {row_id!r}"))
        elif sector not in VALID_SECTORS:
            problems.append(RowProblem(n, f"unknown sector {sector!r}"))
        else:
            seen.add(row_id)
            if len(text) > MAX_INPUT_CHARS:
                problems.append(
                    RowProblem(
                        n,
                        f"text is {len(text)} characters; classified on its first {MAX_INPUT_CHARS} "
                        "(a passage is one to three sentences: split long texts)",
                        skipped=False,
                    )
                )
                text = text[:MAX_INPUT_CHARS]
            items.append(
                PassageInput(
                    row_id,
                    text,
                    str(row.get("section") or ""),
                    sector,
                    str(row.get("doc_type") or ""),
                    str(row.get("kind") or "paragraph"),
                )
            )
    problems.sort(key=lambda problem: problem.line)
    return items, problems


def public_prediction(prediction: dict, fields: Sequence[str]) -> dict:
    """The documented output row: id, the codebook's fields, scores, needs_review, model_version."""
    return {
        "id": prediction["id"],
        **{f: prediction.get(f) for f in fields},
        "scores": prediction["scores"],
        "needs_review": prediction["needs_review"],
        "model_version": prediction["model_version"],
    }


def corpus_inputs(engine, doc: dict) -> list[PassageInput]:
    """A stored document's passages as classifier inputs (section path, sector, type as context)."""
    from pipeline.store import load_passages

    return [
        PassageInput(
            p.id, p.text, " > ".join(p.section), doc.get("sector", ""), doc.get("doc_type", ""), p.kind, doc["doc_id"]
        )
        for p in load_passages(engine, doc["doc_id"])
    ]


def classify_items(
    model: PassageClassifier, card: dict, items: Sequence[PassageInput], nlp: Language, encoder, engine=None
) -> list[dict]:
    """Predictions for ``items``; embeddings come from (and go to) the store's cache when given."""
    from pipeline.embeddings import embed

    if not items:
        return []
    vectors = embed([i.text for i in items], encoder, engine)
    lemmas = lemma_documents(nlp, items)
    return model.predict([i.id for i in items], lemmas, [i.text for i in items], vectors, card["model_version"])


def read_card(directory: Path) -> dict | None:
    """The model card alone (cheap): enough to know the model version without loading the model."""
    path = directory / CARD_FILE
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def needs_classification(engine, doc: dict, model_version: str) -> bool:
    from pipeline.store import classified_passage_ids, load_passages

    done = classified_passage_ids(engine, doc["doc_id"], model_version)
    return not {p.id for p in load_passages(engine, doc["doc_id"])} <= done


def classify_document(engine, doc: dict, model: PassageClassifier, card: dict, nlp: Language, encoder) -> int:
    """Classify one stored document unless this model version already did; returns passages classified."""
    from pipeline.store import classified_passage_ids, save_classifications

    items = corpus_inputs(engine, doc)
    if {i.id for i in items} <= classified_passage_ids(engine, doc["doc_id"], card["model_version"]):
        return 0
    predictions = classify_items(model, card, items, nlp, encoder, engine)
    save_classifications(
        engine, doc["doc_id"], card["model_version"], [public_prediction(p, list(model.fields)) for p in predictions]
    )
    return len(predictions)


def classify_corpus(engine, model: PassageClassifier, card: dict, nlp: Language, encoder) -> dict[str, int]:
    """Classify every stored document not yet classified by this model version.

    A new model version reclassifies stored passages without re-ingesting.
    """
    from pipeline.store import document_rows

    done: dict[str, int] = {}
    for doc in document_rows(engine):
        if doc["status"] == "ok" and (n := classify_document(engine, doc, model, card, nlp, encoder)):
            done[doc["doc_id"]] = n
    return done
