"""Layout rules on small PDFs built for the purpose: columns, margins, hyphens, tables."""

from __future__ import annotations

import pytest

from pipeline.ingest import extract_document, read_blocks
from pipeline.pdf_layout import join_lines

from .conftest import body_lines, make_pdf


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        (["de samen-", "werking loopt"], "de samenwerking loopt"),
        (["de huisartsen-", "en ouderenzorg"], "de huisartsen- en ouderenzorg"),
        (["een innovatie-", "en kwaliteitsmanager"], "een innovatie- en kwaliteitsmanager"),
        (["bij GHZ-", "instellingen"], "bij GHZ-instellingen"),
        (["in Noord-", "Holland"], "in Noord-Holland"),
        (["de medisch-genera-", "listische zorg"], "de medisch-generalistische zorg"),
        (["zie www.vilans.nl/wat-doen", "-we/mgz"], "zie www.vilans.nl/wat-doen-we/mgz"),
        (["zacht\u00ad", "ware"], "zachtware"),
    ],
)
def test_line_end_hyphenation(lines, expected):
    assert join_lines(lines, vocabulary=set()) == expected


def test_hyphen_kept_when_the_document_prints_the_compound_with_it():
    assert join_lines(["de zorg-", "aanbieder"], {"zorg-aanbieder"}) == "de zorg-aanbieder"
    assert join_lines(["de zorg-", "aanbieder"], set()) == "de zorgaanbieder"


def two_column_page(header: str, title: str | None = None) -> dict:
    left = ["Linkerkolom begint hier met de eerste", "regel van de tekst over samen-", "werking in de regio."] + [
        "meer tekst in de linkerkolom over zorg"
    ] * 4
    right = ["Rechterkolom volgt pas daarna met", "een eigen alinea over de huisarts", "en de AVG in de regio."] + [
        "meer tekst in de rechterkolom over zorg"
    ] * 4
    return {
        "header": header,
        "lines": ([(63, 90, title, 16, True)] if title else [])
        + body_lines(left, 63, 130)
        + body_lines(right, 315, 130)
        + body_lines(["Linker onderste regel blijft links staan."], 63, 240),
    }


def test_two_columns_read_column_by_column_without_header_or_page_numbers(tmp_path, nlp):
    pdf = make_pdf(
        tmp_path / "twee.pdf", [two_column_page("Lopende kop", "Titel van het rapport"), two_column_page("Lopende kop")]
    )
    doc = extract_document(pdf, nlp)
    text = doc.text
    assert "Lopende kop" not in text
    assert text.index("Linkerkolom") < text.index("Linker onderste") < text.index("Rechterkolom")
    assert "samenwerking in de regio." in text
    assert not any(b.strip().isdigit() for b in text.split("\n\n"))
    headings = [p for p in doc.passages if p.kind == "heading"]
    assert headings and headings[0].text == "Titel van het rapport"
    assert doc.title == "Titel van het rapport"


def test_paragraph_flows_across_a_page_break(tmp_path, nlp):
    long_line = "dit is een lange regel die tot aan de rechterkantlijn van de kolom doorloopt en"
    pages = [
        {"header": "Kop", "lines": body_lines(["Eerste alinea zonder einde " + long_line] * 2, 63, 700)},
        {"header": "Kop", "lines": body_lines(["loopt hier door tot het einde."], 63, 90)},
    ]
    pdf = make_pdf(tmp_path / "flow.pdf", pages)
    blocks, pages_count, _, _ = read_blocks(pdf)
    paragraphs = [b for b in blocks if b.kind == "paragraph"]
    assert pages_count == 2
    assert len(paragraphs) == 1
    assert (paragraphs[0].page_start, paragraphs[0].page_end) == (1, 2)


def test_ruled_table_becomes_table_passages_outside_the_running_text(tmp_path, nlp):
    page = {
        "header": "",
        "lines": body_lines(["Tekst boven de tabel over de huisartsenzorg."], 63, 90),
        "tables": [(63, 130, [["Voorwaarde", "Knelpunt"], ["ICT", "Geen uitwisseling HIS en ECD"]], 150, 20)],
    }
    page2 = {"header": "", "lines": body_lines(["Tekst na de tabel."], 63, 90)}
    doc = extract_document(make_pdf(tmp_path / "tabel.pdf", [page, page2]), nlp)
    tables = [p for p in doc.passages if p.kind == "table"]
    assert [t.text for t in tables] == ["Voorwaarde | Knelpunt", "ICT | Geen uitwisseling HIS en ECD"]
    running = [p.text for p in doc.passages if p.kind == "paragraph"]
    assert not any("Geen uitwisseling" in t for t in running)


def test_small_print_at_the_page_foot_is_a_footnote(tmp_path, nlp):
    page = {
        "header": "",
        "lines": body_lines(["Hoofdtekst over de zorg voor ouderen in de regio."] * 3, 63, 100)
        + [(63, 760, "1 Bron: eigen inventarisatie 2023.", 7, False)],
    }
    doc = extract_document(make_pdf(tmp_path / "noot.pdf", [page]), nlp)
    assert [p.text for p in doc.passages if p.kind == "footnote"] == ["1 Bron: eigen inventarisatie 2023."]


def test_ligatures_odd_spaces_and_nfc(tmp_path, nlp):
    text = tmp_path / "tekens.txt"
    text.write_text("De e\ufb03ci\u00ebnte zorg\u00a0loopt. Cliënt\u200b en patie\u0308nt.\n", "utf-8")
    doc = extract_document(text, nlp)
    assert doc.text == "De efficiënte zorg loopt. Cliënt en patiënt."
