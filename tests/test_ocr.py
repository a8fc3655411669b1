"""Scanned PDFs: a real image-only PDF made here, OCR'd by real Tesseract, cached in a real store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from pipeline.fidelity import score
from pipeline.ingest import ExtractOptions, IngestError, extract_document
from pipeline.ocr import dictionary_share, missing_tesseract

from .conftest import CORPUS

SOURCE = CORPUS / "vg-deelsessie-huisartsenzorg.pdf"
needs_tesseract = pytest.mark.skipif(
    missing_tesseract() is not None, reason=f"{missing_tesseract()} (the .ci/run script installs it)"
)


def scanned_copy(source: Path, target: Path, page_index: int = 1, dpi: int = 200) -> Path:
    """One page rendered to a slightly rotated grey image and wrapped as a PDF without text layer."""
    import img2pdf
    import pypdfium2 as pdfium
    from PIL import Image

    page = pdfium.PdfDocument(str(source))[page_index]
    image = page.render(scale=dpi / 72).to_pil().convert("L")
    image = image.rotate(0.6, resample=Image.BICUBIC, fillcolor=255)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    target.write_bytes(img2pdf.convert([buffer.getvalue()], layout_fun=img2pdf.get_fixed_dpi_layout_fun((dpi, dpi))))
    return target


def one_page_text_layer(source: Path, target: Path, page_index: int = 1) -> Path:
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.add_page(PdfReader(str(source)).pages[page_index])
    with target.open("wb") as handle:
        writer.write(handle)
    return target


@pytest.fixture(scope="module")
def scanned(tmp_path_factory, nlp):
    """The scan, the store URL its OCR was cached in, the OCR'd document and the text-layer reference."""
    folder = tmp_path_factory.mktemp("ocr")
    scan = scanned_copy(SOURCE, folder / "scan.pdf")
    reference = extract_document(one_page_text_layer(SOURCE, folder / "tekstlaag.pdf"), nlp)
    url = f"sqlite:///{folder / 'mgz.sqlite'}"
    if missing_tesseract() is not None:
        return scan, url, None, reference
    doc = extract_document(scan, nlp, "scan", options=ExtractOptions(ocr_cache_url=url, ocr_progress=False))
    return scan, url, doc, reference


@needs_tesseract
def test_image_only_pdf_is_read_by_ocr_through_the_layout_analysis(scanned):
    _, _, doc, reference = scanned
    assert doc.passages and all(p.ocr for p in doc.passages)
    assert set(doc.ocr_confidence) == {1} and doc.ocr_confidence[1] > 70
    assert any("read by OCR" in w for w in doc.warnings)
    result = score(doc.text, reference.text.split("\n\n"), "")
    assert result.bigram_recall >= 0.9 and result.word_precision >= 0.9, result


@needs_tesseract
def test_warm_cache_never_runs_ocr_again(scanned, nlp, monkeypatch):
    scan, url, doc, _ = scanned
    # With Tesseract off the PATH, only the store's cache can supply the words.
    monkeypatch.setenv("PATH", "/nonexistent")
    assert missing_tesseract() is not None
    again = extract_document(scan, nlp, "scan", options=ExtractOptions(ocr_cache_url=url, ocr_progress=False))
    assert again.text == doc.text and again.ocr_confidence == doc.ocr_confidence


def test_without_tesseract_a_scan_gets_one_line_saying_how_to_enable_ocr(scanned, nlp, monkeypatch):
    scan = scanned[0]
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(IngestError) as caught:
        extract_document(scan, nlp, options=ExtractOptions(ocr_progress=False))
    message = str(caught.value)
    assert message.startswith(f"{scan}: PDF has no text layer (scanned image?); Tesseract is not installed")
    assert "apt-get install tesseract-ocr tesseract-ocr-nld" in message and "\n" not in message


def test_ocr_never_refuses_the_scan_and_names_the_switch(scanned, nlp):
    with pytest.raises(IngestError, match=r"no text layer \(scanned image\?\); run with --ocr auto"):
        extract_document(scanned[0], nlp, options=ExtractOptions(ocr="never"))


def test_born_digital_pdf_is_not_ocrd(nlp, tmp_path, monkeypatch):
    # auto mode leaves text-layer pages alone: with no Tesseract at all the bundled PDF still extracts.
    monkeypatch.setenv("PATH", "/nonexistent")
    doc = extract_document(one_page_text_layer(SOURCE, tmp_path / "p.pdf"), nlp)
    assert doc.passages and not any(p.ocr for p in doc.passages) and doc.ocr_confidence == {}


def test_garbage_text_layer_counts_as_no_text_layer():
    garbage = "Ë¸ÂÌ ÁÛ¸Ë qzxv Ğ¸Ù×Â ¸ÂË kxq ÛÁ¸ ÌË zzq".split()
    dutch = "De huisarts werkt samen met de specialist ouderengeneeskunde in de regio".split()
    assert dictionary_share(garbage) < 0.2 <= dictionary_share(dutch)


def test_cli_ocr_never_names_the_switch(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    pdf = scanned_copy(SOURCE, tmp_path / "scan.pdf")
    result = CliRunner().invoke(app, ["extract", str(pdf), "--ocr", "never", "--workers", "1"])
    assert result.exit_code == 1 and "--ocr auto" in result.output
