"""Shared fixtures: the project's NLP pipeline and builders for test documents.

Bad and synthetic PDFs are built here with reportlab and pypdf, so every
failure mode the ingest stage promises to handle is exercised on a real file.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.nlp import load_glossary, make_nlp

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BUNDLED = [
    "vg-verkenning-convenant-mgz",
    "vg-deelsessie-huisartsenzorg",
    "ouderenzorg-mgz-in-de-regio-2023",
    "eerstelijn-parkstad-samenwerking",
]


@pytest.fixture(scope="session")
def nlp():
    return make_nlp(load_glossary(), lemmas=False)


def truth(doc_id: str) -> dict:
    return json.loads((FIXTURES / f"{doc_id}.pdf.truth.json").read_text("utf-8"))


def make_pdf(path: Path, pages: list[dict], encrypt: str | None = None) -> Path:
    """Build a report-like PDF. Each page: {"header", "footer", "lines": [(x, y, text, size, bold)]}."""
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(path), pagesize=A4)
    width, height = A4
    for number, page in enumerate(pages, start=1):
        if page.get("header"):
            c.setFont("Helvetica", 8)
            c.drawString(57, height - 50, page["header"])
        if page.get("footer", True):
            c.setFont("Helvetica", 8)
            c.drawString(width - 60, 50, str(number))
        for x, y, text, size, bold in page.get("lines", []):
            c.setFont("Helvetica-Bold" if bold else "Helvetica", size)
            c.drawString(x, height - y, text)
        for table in page.get("tables", []):
            x0, y0, rows, col_w, row_h = table
            for r, row in enumerate(rows):
                for k, cell in enumerate(row):
                    c.rect(x0 + k * col_w, height - y0 - (r + 1) * row_h, col_w, row_h)
                    c.setFont("Helvetica", 9)
                    c.drawString(x0 + k * col_w + 4, height - y0 - (r + 1) * row_h + 6, cell)
        if page.get("image_only"):
            c.setFillGray(0.5)
            c.rect(100, 100, 300, 300, fill=1)
        c.showPage()
    c.save()
    if encrypt:
        from pypdf import PdfReader, PdfWriter

        reader = PdfReader(str(path))
        writer = PdfWriter()
        for p in reader.pages:
            writer.add_page(p)
        writer.encrypt(user_password=encrypt, owner_password=encrypt + "-owner")
        with path.open("wb") as handle:
            writer.write(handle)
    return path


def body_lines(texts: list[str], x: float, y: float, pitch: float = 12.5, size: float = 9.5) -> list[tuple]:
    return [(x, y + i * pitch, t, size, False) for i, t in enumerate(texts)]
