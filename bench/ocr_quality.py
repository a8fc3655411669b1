"""OCR quality and speed on scanned versions of the four bundled PDFs.

Makes image-only copies of ``corpus/*.pdf`` the way a scanner would: each page
rendered at 200 or 300 dpi in grey, rotated by a small random angle (±1°),
slightly blurred, with Gaussian grain and speckle (salt-and-pepper) noise, and
wrapped as a PDF with no text layer at the original page size. Then ``mgz``'s
own extraction (``--ocr auto``: every page is OCR'd because none has a text
layer) reads them, and the cleaned text is scored against the
``*.truth.json`` ground truth with ``pipeline.fidelity`` (the same scorer as
the text-layer fidelity tests): bigram recall, word precision, running-header
leaks (raw, and "folded": straight and typographic apostrophes and dashes counted
as one, which Tesseract cannot tell apart). Speed is pages per second of wall time for the whole extraction
(OCR included, no cache), documents in parallel over ``--workers`` processes.

    python bench/ocr_quality.py --dpi 200,300 --workers 2 [--docs ID,ID] [--out DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import img2pdf
import numpy as np
import pypdfium2 as pdfium
from PIL import Image, ImageFilter

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.fidelity import score  # noqa: E402
from pipeline.ingest import ExtractJob, ExtractOptions, extract_many  # noqa: E402

CORPUS = ROOT / "corpus"
TRUTH = Path("/work/shared/corpus")
# Tesseract cannot tell a typographic apostrophe or dash from a straight one; the "folded"
# scores map both sides to one form so they count words misread, not typography.
FOLD = str.maketrans({"’": "'", "‘": "'", "`": "'", "“": '"', "”": '"', "—": "-", "–": "-"})


def scan_page(image: Image.Image, rng: random.Random) -> Image.Image:
    """A clean rendering made to look scanned: skew, blur, grain and speckles."""
    grey = image.convert("L")
    angle = rng.uniform(-1.0, 1.0)
    grey = grey.rotate(angle, resample=Image.BICUBIC, expand=False, fillcolor=255)
    grey = grey.filter(ImageFilter.GaussianBlur(radius=0.7))
    pixels = np.asarray(grey, dtype=np.float32)
    noise = np.random.default_rng(rng.randrange(2**32))
    pixels = pixels + noise.normal(0.0, 12.0, pixels.shape)
    speckle = noise.random(pixels.shape)
    pixels[speckle < 0.002] = 0.0  # dust
    pixels[speckle > 0.998] = 255.0  # drop-outs
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L")


def make_scan(source: Path, target: Path, dpi: int, seed: int) -> int:
    """Write an image-only PDF of ``source`` to ``target``; returns the page count."""
    rng = random.Random(seed)
    pdf = pdfium.PdfDocument(str(source))
    images = []
    for page in pdf:
        rendered = page.render(scale=dpi / 72).to_pil()
        buffer = io.BytesIO()
        scan_page(rendered, rng).save(buffer, format="PNG", optimize=False)
        images.append(buffer.getvalue())
    layout = img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))
    target.write_bytes(img2pdf.convert(images, layout_fun=layout))
    return len(images)


def _cpu_seconds() -> float:
    """User + system CPU of this process and its finished children (ocrmypdf, Tesseract)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _cached(cache_url: str, scan: Path) -> bool:
    from pipeline.ocr import engine_id
    from pipeline.store import cached_ocr, open_store

    sha256 = hashlib.sha256(scan.read_bytes()).hexdigest()
    return cached_ocr(open_store(cache_url), sha256, engine_id()) is not None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dpi", default="200,300")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--docs", default="", help="comma-separated doc ids (default: all four)")
    parser.add_argument("--out", default="", help="folder for the scanned PDFs and results.json")
    args = parser.parse_args()
    doc_ids = [d for d in args.docs.split(",") if d] or sorted(p.stem for p in CORPUS.glob("*.pdf"))
    out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="mgz-ocr-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    results = []
    for dpi in [int(d) for d in args.dpi.split(",")]:
        jobs, pages = [], 0
        for doc_id in doc_ids:
            scan = out / f"{doc_id}-{dpi}dpi.pdf"
            seed = 1000 * dpi + sorted(p.stem for p in CORPUS.glob("*.pdf")).index(doc_id)
            if scan.exists():  # made by an earlier run with the same seed: reuse it
                pages += len(pdfium.PdfDocument(str(scan)))
            else:
                pages += make_scan(CORPUS / f"{doc_id}.pdf", scan, dpi, seed=seed)
            jobs.append(ExtractJob(str(scan), doc_id))
        # OCR results go to a cache store next to the scans (for looking at them afterwards);
        # a scan found there was not OCR'd in this run and its time is no OCR speed.
        cache_url = f"sqlite:///{out / 'ocr-cache.sqlite'}"
        warm = [job.path for job in jobs if _cached(cache_url, Path(job.path))]
        options = ExtractOptions(ocr="auto", ocr_progress=False, ocr_cache_url=cache_url)
        started, cpu_before = time.perf_counter(), _cpu_seconds()
        extracted = extract_many(jobs, workers=args.workers, options=options)
        seconds, cpu = time.perf_counter() - started, _cpu_seconds() - cpu_before
        for result in extracted:
            if result.document is None:
                print(f"{result.job.path}: {result.error}", file=sys.stderr)
                continue
            doc = result.document
            truth = json.loads((TRUTH / f"{doc.doc_id}.pdf.truth.json").read_text("utf-8"))
            fid = score(doc.text, truth["paragraphs"], truth["header"])
            truth_folded = [p.translate(FOLD) for p in truth["paragraphs"]]
            folded = score(doc.text.translate(FOLD), truth_folded, truth["header"].translate(FOLD))
            row = {
                "doc_id": doc.doc_id,
                "dpi": dpi,
                "pages": doc.pages,
                "bigram_recall": round(fid.bigram_recall, 4),
                "word_precision": round(fid.word_precision, 4),
                "word_recall": round(fid.word_recall, 4),
                "bigram_recall_folded": round(folded.bigram_recall, 4),
                "word_precision_folded": round(folded.word_precision, 4),
                "header_lines": fid.header_lines,
                "hyphen_fragments": fid.hyphen_fragments,
                "ocr_pages": len(doc.ocr_confidence),
                "mean_confidence": round(sum(doc.ocr_confidence.values()) / max(1, len(doc.ocr_confidence)), 1),
            }
            results.append(row)
            print(json.dumps(row), flush=True)
        speed = {"dpi": dpi, "pages": pages, "seconds": round(seconds, 1), "pages_per_s": round(pages / seconds, 3)}
        speed["from_cache"] = warm
        # CPU time (this process and its OCR subprocesses) does not depend on what else runs on
        # the machine: 2 / cpu_s_per_page is the pages/s two otherwise idle cores would reach.
        speed["cpu_s_per_page"] = round(cpu / pages, 2)
        speed["idle_2core_pages_per_s"] = round(2 * pages / cpu, 3) if cpu else None
        speed["load_average"] = os.getloadavg()[0]
        results.append({"speed": speed, "workers": args.workers})
        print(json.dumps({"speed": speed, "workers": args.workers}), flush=True)
    (out / "results.json").write_text(json.dumps(results, indent=1), "utf-8")
    print(f"results in {out / 'results.json'}")


if __name__ == "__main__":
    main()
