"""The project store: documents, passages and ingest failures in SQL.

SQLite at ``outputs/mgz.sqlite`` by default; any SQLAlchemy URL (PostgreSQL
included) works. The schema is owned by Alembic migrations, applied on open, so
a store made by an older version is upgraded rather than silently mismatched.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    create_engine,
    delete,
    event,
    func,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from pipeline.models import Document, ManifestRow, Passage, text_hash

DEFAULT_STORE_URL = "sqlite:///outputs/mgz.sqlite"


class Base(DeclarativeBase):
    pass


class DocumentRow(Base):
    __tablename__ = "documents"

    doc_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    source: Mapped[str] = mapped_column(Text)  # relative to corpus_root when that is set
    sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    stage_version: Mapped[str | None] = mapped_column(String(40), nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # ok | failed | retired
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    title: Mapped[str] = mapped_column(Text, default="")
    study: Mapped[str] = mapped_column(String(200), default="")
    sector: Mapped[str] = mapped_column(String(40), default="")
    doc_type: Mapped[str] = mapped_column(String(80), default="")
    year: Mapped[int | None] = mapped_column(Integer, nullable=True)
    text: Mapped[str | None] = mapped_column(Text, nullable=True)
    warnings: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The corpus folder (absolute) the document was read from; see source_path.
    corpus_root: Mapped[str | None] = mapped_column(Text, nullable=True)


class PassageRow(Base):
    __tablename__ = "passages"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    doc_id: Mapped[str] = mapped_column(ForeignKey("documents.doc_id", ondelete="CASCADE"), index=True)
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    text: Mapped[str] = mapped_column(Text)
    text_hash: Mapped[str] = mapped_column(String(32), index=True)
    page_start: Mapped[int] = mapped_column(Integer)
    page_end: Mapped[int] = mapped_column(Integer)
    char_start: Mapped[int] = mapped_column(Integer)
    char_end: Mapped[int] = mapped_column(Integer)
    section: Mapped[list] = mapped_column(JSON, default=list)
    speaker: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # Read by OCR, and a transcript turn's time span in seconds (migration 0006).
    ocr: Mapped[bool] = mapped_column(Boolean, default=False)
    time_start: Mapped[float | None] = mapped_column(Float, nullable=True)
    time_end: Mapped[float | None] = mapped_column(Float, nullable=True)


class FailureRow(Base):
    """Append-only log of every ingest failure, including ones without a doc_id."""

    __tablename__ = "ingest_failures"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    doc_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    source: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EmbeddingRow(Base):
    """Cache: the same text is never embedded twice by the same encoder."""

    __tablename__ = "embeddings"

    text_hash: Mapped[str] = mapped_column(String(32), primary_key=True)
    encoder: Mapped[str] = mapped_column(String(80), primary_key=True)
    dim: Mapped[int] = mapped_column(Integer)
    vector: Mapped[bytes] = mapped_column(LargeBinary)


class ClassificationRow(Base):
    """A model's labels for one passage; one row per passage and model version."""

    __tablename__ = "classifications"

    passage_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_version: Mapped[str] = mapped_column(String(80), primary_key=True)
    doc_id: Mapped[str] = mapped_column(String(200), index=True)
    labels: Mapped[dict] = mapped_column(JSON)
    scores: Mapped[dict] = mapped_column(JSON)
    needs_review: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ReviewRow(Base):
    """One analyst decision. Append-only: the latest decision per passage counts."""

    __tablename__ = "reviews"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    passage_id: Mapped[str] = mapped_column(String(32), index=True)
    reviewer: Mapped[str] = mapped_column(String(120))
    labels: Mapped[dict] = mapped_column(JSON)
    labels_shown: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    model_version: Mapped[str | None] = mapped_column(String(80), nullable=True)
    memo: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # Set on a copy made when re-ingest carried the decision onto a new passage (pipeline.carry).
    carried_from: Mapped[int | None] = mapped_column(Integer, nullable=True)


class OcrCacheRow(Base):
    """OCR output of one file, keyed by its bytes: a warm run never runs Tesseract again.

    ``pages`` maps page number to the words pdfplumber read from the OCR'd page
    (the same dicts the layout analysis gets from a text layer), its size and the
    mean Tesseract word confidence (see ``pipeline.ocr``).
    """

    __tablename__ = "ocr_cache"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    engine: Mapped[str] = mapped_column(String(80), primary_key=True)
    pages: Mapped[dict] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


def _now() -> datetime:
    return datetime.now(UTC)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(resources.files("pipeline").joinpath("migrations")))
    config.set_main_option("sqlalchemy.url", url)
    return config


def open_store(url: str = DEFAULT_STORE_URL) -> Engine:
    """Create the engine, make the SQLite folder, and migrate the schema to head."""
    if url.startswith("sqlite:///") and not url.startswith("sqlite:///:memory:"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, future=True)
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    config = alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return engine


def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


@contextmanager
def session(engine: Engine) -> Iterator[Session]:
    """One transaction: everything in it lands together or not at all."""
    with Session(engine, expire_on_commit=False) as s, s.begin():
        yield s


@dataclass(frozen=True)
class StoredDocument:
    doc_id: str
    sha256: str | None
    stage_version: str | None
    status: str
    error: str | None


def stored_document(engine: Engine, doc_id: str) -> StoredDocument | None:
    with session(engine) as s:
        row = s.get(DocumentRow, doc_id)
        if row is None:
            return None
        return StoredDocument(row.doc_id, row.sha256, row.stage_version, row.status, row.error)


def document_text(engine: Engine, doc_id: str) -> str:
    """A stored document's cleaned text (what passage offsets index), empty when there is none."""
    with session(engine) as s:
        row = s.get(DocumentRow, doc_id)
        return (row.text or "") if row is not None else ""


def is_current(engine: Engine, doc_id: str, sha256: str, stage_version: str) -> bool:
    """True when this exact file was already ingested by this stage version."""
    stored = stored_document(engine, doc_id)
    return (
        stored is not None
        and stored.status == "ok"
        and stored.sha256 == sha256
        and stored.stage_version == stage_version
    )


def save_document(engine: Engine, document: Document, row: ManifestRow | None, stage_version: str) -> None:
    """Replace a document and all its passages in one transaction."""
    with session(engine) as s:
        write_document(s, document, row, stage_version)


def source_path(source: str, corpus_root: str | None, corpus_dir: Path | None = None) -> Path:
    """Where a stored document's file is: under ``corpus_dir`` when given (the corpus folder was
    moved or is mounted elsewhere, ``mgz review --corpus``), else under the recorded corpus root;
    a document stored before roots were recorded keeps its path as stored (relative to where
    ``mgz`` ran then), looked up by file name under ``corpus_dir``."""
    path = Path(source)
    if corpus_dir is not None and not path.is_absolute():
        return Path(corpus_dir) / (path if corpus_root else path.name)
    if corpus_root and not path.is_absolute():
        return Path(corpus_root) / path
    return path


def _relative_source(source: str, corpus_root: Path | None) -> tuple[str, str | None]:
    """(source relative to the absolute corpus root, that root) for storing; as given without a root."""
    if corpus_root is None:
        return source, None
    root = Path(corpus_root).resolve()
    try:
        return Path(source).resolve().relative_to(root).as_posix(), str(root)
    except ValueError:  # not under the root: stored absolute
        return str(Path(source).resolve()), str(root)


def write_document(
    s: Session, document: Document, row: ManifestRow | None, stage_version: str, corpus_root: Path | None = None
) -> None:
    """Replace a document and its passages inside the caller's transaction (see ``pipeline.carry``).

    With ``corpus_root`` the source is stored relative to it and the root absolute, so links to
    the file work from any folder (``source_path``)."""
    source, root = _relative_source(document.source, corpus_root)
    s.execute(delete(PassageRow).where(PassageRow.doc_id == document.doc_id))
    s.merge(
        DocumentRow(
            doc_id=document.doc_id,
            source=source,
            corpus_root=root,
            sha256=document.sha256,
            stage_version=stage_version,
            status="ok",
            error=None,
            pages=document.pages,
            title=(row.title if row and row.title else document.title),
            study=row.study if row else "",
            sector=row.sector if row else "",
            doc_type=row.doc_type if row else "",
            year=row.year if row else None,
            text=document.text,
            warnings=list(document.warnings),
            updated_at=_now(),
        )
    )
    s.flush()
    s.add_all(
        PassageRow(
            id=p.id,
            doc_id=document.doc_id,
            seq=i,
            kind=p.kind,
            text=p.text,
            text_hash=text_hash(p.text),
            page_start=p.page_start,
            page_end=p.page_end,
            char_start=p.char_start,
            char_end=p.char_end,
            section=list(p.section),
            speaker=p.speaker,
            ocr=p.ocr,
            time_start=p.time_start,
            time_end=p.time_end,
        )
        for i, p in enumerate(document.passages)
    )


def record_failure(engine: Engine, source: str, reason: str, doc_id: str | None = None) -> None:
    """Log a failure; a failed document keeps its earlier passages but is marked failed."""
    with session(engine) as s:
        s.add(FailureRow(doc_id=doc_id, source=source, reason=reason, created_at=_now()))
        if doc_id is None:
            return
        existing = s.get(DocumentRow, doc_id)
        if existing is None:
            s.add(
                DocumentRow(
                    doc_id=doc_id,
                    source=source,
                    status="failed",
                    error=reason,
                    title="",
                    warnings=[],
                    updated_at=_now(),
                )
            )
        else:
            existing.status = "failed"
            existing.error = reason
            existing.updated_at = _now()


def stored_sha256s(engine: Engine) -> dict[str, str]:
    """sha256 → doc_id of every current (status ok) document."""
    with session(engine) as s:
        rows = s.execute(select(DocumentRow.sha256, DocumentRow.doc_id).where(DocumentRow.status == "ok"))
        return {sha: doc_id for sha, doc_id in rows if sha}


def retire_documents(engine: Engine, listed: set[str]) -> list[str]:
    """Mark stored documents that the manifest no longer lists as retired.

    Their passages, classifications and reviews stay in the store (a row put
    back later picks them up again); outputs only show documents with status ok.
    """
    with session(engine) as s:
        rows = s.scalars(select(DocumentRow).where(DocumentRow.status != "retired"))
        retired = [r for r in rows if r.doc_id not in listed]
        for row in retired:
            row.status = "retired"
            row.updated_at = _now()
        return sorted(r.doc_id for r in retired)


def load_passages(engine: Engine, doc_id: str) -> list[Passage]:
    with session(engine) as s:
        rows = s.scalars(select(PassageRow).where(PassageRow.doc_id == doc_id).order_by(PassageRow.seq))
        return [
            Passage(
                id=r.id,
                kind=r.kind,
                text=r.text,
                page_start=r.page_start,
                page_end=r.page_end,
                char_start=r.char_start,
                char_end=r.char_end,
                section=tuple(r.section or ()),
                speaker=r.speaker,
                ocr=bool(r.ocr),
                time_start=r.time_start,
                time_end=r.time_end,
            )
            for r in rows
        ]


def document_rows(engine: Engine) -> list[dict]:
    """Every document with its status, for reports and the CLI."""
    with session(engine) as s:
        rows = s.scalars(select(DocumentRow).order_by(DocumentRow.doc_id))
        ocr = select(PassageRow.doc_id, func.count()).where(PassageRow.ocr.is_(True)).group_by(PassageRow.doc_id)
        ocr_counts = {doc_id: n for doc_id, n in s.execute(ocr)}
        return [
            {
                "doc_id": r.doc_id,
                "status": r.status,
                "error": r.error,
                "sha256": r.sha256,
                "pages": r.pages,
                "title": r.title,
                "sector": r.sector,
                "doc_type": r.doc_type,
                "year": r.year,
                "study": r.study,
                "ocr_passages": ocr_counts.get(r.doc_id, 0),  # passages read by OCR from a scan
                "source": str(source_path(r.source, r.corpus_root)),  # absolute where a root is known
                "file": r.source,
                "corpus_root": r.corpus_root,
            }
            for r in rows
        ]


def failures(engine: Engine) -> list[dict]:
    with session(engine) as s:
        rows = s.scalars(select(FailureRow).order_by(FailureRow.id))
        return [{"doc_id": r.doc_id, "source": r.source, "reason": r.reason} for r in rows]


def cached_embeddings(engine: Engine, encoder: str, hashes: list[str]) -> dict[str, bytes]:
    """Stored vectors (raw float32 bytes) for the given text hashes."""
    found: dict[str, bytes] = {}
    with session(engine) as s:
        for start in range(0, len(hashes), 500):
            chunk = hashes[start : start + 500]
            rows = s.execute(
                select(EmbeddingRow.text_hash, EmbeddingRow.vector).where(
                    EmbeddingRow.encoder == encoder, EmbeddingRow.text_hash.in_(chunk)
                )
            )
            found.update({h: v for h, v in rows})
    return found


def save_embeddings(engine: Engine, encoder: str, vectors: dict[str, bytes], dim: int) -> None:
    with session(engine) as s:
        for h, vector in vectors.items():
            s.merge(EmbeddingRow(text_hash=h, encoder=encoder, dim=dim, vector=vector))


def classified_passage_ids(engine: Engine, doc_id: str, model_version: str) -> set[str]:
    with session(engine) as s:
        rows = s.scalars(
            select(ClassificationRow.passage_id).where(
                ClassificationRow.doc_id == doc_id, ClassificationRow.model_version == model_version
            )
        )
        return set(rows)


def save_classifications(engine: Engine, doc_id: str, model_version: str, rows: list[dict]) -> None:
    """Store one document's classifications for one model version, replacing older rows of that version."""
    with session(engine) as s:
        s.execute(
            delete(ClassificationRow).where(
                ClassificationRow.doc_id == doc_id, ClassificationRow.model_version == model_version
            )
        )
        s.add_all(
            ClassificationRow(
                passage_id=r["id"],
                model_version=model_version,
                doc_id=doc_id,
                labels={k: r[k] for k in r if k not in ("id", "scores", "needs_review", "model_version")},
                scores=r["scores"],
                needs_review=bool(r["needs_review"]),
                created_at=_now(),
            )
            for r in rows
        )


def load_classifications(engine: Engine, doc_id: str, model_version: str) -> dict[str, dict]:
    with session(engine) as s:
        rows = s.scalars(
            select(ClassificationRow).where(
                ClassificationRow.doc_id == doc_id, ClassificationRow.model_version == model_version
            )
        )
        return {
            r.passage_id: {
                **r.labels,
                "scores": r.scores,
                "needs_review": r.needs_review,
                "model_version": r.model_version,
            }
            for r in rows
        }


def add_review(
    engine: Engine,
    passage_id: str,
    reviewer: str,
    labels: dict,
    labels_shown: dict | None = None,
    model_version: str | None = None,
    memo: str | None = None,
) -> None:
    """Append a review decision; earlier decisions stay in the history."""
    with session(engine) as s:
        s.add(
            ReviewRow(
                passage_id=passage_id,
                reviewer=reviewer,
                labels=labels,
                labels_shown=labels_shown,
                model_version=model_version,
                memo=memo,
                created_at=_now(),
            )
        )


def latest_reviews(engine: Engine) -> dict[str, dict]:
    """The latest decision per passage (by insertion order), with reviewer and time."""
    with session(engine) as s:
        rows = s.scalars(select(ReviewRow).order_by(ReviewRow.id))
        return {
            r.passage_id: {"labels": r.labels, "reviewer": r.reviewer, "created_at": r.created_at.isoformat()}
            for r in rows
        }


def add_reviews(engine: Engine, rows: list[dict]) -> int:
    """Append many review decisions in one transaction (all land or none): rows with passage_id,
    reviewer, labels and optionally labels_shown, model_version, memo. Returns how many."""
    now = _now()
    with session(engine) as s:
        s.add_all(
            ReviewRow(
                passage_id=r["passage_id"],
                reviewer=r["reviewer"],
                labels=r["labels"],
                labels_shown=r.get("labels_shown"),
                model_version=r.get("model_version"),
                memo=r.get("memo"),
                created_at=now,
            )
            for r in rows
        )
    return len(rows)


def passage_text_hashes(engine: Engine, passage_ids: list[str]) -> dict[str, str]:
    """passage id -> text hash, for the ids that are stored."""
    out: dict[str, str] = {}
    with session(engine) as s:
        for start in range(0, len(passage_ids), 500):
            chunk = passage_ids[start : start + 500]
            out.update(s.execute(select(PassageRow.id, PassageRow.text_hash).where(PassageRow.id.in_(chunk))).all())
    return out


def cached_ocr(engine: Engine, sha256: str, ocr_engine: str) -> dict | None:
    """The cached OCR pages of a file (see :class:`OcrCacheRow`), or None."""
    with session(engine) as s:
        row = s.get(OcrCacheRow, (sha256, ocr_engine))
        return dict(row.pages) if row is not None else None


def save_ocr(engine: Engine, sha256: str, ocr_engine: str, pages: dict) -> None:
    """Cache (or add to) the OCR pages of a file; pages already cached are kept."""
    with session(engine) as s:
        row = s.get(OcrCacheRow, (sha256, ocr_engine))
        if row is None:
            s.add(OcrCacheRow(sha256=sha256, engine=ocr_engine, pages=pages, created_at=_now()))
        else:
            row.pages = {**pages, **row.pages}


def passage_origin(engine: Engine, passage_id: str) -> dict:
    """Where a passage's text came from, for the review screen: OCR, and a transcript turn's time span."""
    with session(engine) as s:
        row = s.get(PassageRow, passage_id)
        if row is None:
            return {"ocr": False, "time_start": None, "time_end": None}
        return {"ocr": bool(row.ocr), "time_start": row.time_start, "time_end": row.time_end}
