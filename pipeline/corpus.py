"""Corpus-level ingestion: validate the manifest, extract what changed, store it.

A bad row or a bad file never stops the others: it is logged as a failure with
a one-line reason naming the file, and the report says what failed.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path

from pydantic import ValidationError
from sqlalchemy.engine import Engine

from pipeline.carry import save_document_carrying
from pipeline.ingest import STAGE_VERSION, ExtractJob, ExtractOptions, ExtractResult, IngestError, extract_many
from pipeline.models import ManifestRow
from pipeline.store import is_current, record_failure, retire_documents, stored_sha256s

REQUIRED_COLUMNS = ("doc_id", "file", "sector")


@dataclass(frozen=True)
class ManifestProblem:
    doc_id: str | None
    source: str
    reason: str

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}"


@dataclass
class Manifest:
    rows: list[ManifestRow]
    problems: list[ManifestProblem]


def read_manifest(corpus_dir: Path) -> Manifest:
    """Validated manifest rows plus one problem per unusable row.

    Raises :class:`IngestError` only when the manifest itself is unusable.
    """
    path = Path(corpus_dir) / "manifest.csv"
    if not path.is_file():
        raise IngestError(path, "manifest not found")
    reader = csv.DictReader(io.StringIO(_manifest_text(path), newline=""))
    try:
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise IngestError(path, f"missing column(s): {', '.join(missing)}")
        raw_rows = list(enumerate(reader, start=2))
    except csv.Error as exc:
        raise IngestError(path, f"not a readable CSV file ({exc})") from None
    rows: list[ManifestRow] = []
    problems: list[ManifestProblem] = []
    first_line: dict[str, int] = {}
    for line, raw in raw_rows:
        doc_id = (raw.get("doc_id") or "").strip() or None
        where = f"{path} line {line}"
        try:
            row = ManifestRow.model_validate(raw)
        except ValidationError as exc:
            error = exc.errors()[0]
            reason = f"{error['loc'][0]}: {error['msg'].removeprefix('Value error, ')}"
            problems.append(ManifestProblem(doc_id, where, reason))
            continue
        if row.doc_id in first_line:
            problems.append(
                ManifestProblem(
                    None, where, f"duplicate doc_id {row.doc_id!r} (first on line {first_line[row.doc_id]})"
                )
            )
            continue
        first_line[row.doc_id] = line
        file = Path(corpus_dir) / row.file
        outside = _outside_corpus(Path(corpus_dir), row.file)
        if outside:
            problems.append(ManifestProblem(row.doc_id, str(file), f"{outside} (manifest line {line}); refused"))
            continue
        if not file.is_file():
            problems.append(ManifestProblem(row.doc_id, str(file), f"file not found (manifest line {line})"))
            continue
        rows.append(row)
    return Manifest(rows, problems)


def _manifest_text(path: Path) -> str:
    """The manifest as text: UTF-8 (with or without BOM) or UTF-16 with BOM (Excel's "Unicode text");
    anything else is one line, not a traceback."""
    data = path.read_bytes()
    try:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
            return data.decode("utf-16")
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    raise IngestError(path, "manifest is not UTF-8 or UTF-16 text; save it as CSV UTF-8")


def _outside_corpus(corpus_dir: Path, name: str) -> str | None:
    """Why a manifest ``file`` may not be read: an absolute path, or one that resolves (symbolic
    links followed) outside the corpus folder. None when it lies inside.

    The review screen serves stored sources to every logged-in user, so a manifest must not
    reach files elsewhere on the machine."""
    if Path(name).is_absolute() or re.match(r"^[A-Za-z]:[\\/]", name):
        return "an absolute path; files must lie inside the corpus folder"
    root = corpus_dir.resolve()
    try:
        target = (corpus_dir / name).resolve()
    except (OSError, RuntimeError) as exc:  # a symbolic link loop
        return f"cannot be resolved ({type(exc).__name__})"
    if not target.is_relative_to(root):
        return "resolves outside the corpus folder (a symbolic link or ..)"
    return None


@dataclass
class IngestReport:
    ingested: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failed: list[ManifestProblem] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    # doc_id -> how its analysts' decisions were carried onto the new passages (pipeline.carry)
    carried: dict[str, dict] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed

    def to_json(self) -> dict:
        return {
            "ingested": self.ingested,
            "unchanged": self.unchanged,
            "retired": self.retired,
            "carried": self.carried,
            "failed": [{"doc_id": f.doc_id, "source": f.source, "reason": f.reason} for f in self.failed],
        }


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _store_result(
    engine: Engine, result: ExtractResult, row: ManifestRow, report: IngestReport, corpus_dir: Path | None = None
) -> None:
    if result.document is not None:
        carried = save_document_carrying(engine, result.document, row, STAGE_VERSION, corpus_dir)
        report.ingested.append(row.doc_id)
        if carried.exact + carried.aligned + carried.relook + carried.removed:
            report.carried[row.doc_id] = carried.to_json()
    else:
        error = result.error or "unknown error"
        reason = error.split(": ", 1)[1] if error.startswith(result.job.path) else error
        record_failure(engine, result.job.path, reason, row.doc_id)
        report.failed.append(ManifestProblem(row.doc_id, result.job.path, reason))


def row_is_current(engine: Engine, corpus_dir: Path, row: ManifestRow) -> bool:
    """The stored copy of this manifest row is current: same file content and same ingest version."""
    return is_current(engine, row.doc_id, file_sha256(Path(corpus_dir) / row.file), STAGE_VERSION)


def with_ocr_cache(options: ExtractOptions, engine: Engine) -> ExtractOptions:
    """Options whose OCR results are cached in this store (a warm run never OCRs again)."""
    if options.ocr_cache_url or engine.url.database in (None, "", ":memory:"):
        return options
    return replace(options, ocr_cache_url=engine.url.render_as_string(hide_password=False))


def ingest_document(
    engine: Engine, corpus_dir: Path, row: ManifestRow, options: ExtractOptions = ExtractOptions()
) -> IngestReport:
    """Ingest one manifest row unless the stored copy is current (same sha256 and stage version)."""
    report = IngestReport()
    path = Path(corpus_dir) / row.file
    options = with_ocr_cache(options, engine)
    if row_is_current(engine, corpus_dir, row):
        report.unchanged.append(row.doc_id)
        return report
    result = extract_many([ExtractJob(str(path), row.doc_id, row.title or None)], workers=1, options=options)[0]
    _store_result(engine, result, row, report, Path(corpus_dir))
    return report


def drop_duplicate_content(engine: Engine, corpus_dir: Path, manifest: Manifest) -> None:
    """A file whose bytes equal another listed or stored document's is a duplicate: counting it
    twice would double its findings in every matrix, and its passages would share ids."""
    owners = stored_sha256s(engine)
    kept = []
    for row in manifest.rows:
        sha = file_sha256(Path(corpus_dir) / row.file)
        owner = owners.get(sha)
        if owner is not None and owner != row.doc_id:
            manifest.problems.append(
                ManifestProblem(
                    row.doc_id, str(Path(corpus_dir) / row.file), f"same content as document {owner!r} (duplicate file)"
                )
            )
            continue
        owners[sha] = row.doc_id
        kept.append(row)
    manifest.rows = kept


def start_corpus(engine: Engine, corpus_dir: Path) -> tuple[Manifest, IngestReport]:
    """Validate the manifest, retire documents no longer listed, refuse duplicate files, log problems."""
    manifest = read_manifest(corpus_dir)
    report = IngestReport()
    listed = {row.doc_id for row in manifest.rows} | {p.doc_id for p in manifest.problems if p.doc_id}
    report.retired = retire_documents(engine, listed)
    drop_duplicate_content(engine, corpus_dir, manifest)
    for problem in manifest.problems:
        record_failure(engine, problem.source, problem.reason, problem.doc_id)
        report.failed.append(problem)
    return manifest, report


def ingest_corpus(
    corpus_dir: Path,
    engine: Engine,
    workers: int = 2,
    options: ExtractOptions = ExtractOptions(),
) -> IngestReport:
    """Ingest every manifest document that changed since it was last stored, in parallel processes."""
    corpus_dir = Path(corpus_dir)
    manifest, report = start_corpus(engine, corpus_dir)
    by_id = {row.doc_id: row for row in manifest.rows}
    jobs = []
    for row in manifest.rows:
        if row_is_current(engine, corpus_dir, row):
            report.unchanged.append(row.doc_id)
        else:
            jobs.append(ExtractJob(str(corpus_dir / row.file), row.doc_id, row.title or None))
    for result in extract_many(jobs, workers=workers, options=with_ocr_cache(options, engine)):
        assert result.job.doc_id is not None
        _store_result(engine, result, by_id[result.job.doc_id], report, corpus_dir)
    return report


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write via a temp file and rename, so a reader never sees half a file (text as UTF-8)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are for colleagues to read too
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_json(path: Path, data: object) -> None:
    write_atomic(path, json.dumps(data, ensure_ascii=False, indent=2) + "\n")
