"""Extraction fidelity on the four bundled study PDFs against their ground truth."""

from __future__ import annotations

import pdfplumber
import pytest

from pipeline.fidelity import score
from pipeline.ingest import extract_document

from .conftest import BUNDLED, CORPUS, truth


@pytest.fixture(scope="module")
def extracted(nlp):
    return {doc_id: extract_document(CORPUS / f"{doc_id}.pdf", nlp, doc_id) for doc_id in BUNDLED}


@pytest.mark.parametrize("doc_id", BUNDLED)
def test_fidelity_meets_the_bar(extracted, doc_id):
    expected = truth(doc_id)
    result = score(extracted[doc_id].text, expected["paragraphs"], expected["header"])
    assert result.bigram_recall >= 0.99, result
    assert result.word_precision >= 0.99, result
    assert result.header_lines == 0, result
    assert result.hyphen_fragments == 0, result


@pytest.mark.parametrize("doc_id", BUNDLED)
def test_no_page_numbers_or_headers_as_lines(extracted, doc_id):
    header = truth(doc_id)["header"]
    blocks = extracted[doc_id].text.split("\n\n")
    assert header not in blocks
    assert not [
        b for b in blocks if b.strip().isdigit() and len(b.strip()) <= 3 and b not in truth(doc_id)["paragraphs"]
    ]


def test_plain_pdfplumber_is_worse_so_the_metric_can_fail():
    """The baseline leaks the running header and scrambles two-column pages."""
    doc_id = "ouderenzorg-mgz-in-de-regio-2023"
    with pdfplumber.open(CORPUS / f"{doc_id}.pdf") as pdf:
        plain = "\n".join(page.extract_text() for page in pdf.pages)
    expected = truth(doc_id)
    result = score(plain, expected["paragraphs"], expected["header"])
    assert result.bigram_recall < 0.9
    assert result.header_lines > 0


def test_passage_offsets_index_the_cleaned_text(extracted):
    for doc in extracted.values():
        assert doc.passages
        for p in doc.passages:
            assert doc.text[p.char_start : p.char_end] == p.text
            assert p.page_start <= p.page_end
        assert len({p.id for p in doc.passages}) == len(doc.passages)


def test_passages_are_one_to_three_sentences_and_never_cross_blocks(extracted, nlp):
    from pipeline.nlp import sentence_spans

    for doc in extracted.values():
        for p in doc.passages:
            assert "\n\n" not in p.text
            if p.kind in ("paragraph", "turn"):
                assert 1 <= len(sentence_spans(nlp, p.text)) <= 3, p.text


def test_section_path_follows_headings(extracted):
    doc = extracted["vg-verkenning-convenant-mgz"]
    infra = [p for p in doc.passages if p.text.startswith("Zowel uit de situatiebeschrijving")]
    assert infra and infra[0].section[-1] == "Infrastructurele voorwaarden"
    assert infra[0].section[0].startswith("Verkenning acties convenant MGZ")
    harde = [p for p in doc.passages if p.section[-1:] == ("Harde institutionele voorwaarden",)]
    assert harde and all(p.page_start >= 5 for p in harde)


def test_speaker_turns_in_session_notes(extracted):
    doc = extracted["vg-deelsessie-huisartsenzorg"]
    speakers = {p.speaker for p in doc.passages if p.kind == "turn"}
    assert {"Jeanette", "Bianca", "Deelnemer", "VS"} <= speakers
    first = next(p for p in doc.passages if p.speaker == "Jeanette")
    assert first.text.startswith("Ander knelpunt")  # the label is not part of the passage
    # Reports are not transcripts: no turns there.
    assert not [p for p in extracted["vg-verkenning-convenant-mgz"].passages if p.kind == "turn"]
    assert not [p for p in extracted["eerstelijn-parkstad-samenwerking"].passages if p.kind == "turn"]


def test_ids_are_stable_across_runs(nlp, extracted):
    again = extract_document(CORPUS / "vg-deelsessie-huisartsenzorg.pdf", nlp, "vg-deelsessie-huisartsenzorg")
    assert [p.id for p in again.passages] == [p.id for p in extracted["vg-deelsessie-huisartsenzorg"].passages]
