"""Ingestion: PDF, DOCX or TXT → cleaned Dutch text → passages.

Every later stage classifies and counts passages, so this module's job is to get
their text exactly right and to refuse bad input loudly: each unusable file
raises :class:`IngestError` with a one-line reason that names the file.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import pdfplumber
from spacy.language import Language

from pipeline.models import Block, Document, Passage, passage_id, text_hash
from pipeline.nlp import load_glossary, make_nlp, sentence_spans
from pipeline.ocr import OcrError, missing_tesseract, ocr_with_cache, pages_needing_ocr, stderr_progress
from pipeline.pdf_layout import analyse_pdf, build_blocks, clean_text, join_lines
from pipeline.transcripts import TranscriptError, docx_transcript_blocks, read_transcript, timestamped_text_blocks

STAGE_VERSION = "ingest-1"
DEFAULT_MAX_PAGES = 2000
SUPPORTED_SUFFIXES = (".pdf", ".docx", ".txt", ".vtt", ".srt")

MAX_SENTENCES_PER_PASSAGE = 3
MAX_WORDS_PER_PASSAGE = 90


class IngestError(Exception):
    """A file that cannot be ingested; ``str()`` is the one-line reason with the file name."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass(frozen=True)
class ExtractOptions:
    """Explicit knobs for extraction (no hidden globals)."""

    max_pages: int = DEFAULT_MAX_PAGES
    # Scanned pages (pipeline.ocr): auto = pages without a usable text layer, force = every page.
    ocr: str = "auto"
    # Store whose ocr_cache keeps OCR results by sha256 (None: no cache, OCR every time).
    ocr_cache_url: str | None = None
    ocr_progress: bool = True


# --------------------------------------------------------------------------- sources


def _read_pdf_blocks(path: Path, data: bytes, options: ExtractOptions) -> tuple[list[Block], int, list[str]]:
    blocks, pages, warnings, _ = _read_pdf_blocks_ocr(path, data, options)
    return blocks, pages, warnings


def _ocr_pages(
    path: Path, data: bytes, pdf: pdfplumber.PDF, layouts: list, options: ExtractOptions
) -> tuple[dict, list[str]]:
    """OCR words for the pages that need them (cached by sha256), and warnings."""
    try:
        words = [[w for line in layout.lines for w in line.words] for layout in layouts]
        todo = pages_needing_ocr(pdf, words, options.ocr)
    except ValueError as exc:
        raise IngestError(path, str(exc)) from None
    if not todo:
        return {}, []
    progress = stderr_progress(path.name) if options.ocr_progress else None
    sha256 = hashlib.sha256(data).hexdigest()
    try:  # the store's cache first: a warm run needs no Tesseract at all
        result, _ = ocr_with_cache(path, sha256, todo, options.ocr_cache_url, progress)
    except OcrError as exc:
        if missing_tesseract() is None:
            raise IngestError(path, str(exc)) from None  # OCR ran and failed
        if len(todo) == len(pdf.pages):
            raise IngestError(path, f"PDF has no text layer (scanned image?); {exc}") from None
        return {}, [f"{len(todo)} page(s) need OCR ({', '.join(map(str, todo[:10]))}) but {exc}"]
    return result, []


def _read_pdf_blocks_ocr(
    path: Path, data: bytes, options: ExtractOptions
) -> tuple[list[Block], int, list[str], dict[int, float]]:
    if b"%PDF-" not in data[:PDF_HEADER_WINDOW]:
        raise IngestError(path, f"not a PDF (file starts with {data[:8]!r})")
    library_notes: list[str] = []
    with _pdf_library_log(library_notes):
        blocks, pages, warnings, confidence = _read_pdf_checked(path, data, options)
    return blocks, pages, warnings + _library_warnings(library_notes), confidence


# --------------------------------------------------------------------------- odd PDFs (issue 16)

# Readers (Acrobat, pdfminer) accept junk before the header, such as a Ghostscript log
# written into the same file, within the first kilobyte.
PDF_HEADER_WINDOW = 1024
MAX_LIBRARY_WARNINGS = 5


class _Collect(logging.Handler):
    def __init__(self, notes: list[str]) -> None:
        super().__init__(logging.WARNING)
        self.notes = notes

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.notes.append(record.getMessage().strip().splitlines()[0][:200])
        except Exception:  # a malformed log call must not fail the file
            self.notes.append(record.msg if isinstance(record.msg, str) else "?")


@contextmanager
def _pdf_library_log(notes: list[str]) -> Iterator[None]:
    """pdfminer's (and pypdf's) log warnings while one file is read, collected instead of printed:
    on stderr they carry no file name, so in a multi-file run they could not be tied to a file.
    They become that document's warnings."""
    loggers = [logging.getLogger(name) for name in ("pdfminer", "pdfplumber", "pypdf")]
    handler = _Collect(notes)
    saved = [(logger.propagate, logger.level) for logger in loggers]
    for logger in loggers:
        logger.addHandler(handler)
        logger.propagate = False
        if logger.level == logging.NOTSET or logger.level > logging.WARNING:
            logger.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for logger, (propagate, level) in zip(loggers, saved, strict=True):
            logger.removeHandler(handler)
            logger.propagate = propagate
            logger.setLevel(level)


def _library_warnings(notes: list[str]) -> list[str]:
    """At most a few distinct PDF-library warnings, with a count of the rest."""
    distinct = list(dict.fromkeys(notes))
    out = [f"PDF library: {note}" for note in distinct[:MAX_LIBRARY_WARNINGS]]
    if len(distinct) > MAX_LIBRARY_WARNINGS:
        out.append(f"PDF library: {len(distinct) - MAX_LIBRARY_WARNINGS} more kinds of warning")
    return out


def _encrypted_without_id(pdf: pdfplumber.PDF) -> bool:
    """An encrypted PDF whose trailer has no /ID: pdfminer then derives the key from an empty ID,
    which for most files gives garbage or nothing instead of text."""
    try:
        trailers = [xref.get_trailer() for xref in pdf.doc.xrefs]
    except Exception:
        return False
    encrypted = pdf.doc.encryption is not None or any("Encrypt" in t for t in trailers)
    return encrypted and not any("ID" in t for t in trailers)


def _read_pdf_checked(
    path: Path, data: bytes, options: ExtractOptions
) -> tuple[list[Block], int, list[str], dict[int, float]]:
    try:
        pdf = pdfplumber.open(path)
    except Exception as exc:  # pdfminer raises many unrelated types
        raise IngestError(path, _pdf_open_reason(exc)) from None
    with pdf:
        try:
            pages = len(pdf.pages)
        except Exception as exc:
            raise IngestError(path, _pdf_open_reason(exc)) from None
        if pages == 0:
            raise IngestError(path, "PDF has no pages")
        if pages > options.max_pages:
            raise IngestError(path, f"PDF has {pages} pages, more than the limit of {options.max_pages}")
        try:
            layouts, warnings = analyse_pdf(pdf)
        except IngestError:
            raise
        except Exception as exc:
            raise IngestError(path, f"corrupt or truncated PDF ({_short(exc)})") from None
        no_id = _encrypted_without_id(pdf)
        if no_id and not any(layout.lines or layout.tables for layout in layouts):
            raise IngestError(
                path,
                "encrypted PDF without an /ID in its trailer: no text could be decrypted; "
                "decrypt it first (qpdf --decrypt IN OUT)",
            )
        ocr_pages, ocr_warnings = _ocr_pages(path, data, pdf, layouts, options)
        if ocr_pages:  # again with the OCR'd pages: running headers are found across all pages
            layouts, warnings = analyse_pdf(pdf, {n: page.words for n, page in ocr_pages.items()})
    warnings = ocr_warnings + warnings
    if not any(layout.lines or layout.tables for layout in layouts):
        if options.ocr == "never":
            hint = "run with --ocr auto to read it by OCR"
        elif ocr_pages:
            hint = "OCR found no text either"
        else:
            hint = "and no page image to read by OCR"
        raise IngestError(path, f"PDF has no text layer (scanned image?); {hint}")
    empty = [layout.number for layout in layouts if not layout.lines and not layout.tables]
    if empty:
        warnings.append(f"{len(empty)} page(s) without text: {', '.join(map(str, empty[:10]))}")
    confidence = {n: page.confidence for n, page in ocr_pages.items()}
    if confidence:
        low = min(confidence, key=lambda n: confidence[n])
        mean = sum(confidence.values()) / len(confidence)
        warnings.append(
            f"{len(confidence)} page(s) read by OCR, mean word confidence {mean:.0f} "
            f"(lowest {confidence[low]:.0f}, page {low})"
        )
    blocks = [
        replace(b, ocr=True) if any(n in ocr_pages for n in range(b.page_start, b.page_end + 1)) else b
        for b in build_blocks(layouts)
    ]
    return blocks, pages, warnings, confidence


def _pdf_open_reason(exc: Exception) -> str:
    # pdfplumber wraps pdfminer's PDFPasswordIncorrect; its name is only in the args.
    text = f"{type(exc).__name__} {exc!r}".lower()
    if "password" in text or "encrypt" in text:
        return "encrypted PDF (password protected); decrypt it first"
    return f"corrupt or truncated PDF ({_short(exc)})"


def _short(exc: Exception) -> str:
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}"[:160] if message else type(exc).__name__


def _read_docx_blocks(path: Path) -> tuple[list[Block], int, list[str]]:
    import docx  # python-docx; imported here so PDF-only runs do not pay for it

    try:
        document = docx.Document(str(path))
    except Exception as exc:  # python-docx raises zipfile, KeyError, ValueError and its own errors
        raise IngestError(path, f"not a readable .docx file ({_short(exc)})") from None
    blocks: list[Block] = []
    section: list[tuple[int, str]] = []
    for paragraph in document.paragraphs:
        text = clean_text(paragraph.text).strip()
        if not text:
            continue
        style = (paragraph.style.name if paragraph.style is not None else "") or ""
        heading = re.match(r"(?:Heading|Kop)\s*(\d)", style)
        if heading or style in ("Title", "Titel"):
            level = int(heading.group(1)) if heading else 0
            while section and section[-1][0] >= level:
                section.pop()
            blocks.append(Block("heading", text, 1, 1, tuple(t for _, t in section), None, level))
            section.append((level, text))
        else:
            blocks.append(Block("paragraph", text, 1, 1, tuple(t for _, t in section)))
    for table in document.tables:
        for row in table.rows:
            cells = [clean_text(cell.text).strip() for cell in row.cells]
            if any(cells):
                blocks.append(Block("table", " | ".join(cells), 1, 1, tuple(t for _, t in section)))
    return blocks, 1, []


HEADING_LINE = re.compile(r"^(?:#{1,6}\s+\S.*|\d+(?:\.\d+)*\.?\s+[A-ZÀ-Ý].{0,80})$")


def _read_txt_blocks(path: Path, data: bytes) -> tuple[list[Block], int, list[str]]:
    try:
        raw = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise IngestError(path, "text file is not UTF-8") from None
    raw = clean_text(raw.replace("\r\n", "\n").replace("\r", "\n").replace("\f", "\n\n"))
    blocks: list[Block] = []
    section: list[tuple[int, str]] = []
    for chunk in re.split(r"\n\s*\n", raw):
        lines = [line.strip() for line in chunk.split("\n") if line.strip()]
        if not lines:
            continue
        if len(lines) == 1 and HEADING_LINE.match(lines[0]) and not lines[0].endswith((".", ",", ";")):
            text = lines[0].lstrip("#").strip()
            numbering = re.match(r"^(\d+(?:\.\d+)*)", text)
            level = (numbering.group(1).count(".") + 1) if numbering else lines[0].count("#") or 1
            while section and section[-1][0] >= level:
                section.pop()
            blocks.append(Block("heading", text, 1, 1, tuple(t for _, t in section), None, level))
            section.append((level, text))
        else:
            blocks.append(Block("paragraph", join_lines(lines, set()), 1, 1, tuple(t for _, t in section)))
    return blocks, 1, []


# --------------------------------------------------------------------------- speakers

ROLE_WORDS = {
    "interviewer",
    "i",
    "r",
    "respondent",
    "deelnemer",
    "deelnemers",
    "moderator",
    "gespreksleider",
    "voorzitter",
    "onderzoeker",
    "participant",
    "spreker",
    "vs",
    "ha",
    "avg",
}
NOT_SPEAKERS = {
    "regio",
    "tabel",
    "figuur",
    "box",
    "bijlage",
    "bron",
    "noot",
    "afkortingen",
    "fase",
    "stap",
    "doel",
    "conclusie",
    "aanbeveling",
    "thema",
    "casus",
    "voorbeeld",
    "let",
    "opmerking",
    "toelichting",
    "definitie",
    "kader",
    "vraag",
    "antwoord",
    "inleiding",
    "samenvatting",
    "resultaten",
    "methode",
    "discussie",
    "narratieve",
    "bijvoorbeeld",
    "dus",
    "kortom",
    "ook",
    "voetnoot",
    "introductie",
    "professionals",
    "documenten",
    "legenda",
    "bronnen",
    "let op",
    "tip",
    "advies",
    "aanbevelingen",
    "conclusies",
    "opmerkingen",
}
_PARENS = r"\((?:[^()]|\([^()]*\))*\)"
SPEAKER_LABEL = re.compile(
    rf"^(?P<label>[A-Z][\w’'.&-]*(?:\s+(?:[A-Z][\w’'.&-]*|vanuit|van|de|der|den)){{0,3}}"
    rf"(?:\s*{_PARENS})?)\s*(?P<sep>:|\s[–-]\s*|–\s*|(?<=\))\.\s)\s*(?=\S)"
)


def _speaker_label(text: str) -> tuple[str, str, int] | None:
    """(label, separator, length of the label prefix) when ``text`` opens with one."""
    match = SPEAKER_LABEL.match(text)
    if not match:
        return None
    label = match.group("label").strip()
    first_word = label.split()[0].split("(")[0].strip(".")
    first = first_word.lower()
    if first in NOT_SPEAKERS:
        return None
    if first not in ROLE_WORDS and (re.search(r"\d", label) or first_word.isupper()):
        return None  # "Regio 1:", "Professionals (n = 7):", "ICT:" are not people
    return label, match.group("sep").strip() or "-", match.end()


def mark_speaker_turns(blocks: Sequence[Block]) -> list[Block]:
    """Turn paragraphs that open with a speaker label into ``turn`` blocks.

    A label counts when it is a role (Interviewer, I, R, Deelnemer …) or when
    the same name opens at least two paragraphs; with fewer than three turns in
    the whole document nothing is treated as a transcript (a report's
    "Regio 1: …" is not a speaker).
    """
    found = {i: _speaker_label(b.text) for i, b in enumerate(blocks) if b.kind == "paragraph"}
    found = {i: hit for i, hit in found.items() if hit}
    names = Counter(hit[0].split()[0].split("(")[0] for hit in found.values())

    def accepted(hit: tuple[str, str, int]) -> bool:
        first = hit[0].split()[0].split("(")[0]
        return first.lower() in ROLE_WORDS or names[first] >= 2

    turns = {i: hit for i, hit in found.items() if accepted(hit)}
    speakers = {hit[0].split()[0].split("(")[0] for hit in turns.values()}
    if len(turns) < 3 or len(speakers) < 2:
        return list(blocks)
    out = list(blocks)
    speaker: str | None = None
    for i, block in enumerate(blocks):
        if i in turns:
            speaker = turns[i][0]
            out[i] = replace(block, kind="turn", speaker=speaker)
        elif speaker and block.kind == "paragraph" and re.match(r"^[a-z(]", block.text):
            # A paragraph break inside a sentence: the same speaker goes on.
            out[i] = replace(block, kind="turn", speaker=speaker)
        elif block.kind != "footnote":
            speaker = None
    return out


# --------------------------------------------------------------------------- passages


def _group_sentences(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """One to three sentences per passage, short ones kept with a neighbour."""
    groups: list[list[tuple[int, int]]] = []
    for span in spans:
        words = len(text[span[0] : span[1]].split())
        if groups:
            current = groups[-1]
            current_words = sum(len(text[a:b].split()) for a, b in current)
            short_tail = len(text[current[-1][0] : current[-1][1]].split()) < 5
            fits = len(current) < MAX_SENTENCES_PER_PASSAGE and current_words + words <= MAX_WORDS_PER_PASSAGE
            if fits and (short_tail or current_words < 25 or words < 5):
                current.append(span)
                continue
        groups.append([span])
    return [(g[0][0], g[-1][1]) for g in groups]


def build_passages(blocks: Sequence[Block], doc_key: str, nlp: Language) -> tuple[str, list[Passage]]:
    """Join blocks into the cleaned document text and cut passages that index into it.

    Passage ids come from ``doc_key`` (the doc_id) and each passage's text, see
    :func:`pipeline.models.passage_id`."""
    parts: list[str] = []
    seen: Counter = Counter()
    passages: list[Passage] = []
    offset = 0
    for block in blocks:
        if parts:
            offset += 2  # the blank line between blocks
        body_start = 0
        if block.kind == "turn" and block.speaker and block.text.startswith(f"{block.speaker}: "):
            body_start = len(block.speaker) + 2  # transcripts write "Naam: " themselves
        elif block.kind == "turn" and block.speaker:
            hit = _speaker_label(block.text)
            body_start = hit[2] if hit else 0
        body = block.text[body_start:]
        if block.kind in ("heading", "table"):
            spans = [(0, len(body))]
        else:
            spans = _group_sentences(body, sentence_spans(nlp, body))
        for start, end in spans:
            a, b = offset + body_start + start, offset + body_start + end
            key = text_hash(body[start:end])
            seen[key] += 1
            passages.append(
                Passage(
                    id=passage_id(doc_key, body[start:end], seen[key] - 1),
                    kind=block.kind,
                    text=body[start:end],
                    page_start=block.page_start,
                    page_end=block.page_end,
                    char_start=a,
                    char_end=b,
                    section=block.section,
                    speaker=block.speaker,
                    ocr=block.ocr,
                    time_start=block.time_start,
                    time_end=block.time_end,
                )
            )
        parts.append(block.text)
        offset += len(block.text)
    return "\n\n".join(parts), passages


# --------------------------------------------------------------------------- public API


def read_blocks(path: Path, options: ExtractOptions = ExtractOptions()) -> tuple[list[Block], int, list[str], str]:
    """Layout blocks, page count, warnings and sha256 of one file."""
    blocks, pages, warnings, sha256, _ = _read_blocks(Path(path), options)
    return blocks, pages, warnings, sha256


def _read_blocks(path: Path, options: ExtractOptions) -> tuple[list[Block], int, list[str], str, dict[int, float]]:
    """:func:`read_blocks` plus the OCR confidence of each page read by OCR."""
    confidence: dict[int, float] = {}
    transcript: list[Block] | None = None
    if not path.exists():
        raise IngestError(path, "file not found")
    if path.is_dir():
        raise IngestError(path, "is a directory, not a document")
    data = path.read_bytes()
    if not data.strip():
        raise IngestError(path, "empty file")
    sha256 = hashlib.sha256(data).hexdigest()
    suffix = path.suffix.lower()
    try:
        if suffix in (".vtt", ".srt"):
            transcript = read_transcript(path, data)
        elif suffix == ".docx":
            transcript = docx_transcript_blocks(path)
        elif suffix == ".txt" and b"\x00" not in data[:4096]:
            try:
                transcript = timestamped_text_blocks(data.decode("utf-8-sig"))
            except UnicodeDecodeError:
                transcript = None  # the plain-text reader names the problem
    except TranscriptError as exc:
        raise IngestError(path, exc.reason) from None
    if transcript is not None:
        # Turns, speakers and times come from the transcript's own structure.
        return transcript, 1, [], sha256, confidence
    if suffix == ".pdf":
        blocks, pages, warnings, confidence = _read_pdf_blocks_ocr(path, data, options)
    elif suffix == ".docx":
        blocks, pages, warnings = _read_docx_blocks(path)
    elif suffix == ".txt":
        blocks, pages, warnings = _read_txt_blocks(path, data)
    else:
        raise IngestError(
            path, f"unsupported file type {suffix or '(none)'}; expected .pdf, .docx, .txt, .vtt or .srt"
        )
    if not any(b.text.strip() for b in blocks):
        raise IngestError(path, "no text found in the document")
    return mark_speaker_turns(blocks), pages, warnings, sha256, confidence


def extract_document(
    path: Path | str,
    nlp: Language,
    doc_id: str | None = None,
    title: str | None = None,
    options: ExtractOptions = ExtractOptions(),
) -> Document:
    """Extract one file into a :class:`Document` with passages.

    Raises :class:`IngestError` (one line, naming the file) for unusable input.
    """
    path = Path(path)
    blocks, pages, warnings, sha256, confidence = _read_blocks(path, options)
    text, passages = build_passages(blocks, doc_id or path.stem, nlp)
    headings = [b for b in blocks if b.kind == "heading" and b.page_start == 1]
    detected = min(headings, key=lambda b: b.heading_level or 99).text if headings else ""
    return Document(
        doc_id=doc_id or path.stem,
        source=str(path),
        sha256=sha256,
        pages=pages,
        title=title or detected or path.stem,
        text=text,
        passages=passages,
        warnings=warnings,
        ocr_confidence=confidence,
    )


@dataclass(frozen=True)
class ExtractJob:
    path: str
    doc_id: str | None = None
    title: str | None = None


@dataclass(frozen=True)
class ExtractResult:
    job: ExtractJob
    document: Document | None = None
    error: str | None = None


def _extract_chunk(jobs: list[ExtractJob], options: ExtractOptions) -> list[ExtractResult]:
    nlp = make_nlp(load_glossary(), lemmas=False)  # built once per worker, not per file
    results = []
    for job in jobs:
        try:
            doc = extract_document(job.path, nlp, job.doc_id, job.title, options)
            results.append(ExtractResult(job, document=doc))
        except IngestError as exc:
            results.append(ExtractResult(job, error=str(exc)))
    return results


def extract_many(
    jobs: Iterable[ExtractJob], workers: int = 2, options: ExtractOptions = ExtractOptions()
) -> list[ExtractResult]:
    """Extract files in parallel across processes; results keep the input order.

    A bad file yields a result with ``error`` set; it never stops the others.
    """
    jobs = list(jobs)
    workers = max(1, min(workers, len(jobs)))
    if workers == 1:
        return _extract_chunk(jobs, options)
    # Largest files first, dealt round-robin, so the workers finish together.
    order = sorted(range(len(jobs)), key=lambda i: -_size(jobs[i].path))
    chunks: list[list[int]] = [order[w::workers] for w in range(workers)]
    results: dict[int, ExtractResult] = {}
    with ProcessPoolExecutor(max_workers=workers) as pool:
        futures = [(chunk, pool.submit(_extract_chunk, [jobs[i] for i in chunk], options)) for chunk in chunks]
        for chunk, future in futures:
            for index, result in zip(chunk, future.result(), strict=True):
                results[index] = result
    return [results[i] for i in range(len(jobs))]


def _size(path: str) -> int:
    try:
        return Path(path).stat().st_size
    except OSError:
        return 0
