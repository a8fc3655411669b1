"""DOCX and TXT inputs, speaker turns in transcripts, Dutch sentence splitting and lemmas."""

from __future__ import annotations

import json

import docx
import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.ingest import extract_document
from pipeline.nlp import frog_available, lemmas, load_glossary, make_nlp, sentence_spans

from .conftest import CORPUS

TRANSCRIPT = [
    "Interview met een huisarts",
    "Interviewer: Hoe verloopt de samenwerking met de AVG?",
    "Respondent: Goed, o.a. door vaste overleggen. We spreken elkaar bijv. elke week, i.s.m. de POH.",
    "Interviewer: En met het zorgkantoor?",
    "Respondent: Dat is lastiger. Het ZK faciliteert weinig.",
]


def test_docx_and_txt_give_the_same_passages(tmp_path, nlp):
    document = docx.Document()
    document.add_heading(TRANSCRIPT[0], level=1)
    for line in TRANSCRIPT[1:]:
        document.add_paragraph(line)
    document.save(tmp_path / "interview.docx")
    (tmp_path / "interview.txt").write_text("# " + TRANSCRIPT[0] + "\n\n" + "\n\n".join(TRANSCRIPT[1:]) + "\n", "utf-8")
    from_docx = extract_document(tmp_path / "interview.docx", nlp)
    from_txt = extract_document(tmp_path / "interview.txt", nlp)
    shape = [(p.kind, p.speaker, p.text, p.section) for p in from_docx.passages]
    assert shape == [(p.kind, p.speaker, p.text, p.section) for p in from_txt.passages]
    turns = [p for p in from_docx.passages if p.kind == "turn"]
    assert [t.speaker for t in turns] == ["Interviewer", "Respondent", "Interviewer", "Respondent"]
    assert turns[1].text.startswith("Goed, o.a. door")
    assert all(t.section == ("Interview met een huisarts",) for t in turns)


def test_sentences_survive_dutch_and_domain_abbreviations():
    nlp = make_nlp(load_glossary(), lemmas=False)
    text = (
        "Dit geldt o.a. voor de HA en de AVG. Zie bijv. de afspraken t.a.v. de Wlz, m.b.t. de ANW-zorg "
        "i.s.m. de HAP e.d. Daarna volgt de z.g. triage. J.J. Schuurmans en R. Bal schreven dit."
    )
    sentences = [text[a:b] for a, b in sentence_spans(nlp, text)]
    # "e.d." may end a sentence or not; the tokenizer keeps it whole, so the split is deliberately conservative.
    assert sentences == [
        "Dit geldt o.a. voor de HA en de AVG.",
        "Zie bijv. de afspraken t.a.v. de Wlz, m.b.t. de ANW-zorg i.s.m. de HAP e.d. Daarna volgt de z.g. triage.",
        "J.J. Schuurmans en R. Bal schreven dit.",
    ]


def test_lookup_lemmas_stop_words_and_glossary():
    nlp = make_nlp(load_glossary())
    assert lemmas(nlp, "De patiënten werden behandeld door de huisarts") == ["patiënt", "behandelen", "huisarts"]
    doc = nlp("De HA overlegt met de SO en de POH.")
    assert {t.text: t._.expansion for t in doc if t._.expansion} == {
        "HA": "huisarts",
        "SO": "specialist ouderengeneeskunde",
        "POH": "praktijkondersteuner huisarts",
    }


def test_cli_json_has_the_documented_shape(tmp_path):
    result = CliRunner().invoke(
        app,
        [
            "extract",
            str(CORPUS / "vg-deelsessie-huisartsenzorg.pdf"),
            "--format",
            "json",
            "--out",
            str(tmp_path),
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    data = json.loads((tmp_path / "vg-deelsessie-huisartsenzorg.json").read_text("utf-8"))
    documented = {"doc_id", "source", "sha256", "pages", "title", "text", "passages", "warnings", "ocr_confidence"}
    assert set(data) == documented
    assert set(data["passages"][0]) == {
        "id",
        "kind",
        "text",
        "page_start",
        "page_end",
        "char_start",
        "char_end",
        "section",
        "speaker",
        "ocr",
        "time_start",
        "time_end",
    }
    assert data["pages"] == 3


@pytest.mark.skipif(not frog_available(), reason="Debian's frog is not installed (the .ci/run script installs it)")
def test_frog_component_lemmatizes_spacy_tokens_in_batches():
    nlp = make_nlp(load_glossary(), lemmatizer="frog")
    docs = list(nlp.pipe(["De huisartsen werkten samen met de AVG.", "Zij hebben o.a.  overleg gevoerd."]))
    assert [t.lemma_ for t in docs[0]] == ["de", "huisarts", "werken", "samen", "met", "de", "AVG", "."]
    assert [t.lemma_ for t in docs[1] if t.text.strip()][-2] == "voeren"
