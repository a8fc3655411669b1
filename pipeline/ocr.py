"""OCR for scanned PDFs: pages without a usable text layer are read by Tesseract (Dutch).

A scanned report or a signed-and-scanned interview summary has no text layer,
or one that is only garbage. Those pages go through ``ocrmypdf`` (deskew and
page rotation, Tesseract with the ``nld`` model, its own text-layer PDF
renderer), and the words pdfplumber reads back from the OCR'd page are handed
to the ordinary layout analysis (``pipeline.pdf_layout.analyse_pdf``), so
columns, running headers and hyphenation are handled exactly as for a born-
digital PDF. Tesseract's hOCR gives each page's mean word confidence.

OCR is slow (seconds per page), so its result is cached in the store by the
file's sha256 and the engine (Tesseract version, language, settings): a warm
run never OCRs again. ocrmypdf runs as a subprocess with its own temporary
folder, which is where the per-page hOCR files are read from and which lets
progress be reported per page while it works.
"""

from __future__ import annotations

import functools
import gzip
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pdfplumber

OCR_MODES = ("auto", "never", "force")
LANGUAGE = "nld"
# A page whose text layer has fewer dictionary words than this share is read by OCR.
MIN_DICTIONARY_SHARE = 0.2
MIN_WORDS_FOR_TEXT_LAYER = 5
OCRMYPDF_ARGS = ["--deskew", "--rotate-pages", "--output-type", "pdf", "--optimize", "0", "--pdf-renderer", "sandwich"]
ENABLE_HINT = (
    "install Tesseract to read it by OCR (Debian/Ubuntu: apt-get install tesseract-ocr tesseract-ocr-nld "
    "ghostscript; macOS: brew install tesseract tesseract-lang ghostscript), or leave it out of the manifest"
)

Progress = Callable[[int, int], None]


class OcrError(RuntimeError):
    """OCR could not run or failed; ``str()`` is a one-line reason without the file name."""


@dataclass(frozen=True)
class OcrPage:
    """What OCR made of one page: pdfplumber word dicts, the page size and Tesseract's confidence."""

    words: list[dict]
    width: float
    height: float
    confidence: float

    def to_json(self) -> dict:
        return {"words": self.words, "width": self.width, "height": self.height, "confidence": self.confidence}

    @staticmethod
    def from_json(data: dict) -> OcrPage:
        return OcrPage(list(data["words"]), float(data["width"]), float(data["height"]), float(data["confidence"]))


# --------------------------------------------------------------------------- which pages


@functools.cache
def _dutch_words() -> frozenset[str]:
    """Word forms and lemmas of spaCy's Dutch lookup table (read-only data, loaded once per process)."""
    path = resources.files("spacy_lookups_data").joinpath("data", "nl_lemma_lookup.json.gz")
    with gzip.open(str(path), "rt", encoding="utf-8") as handle:
        table = json.load(handle)
    return frozenset(table) | frozenset(table.values())


def dictionary_share(words: list[str]) -> float:
    """Share of the alphabetic words that are Dutch dictionary words (garbage text layers score ~0)."""
    candidates = [w.strip(".,;:!?()[]\"'“”‘’").lower() for w in words]
    candidates = [w for w in candidates if len(w) >= 2]
    if not candidates:
        return 0.0
    vocabulary = _dutch_words()
    return sum(w in vocabulary for w in candidates) / len(candidates)


def pages_needing_ocr(pdf: pdfplumber.PDF, page_words: list[list[str]], mode: str = "auto") -> list[int]:
    """1-based numbers of the pages OCR should read: all with ``force``, none with ``never``,
    and with ``auto`` those with an image but no (or only a garbage) text layer.

    ``page_words`` are the words the layout analysis already read from each page
    (so deciding costs no second pass over a born-digital PDF).
    """
    if mode not in OCR_MODES:
        raise ValueError(f"unknown OCR mode {mode!r} (expected one of {', '.join(OCR_MODES)})")
    if mode == "never":
        return []
    if mode == "force":
        return list(range(1, len(pdf.pages) + 1))
    needed = []
    for number, (page, words) in enumerate(zip(pdf.pages, page_words, strict=True), start=1):
        if not _readable(words) and page.images:  # a blank or vector-only page has nothing to OCR
            needed.append(number)
    return needed


def _readable(words: list[str]) -> bool:
    """A usable text layer: enough words, of which at least 20 % are Dutch dictionary words.

    Running Dutch text is 30-50 % function words, so a page passing on spaCy's stop
    words alone never pays for loading the 200,000-word lookup table."""
    if len(words) < MIN_WORDS_FOR_TEXT_LAYER:
        return False
    from spacy.lang.nl.stop_words import STOP_WORDS

    cleaned = [w.strip(".,;:!?()[]\"'“”‘’").lower() for w in words]
    if sum(w in STOP_WORDS for w in cleaned) >= 0.1 * len(cleaned):
        return True
    return dictionary_share(words) >= MIN_DICTIONARY_SHARE


# --------------------------------------------------------------------------- running OCR


def missing_tesseract() -> str | None:
    """Why OCR cannot run here (Tesseract or its Dutch model absent), or None."""
    binary = shutil.which("tesseract")
    if binary is None:
        return "Tesseract is not installed"
    try:
        listed = subprocess.run([binary, "--list-langs"], capture_output=True, text=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        return f"Tesseract does not run ({type(exc).__name__})"
    if LANGUAGE not in listed.split():
        return f"Tesseract's Dutch model ({LANGUAGE}) is not installed"
    if shutil.which("gs") is None:
        return "Ghostscript (needed by ocrmypdf) is not installed"
    return None


@functools.cache
def engine_id() -> str:
    """Cache key part: another Tesseract version, language or setting OCRs again."""
    binary = shutil.which("tesseract")
    version = "none"
    if binary:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=30)
        first = (out.stdout or out.stderr).splitlines()[:1]
        version = first[0].split()[-1] if first else "unknown"
    import ocrmypdf

    clean = "-clean" if _clean_args() else ""
    return f"tesseract-{version}/{LANGUAGE}/ocrmypdf-{ocrmypdf.__version__}/sandwich-deskew-rotate{clean}"[:80]


def run_ocr(
    path: Path, pages: list[int], progress: Progress | None = None, jobs: int = 1, timeout_s: float = 3600
) -> dict[int, OcrPage]:
    """OCR the given pages of a PDF; returns page number → :class:`OcrPage`.

    ``jobs`` is ocrmypdf's page parallelism (one per extraction worker by default,
    since ``mgz`` already runs documents in parallel).
    """
    reason = missing_tesseract()
    if reason:
        raise OcrError(f"{reason}; {ENABLE_HINT}")
    with tempfile.TemporaryDirectory(prefix="mgz-ocr-") as work:
        work_dir = Path(work)
        out = work_dir / "ocr.pdf"
        temp = work_dir / "tmp"
        temp.mkdir()
        command = [
            sys.executable, "-m", "ocrmypdf", "-q", "-l", LANGUAGE, "--force-ocr", "--keep-temporary-files",
            "--tesseract-config", "hocr", "--jobs", str(max(1, jobs)), "--pages", ",".join(map(str, pages)),
            *OCRMYPDF_ARGS, *_clean_args(), str(path), str(out),
        ]  # fmt: skip
        env = {**os.environ, "TMPDIR": str(temp), "OMP_THREAD_LIMIT": "1"}
        log = work_dir / "ocrmypdf.log"  # a file, not a pipe: a full pipe would stall a long run
        with log.open("w", encoding="utf-8") as stderr_file:
            process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr_file, env=env)
            try:
                reported = _wait(process, temp, len(pages), progress, timeout_s)
            finally:
                if process.poll() is None:  # interrupted or timed out: never leave it running
                    process.kill()
                    process.wait()
        if process.returncode != 0 or not out.exists():
            lines = [line for line in log.read_text("utf-8", errors="replace").splitlines() if line.strip()]
            raise OcrError(f"OCR failed ({(lines[-1:] or [f'exit {process.returncode}'])[0][:160]})")
        if progress is not None and reported != len(pages):
            progress(len(pages), len(pages))
        confidences = _hocr_confidences(temp)
        result: dict[int, OcrPage] = {}
        with pdfplumber.open(out) as pdf:
            for number in pages:
                page = pdf.pages[number - 1]
                words = page.extract_words(extra_attrs=["fontname", "size"], keep_blank_chars=False)
                result[number] = OcrPage(
                    words=[_plain_word(w) for w in words],
                    width=float(page.width),
                    height=float(page.height),
                    confidence=confidences.get(number, 0.0),
                )
        return result


def _wait(process: subprocess.Popen, temp: Path, total: int, progress: Progress | None, timeout_s: float) -> int:
    """Wait for ocrmypdf, reporting pages done (its per-page hOCR files); returns the last count."""
    started, reported = time.monotonic(), -1
    while process.poll() is None:
        done = _pages_done(temp)
        if progress is not None and done >= 0 and done != reported:
            progress(done, total)
            reported = done
        if time.monotonic() - started > timeout_s:
            raise OcrError(f"OCR took longer than {timeout_s:.0f} s")
        time.sleep(0.3)
    return reported


def _pages_done(temp: Path) -> int:
    """hOCR files written so far; folders other programs create and delete there are skipped."""
    done = 0
    try:
        folders = [entry for entry in os.scandir(temp) if entry.name.startswith("ocrmypdf.io.")]
        for folder in folders:
            done += sum(1 for name in os.listdir(folder.path) if name.endswith("_ocr_tess.hocr"))
    except OSError:  # a folder removed while we looked: count again next time
        return -1
    return done


def _clean_args() -> list[str]:
    """unpaper removes speckles and scanner borders before OCR (``--clean``); optional."""
    return ["--clean"] if shutil.which("unpaper") else []


def _plain_word(word: dict) -> dict:
    """The fields the layout analysis uses, as JSON-safe plain values (for the cache)."""
    keys = ("text", "x0", "x1", "top", "bottom", "doctop", "upright", "height", "width", "fontname", "size")
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in word.items() if k in keys}


_WCONF = re.compile(r"x_wconf (\d+)")


def _hocr_confidences(temp: Path) -> dict[int, float]:
    """Page number → mean word confidence from ocrmypdf's kept hOCR files (``000003_ocr_tess.hocr``)."""
    out: dict[int, float] = {}
    for hocr in temp.glob("ocrmypdf.io.*/*_ocr_tess.hocr"):
        number = int(hocr.name.split("_")[0])
        values = [int(v) for v in _WCONF.findall(hocr.read_text(encoding="utf-8", errors="replace"))]
        out[number] = round(sum(values) / len(values), 1) if values else 0.0
    return out


def ocr_with_cache(
    path: Path,
    sha256: str,
    pages: list[int],
    store_url: str | None,
    progress: Progress | None = None,
    jobs: int = 1,
) -> tuple[dict[int, OcrPage], bool]:
    """OCR pages, reading and filling the store's cache; returns the pages and whether OCR ran."""
    engine = None
    cached: dict[int, OcrPage] = {}
    if store_url:
        from pipeline.store import cached_ocr, open_store

        engine = open_store(store_url)
        stored = cached_ocr(engine, sha256, engine_id()) or {}
        cached = {int(k): OcrPage.from_json(v) for k, v in stored.items()}
    todo = [p for p in pages if p not in cached]
    if not todo:
        return {p: cached[p] for p in pages}, False
    fresh = run_ocr(path, todo, progress, jobs)
    if engine is not None:
        from pipeline.store import save_ocr

        save_ocr(engine, sha256, engine_id(), {str(k): v.to_json() for k, v in fresh.items()})
    return {**{p: cached[p] for p in pages if p in cached}, **fresh}, True


def stderr_progress(name: str) -> Progress:
    """A progress callback that prints ``OCR name: page 3/19`` lines to stderr."""

    def report(done: int, total: int) -> None:
        print(f"OCR {name}: {done}/{total} pages", file=sys.stderr, flush=True)

    return report
