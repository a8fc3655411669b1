"""Plain data passed between stages: documents, passages and manifest rows.

Stages exchange these objects and nothing else, so every stage can be tested on
its own and the store, the CLI and the flows never reach into another stage's
internals.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

PassageKind = Literal["paragraph", "heading", "table", "footnote", "turn"]

SECTORS = ("ouderenzorg", "vg", "eerstelijn")


def passage_id(doc_key: str, text: str, occurrence: int) -> str:
    """Id from the document's id and the passage's own text (its ``occurrence``-th copy in the
    document), never from the file's bytes or offsets: a PDF saved again, or extracted by a new
    ingest version, gives the same ids to the same passages, so decisions stay on them."""
    return hashlib.sha256(f"{doc_key}\x00{text_hash(text)}\x00{occurrence}".encode()).hexdigest()[:16]


def text_hash(text: str) -> str:
    """Key for annotations and embedding caches: survives re-segmentation of a document."""
    normalised = " ".join(text.split())
    return hashlib.sha256(normalised.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Block:
    """A paragraph-level unit of a document's layout, before sentence segmentation."""

    kind: PassageKind
    text: str
    page_start: int
    page_end: int
    section: tuple[str, ...] = ()
    speaker: str | None = None
    heading_level: int | None = None
    # Read by OCR (pipeline.ocr) rather than from the file's text layer.
    ocr: bool = False
    # Transcript turns (pipeline.transcripts): seconds from the start of the recording.
    time_start: float | None = None
    time_end: float | None = None


@dataclass(frozen=True)
class Passage:
    """The unit later stages classify and analysts review.

    One to three sentences inside one block; offsets index the document's
    cleaned text, so ``text == document.text[char_start:char_end]``.
    """

    id: str
    kind: PassageKind
    text: str
    page_start: int
    page_end: int
    char_start: int
    char_end: int
    section: tuple[str, ...] = ()
    speaker: str | None = None
    ocr: bool = False
    time_start: float | None = None
    time_end: float | None = None

    def to_json(self) -> dict:
        data = asdict(self)
        data["section"] = list(self.section)
        return data


@dataclass
class Document:
    """A source file after extraction: cleaned text plus passages that index into it."""

    doc_id: str
    source: str
    sha256: str
    pages: int
    title: str
    text: str
    passages: list[Passage]
    warnings: list[str] = field(default_factory=list)
    # Page number -> mean Tesseract word confidence (0-100) for pages read by OCR.
    ocr_confidence: dict[int, float] = field(default_factory=dict)

    def to_json(self) -> dict:
        return {
            "doc_id": self.doc_id,
            "source": self.source,
            "sha256": self.sha256,
            "pages": self.pages,
            "title": self.title,
            "text": self.text,
            "passages": [p.to_json() for p in self.passages],
            "warnings": list(self.warnings),
            "ocr_confidence": {str(k): v for k, v in sorted(self.ocr_confidence.items())},
        }


class ManifestRow(BaseModel):
    """One row of ``corpus/manifest.csv``, validated before any work starts."""

    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    doc_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    file: str = Field(min_length=1)
    title: str = ""
    study: str = ""
    sector: str
    doc_type: str = ""
    year: int | None = Field(default=None, ge=1, le=9999)  # a calendar year; larger ones overflow the store

    @field_validator("sector")
    @classmethod
    def _known_sector(cls, value: str) -> str:
        if value not in SECTORS:
            raise ValueError(f"unknown sector {value!r} (expected one of {', '.join(SECTORS)})")
        return value

    @field_validator("year", mode="before")
    @classmethod
    def _empty_year(cls, value: object) -> object:
        return None if value in ("", None) else value
