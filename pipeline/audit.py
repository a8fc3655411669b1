"""The audit sample: a simple random sample of content passages per document, coded by an analyst.

Model-assisted estimates (``pipeline.estimate``) are only valid when the
passages an analyst codes for them were drawn at random, so the design is
stored with the sample: each draw keeps its seed, time, who drew it, the rule
(``per_document`` N or a ``share`` P) and, per passage, the probability with
which that draw picked it from the passages still outside the sample. A later
draw for the same document draws from the passages not yet in the sample, so
all draws together stay one simple random sample of the document.

Reviews an analyst chose (uncertainty-first queue, search) never count as
audit labels: only the counted decision on a passage that *is* in the sample
does, whichever queue it was made from.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Integer, String, Text, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Mapped, mapped_column

from pipeline.accounts import now_utc
from pipeline.store import Base, DocumentRow, PassageRow, session

CONTENT_KINDS = ("paragraph", "turn", "table")


class AuditDrawRow(Base):
    """One draw of the audit sample: the design, so that anyone can check how it was made."""

    __tablename__ = "audit_draws"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule: Mapped[str] = mapped_column(String(20))  # per_document | share
    value: Mapped[float] = mapped_column(Float)  # N passages per document, or the share P
    doc_filter: Mapped[str | None] = mapped_column(String(200), nullable=True)
    seed: Mapped[int] = mapped_column(Integer)
    blind: Mapped[bool] = mapped_column(Boolean)  # coders do not see the model's labels
    drawn_by: Mapped[str] = mapped_column(String(120))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    note: Mapped[str | None] = mapped_column(Text, nullable=True)


class AuditMemberRow(Base):
    """One passage in the audit sample, with the draw that picked it."""

    __tablename__ = "audit_members"

    passage_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    draw_id: Mapped[int] = mapped_column(ForeignKey("audit_draws.id"), index=True)
    doc_id: Mapped[str] = mapped_column(String(200), index=True)
    # P(picked by this draw) = drawn / passages outside the sample at the time of the draw.
    probability: Mapped[float] = mapped_column(Float)


class AuditError(ValueError):
    """A draw that cannot be made (bad rule, unknown document)."""


@dataclass(frozen=True)
class DrawResult:
    draw_id: int
    seed: int
    per_document: dict[str, int]  # doc id -> passages added by this draw
    sample_size: dict[str, int]  # doc id -> passages in the sample after it
    content: dict[str, int]  # doc id -> content passages


def _content_passages(s, doc_id: str | None) -> dict[str, list[str]]:
    query = (
        select(PassageRow.doc_id, PassageRow.id)
        .join(DocumentRow, DocumentRow.doc_id == PassageRow.doc_id)
        .where(DocumentRow.status == "ok", PassageRow.kind.in_(CONTENT_KINDS))
        .order_by(PassageRow.doc_id, PassageRow.seq)
    )
    if doc_id:
        query = query.where(PassageRow.doc_id == doc_id)
    out: dict[str, list[str]] = {}
    for d, pid in s.execute(query):
        out.setdefault(d, []).append(pid)
    return out


def draw_audit(
    engine: Engine,
    *,
    per_document: int | None = None,
    share: float | None = None,
    doc_id: str | None = None,
    seed: int | None = None,
    blind: bool = True,
    drawn_by: str = "mgz",
) -> DrawResult:
    """Add a simple random sample of content passages per document to the audit sample.

    Exactly one of ``per_document`` (N more passages per document, or all that are
    left) and ``share`` (the sample grows to at least that share of each document)
    is given. ``seed`` makes the draw repeatable; without it one is chosen and stored.
    """
    if (per_document is None) == (share is None):
        raise AuditError("geef precies één van --per-document en --share")
    if per_document is not None and per_document < 1:
        raise AuditError(f"--per-document moet minstens 1 zijn, niet {per_document}")
    if share is not None and not 0 < share <= 1:
        raise AuditError(f"--share moet tussen 0 en 1 liggen, niet {share}")
    seed = random.SystemRandom().randrange(2**31) if seed is None else int(seed)
    rng = random.Random(seed)
    with session(engine) as s:
        content = _content_passages(s, doc_id)
        if doc_id and not content:
            raise AuditError(f"onbekend document of geen inhoudelijke passages: {doc_id}")
        taken: dict[str, set[str]] = {}
        for d, pid in s.execute(select(AuditMemberRow.doc_id, AuditMemberRow.passage_id)):
            taken.setdefault(d, set()).add(pid)
        draw = AuditDrawRow(
            rule="per_document" if per_document is not None else "share",
            value=float(per_document if per_document is not None else share),
            doc_filter=doc_id,
            seed=seed,
            blind=blind,
            drawn_by=drawn_by,
            created_at=now_utc(),
        )
        s.add(draw)
        s.flush()
        added, sizes = {}, {}
        for d, ids in sorted(content.items()):
            have = taken.get(d, set()) & set(ids)
            free = [pid for pid in ids if pid not in have]
            want = per_document if per_document is not None else max(0, math.ceil(share * len(ids) - 1e-9) - len(have))
            k = min(want, len(free))
            picked = sorted(rng.sample(free, k)) if k else []
            s.add_all(
                AuditMemberRow(passage_id=pid, draw_id=draw.id, doc_id=d, probability=k / len(free))
                for pid in picked
            )
            added[d], sizes[d] = k, len(have) + k
        return DrawResult(draw.id, seed, added, sizes, {d: len(ids) for d, ids in content.items()})


def audit_members(engine: Engine) -> dict[str, set[str]]:
    """Doc id -> passage ids in the audit sample."""
    out: dict[str, set[str]] = {}
    with session(engine) as s:
        for d, pid in s.execute(select(AuditMemberRow.doc_id, AuditMemberRow.passage_id)):
            out.setdefault(d, set()).add(pid)
    return out


def blind_audit_passages(engine: Engine) -> set[str]:
    """Audit passages whose draw hides the model's labels from coders (the default)."""
    with session(engine) as s:
        return set(
            s.scalars(
                select(AuditMemberRow.passage_id)
                .join(AuditDrawRow, AuditDrawRow.id == AuditMemberRow.draw_id)
                .where(AuditDrawRow.blind.is_(True))
            )
        )


def audit_draws(engine: Engine) -> list[dict]:
    """Every draw with its design and how many passages it added."""
    with session(engine) as s:
        draws = list(s.scalars(select(AuditDrawRow).order_by(AuditDrawRow.id)))
        counts: dict[int, int] = {}
        for draw_id in s.scalars(select(AuditMemberRow.draw_id)):
            counts[draw_id] = counts.get(draw_id, 0) + 1
    return [
        {
            "id": d.id,
            "rule": d.rule,
            "value": d.value,
            "doc": d.doc_filter,
            "seed": d.seed,
            "blind": d.blind,
            "drawn_by": d.drawn_by,
            "created_at": d.created_at.isoformat(),
            "passages": counts.get(d.id, 0),
        }
        for d in draws
    ]
