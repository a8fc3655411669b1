"""Analyst review: queues, passage context, decisions, double coding and agreement.

Plain functions over the store; the web screen (``pipeline.web``) only renders
what these return. Decisions go into the append-only ``reviews`` table and
are never updated or deleted.

Which decision counts for a passage (``reviewed_labels``):

* a passage that is not double-coded: its latest decision, whoever made it;
* a double-coded passage: the latest adjudication by an admin, if any; else
  the latest decision of the first coder (slot 1); else that of the second
  coder; else the latest decision by anyone else. This is the convention of the
  bundled annotations (``reference.jsonl``: first coder, with disagreements on
  the double-coded sample adjudicated).

Double coding keeps the two coders independent: each sees only their own
decisions on the sample (and, when the sample is *blind*, not even the model's
labels). Other analysts see a sample passage as locked until both coders have
decided; admins who are not coders adjudicate it.
"""

from __future__ import annotations

import bisect
import gc
import hashlib
import math
import random
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlencode

import numpy as np
from sqlalchemy import Boolean, DateTime, ForeignKey, Integer, String, UniqueConstraint, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.accounts import User, get_user, now_utc
from pipeline.audit import AuditDrawRow, AuditMemberRow
from pipeline.carry import pending_relooks
from pipeline.codebook import Codebook
from pipeline.models import text_hash
from pipeline.store import (
    Base,
    ClassificationRow,
    DocumentRow,
    EmbeddingRow,
    PassageRow,
    ReviewRow,
    cached_embeddings,
    session,
)

CONTENT_KINDS = ("paragraph", "turn", "table")  # what matrices count; headings are context only
MAX_MEMO = 10_000
PAGE_SIZE = 50

STATUSES = {
    "todo": "Te beoordelen",
    "uncertain": "Te beoordelen, model twijfelt",
    "done": "Beoordeeld",
    "corrected": "Beoordeeld en gecorrigeerd",
    "double": "Dubbel coderen (mijn steekproef)",
    "adjudicate": "Te beslechten",
    "relook": "Opnieuw bekijken (tekst veranderd)",
    "audit": "Steekproef (aselect, voor de schattingen)",
    "all": "Alle passages",
}
ORDERS = {
    "uncertainty": "Onzekerste eerst",
    "diverse": "Onzekerste eerst, gespreid over soorten passages",
    "random": "Willekeurig",
    "reading": "Leesvolgorde",
}
E5_ENCODER_PREFIX = "multilingual-e5-small"  # the diverse order clusters the cached e5 passage vectors


class ReviewError(ValueError):
    """A refused review action; ``status`` is the HTTP status the screen answers with."""

    def __init__(self, message: str, problems: Sequence[str] = (), status: int = 400) -> None:
        super().__init__(message)
        self.problems = list(problems)
        self.status = status


class DoubleCodingRow(Base):
    """One coder assigned to one passage of the double-coding sample (two per passage)."""

    __tablename__ = "double_coding"
    __table_args__ = (UniqueConstraint("passage_id", "coder", name="uq_double_coding_passage_coder"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    passage_id: Mapped[str] = mapped_column(String(32))
    coder: Mapped[str] = mapped_column(String(120), index=True)
    slot: Mapped[int] = mapped_column(Integer)
    blind: Mapped[bool] = mapped_column(Boolean)
    assigned_by: Mapped[str] = mapped_column(String(120))
    assigned_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class AdjudicationRow(Base):
    """Marks a review decision as an admin's adjudication of a double-coded passage."""

    __tablename__ = "adjudications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    passage_id: Mapped[str] = mapped_column(String(32), index=True)
    review_id: Mapped[int] = mapped_column(ForeignKey("reviews.id"))
    adjudicator: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Decision:
    id: int
    passage_id: str
    reviewer: str
    labels: dict
    labels_shown: dict | None
    model_version: str | None
    memo: str | None
    created_at: datetime
    adjudication: bool = False


# --------------------------------------------------------------------------- labels


def empty_coding(codebook: Codebook) -> dict:
    return {f.id: [] if f.multi else None for f in codebook.fields.values()}


def normalise_labels(codebook: Codebook, labels: Mapping) -> dict:
    """Codebook order, no duplicates, "" as empty; dependent fields made consistent.

    A field that requires a label (``interactie_type`` needs ``interactie``) is
    emptied when that label is absent; a field that takes its labels from another
    (``primary_condition``) keeps its value when still chosen there, and otherwise
    becomes the first chosen label in codebook order. The screen applies the same
    rules as the analyst toggles labels.
    """
    out: dict = {}
    for f in codebook.fields.values():
        value = labels.get(f.id)
        if f.multi:
            values = value if isinstance(value, list | tuple) else ([] if value in (None, "") else [value])
            values = [str(v) for v in values]
            out[f.id] = [x for x in f.ids if x in values] + list(dict.fromkeys(v for v in values if v not in f.ids))
        else:
            out[f.id] = None if value in (None, "") else str(value)
    for f in codebook.fields.values():
        if f.multi:
            continue
        if f.requires and f.requires[1] not in (out.get(f.requires[0]) or []):
            out[f.id] = None
        if f.labels_from:
            chosen = [c for c in out.get(f.labels_from) or [] if c in f.ids]
            if out[f.id] not in chosen:
                out[f.id] = chosen[0] if chosen else None
    return out


def checked_labels(codebook: Codebook, labels: Mapping) -> dict:
    """Normalised labels, or ReviewError listing what is wrong with them."""
    normal = normalise_labels(codebook, labels)
    problems = codebook.validate(normal)
    if problems:
        raise ReviewError("de codering is niet volledig of niet geldig", problems, status=422)
    return normal


def same_labels(codebook: Codebook, a: Mapping | None, b: Mapping | None) -> bool:
    if a is None or b is None:
        return a is b
    return normalise_labels(codebook, a) == normalise_labels(codebook, b)


def passage_confidence(labels: Mapping | None, scores: Mapping | None) -> float | None:
    """The weakest calibrated probability among the model's decisions for a passage.

    Multi-label fields: each label is a yes/no decision, right with probability p
    when given and 1 - p when not. Single-label fields: the chosen label's share of
    the probabilities offered. None without scores (unclassified).
    """
    if not labels or not scores:
        return None
    values = []
    for field_id, field_scores in scores.items():
        if not isinstance(field_scores, Mapping) or not field_scores:
            continue
        value = labels.get(field_id)
        if isinstance(value, list):
            values += [float(p) if label in value else 1.0 - float(p) for label, p in field_scores.items()]
        elif value is not None:
            total = sum(float(p) for p in field_scores.values())
            values.append(float(field_scores.get(value, 0.0)) / total if total > 0 else 0.0)
    return round(min(values), 4) if values else None


# --------------------------------------------------------------------------- which decision counts


def _counted(decisions: Sequence[Decision], coders: Mapping[str, int] | None) -> Decision | None:
    """The decision that counts among a passage's decisions (oldest first); see the module docstring."""
    if not decisions:
        return None
    if not coders:
        return decisions[-1]
    adjudications = [d for d in decisions if d.adjudication]
    if adjudications:
        return adjudications[-1]
    for coder in sorted(coders, key=lambda c: coders[c]):
        own = [d for d in decisions if d.reviewer == coder]
        if own:
            return own[-1]
    return decisions[-1]


def _decision(row, adjudication: bool) -> Decision:
    return Decision(
        id=row.id,
        passage_id=row.passage_id,
        reviewer=row.reviewer,
        labels=row.labels,
        labels_shown=row.labels_shown,
        model_version=row.model_version,
        memo=row.memo,
        created_at=row.created_at,
        adjudication=adjudication,
    )


def _load_decisions(engine: Engine, after_id: int = 0) -> list[Decision]:
    """Decisions with id > after_id, oldest first, adjudications marked (one statement, one snapshot)."""
    with session(engine) as s:
        rows = s.execute(
            select(ReviewRow, AdjudicationRow.id)
            .outerjoin(AdjudicationRow, AdjudicationRow.review_id == ReviewRow.id)
            .where(ReviewRow.id > after_id)
            .order_by(ReviewRow.id)
        )
        return [_decision(review, adj_id is not None) for review, adj_id in rows]


def _load_audit(engine: Engine) -> tuple[frozenset[str], frozenset[str]]:
    """The audit sample's passages, and those of them coded blind to the model."""
    with session(engine) as s:
        rows = s.execute(
            select(AuditMemberRow.passage_id, AuditDrawRow.blind).join(
                AuditDrawRow, AuditDrawRow.id == AuditMemberRow.draw_id
            )
        ).all()
    return frozenset(p for p, _ in rows), frozenset(p for p, blind in rows if blind)


def _load_assignments(engine: Engine) -> dict[str, dict[str, tuple[int, bool]]]:
    """passage id -> {coder: (slot, blind)}."""
    out: dict[str, dict[str, tuple[int, bool]]] = defaultdict(dict)
    with session(engine) as s:
        for row in s.scalars(select(DoubleCodingRow).order_by(DoubleCodingRow.id)):
            out[row.passage_id][row.coder] = (row.slot, row.blind)
    return dict(out)


def reviewed_decisions(engine: Engine) -> dict[str, Decision]:
    """passage id -> the decision that counts (see the module docstring)."""
    by_passage: dict[str, list[Decision]] = defaultdict(list)
    for d in _load_decisions(engine):
        by_passage[d.passage_id].append(d)
    assignments = _load_assignments(engine)
    out = {}
    for pid, decisions in by_passage.items():
        coders = {c: slot for c, (slot, _) in assignments.get(pid, {}).items()}
        counted = _counted(decisions, coders)
        if counted is not None:
            out[pid] = counted
    return out


def reviewed_labels(engine: Engine) -> dict[str, dict]:
    """passage id -> the reviewed labels that count; they override the model's in matrices,
    reports, exports and training. Double-coded passages: adjudication, else first coder."""
    return {pid: d.labels for pid, d in reviewed_decisions(engine).items()}


def decision_history(engine: Engine, passage_id: str) -> list[Decision]:
    """Every decision on a passage, oldest first (the full append-only history)."""
    with session(engine) as s:
        rows = s.execute(
            select(ReviewRow, AdjudicationRow.id)
            .outerjoin(AdjudicationRow, AdjudicationRow.review_id == ReviewRow.id)
            .where(ReviewRow.passage_id == passage_id)
            .order_by(ReviewRow.id)
        )
        return [_decision(review, adj_id is not None) for review, adj_id in rows]


# --------------------------------------------------------------------------- recording decisions


def model_labels(engine: Engine, passage_id: str, model_version: str | None) -> dict | None:
    if not model_version:
        return None
    with session(engine) as s:
        row = s.get(ClassificationRow, (passage_id, model_version))
        return dict(row.labels) if row else None


def model_labels_shown(engine: Engine, passage_id: str, model_version: str | None, user: User) -> dict | None:
    """The model's labels as the screen shows them to ``user``: None when it hides them (a coder of
    a blind double-coding sample, any coder of a blind audit sample) or the passage has no
    classification for this model version."""
    return None if _blind_coder(engine, passage_id, user) else model_labels(engine, passage_id, model_version)


def labels_for_basis(
    engine: Engine, passage_id: str, basis: str | None, model_version: str | None, user: User | None = None
) -> dict | None:
    """The labels a page showed: ``basis`` is a review id, ``model``, or empty (nothing shown).

    With ``user``, a coder of a double-coded passage can only start from their own decision
    (the other coder's stays out of reach, even by guessing its id)."""
    if basis and basis.isdigit():
        with session(engine) as s:
            row = s.get(ReviewRow, int(basis))
            if row is None or row.passage_id != passage_id:
                raise ReviewError("onbekende eerdere beslissing", status=400)
            if user is not None and row.reviewer != user.name:
                coders = set(s.scalars(select(DoubleCodingRow.coder).where(DoubleCodingRow.passage_id == passage_id)))
                if user.name in coders:
                    raise ReviewError("bij dubbele codering telt alleen uw eigen beslissing", status=403)
            return dict(row.labels)
    if basis == "model":
        if user is not None and _blind_coder(engine, passage_id, user):
            # A blind coder never saw the model's labels, so they cannot be "his" decision.
            raise ReviewError("bij blinde dubbele codering is er geen modelvoorstel om over te nemen", status=403)
        return model_labels(engine, passage_id, model_version)
    return None


def _blind_coder(engine: Engine, passage_id: str, user: User) -> bool:
    """True when ``user`` codes ``passage_id`` blind: in a blind double-coding sample, or the
    passage is in an audit sample coded blind to the model (the default)."""
    with session(engine) as s:
        in_blind_audit = s.scalar(
            select(AuditDrawRow.blind)
            .join(AuditMemberRow, AuditMemberRow.draw_id == AuditDrawRow.id)
            .where(AuditMemberRow.passage_id == passage_id)
        )
        if in_blind_audit:
            return True
        return bool(
            s.scalar(
                select(DoubleCodingRow.blind).where(
                    DoubleCodingRow.passage_id == passage_id, DoubleCodingRow.coder == user.name
                )
            )
        )


def record_decision(
    engine: Engine,
    codebook: Codebook,
    user: User,
    passage_id: str,
    labels: Mapping,
    *,
    labels_shown: Mapping | None = None,
    model_version: str | None = None,
    memo: str | None = None,
) -> Decision:
    """Append one decision. On a double-coded passage only its coders decide, and an admin
    who is not a coder adjudicates; anyone else is refused (403).

    ``labels_shown`` are the model's labels as the screen showed them with the decision
    (None when hidden or absent), ``model_version`` the model they came from."""
    normal = checked_labels(codebook, labels)
    memo = (memo or "").strip() or None
    if memo and len(memo) > MAX_MEMO:
        raise ReviewError(f"memo is langer dan {MAX_MEMO} tekens", status=422)
    with session(engine) as s:
        if s.get(PassageRow, passage_id) is None:
            raise ReviewError(f"onbekende passage {passage_id}", status=404)
        coders = set(s.scalars(select(DoubleCodingRow.coder).where(DoubleCodingRow.passage_id == passage_id)))
        adjudication = bool(coders) and user.name not in coders
        if adjudication and not user.is_admin:
            raise ReviewError(
                "deze passage wordt dubbel gecodeerd door " + " en ".join(sorted(coders)) + "; alleen zij beslissen",
                status=403,
            )
        now = now_utc()
        row = ReviewRow(
            passage_id=passage_id,
            reviewer=user.name,
            labels=normal,
            labels_shown=dict(labels_shown) if labels_shown is not None else None,
            model_version=model_version,
            memo=memo,
            created_at=now,
        )
        s.add(row)
        s.flush()
        if adjudication:
            s.add(AdjudicationRow(passage_id=passage_id, review_id=row.id, adjudicator=user.name, created_at=now))
        return _decision(row, adjudication)


# --------------------------------------------------------------------------- double coding


def draw_sample(
    engine: Engine, n: int, *, doc_id: str | None = None, sector: str | None = None, seed: int | None = None
) -> list[str]:
    """A random sample of content passages that nobody has decided on and that are not yet double-coded."""
    with session(engine) as s:
        query = (
            select(PassageRow.id)
            .join(DocumentRow, DocumentRow.doc_id == PassageRow.doc_id)
            .where(DocumentRow.status == "ok", PassageRow.kind.in_(CONTENT_KINDS))
            .order_by(PassageRow.doc_id, PassageRow.seq)
        )
        if doc_id:
            query = query.where(PassageRow.doc_id == doc_id)
        if sector:
            query = query.where(DocumentRow.sector == sector)
        candidates = list(s.scalars(query))
        taken = set(s.scalars(select(ReviewRow.passage_id))) | set(s.scalars(select(DoubleCodingRow.passage_id)))
    free = [pid for pid in candidates if pid not in taken]
    return sorted(random.Random(seed).sample(free, min(max(0, n), len(free))))


def assign_double_coding(
    engine: Engine, passage_ids: Iterable[str], coders: Sequence[str], assigned_by: User, blind: bool = False
) -> int:
    """Mark passages for independent review by two coders; returns how many were assigned.

    Passages already double-coded are left as they are; passages somebody has
    already decided on are refused (a coder might have seen that decision).
    """
    if not assigned_by.is_admin:
        raise ReviewError("alleen een beheerder wijst dubbele codering toe", status=403)
    coders = list(coders)
    if len(coders) != 2 or coders[0] == coders[1]:
        raise ReviewError("kies twee verschillende codeurs", status=422)
    for coder in coders:
        if get_user(engine, coder) is None:
            raise ReviewError(f"onbekende gebruiker {coder}", status=422)
    ids = list(dict.fromkeys(passage_ids))
    now = now_utc()
    with session(engine) as s:
        known = set(s.scalars(select(PassageRow.id).where(PassageRow.id.in_(ids)))) if ids else set()
        unknown = [pid for pid in ids if pid not in known]
        if unknown:
            raise ReviewError(f"onbekende passage(s): {', '.join(unknown[:5])}", status=422)
        decided = set(s.scalars(select(ReviewRow.passage_id).where(ReviewRow.passage_id.in_(ids)))) if ids else set()
        if decided:
            raise ReviewError(f"al beoordeeld, niet meer onafhankelijk: {', '.join(sorted(decided)[:5])}", status=422)
        assigned = set(s.scalars(select(DoubleCodingRow.passage_id).where(DoubleCodingRow.passage_id.in_(ids))))
        todo = [pid for pid in ids if pid not in assigned]
        s.add_all(
            DoubleCodingRow(
                passage_id=pid, coder=coder, slot=slot, blind=blind, assigned_by=assigned_by.name, assigned_at=now
            )
            for pid in todo
            for slot, coder in enumerate(coders, start=1)
        )
    return len(todo)


def double_coding_overview(engine: Engine) -> list[dict]:
    """Per coder pair: passages assigned, decided by each, and adjudicated."""
    assignments = _load_assignments(engine)
    decisions: dict[str, list[Decision]] = defaultdict(list)
    for d in _load_decisions(engine):
        decisions[d.passage_id].append(d)
    pairs: dict[tuple, Counter] = defaultdict(Counter)
    for pid, coders in assignments.items():
        ordered = tuple(sorted(coders, key=lambda c: coders[c][0]))
        blind = any(b for _, b in coders.values())
        count = pairs[(ordered, blind)]
        count["passages"] += 1
        decs = decisions.get(pid, [])
        for coder in ordered:
            count[coder] += any(d.reviewer == coder and not d.adjudication for d in decs)
        count["adjudicated"] += any(d.adjudication for d in decs)
    return [
        {
            "coders": list(coders),
            "blind": blind,
            "passages": c["passages"],
            "decided": {x: c[x] for x in coders},
            "adjudicated": c["adjudicated"],
        }
        for (coders, blind), c in sorted(pairs.items())
    ]


# --------------------------------------------------------------------------- agreement


def _coding(pid: str, labels: dict, coder: str, codebook: Codebook):
    from pipeline.annotations import Coding

    return Coding(pid, pid, "", {f: labels.get(f) for f in codebook.fields}, coder, "")


def agreement_report(engine: Engine, codebook: Codebook, model_version: str | None) -> dict:
    """Agreement on the double-coded sample, for the agreement page.

    * ``pairs``: per pair of coders, on the passages both decided, the figures of
      ``pipeline.annotations.agreement`` (Cohen's kappa per single-label field and
      per label of multi-label fields; Krippendorff's alpha with MASI distance).
    * ``vs_model``: each analyst against the model on every passage they decided
      (their latest own decision); analysts saw the model's labels unless the
      sample was blind, so this is an upper bound on independent agreement.
    * ``alpha_all``: Krippendorff's alpha per field across all analysts on the
      sample (nominal for single-label fields, MASI for multi-label ones).
    * ``disagreements``: sample passages where the coders differ, for adjudication.
    """
    from nltk.metrics.agreement import AnnotationTask
    from nltk.metrics.distance import binary_distance

    from pipeline.annotations import NONE_LABEL, _set_distance, agreement

    assignments = _load_assignments(engine)
    all_decisions = _load_decisions(engine)
    own: dict[str, dict[str, Decision]] = defaultdict(dict)  # coder -> passage -> latest own decision
    adjudicated: dict[str, Decision] = {}
    for d in all_decisions:
        if d.adjudication:
            adjudicated[d.passage_id] = d
        else:
            own[d.reviewer][d.passage_id] = d
    sample = {pid: sorted(c, key=lambda x: c[x][0]) for pid, c in assignments.items()}
    coders = sorted({c for cs in sample.values() for c in cs})

    pairs = []
    pair_keys = sorted({tuple(sorted(cs)) for cs in sample.values() if len(cs) == 2})
    for a, b in pair_keys:
        shared = [pid for pid, cs in sample.items() if set(cs) == {a, b} and pid in own[a] and pid in own[b]]
        if not shared:
            pairs.append({"coders": [a, b], "n": 0, "fields": {}})
            continue
        first = [_coding(pid, own[a][pid].labels, a, codebook) for pid in shared]
        second = [_coding(pid, own[b][pid].labels, b, codebook) for pid in shared]
        pairs.append({"coders": [a, b], **agreement(first, second, codebook)})

    vs_model = []
    if model_version:
        with session(engine) as s:
            model = {
                r.passage_id: r.labels
                for r in s.scalars(select(ClassificationRow).where(ClassificationRow.model_version == model_version))
            }
        reviewers = sorted(set(coders) | {d.reviewer for d in all_decisions if not d.adjudication})
        for reviewer in reviewers:
            pids = [pid for pid in own[reviewer] if pid in model]
            if not pids:
                continue
            human = [_coding(pid, own[reviewer][pid].labels, reviewer, codebook) for pid in pids]
            machine = [_coding(pid, model[pid], "model", codebook) for pid in pids]
            vs_model.append({"coder": reviewer, **agreement(human, machine, codebook)})

    alpha_all: dict = {}
    decided = {pid: {c: own[c][pid] for c in cs if pid in own[c]} for pid, cs in sample.items()}
    decided = {pid: ds for pid, ds in decided.items() if len(ds) >= 2}
    for f in codebook.fields.values():
        data = []
        for pid, ds in decided.items():
            if f.requires and not any(f.requires[1] in (d.labels.get(f.requires[0]) or []) for d in ds.values()):
                continue
            for coder, d in ds.items():
                value = d.labels.get(f.id)
                data.append((coder, pid, frozenset(value or ()) if f.multi else (value or NONE_LABEL)))
        items = {pid for _, pid, _ in data}
        if len(items) < 1 or len({c for c, _, _ in data}) < 2:
            alpha_all[f.id] = {"n": len(items), "alpha": None}
            continue
        task = AnnotationTask(data=data, distance=_set_distance if f.multi else binary_distance)
        alpha = round(float(task.alpha()), 3)
        alpha_all[f.id] = {"n": len(items), "alpha": alpha, "distance": "masi" if f.multi else "nominal"}

    disagreements = []
    for pid, ds in sorted(decided.items()):
        normal = {c: normalise_labels(codebook, d.labels) for c, d in ds.items()}
        fields = [f for f in codebook.fields if len({repr(n[f]) for n in normal.values()}) > 1]
        if fields:
            disagreements.append(
                {
                    "passage_id": pid,
                    "fields": fields,
                    "decisions": {c: ds[c] for c in sample[pid] if c in ds},
                    "adjudication": adjudicated.get(pid),
                }
            )
    return {
        "sample": len(sample),
        "complete": len(decided),
        "coders": coders,
        "pairs": pairs,
        "vs_model": vs_model,
        "alpha_all": alpha_all,
        "disagreements": disagreements,
    }


# --------------------------------------------------------------------------- the queue (in-memory read model)


@dataclass(frozen=True, slots=True)
class State:
    """What one user sees of one passage."""

    status: str  # todo | done | locked | adjudicate
    labels: dict | None  # the coding shown as the starting point (None: nothing to show)
    source: str  # model | review | own | adjudication | none | blind
    basis: Decision | None  # the decision those labels come from (None: the model or nothing)
    mode: str  # review | double | adjudicate | locked


def _label_keys(labels: Mapping | None) -> frozenset:
    """{(field, label)} of a coding, for label filters."""
    if not labels:
        return frozenset()
    keys = set()
    for field_id, value in labels.items():
        if isinstance(value, list):
            keys.update((field_id, v) for v in value)
        elif value is not None:
            keys.add((field_id, value))
    return frozenset(keys)


@dataclass(slots=True)
class Item:
    """A passage as the queue sees it (every kind; the queue lists content kinds)."""

    passage_id: str
    doc_id: str
    seq: int
    kind: str
    text: str
    page_start: int
    page_end: int
    section: tuple[str, ...]
    speaker: str | None
    sector: str
    model_labels: dict | None
    scores: dict | None
    needs_review: bool
    confidence: float | None
    folded: str = ""
    keys: frozenset = frozenset()  # the model's (field, label) pairs
    default: State | None = None  # the state while nobody decided and it is not double-coded
    rank: dict = field(default_factory=dict)  # order name -> position in that order

    @property
    def is_content(self) -> bool:
        return self.kind in CONTENT_KINDS


@dataclass(frozen=True)
class DocInfo:
    doc_id: str
    title: str
    sector: str
    study: str
    doc_type: str
    year: int | None
    source: str
    pages: int | None
    passage_ids: tuple[str, ...]
    content: int  # content passages (what the queue lists)
    corpus_root: str | None = None  # where ``source`` is relative to (pipeline.store.source_path)


@dataclass(frozen=True)
class QueueFilter:
    status: str = "todo"
    order: str = "uncertainty"
    doc: str | None = None
    sector: str | None = None
    labels: tuple[tuple[str, str], ...] = ()  # (field id, label id) that the shown coding must have
    q: str | None = None

    @classmethod
    def from_params(cls, params: Mapping[str, str], codebook: Codebook) -> QueueFilter:
        status = params.get("status") or "todo"
        order = params.get("order") or "uncertainty"
        labels = tuple(
            (f.id, params[f.id]) for f in codebook.fields.values() if params.get(f.id) and params[f.id] in f.ids
        )
        return cls(
            status=status if status in STATUSES else "todo",
            order=order if order in ORDERS else "uncertainty",
            doc=params.get("doc") or None,
            sector=params.get("sector") or None,
            labels=labels,
            q=(params.get("q") or "").strip() or None,
        )

    def params(self) -> dict[str, str]:
        out = {"status": self.status, "order": self.order}
        if self.doc:
            out["doc"] = self.doc
        if self.sector:
            out["sector"] = self.sector
        out.update(dict(self.labels))
        if self.q:
            out["q"] = self.q
        return out

    def query(self, **extra: object) -> str:
        return urlencode({**self.params(), **{k: v for k, v in extra.items() if v is not None}})


@dataclass
class QueuePage:
    rows: list[tuple[Item, State]]
    total: int
    page: int
    pages: int
    progress: list[dict]  # per document: reviewed / to review for this user


@dataclass
class PassageView:
    item: Item
    doc: DocInfo
    state: State
    before: Item | None
    after: Item | None
    show_model: bool
    history: list[Decision]
    coder_decisions: dict[str, Decision | None]  # adjudication: each coder's latest decision
    coders: list[str]
    blind: bool
    # The document changed since a decision (pipeline.carry): each old text with the decisions on it.
    relook: list[dict] = field(default_factory=list)
    audit: bool = False  # in the random audit sample ("Steekproef")


@dataclass
class _Snapshot:
    items: dict[str, Item]
    docs: dict[str, DocInfo]
    orders: dict[str, list[Item]]  # order name -> content items in that order
    by_doc: dict[str, dict[str, list[Item]]]  # order name -> doc id -> its content items in that order
    relook: dict[str, list[dict]] = field(default_factory=dict)  # passage id -> old passages to look at again


def random_order(content: list[Item]) -> list[Item]:
    """A fixed shuffle: each passage ranked by a hash of its id, so the order is the same on
    every reload and for every analyst, and a new passage does not reshuffle the others."""
    return sorted(content, key=lambda i: hashlib.sha256(f"queue-random\x00{i.passage_id}".encode()).digest())


def _e5_vectors(engine: Engine, hashes: list[str]) -> dict[str, np.ndarray]:
    """The cached e5 vectors of these texts (the encoder most of them were embedded with)."""
    with session(engine) as s:
        encoders = list(
            s.scalars(select(EmbeddingRow.encoder).where(EmbeddingRow.encoder.startswith(E5_ENCODER_PREFIX)).distinct())
        )
    best: dict[str, bytes] = {}
    for encoder in sorted(encoders):
        found = cached_embeddings(engine, encoder, hashes)
        if len(found) > len(best):
            best = found
    return {h: np.frombuffer(v, dtype=np.float32) for h, v in best.items()}


def cluster_vectors(vectors: dict[str, np.ndarray]) -> dict[str, int]:
    """KMeans with k = sqrt(n/2) on the normalised vectors (fixed seed, so stable)."""
    if len(vectors) < 2:
        return dict.fromkeys(vectors, 0)
    from sklearn.cluster import KMeans

    keys = sorted(vectors)
    matrix = np.stack([vectors[h] for h in keys])
    matrix = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)
    k = max(1, min(len(keys), round(math.sqrt(len(keys) / 2))))
    labels = KMeans(n_clusters=k, n_init=1, random_state=0).fit_predict(matrix)
    return dict(zip(keys, (int(x) for x in labels), strict=True))


def diverse_order(by_uncertainty: list[Item], cluster: dict[str, int | None]) -> list[Item]:
    """Round-robin over clusters, each in its least-confident-first order; the clusters take
    turns in the order of their least confident passage. Passages without a cluster (no
    cached embedding) follow at the end in the uncertainty order."""
    groups: dict[int, list[Item]] = {}
    rest: list[Item] = []
    for item in by_uncertainty:
        c = cluster.get(item.passage_id)
        if c is None:
            rest.append(item)
        else:
            groups.setdefault(c, []).append(item)
    out: list[Item] = []
    lists = list(groups.values())  # insertion order = order of each cluster's least confident passage
    for depth in range(max((len(g) for g in lists), default=0)):
        out.extend(g[depth] for g in lists if depth < len(g))
    return out + rest


# An audit passage nobody decided on, drawn blind: no model labels as the starting point.
BLIND_TODO = State("todo", None, "blind", None, "review")
ONLY_DECIDED_OR_ASSIGNED = ("done", "corrected", "adjudicate", "double")
PASSAGE_CHECK_SECONDS = 2.0  # how stale the passage list may be (it only changes when ingest or classify runs)


class ReviewIndex:
    """The passages, model labels and decisions in memory, kept current with cheap checks.

    ``refresh()`` runs on every request: two aggregate queries on primary keys
    tell which decisions and double-coding assignments are new (those are loaded),
    and at most every two seconds three more tell whether documents, passages or
    classifications changed (then the passages are reloaded). Queue filters then run
    in memory in a few milliseconds on 20,000 passages, the same on SQLite and
    PostgreSQL (no JSON SQL): a passage nobody decided on and that is not
    double-coded looks the same to everyone (its precomputed default state), so
    only decided or assigned passages need per-user work. Decisions are always
    written straight to the store, never held only here.
    """

    def __init__(self, engine: Engine, codebook: Codebook, model_version: str | None) -> None:
        self.engine = engine
        self.codebook = codebook
        self.model_version = model_version
        self._lock = threading.Lock()
        self._clusters: tuple[frozenset[str], dict[str, int]] | None = None  # text hashes -> cluster
        self._snapshot = _Snapshot({}, {}, {o: [] for o in ORDERS}, {o: {} for o in ORDERS})
        self._passages_key: tuple | None = None
        self._passages_checked = 0.0
        self._assign_key: tuple | None = None
        self._audit_key: tuple | None = None
        self.audit: frozenset[str] = frozenset()  # passages in the random audit sample
        self.blind_audit: frozenset[str] = frozenset()  # ... whose draw hides the model from coders
        self._last_review_id = 0
        self._n_reviews = 0
        self.decisions: dict[str, tuple[Decision, ...]] = {}
        self.assignments: dict[str, dict[str, tuple[int, bool]]] = {}
        self._special: frozenset[str] = frozenset()  # decided or double-coded passages
        self._assigned: frozenset[str] = frozenset()  # double-coded passages (their state depends on the user)
        self._decided_only: frozenset[str] = frozenset()  # decided, not double-coded (the same for everyone)
        self._states: dict[str, tuple] = {}  # passage id -> (decisions it was computed from, state, label keys)
        self._progress_base: tuple | None = None
        self.refresh(force=True)

    # ---------------------------------------------------------------- loading

    def refresh(self, force: bool = False) -> None:
        with self._lock:
            now = time.monotonic()
            check_passages = force or now - self._passages_checked >= PASSAGE_CHECK_SECONDS
            with self.engine.connect() as c:
                n_reviews, last_review = c.execute(select(func.count(), func.max(ReviewRow.id))).one()
                last_review = last_review or 0
                assign = tuple(c.execute(select(func.count(), func.max(DoubleCodingRow.id))).one())
                audit_key = tuple(c.execute(select(func.count(), func.max(AuditMemberRow.draw_id))).one())
                if check_passages:
                    docs = c.execute(select(func.count(), func.max(DocumentRow.updated_at))).one()
                    n_passages = c.execute(select(func.count()).select_from(PassageRow)).scalar_one()
                    cls = (
                        c.execute(
                            select(func.count(), func.max(ClassificationRow.created_at)).where(
                                ClassificationRow.model_version == self.model_version
                            )
                        ).one()
                        if self.model_version
                        else (0, None)
                    )
            changed = False
            if check_passages:
                self._passages_checked = now
                passages_key = (tuple(docs), n_passages, tuple(cls))
                if passages_key != self._passages_key:
                    self._snapshot = self._load_passages()
                    self._passages_key = passages_key
                    self._states = {}
                    # Hundreds of thousands of long-lived objects: keep them out of the cycle
                    # collector's full passes (each took ~0.4 s on 20,000 passages). They hold no
                    # cycles, so the next reload still frees them by reference counting; garbage
                    # with cycles is collected first so that none of it is frozen with them.
                    gc.collect()
                    gc.freeze()
            if audit_key != self._audit_key:
                self.audit, self.blind_audit = _load_audit(self.engine)
                self._audit_key = audit_key
                self._states = {}
            if assign != self._assign_key:
                self.assignments = _load_assignments(self.engine)
                self._assign_key = assign
                self._states = {}
                changed = True
            if last_review > self._last_review_id or n_reviews != self._n_reviews:
                loaded = _load_decisions(self.engine, self._last_review_id)
                if self._n_reviews + len(loaded) < n_reviews:
                    # A decision with a lower id committed after a higher one (PostgreSQL sequences
                    # do not commit in order): reload them all rather than miss it.
                    loaded, self.decisions = _load_decisions(self.engine), {}
                    self._n_reviews = 0
                new: dict[str, list[Decision]] = defaultdict(list)
                for d in loaded:
                    new[d.passage_id].append(d)
                    self._last_review_id = max(self._last_review_id, d.id)
                self._n_reviews += len(loaded)
                for pid, ds in new.items():  # replace, never mutate: readers may hold the old tuple
                    self.decisions[pid] = (*self.decisions.get(pid, ()), *ds)
                changed = True
            if changed:
                self._assigned = frozenset(self.assignments)
                self._decided_only = frozenset(self.decisions) - self._assigned
                self._special = self._decided_only | self._assigned

    def _load_passages(self) -> _Snapshot:
        with session(self.engine) as s:
            docs_rows = list(s.scalars(select(DocumentRow).where(DocumentRow.status == "ok")))
            columns = [
                PassageRow.id,
                PassageRow.doc_id,
                PassageRow.seq,
                PassageRow.kind,
                PassageRow.text,
                PassageRow.page_start,
                PassageRow.page_end,
                PassageRow.section,
                PassageRow.speaker,
            ]
            query = select(*columns).join(DocumentRow, DocumentRow.doc_id == PassageRow.doc_id)
            query = query.where(DocumentRow.status == "ok")
            if self.model_version:
                query = query.add_columns(
                    ClassificationRow.labels, ClassificationRow.scores, ClassificationRow.needs_review
                ).outerjoin(
                    ClassificationRow,
                    (ClassificationRow.passage_id == PassageRow.id)
                    & (ClassificationRow.model_version == self.model_version),
                )
            rows = s.execute(query.order_by(PassageRow.doc_id, PassageRow.seq)).all()
        sectors = {d.doc_id: d.sector for d in docs_rows}
        items: dict[str, Item] = {}
        by_doc: dict[str, list[str]] = defaultdict(list)
        for row in rows:
            labels, scores, needs = (row[9], row[10], row[11]) if self.model_version else (None, None, False)
            model = normalise_labels(self.codebook, labels) if labels is not None else None
            item = Item(
                passage_id=row[0],
                doc_id=row[1],
                seq=row[2],
                kind=row[3],
                text=row[4],
                page_start=row[5],
                page_end=row[6],
                section=tuple(row[7] or ()),
                speaker=row[8],
                sector=sectors.get(row[1], ""),
                model_labels=model,
                scores=scores,
                needs_review=bool(needs),
                confidence=passage_confidence(labels, scores),
                folded=row[4].casefold(),
                keys=_label_keys(model),
                default=State("todo", model, "model" if model is not None else "none", None, "review"),
            )
            items[item.passage_id] = item
            by_doc[item.doc_id].append(item.passage_id)
        docs = {
            d.doc_id: DocInfo(
                d.doc_id,
                d.title or d.doc_id,
                d.sector,
                d.study,
                d.doc_type,
                d.year,
                d.source,
                d.pages,
                tuple(by_doc.get(d.doc_id, ())),
                sum(items[p].is_content for p in by_doc.get(d.doc_id, ())),
                d.corpus_root,
            )
            for d in docs_rows
        }
        content = [i for i in items.values() if i.is_content]
        doc_rank = {doc_id: k for k, doc_id in enumerate(sorted(docs))}
        orders = {
            "reading": sorted(content, key=lambda i: (doc_rank.get(i.doc_id, 0), i.seq)),
            "uncertainty": sorted(
                content,
                key=lambda i: (i.confidence is None, i.confidence or 0.0, doc_rank.get(i.doc_id, 0), i.seq),
            ),
        }
        orders["random"] = random_order(content)
        orders["diverse"] = self._diverse_order(orders["uncertainty"])
        per_doc: dict[str, dict[str, list[Item]]] = {}
        for name, ordered in orders.items():
            per_doc[name] = defaultdict(list)
            for k, item in enumerate(ordered):
                item.rank[name] = k
                per_doc[name][item.doc_id].append(item)
        return _Snapshot(items, docs, orders, per_doc, pending_relooks(self.engine))

    def _diverse_order(self, by_uncertainty: list[Item]) -> list[Item]:
        """Least confident first within clusters of the e5 embedding space, round-robin over
        the clusters, so the head of the queue is not fifty passages of one kind.

        The clustering is cached on the set of embedded texts: the index reloads on every
        change of classifications, which reorders confidences but rarely the texts.
        """
        hashes = {i.passage_id: text_hash(i.text) for i in by_uncertainty}
        vectors = _e5_vectors(self.engine, sorted(set(hashes.values())))
        key = frozenset(vectors)
        if self._clusters is None or self._clusters[0] != key:
            self._clusters = (key, cluster_vectors(vectors))
        return diverse_order(by_uncertainty, {p: self._clusters[1].get(h) for p, h in hashes.items()})

    # ---------------------------------------------------------------- what a user sees

    @property
    def docs(self) -> dict[str, DocInfo]:
        return self._snapshot.docs

    def item(self, passage_id: str) -> Item | None:
        return self._snapshot.items.get(passage_id)

    def state(self, item: Item, user: User) -> State:
        pid = item.passage_id
        decisions = self.decisions.get(pid, ())
        coders = self.assignments.get(pid)
        if coders is None:
            if not decisions:
                return BLIND_TODO if pid in self.blind_audit else item.default
            return self._decided(pid, decisions)[0]
        model_source = "model" if item.model_labels is not None else "none"
        if user.name in coders:
            _, blind = coders[user.name]
            own = [d for d in decisions if d.reviewer == user.name and not d.adjudication]
            if own:
                return State("done", own[-1].labels, "own", own[-1], "double")
            if blind:
                return State("todo", None, "blind", None, "double")
            return State("todo", item.model_labels, model_source, None, "double")
        adjudicated = any(d.adjudication for d in decisions)
        coder_decisions = {c: [d for d in decisions if d.reviewer == c and not d.adjudication] for c in coders}
        complete = adjudicated or all(coder_decisions.values())
        counted = _counted(decisions, {c: slot for c, (slot, _) in coders.items()})
        counted_source = "adjudication" if counted is not None and counted.adjudication else "review"
        if user.is_admin:
            if adjudicated:
                status = "done"
            elif complete:
                latest = [ds[-1].labels for ds in coder_decisions.values()]
                agree = all(same_labels(self.codebook, latest[0], x) for x in latest[1:])
                status = "done" if agree else "adjudicate"
            else:
                status = "locked"
            if counted is not None:
                return State(status, counted.labels, counted_source, counted, "adjudicate")
            return State(status, item.model_labels, model_source, None, "adjudicate")
        if complete and counted is not None:
            return State("done", counted.labels, counted_source, counted, "locked")
        return State("locked", item.model_labels, model_source, None, "locked")

    def _decided(self, pid: str, decisions: tuple[Decision, ...]) -> tuple[State, frozenset]:
        """State and label keys of a decided passage that is not double-coded (the same for everyone)."""
        cached = self._states.get(pid)
        if cached is not None and cached[0] is decisions:  # the same tuple: no decision since
            return cached[1], cached[2]
        latest = decisions[-1]
        state = State("done", latest.labels, "review", latest, "review")
        keys = _label_keys(latest.labels)
        self._states[pid] = (decisions, state, keys)
        return state, keys

    def _status_ok(self, item: Item, state: State, status: str, user: User) -> bool:
        if status == "todo":
            return state.status == "todo"
        if status == "uncertain":  # the model's doubt is a model signal: a blind coder's sample never matches
            return state.status == "todo" and item.needs_review and not self.model_hidden(item.passage_id, user)
        if status == "done":
            return state.status == "done"
        if status == "corrected":
            return (
                state.status == "done"
                and not same_labels(self.codebook, state.labels, item.model_labels)
                and not self.model_hidden(item.passage_id, user)
            )
        if status == "double":
            return user.name in self.assignments.get(item.passage_id, ())
        if status == "audit":
            return state.status == "todo" and item.passage_id in self.audit
        if status == "adjudicate":
            return state.status == "adjudicate"
        return True

    def matching(self, user: User, f: QueueFilter) -> list[Item]:
        """Every passage of the queue, in its order.

        Passages nobody decided on and that are not double-coded are filtered in
        list comprehensions on precomputed attributes; only decided or double-coded
        passages (usually a few) go through the per-user state.
        """
        snapshot, special = self._snapshot, self._special
        if f.status == "relook":  # passages whose text changed since a decision, nobody decided since
            pool = [
                i
                for p in snapshot.relook
                if p not in self.decisions and (i := snapshot.items.get(p)) is not None and i.is_content
            ]
            pool.sort(key=lambda i: i.rank[f.order])
            pool = [i for i in pool if (not f.doc or i.doc_id == f.doc) and (not f.sector or i.sector == f.sector)]
            if f.q:
                pool = [i for i in pool if f.q.casefold() in i.folded]
            return [i for i in pool if self.state(i, user).status == "todo" and set(f.labels) <= i.keys]
        if f.status == "audit":  # the random sample, what this user still has to code
            pool = [i for p in self.audit if (i := snapshot.items.get(p)) is not None and i.is_content]
            # Least-confident-first would tell a blind coder what the model doubts: blind passages
            # come in reading order, whatever order is chosen.
            pool.sort(key=lambda i: i.rank["reading" if i.passage_id in self.blind_audit else f.order])
            pool = [i for i in pool if (not f.doc or i.doc_id == f.doc) and (not f.sector or i.sector == f.sector)]
            if f.q:
                pool = [i for i in pool if f.q.casefold() in i.folded]
            wanted_audit = frozenset(f.labels)  # a label filter reads the model's labels: never on a blind passage
            return [
                i
                for i in pool
                if self._status_ok(i, self.state(i, user), "audit", user)
                and (not wanted_audit or (i.passage_id not in self.blind_audit and wanted_audit <= i.keys))
            ]
        if f.status in ONLY_DECIDED_OR_ASSIGNED:  # only decided or double-coded passages can match
            pool = [i for p in special if (i := snapshot.items.get(p)) is not None and i.is_content]
            order = f.order
            if f.status == "double" and any(
                user.name in coders and coders[user.name][1] for coders in self.assignments.values()
            ):
                order = "reading"  # a blind coder's own sample: the uncertainty order would show the model
            pool.sort(key=lambda i: i.rank[order])
            if f.doc:
                pool = [i for i in pool if i.doc_id == f.doc]
        elif f.doc:
            pool = snapshot.by_doc[f.order].get(f.doc, [])
        else:
            pool = snapshot.orders[f.order]
        if f.sector:
            pool = [i for i in pool if i.sector == f.sector]
        if f.q:
            needle = f.q.casefold()
            pool = [i for i in pool if needle in i.folded]
        wanted = frozenset(f.labels)
        status = f.status
        assigned = self._assigned
        if self.blind_audit:
            # An undecided blind audit passage is coded in its own queue ("Steekproef"): elsewhere its
            # place in the uncertainty order, a label filter or the model's doubt would show the model.
            pool = [i for i in pool if i.passage_id not in self.blind_audit or i.passage_id in self.decisions]

        def ok(item: Item) -> bool:  # a decided or double-coded passage
            pid = item.passage_id
            if pid not in assigned:
                state, keys = self._decided(pid, self.decisions[pid])
            else:
                state = self.state(item, user)
                keys = _label_keys(state.labels)
            return self._status_ok(item, state, status, user) and (not wanted or wanted <= keys)

        if status in ONLY_DECIDED_OR_ASSIGNED:
            return [i for i in pool if ok(i)]
        if status == "uncertain":
            return [
                i
                for i in pool
                if (i.passage_id not in special and i.needs_review and (not wanted or wanted <= i.keys))
                or (i.passage_id in assigned and ok(i))
            ]
        if status == "todo":  # a decided passage that is not double-coded is never to review
            if wanted:
                return [
                    i
                    for i in pool
                    if (i.passage_id not in special and wanted <= i.keys) or (i.passage_id in assigned and ok(i))
                ]
            return [i for i in pool if i.passage_id not in special or (i.passage_id in assigned and ok(i))]
        if wanted:
            return [
                i
                for i in pool
                if (i.passage_id not in special and wanted <= i.keys) or (i.passage_id in special and ok(i))
            ]
        return [i for i in pool if i.passage_id not in assigned or ok(i)]

    def progress(self, user: User) -> list[dict]:
        """Per document: passages decided (as this user sees them), to review, locked, to adjudicate."""
        snapshot, decided_only = self._snapshot, self._decided_only
        cached = self._progress_base
        if cached is None or cached[0] is not snapshot or cached[1] is not decided_only:
            base = Counter(
                item.doc_id for pid in decided_only if (item := snapshot.items.get(pid)) is not None and item.is_content
            )
            self._progress_base = cached = (snapshot, decided_only, base)
        counts: dict[str, Counter] = {doc_id: Counter({"done": cached[2][doc_id]}) for doc_id in snapshot.docs}
        for pid in self._assigned:
            item = snapshot.items.get(pid)
            if item is not None and item.is_content:
                counts[item.doc_id][self.state(item, user).status] += 1
        out = []
        for doc in sorted(snapshot.docs.values(), key=lambda d: d.doc_id):
            c = counts[doc.doc_id]
            out.append(
                {
                    "doc": doc,
                    "done": c["done"],
                    "todo": doc.content - c["done"] - c["locked"] - c["adjudicate"],
                    "locked": c["locked"],
                    "adjudicate": c["adjudicate"],
                    "total": doc.content,
                }
            )
        return out

    def queue(self, user: User, f: QueueFilter, page: int = 1, page_size: int = PAGE_SIZE) -> QueuePage:
        """One page of the queue, the total, and reviewed / to-review counts per document."""
        rows = self.matching(user, f)
        pages = max(1, -(-len(rows) // page_size))
        page = min(max(1, page), pages)
        start = (page - 1) * page_size
        shown = [(item, self.state(item, user)) for item in rows[start : start + page_size]]
        return QueuePage(shown, len(rows), page, pages, self.progress(user))

    def neighbours(self, user: User, f: QueueFilter, passage_id: str) -> dict:
        """Previous and next passage in the queue around ``passage_id`` (which need not match the
        queue any more, e.g. just decided), its position and how many the queue holds."""
        rows = self.matching(user, f)
        current = self._snapshot.items.get(passage_id)
        if current is None or f.order not in current.rank:
            return {"prev": None, "next": rows[0].passage_id if rows else None, "position": 0, "total": len(rows)}
        k = bisect.bisect_left(rows, current.rank[f.order], key=lambda item: item.rank[f.order])
        after = k + 1 if k < len(rows) and rows[k].passage_id == passage_id else k
        return {
            "prev": rows[k - 1].passage_id if k > 0 else None,
            "next": rows[after].passage_id if after < len(rows) else None,
            "position": k + 1,
            "total": len(rows),
        }

    def model_hidden(self, passage_id: str, user: User) -> bool:
        """True when ``user`` codes this passage in a blind sample: no model label, score, confidence
        or "corrected" mark may reach them."""
        if passage_id in self.blind_audit:
            return True
        coders = self.assignments.get(passage_id)
        return bool(coders) and user.name in coders and any(b for _, b in coders.values())

    def passage_view(self, passage_id: str, user: User) -> PassageView | None:
        snapshot = self._snapshot
        item = snapshot.items.get(passage_id)
        if item is None:
            return None
        doc = snapshot.docs[item.doc_id]
        k = item.seq if item.seq < len(doc.passage_ids) and doc.passage_ids[item.seq] == passage_id else None
        if k is None:
            k = doc.passage_ids.index(passage_id)
        before = snapshot.items.get(doc.passage_ids[k - 1]) if k > 0 else None
        after = snapshot.items.get(doc.passage_ids[k + 1]) if k + 1 < len(doc.passage_ids) else None
        state = self.state(item, user)
        decisions = list(self.decisions.get(passage_id, ()))
        coders = self.assignments.get(passage_id) or {}
        ordered_coders = sorted(coders, key=lambda c: coders[c][0])
        blind = any(b for _, b in coders.values())
        coder_decisions: dict[str, Decision | None] = {}
        if not coders:
            history = decisions
        elif user.name in coders:
            history = [d for d in decisions if d.reviewer == user.name and not d.adjudication]
        elif user.is_admin or state.status == "done":
            history = decisions
        else:
            history = []
        if coders and user.name not in coders and user.is_admin:
            for c in ordered_coders:
                own = [d for d in decisions if d.reviewer == c and not d.adjudication]
                coder_decisions[c] = own[-1] if own else None
        show_model = item.model_labels is not None and not self.model_hidden(passage_id, user)
        relook = []
        for old in snapshot.relook.get(passage_id, ()):
            old_decisions = list(self.decisions.get(old["old_passage_id"], ()))
            if user.name in coders:  # a coder sees only their own old decision, as on the passage itself
                old_decisions = [d for d in old_decisions if d.reviewer == user.name]
            elif coders and not user.is_admin:
                old_decisions = []
            relook.append({"old_text": old["old_text"], "decisions": old_decisions})
        return PassageView(
            item, doc, state, before, after, show_model, history, coder_decisions, ordered_coders, blind, relook,
            passage_id in self.audit,
        )

    def reviewer_counts(self) -> list[tuple[str, int]]:
        """Decisions per reviewer (all of them, the history included)."""
        counts: Counter = Counter()
        for decisions in list(self.decisions.values()):
            for d in decisions:
                counts[d.reviewer] += 1
        return sorted(counts.items())


def latest_model_version(engine: Engine) -> str | None:
    """The most recently written model version in the store (when no model card is at hand)."""
    with session(engine) as s:
        row = s.execute(
            select(ClassificationRow.model_version).order_by(ClassificationRow.created_at.desc()).limit(1)
        ).first()
        return row[0] if row else None
