"""The reference coding follows a new segmentation: a coded text that changed is carried by word
alignment, split passages are listed for coding, and the coders' own codings always win."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from pipeline.annotations import AnnotationSet, Coding, read_codings, reanchor_reference
from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.models import Passage, text_hash
from pipeline.store import load_passages, open_store

OLD = [
    "De huisarts en de specialist ouderengeneeskunde overleggen elke week over de zorg.",
    "Er is een tekort aan artsen voor verstandelijk gehandicapten in de regio Noord.",
    "De bekostiging is versnipperd. Daardoor blijft structurele samenwerking uit en zoeken partijen naar oplossingen.",
    "Het zorgkantoor stelt extra middelen beschikbaar voor de avonduren en de weekenden.",
]
NEW = [
    OLD[0],
    "Er is een tekort aan artsen voor verstandelijk gehandicapten in de regio Noord-Holland.",  # a word changed
    "De bekostiging is versnipperd.",  # split in two
    "Daardoor blijft structurele samenwerking uit en zoeken partijen naar oplossingen.",
    OLD[3],
]


def labels(condition: str, polarity: str) -> dict:
    return {"conditions": [condition], "interactie_type": None, "polarity": polarity,
            "stakeholders": ["aanbieders"], "primary_condition": condition}  # fmt: skip


CODES = [
    labels("competenties", "bevorderend"),
    labels("infrastructuur", "belemmerend"),
    labels("harde_instituties", "belemmerend"),
    labels("harde_instituties", "bevorderend"),
]


def passages(texts: list[str]) -> tuple[str, list[Passage]]:
    out, offset = [], 0
    for k, t in enumerate(texts):
        out.append(Passage(f"p{k}-{text_hash(t)}", "paragraph", t, 1, 1, offset, offset + len(t)))
        offset += len(t) + 2
    return "\n\n".join(texts), out


def test_changed_texts_follow_by_alignment_and_splits_are_left_for_coding():
    tasks = [{"text_hash": text_hash(t), "doc_id": "d", "seq": k, "text": t} for k, t in enumerate(OLD)]
    reference = {
        text_hash(t): Coding(text_hash(t), f"old{k}", "d", CODES[k], "coder-a", "2026-11-23")
        for k, t in enumerate(OLD)
    }
    text, new = passages(NEW)
    carried, [report] = reanchor_reference(reference, tasks, [("d", text, new)])
    assert (report.orphaned, report.aligned, report.relook, report.removed) == (2, 1, 1, 0)
    [moved] = carried
    assert moved.text_hash == text_hash(NEW[1]) and moved.labels == CODES[1] and moved.passage_id == new[1].id
    assert "gevolgd van" in moved.note
    assert report.to_code == sorted([new[2].id, new[3].id])
    # Nothing changed: nothing to carry.
    text, same = passages(OLD)
    carried, [report] = reanchor_reference(reference, tasks, [("d", text, same)])
    assert carried == [] and report.orphaned == 0


def test_the_command_rebuilds_the_reference_with_the_carried_codings(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "doc.txt").write_text("\n\n".join(NEW) + "\n", "utf-8")
    (corpus / "manifest.csv").write_text(
        "doc_id,file,title,study,sector,doc_type,year\nd,doc.txt,Doc,s,vg,rapport,2021\n", "utf-8"
    )
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    runner = CliRunner()
    first = runner.invoke(app, ["ingest", "--corpus", str(corpus), "--store", url, "--out", str(tmp_path / "o")])
    assert first.exit_code == 0, first.output
    stored = load_passages(open_store(url), "d")
    assert [p.text for p in stored] == NEW
    annotations, tasks_dir = tmp_path / "annotations", tmp_path / "tasks"
    (annotations / "raw").mkdir(parents=True)
    tasks_dir.mkdir()
    rows = [{"text_hash": text_hash(t), "passage_id": f"old{k}", "doc_id": "d", **CODES[k], "coder": "coder-a",
             "date": "2026-11-23", "note": ""} for k, t in enumerate(OLD)]  # fmt: skip
    lines = "".join(json.dumps(r) + "\n" for r in rows)
    (annotations / "raw" / "batch1.jsonl").write_text(lines, "utf-8")
    (annotations / "reference.jsonl").write_text(lines, "utf-8")
    (tasks_dir / "batch1.jsonl").write_text(
        "".join(json.dumps({"text_hash": text_hash(t), "doc_id": "d", "seq": k, "text": t}) + "\n"
                for k, t in enumerate(OLD)),  # fmt: skip
        "utf-8",
    )
    result = runner.invoke(
        app,
        ["annotations", "reanchor", "--corpus", str(corpus), "--store", url, "--out", str(tmp_path / "o"),
         "--annotations", str(annotations), "--tasks", str(tasks_dir)],  # fmt: skip
    )
    assert result.exit_code == 0, result.output
    assert "1 gevolgd, 1 opnieuw te coderen (2 nieuwe passages)" in " ".join(result.output.split())
    codebook = load_codebook()
    reference = {c.text_hash: c for c in read_codings([annotations / "reference.jsonl"], codebook)}
    assert reference[text_hash(NEW[1])].labels == {**CODES[1]}
    assert text_hash(NEW[2]) not in reference  # a split passage needs a coder, it is not guessed
    # A coder's own coding of the same text wins over a carried one.
    own = {**rows[0], "text_hash": text_hash(NEW[1]), "polarity": "neutraal", "conditions": [],
           "stakeholders": [], "primary_condition": None}  # fmt: skip
    (annotations / "extra-coded.jsonl").write_text(json.dumps(own) + "\n", "utf-8")
    final = {c.text_hash: c for c in AnnotationSet(annotations).build(codebook)}
    assert final[text_hash(NEW[1])].labels["polarity"] == "neutraal"
