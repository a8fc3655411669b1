"""Pseudonymisation on written strings with known answers (fast; no corpus)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from pipeline.pseudonymise import (
    BIRTHDATE,
    EMAIL,
    PERSON,
    PHONE,
    POSTCODE,
    AllowList,
    OffsetMap,
    Pseudonyms,
    detect,
    load_allow_list,
    pseudonymise,
)


def names(text: str, allow: AllowList | None = None) -> list[str]:
    return [s.text for s in detect(text, allow) if s.kind == PERSON]


def run(text: str, mapping: Pseudonyms | None = None) -> str:
    return pseudonymise(text, detect(text), mapping or Pseudonyms())[0]


def test_speaker_labels_are_names_and_role_labels_are_not() -> None:
    text = ("Patricia Bangma: ik werk als huisarts.\nInterviewer: hoe gaat dat?\n"
            "Bianca (VGN): goed.\nJeanette – dat herken ik.\nDeelnemer: ja.\nToelichting: een kop.\n"
            "Afkortingen: HA is huisarts.")
    assert names(text) == ["Patricia Bangma", "Bianca", "Jeanette"]
    out = run(text)
    assert out.startswith("[Persoon 1]: ik werk als huisarts.\nInterviewer:")
    assert "Deelnemer: ja." in out and "Toelichting: een kop." in out


def test_vtt_voice_tag() -> None:
    assert run("<v Patricia Bangma>Ik ben specialist ouderengeneeskunde.</v>") == (
        "<v [Persoon 1]>Ik ben specialist ouderengeneeskunde.</v>"
    )


def test_titles_initials_and_particles() -> None:
    text = "Ik sprak met dr. J. van der Berg en mw. Jansen. Later belde dhr. Ter Horst, daarna mevrouw De Jong."
    assert names(text) == ["J. van der Berg", "Jansen", "Ter Horst", "De Jong"]
    assert names("Mevr. Van Dijk en mw. dr. P. de Boer. Dhr. Bakker kwam.") == ["Van Dijk", "P. de Boer", "Bakker"]
    assert names("MDO GGZ inclusief MW\n\nVoorzitterschap MDO bij de gemeente.") == []
    assert run(text) == ("Ik sprak met dr. [Persoon 1] en mw. [Persoon 2]. Later belde dhr. [Persoon 3], "
                         "daarna mevrouw [Persoon 4].")


def test_inverted_initials_in_a_reference_list() -> None:
    text = "3. Schuurmans, J.J., Wallenburg, I., van der Woerd, O.S., Asten, B. van, Bal, R. (2021) Titel."
    assert names(text) == ["Schuurmans, J.J.", "Wallenburg, I.", "van der Woerd, O.S.", "Asten, B. van", "Bal, R."]
    assert all(s.cited for s in detect(text))


def test_role_word_stays_outside_the_bracket_and_surname_joins_full_name() -> None:
    text = "De bestuurder Kees de Vries zei het al. De Vries vond dat ook."
    assert run(text) == "De bestuurder [Persoon 1] zei het al. [Persoon 1] vond dat ook."


def test_first_name_joins_the_full_name_in_the_document() -> None:
    text = "Deelsessie door Jeanette Jongsma, manager.\n\nJeanette: ik deel het convenant."
    assert run(text) == "Deelsessie door [Persoon 1], manager.\n\n[Persoon 1]: ik deel het convenant."


def test_same_person_same_pseudonym_across_documents() -> None:
    mapping = Pseudonyms()
    first = run("Interview met mw. Anna Smit en dhr. Piet Mulder.", mapping)
    second = run("Piet Mulder: ik ben het eens.\nAnna Smit: ik niet.", mapping)
    assert first == "Interview met mw. [Persoon 1] en dhr. [Persoon 2]."
    assert second == "[Persoon 2]: ik ben het eens.\n[Persoon 1]: ik niet."


def test_citations_are_kept_and_allow_list_applies() -> None:
    text = "Volgens Klein Woolthuis et al. (2003) en (Kaats & Opheij, 2012) werkt het. Het Convenant MGZ geldt."
    assert names(text, AllowList()) == ["Klein Woolthuis", "Kaats", "Opheij"]
    assert names(text) == ["Kaats", "Opheij"]  # Klein Woolthuis is on the bundled allow-list
    assert run(text) == text  # cited authors are not research subjects
    spans = detect(text)
    assert pseudonymise(text, spans, Pseudonyms(), keep_cited=False)[0].startswith(
        "Volgens Klein Woolthuis et al. (2003) en ([Persoon 1] & [Persoon 2], 2012)"
    )


def test_domain_vocabulary_is_never_replaced() -> None:
    text = ("Huisarts: de specialist ouderengeneeskunde belt het zorgkantoor over het convenant.\n"
            "Zorgkantoor: dat klopt.\nSpecialist Ouderengeneeskunde – ja.\nConvenant: afspraken.")
    assert names(text) == []
    assert run(text) == text


def test_contact_details_and_date_of_birth() -> None:
    text = ("Mail naar j.jansen@umcg.nl of bel 06-12345678 of +31 (0)50 361 1234. "
            "Adres: Hoofdstraat 12, 9712 AB Groningen. Geboren op 12-03-1954; het gesprek was op 3-4-2021. "
            "In 2010 en 2012 waren er 1234 cliënten.")
    got = {(s.kind, s.text) for s in detect(text)}
    assert got == {(EMAIL, "j.jansen@umcg.nl"), (PHONE, "06-12345678"), (PHONE, "+31 (0)50 361 1234"),
                   (POSTCODE, "Hoofdstraat 12"), (POSTCODE, "9712 AB"), (BIRTHDATE, "12-03-1954")}
    out = run(text)
    assert "3-4-2021" in out and "1234 cliënten" in out and "[Geboortedatum 1]" in out


def test_ordinary_capitalised_words_are_not_names() -> None:
    text = "Punt in de samenwerking is de affiniteit. Scholing geven kan. Box 1 (pagina 27) geeft een overzicht."
    assert names(text) == []


def test_extra_names_from_an_admin() -> None:
    text = "Daarna kwam Punt binnen; Punt is de teamleider."
    assert names(text) == []
    assert [s.text for s in detect(text, extra_names=["Punt"])] == ["Punt", "Punt"]


def test_offset_map_moves_selections() -> None:
    text = "De bestuurder Kees de Vries zei: wij werken samen met de huisarts."
    new, offsets = pseudonymise(text, detect(text), Pseudonyms())
    assert isinstance(offsets, OffsetMap)
    start = text.index("wij werken")
    end = start + len("wij werken")
    assert new[offsets.to_new(start) : offsets.to_new_end(end)] == "wij werken"
    assert offsets.to_old(offsets.to_new(start)) == start
    name_start, name_end = text.index("Kees"), text.index(" zei")
    assert new[offsets.to_new(name_start) : offsets.to_new_end(name_end)] == "[Persoon 1]"
    inside = text.index("de Vries")
    assert new[offsets.to_new(inside) : offsets.to_new_end(inside + 3)] == "[Persoon 1]"


@pytest.mark.parametrize("word", ["huisarts", "zorgkantoor", "convenant", "specialist"])
def test_bundled_allow_list_protects_domain_words(word: str) -> None:
    assert word in load_allow_list().protected


def test_pseudonymise_document_moves_passages_and_speakers() -> None:
    from pipeline.pseudonymise import pseudonymise_document

    text = "Verslag met Jeanette Jongsma\n\nJeanette: ik deel het convenant.\n\nBianca (VGN): dat is vreemd."
    passages = []
    for chunk, speaker in (("Verslag met Jeanette Jongsma", None), ("Jeanette: ik deel het convenant.", "Jeanette"),
                           ("Bianca (VGN): dat is vreemd.", "Bianca (VGN)")):
        start = text.index(chunk)
        passages.append({"id": str(start), "text": chunk, "char_start": start, "char_end": start + len(chunk),
                         "speaker": speaker})
    data = {"doc_id": "d", "title": "Verslag met Jeanette Jongsma", "text": text, "passages": passages}
    out = pseudonymise_document(data, Pseudonyms())
    assert out["title"] == "Verslag met [Persoon 1]"
    assert [p["text"] for p in out["passages"]] == [
        "Verslag met [Persoon 1]", "[Persoon 1]: ik deel het convenant.", "[Persoon 2] (VGN): dat is vreemd."]
    assert all(out["text"][p["char_start"] : p["char_end"]] == p["text"] for p in out["passages"])
    assert [p["speaker"] for p in out["passages"]] == [None, "[Persoon 1]", "[Persoon 2] (VGN)"]
    assert "Jeanette" not in json.dumps(out) and "Bianca" not in json.dumps(out)


def test_cli_extract_pseudonymise(tmp_path) -> None:
    from typer.testing import CliRunner

    from pipeline.cli import app

    first = tmp_path / "a.txt"
    first.write_text("Patricia Bangma: ik ben huisarts.\n\nInterviewer: en het zorgkantoor?\n\n"
                     "Patricia Bangma: mail p.bangma@umcg.nl.\n", "utf-8")
    second = tmp_path / "b.txt"
    second.write_text("Interviewer: wie belde?\n\nPatricia Bangma: de specialist ouderengeneeskunde.\n", "utf-8")
    runner = CliRunner()
    plain = runner.invoke(app, ["extract", str(first), "--workers", "1"])
    assert plain.exit_code == 0 and "Patricia Bangma" in plain.stdout
    result = runner.invoke(app, ["extract", str(first), str(second), "--pseudonymise", "--format", "json",
                                 "--out", str(tmp_path / "out"), "--workers", "1"])
    assert result.exit_code == 0, result.output
    docs = [json.loads((tmp_path / "out" / f"{n}.json").read_text("utf-8")) for n in ("a", "b")]
    dumped = json.dumps(docs, ensure_ascii=False)
    assert "Bangma" not in dumped and "p.bangma@umcg.nl" not in dumped
    assert "[Persoon 1]: ik ben huisarts." in docs[0]["text"]
    assert "[Persoon 1]: de specialist ouderengeneeskunde." in docs[1]["text"]
    for doc in docs:
        assert all(doc["text"][p["char_start"] : p["char_end"]] == p["text"] for p in doc["passages"])


GOLD = Path(__file__).resolve().parents[1] / "data" / "pseudonymisation" / "gold.jsonl"
CORPUS = Path(__file__).resolve().parents[1] / "corpus"


@pytest.mark.parametrize("doc_id", ["vg-deelsessie-huisartsenzorg", "ouderenzorg-mgz-in-de-regio-2023"])
def test_gold_persons_found_and_subjects_replaced(nlp, doc_id: str) -> None:
    """On two bundled documents every gold person mention is found (measured 1.0 by the bench)."""
    from pipeline.ingest import extract_document

    text = extract_document(CORPUS / f"{doc_id}.pdf", nlp).text
    rows = [json.loads(line) for line in GOLD.read_text("utf-8").splitlines()]
    gold = [r for r in rows if r["doc_id"] == doc_id and r["type"] == PERSON]
    assert gold and gold[0]["text_sha256"] == hashlib.sha256(text.encode("utf-8")).hexdigest()
    spans = [s for s in detect(text, AllowList(protected=load_allow_list().protected)) if s.kind == PERSON]
    missed = [g["text"] for g in gold if not any(s.start < g["end"] and g["start"] < s.end for s in spans)]
    false = [s.text for s in spans if not any(s.start < g["end"] and g["start"] < s.end for g in gold)]
    assert missed == [] and false == []
    new, _ = pseudonymise(text, detect(text), Pseudonyms())
    for g in gold:
        for word in g["text"].replace(",", " ").split():
            if len(word) > 2 and not word.endswith("."):
                assert (re.search(rf"\b{re.escape(word)}\b", new) is None) == g["subject"], g
