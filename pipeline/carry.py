"""Analysts' decisions follow their passages when a document is ingested again.

A document is re-extracted when its file's bytes change (saved again, a typo
fixed, a page corrected) or the ingest version changes (a better segmentation).
Passage ids come from the doc_id and the passage text (``pipeline.models``), so
a passage whose text is unchanged keeps its id and everything attached to it;
for the others this module works out where each old passage went and carries
what references it onto the new passage:

1. **exact** — the same text (whitespace-normalised) in the new extraction;
   unambiguous copies are paired directly, repeated texts in order;
2. **aligned** — the old passage's span, mapped word by word onto the new text
   (``pipeline.align``, the aligner REFI-QDA import uses), lands on one new
   passage that covers it almost wholly, with almost the same words (a typo
   fix, a changed hyphenation): the decision still applies;
3. **relook** ("opnieuw bekijken") — the span lands on several passages (split),
   several old passages land on one (merged), or the words changed too much:
   the decision is not applied to the new text, but the new passage is queued
   in the review screen with the old text and decision shown;
4. **removed** — none of the old passage's words is left and no new passage took
   its place (a passage rewritten wholly between unchanged neighbours is a relook).

Reviews are never moved or changed: a carried decision is a new row in
``reviews`` (same reviewer, time, labels and memo, ``carried_from`` naming the
original), with its adjudication mark; the old rows stay as history. Every
carry-over of a referenced passage is recorded in ``passage_carry``, which the
review screen reads for its "opnieuw bekijken" queue.

Other tables that reference passages are carried generically
(:data:`PASSAGE_TABLES`: table, column, which statuses it follows); a new table
joins by adding a line there.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from difflib import SequenceMatcher
from pathlib import Path

from sqlalchemy import DateTime, Float, Integer, MetaData, String, Table, Text, and_, insert, inspect, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, Session, mapped_column

from pipeline.align import Alignment, align_texts, words
from pipeline.models import Document, ManifestRow, Passage, text_hash
from pipeline.store import Base, DocumentRow, PassageRow, ReviewRow, session, write_document

ONE_TO_ONE = ("exact", "aligned")  # the decision still holds for the new passage
# An old span must cover this share of the new passage and the new passage this share of the
# mapped span (both ways) for a one-to-one match; below that it is a split or a merge.
MIN_COVER = 0.8
# Word-level similarity (difflib ratio) of old and new passage text for "aligned"; below: relook.
MIN_ALIGNED_SIMILARITY = 0.85


@dataclass(frozen=True)
class PassageTable:
    """A table whose rows reference passages, and for which carry-over statuses its rows follow."""

    table: str
    column: str = "passage_id"
    follows: tuple[str, ...] = ONE_TO_ONE


# Reviews and adjudications are carried by :func:`_carry_reviews` (they need the copied review ids).
PASSAGE_TABLES: tuple[PassageTable, ...] = (
    # Sample membership stays with the passage even when it needs a new look: the coders stay
    # independent on it (each sees only their own old decision).
    PassageTable("double_coding", follows=("exact", "aligned", "relook")),
    PassageTable("audit_members", follows=("exact", "aligned", "relook")),
    # The model's output is only valid for identical text.
    PassageTable("classifications", follows=("exact",)),
    # A passage still waiting for its new look keeps waiting on the passage it went to.
    PassageTable("passage_carry", column="new_passage_id", follows=("exact", "aligned", "relook")),
)


class PassageCarryRow(Base):
    """Where a referenced passage went when its document was ingested again (append-only)."""

    __tablename__ = "passage_carry"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_id: Mapped[str] = mapped_column(String(200), index=True)
    old_passage_id: Mapped[str] = mapped_column(String(32))
    new_passage_id: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(20))
    old_text: Mapped[str] = mapped_column(Text)
    similarity: Mapped[float] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True)
class Carry:
    """One old passage onto one new passage (``new_id`` None: removed)."""

    old_id: str
    new_id: str | None
    status: str
    similarity: float


@dataclass
class CarryReport:
    """Per document: how the passages analysts had decided on were carried (counted once each)."""

    doc_id: str
    exact: int = 0
    aligned: int = 0
    relook: int = 0
    removed: int = 0
    relook_ids: list[str] = field(default_factory=list)  # new passages waiting for a new look

    @property
    def lost(self) -> int:
        """Decisions that went nowhere: always 0, a removed passage's decisions stay in its history."""
        return 0

    def to_json(self) -> dict:
        data = asdict(self)
        data["lost"] = self.lost
        return data


# --------------------------------------------------------------------------- matching (pure)


def _similarity(a: str, b: str) -> float:
    return round(SequenceMatcher(None, words(a).keys, words(b).keys, autojunk=False).ratio(), 4)


def match_passages(
    old_text: str,
    old_passages: Sequence[Passage],
    new_text: str,
    new_passages: Sequence[Passage],
    wanted: set[str] | None = None,
) -> list[Carry]:
    """Where each old passage went in the new extraction (several carries for a split passage).

    ``wanted``: old passage ids that need the alignment step (those something references);
    others are only matched exactly. See the module docstring for the rules.
    """
    carries: list[Carry] = []
    old_by_hash: dict[str, list[Passage]] = defaultdict(list)
    new_by_hash: dict[str, list[Passage]] = defaultdict(list)
    for p in old_passages:
        old_by_hash[text_hash(p.text)].append(p)
    for p in new_passages:
        new_by_hash[text_hash(p.text)].append(p)
    taken: set[str] = set()
    rest: list[Passage] = []
    for h, olds in old_by_hash.items():
        news = new_by_hash.get(h, [])
        if news and len(news) == len(olds):
            for old, new in zip(olds, news, strict=True):
                carries.append(Carry(old.id, new.id, "exact", 1.0))
                taken.add(new.id)
        else:
            rest += olds
    if not any(wanted is None or p.id in wanted for p in rest):
        return carries  # nothing refers to a passage whose text changed: no alignment needed
    alignment = align_texts(old_text, new_text)
    ordered = sorted(new_passages, key=lambda p: p.char_start)
    one_to_one: dict[str, list[int]] = defaultdict(list)
    for old in sorted(rest, key=lambda p: p.char_start):
        for carry in _place(old, alignment, ordered, taken):
            if carry.status in ONE_TO_ONE and carry.new_id:
                one_to_one[carry.new_id].append(len(carries))
            carries.append(carry)
    for indexes in one_to_one.values():  # several old passages on one new passage: merged
        if len(indexes) > 1:
            for i in indexes:
                carries[i] = Carry(carries[i].old_id, carries[i].new_id, "relook", carries[i].similarity)
    return _rewritten_in_place(carries, old_passages, ordered, len(new_text))


def _rewritten_in_place(
    carries: list[Carry], old_passages: Sequence[Passage], ordered: Sequence[Passage], text_end: int
) -> list[Carry]:
    """An old passage none of whose words is left, but whose place between its neighbours is taken
    by new passages nothing else went to, was rewritten there: relook onto those, not removed."""
    by_id = {p.id: p for p in ordered}
    where: dict[str, tuple[int, int]] = {}
    for c in carries:
        if c.new_id:
            p = by_id[c.new_id]
            start, end = where.get(c.old_id, (p.char_start, p.char_end))
            where[c.old_id] = (min(start, p.char_start), max(end, p.char_end))
    claimed = {c.new_id for c in carries if c.new_id}
    old_order = sorted(old_passages, key=lambda p: p.char_start)
    out = []
    for c in carries:
        if c.status != "removed":
            out.append(c)
            continue
        k = next(i for i, p in enumerate(old_order) if p.id == c.old_id)
        before = [where[p.id][1] for p in old_order[:k] if p.id in where]
        after = [where[p.id][0] for p in old_order[k + 1 :] if p.id in where]
        low, high = (before[-1] if before else 0), (after[0] if after else text_end)
        gap = [p for p in ordered if p.char_start >= low and p.char_end <= high and p.id not in claimed]
        if not gap:
            out.append(c)
            continue
        old = next(p for p in old_order if p.id == c.old_id)
        out += [Carry(c.old_id, p.id, "relook", _similarity(old.text, p.text)) for p in gap]
    return out


def _place(old: Passage, alignment: Alignment, ordered: Sequence[Passage], taken: set[str]) -> list[Carry]:
    span = alignment.span(old.char_start, old.char_end)
    if span is None:
        return [Carry(old.id, None, "removed", 0.0)]
    start, end = span
    hits = []
    for p in ordered:
        if p.char_start >= end:
            break
        overlap = min(end, p.char_end) - max(start, p.char_start)
        if overlap > 0:
            hits.append((p, overlap))
    if not hits:
        return [Carry(old.id, None, "removed", 0.0)]
    length = max(1, end - start)
    whole = [(p, o) for p, o in hits if o >= MIN_COVER * (p.char_end - p.char_start) and o >= MIN_COVER * length]
    if len(whole) == 1:
        new = whole[0][0]
        similarity = _similarity(old.text, new.text)
        if text_hash(old.text) == text_hash(new.text) and new.id not in taken:
            return [Carry(old.id, new.id, "exact", 1.0)]
        if similarity >= MIN_ALIGNED_SIMILARITY and new.id not in taken:
            return [Carry(old.id, new.id, "aligned", similarity)]
        return [Carry(old.id, new.id, "relook", similarity)]
    # Split (or a large edit): every new passage that takes a real part of the old span.
    parts = [(p, o) for p, o in hits if 2 * o >= p.char_end - p.char_start or 2 * o >= length] or [
        max(hits, key=lambda hit: hit[1])
    ]
    return [Carry(old.id, p.id, "relook", _similarity(old.text, p.text)) for p, _ in parts]


# --------------------------------------------------------------------------- applying (store)


def _table(s: Session, name: str) -> Table | None:
    connection = s.connection()
    if not inspect(connection).has_table(name):
        return None
    return Table(name, MetaData(), autoload_with=connection)


def _referenced(s: Session, old_ids: list[str]) -> set[str]:
    """Old passage ids that something references (a review or a row of a carried table)."""
    found: set[str] = set()
    tables = [("reviews", "passage_id")] + [(t.table, t.column) for t in PASSAGE_TABLES if t.table != "classifications"]
    for name, column in tables:
        table = _table(s, name)
        if table is None:
            continue
        for start in range(0, len(old_ids), 500):
            chunk = old_ids[start : start + 500]
            found.update(s.execute(select(table.c[column]).where(table.c[column].in_(chunk))).scalars())
    return found


def _copy_rows(s: Session, spec: PassageTable, carries: Sequence[Carry]) -> int:
    """Copy the rows referencing each old passage onto its new passage (autoincrement id left out;
    a copy that would break a unique constraint is skipped: that row is already there)."""
    table = _table(s, spec.table)
    if table is None:
        return 0
    column = table.c[spec.column]
    auto = {
        c.name
        for c in table.primary_key.columns
        if c.autoincrement is True or (c.name == "id" and isinstance(c.type, Integer))
    }
    uniques = [list(u["column_names"]) for u in inspect(s.connection()).get_unique_constraints(spec.table)]
    uniques += [[c.name for c in table.primary_key.columns]] if not auto else []
    copied = 0
    for carry in carries:
        if carry.status not in spec.follows or not carry.new_id or carry.new_id == carry.old_id:
            continue
        for row in s.execute(select(table).where(column == carry.old_id)).mappings().all():
            values = {k: v for k, v in row.items() if k not in auto}
            values[spec.column] = carry.new_id
            clash = any(
                s.execute(select(table).where(and_(*(table.c[c] == values[c] for c in cols))).limit(1)).first()
                for cols in uniques
                if cols
            )
            if not clash:
                s.execute(insert(table).values(**values))
                copied += 1
    return copied


def _carry_reviews(s: Session, carries: Sequence[Carry]) -> int:
    """Append a copy of every decision on an old passage onto its new passage, oldest first, with its
    adjudication mark, so the same decision counts there (see ``pipeline.review``)."""
    adjudications = _table(s, "adjudications")
    copied = 0
    for carry in carries:
        if carry.status not in ONE_TO_ONE or not carry.new_id or carry.new_id == carry.old_id:
            continue
        rows = s.scalars(select(ReviewRow).where(ReviewRow.passage_id == carry.old_id).order_by(ReviewRow.id)).all()
        for row in rows:
            copy = ReviewRow(
                passage_id=carry.new_id,
                reviewer=row.reviewer,
                labels=row.labels,
                labels_shown=row.labels_shown,
                model_version=row.model_version,
                memo=row.memo,
                created_at=row.created_at,
                carried_from=row.id,
            )
            s.add(copy)
            s.flush()
            copied += 1
            if adjudications is None:
                continue
            for adj in s.execute(select(adjudications).where(adjudications.c.review_id == row.id)).mappings().all():
                s.execute(
                    insert(adjudications).values(
                        passage_id=carry.new_id,
                        review_id=copy.id,
                        adjudicator=adj["adjudicator"],
                        created_at=adj["created_at"],
                    )
                )
    return copied


def _report(doc_id: str, carries: Sequence[Carry], decided: set[str]) -> CarryReport:
    report = CarryReport(doc_id)
    by_old: dict[str, list[Carry]] = defaultdict(list)
    for carry in carries:
        by_old[carry.old_id].append(carry)
    counts: Counter = Counter()
    for old_id in decided:
        statuses = {c.status for c in by_old.get(old_id, [])}
        status = next((s for s in ("relook", "removed", "aligned", "exact") if s in statuses), "removed")
        counts[status] += 1
        if status == "relook":
            report.relook_ids += [c.new_id for c in by_old[old_id] if c.new_id]
    report.exact, report.aligned, report.relook, report.removed = (
        counts["exact"],
        counts["aligned"],
        counts["relook"],
        counts["removed"],
    )
    report.relook_ids = sorted(set(report.relook_ids))
    return report


def save_document_carrying(
    engine: Engine,
    document: Document,
    row: ManifestRow | None,
    stage_version: str,
    corpus_root: Path | None = None,
) -> CarryReport:
    """Replace a document and its passages and carry everything that referenced the old passages,
    in one transaction (all of it lands or none). Returns the per-document report."""
    with session(engine) as s:
        old_rows = s.scalars(select(PassageRow).where(PassageRow.doc_id == document.doc_id)).all()
        old_text = s.scalar(select(DocumentRow.text).where(DocumentRow.doc_id == document.doc_id)) or ""
        old = [
            Passage(
                r.id,
                r.kind,
                r.text,
                r.page_start,
                r.page_end,
                r.char_start,
                r.char_end,
                tuple(r.section or ()),
                r.speaker,
            )  # type: ignore[arg-type]
            for r in old_rows
        ]
        referenced = _referenced(s, [p.id for p in old]) if old else set()
        carries = match_passages(old_text, old, document.text, document.passages, wanted=referenced) if old else []
        write_document(s, document, row, stage_version, corpus_root)
        decided = set(s.scalars(select(ReviewRow.passage_id).where(ReviewRow.passage_id.in_(list(referenced)))))
        if not carries:
            return CarryReport(document.doc_id)
        _carry_reviews(s, carries)
        for spec in PASSAGE_TABLES:
            _copy_rows(s, spec, carries)
        texts = {p.id: p.text for p in old}
        now = datetime.now(UTC)
        s.add_all(
            PassageCarryRow(
                doc_id=document.doc_id,
                old_passage_id=c.old_id,
                new_passage_id=c.new_id,
                status=c.status,
                old_text=texts[c.old_id],
                similarity=c.similarity,
                created_at=now,
            )
            for c in carries
            if c.old_id in referenced and c.new_id != c.old_id
        )
        return _report(document.doc_id, carries, decided)


def pending_relooks(engine: Engine) -> dict[str, list[dict]]:
    """new passage id -> the old passages (id, text, status) it is waiting for a new look on;
    a passage drops out once anyone decides on it."""
    with session(engine) as s:
        rows = s.execute(
            select(PassageCarryRow.new_passage_id, PassageCarryRow.old_passage_id, PassageCarryRow.old_text)
            .join(PassageRow, PassageRow.id == PassageCarryRow.new_passage_id)
            .where(PassageCarryRow.status == "relook")
            .order_by(PassageCarryRow.id)
        ).all()
        decided = set(
            s.scalars(select(ReviewRow.passage_id).where(ReviewRow.passage_id.in_(sorted({r[0] for r in rows}))))
        )
    out: dict[str, list[dict]] = defaultdict(list)
    for new_id, old_id, old_text in rows:
        if new_id not in decided and all(o["old_passage_id"] != old_id for o in out[new_id]):
            out[new_id].append({"old_passage_id": old_id, "old_text": old_text})
    return dict(out)
