"""Analysts' decisions survive the document changing (re-saved PDF, new ingest version, edited text)."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import replace

from pypdf import PdfReader, PdfWriter
from sqlalchemy import select, text

from pipeline.carry import PassageCarryRow, match_passages, pending_relooks
from pipeline.corpus import ingest_corpus
from pipeline.models import Passage
from pipeline.review import CONTENT_KINDS, DoubleCodingRow, reviewed_labels
from pipeline.store import ReviewRow, add_reviews, load_passages, open_store, save_document, session

from .conftest import CORPUS

DOC = "vg-deelsessie-huisartsenzorg"
LABELS = {
    "conditions": ["interactie"],
    "interactie_type": "te_zwak",
    "polarity": "belemmerend",
    "stakeholders": ["aanbieders"],
    "primary_condition": "interactie",
}


def _corpus(tmp_path, name: str, suffix: str = ".pdf"):
    corpus = tmp_path / "corpus"
    corpus.mkdir(exist_ok=True)
    (corpus / "manifest.csv").write_text(
        f"doc_id,file,title,study,sector,doc_type,year\n{name},{name}{suffix},T,s,vg,sessieverslag,2021\n", "utf-8"
    )
    return corpus


def _decide_all(engine, doc_id: str) -> dict[str, str]:
    """Decide every content passage (labels differ per passage via the memo) -> passage id: memo."""
    content = [p for p in load_passages(engine, doc_id) if p.kind in CONTENT_KINDS]
    memos = {p.id: f"memo {k}" for k, p in enumerate(content)}
    add_reviews(
        engine, [{"passage_id": pid, "reviewer": "anna", "labels": LABELS, "memo": m} for pid, m in memos.items()]
    )
    return memos


def _counted_memos(engine, doc_id: str) -> dict[str, str]:
    """New passage text -> memo of the decision that counts on it."""
    counted = reviewed_labels(engine)
    with session(engine) as s:
        rows = s.execute(select(ReviewRow.passage_id, ReviewRow.memo).order_by(ReviewRow.id)).all()
    memo = dict(rows)
    return {p.text: memo[p.id] for p in load_passages(engine, doc_id) if p.id in counted}


def test_resaved_pdf_keeps_every_decision(tmp_path):
    """The measured data loss: same text, other bytes (a comment appended) orphaned all 58 decisions."""
    corpus = _corpus(tmp_path, DOC)
    shutil.copy(CORPUS / f"{DOC}.pdf", corpus)
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    assert ingest_corpus(corpus, engine, workers=1).ingested == [DOC]
    memos = _decide_all(engine, DOC)
    assert len(memos) >= 50
    before = {p.text: memos[p.id] for p in load_passages(engine, DOC) if p.id in memos}

    writer = PdfWriter(clone_from=PdfReader(str(CORPUS / f"{DOC}.pdf")))
    writer.add_metadata({"/Subject": "opnieuw opgeslagen met een opmerking"})
    with (corpus / f"{DOC}.pdf").open("wb") as handle:
        writer.write(handle)
    assert (
        hashlib.sha256((corpus / f"{DOC}.pdf").read_bytes()).digest()
        != hashlib.sha256((CORPUS / f"{DOC}.pdf").read_bytes()).digest()
    )

    report = ingest_corpus(corpus, engine, workers=1)
    assert report.ingested == [DOC]  # other bytes: extracted again
    assert report.carried[DOC]["exact"] == len(memos)
    assert report.carried[DOC]["relook"] == report.carried[DOC]["removed"] == report.carried[DOC]["lost"] == 0
    assert _counted_memos(engine, DOC) == before


def test_new_ingest_version_carries_decisions_onto_new_ids(tmp_path):
    """A store made with other passage ids (the old byte-hash ids, or another segmentation): every
    decision, double-coding assignment and adjudication is copied onto the new passage, history kept."""
    corpus = _corpus(tmp_path, DOC)
    shutil.copy(CORPUS / f"{DOC}.pdf", corpus)
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    ingest_corpus(corpus, engine, workers=1)
    from pipeline.models import Document
    from pipeline.store import DocumentRow

    with session(engine) as s:
        doc_row = s.get(DocumentRow, DOC)
        text, sha = doc_row.text, doc_row.sha256
    current = load_passages(engine, DOC)
    legacy = [
        replace(p, id=hashlib.sha256(f"{sha}:{p.char_start}:{p.char_end}".encode()).hexdigest()[:16]) for p in current
    ]
    save_document(engine, Document(DOC, str(corpus / f"{DOC}.pdf"), sha, 3, "T", text, legacy), None, "ingest-0")
    memos = _decide_all(engine, DOC)
    first = next(pid for pid in memos)
    with session(engine) as s:
        s.add(
            DoubleCodingRow(
                passage_id=first, coder="anna", slot=1, blind=True, assigned_by="root", assigned_at=doc_row.updated_at
            )
        )

    report = ingest_corpus(corpus, engine, workers=1)  # stage version differs: ingested again
    assert report.carried[DOC]["exact"] == len(memos)
    new_by_text = {p.text: p.id for p in load_passages(engine, DOC)}
    assert {p.id for p in load_passages(engine, DOC)}.isdisjoint(memos)
    counted = _counted_memos(engine, DOC)
    assert counted == {p.text: memos[p.id] for p in legacy if p.id in memos}
    with session(engine) as s:
        rows = s.scalars(select(ReviewRow).order_by(ReviewRow.id)).all()
        assert len(rows) == 2 * len(memos)  # the originals stay (append-only), the copies name them
        originals = {r.id: r for r in rows if r.carried_from is None}
        assert all(originals[r.carried_from].memo == r.memo for r in rows if r.carried_from is not None)
        first_text = next(p.text for p in legacy if p.id == first)
        assigned = s.scalars(select(DoubleCodingRow.passage_id)).all()
    assert sorted(assigned) == sorted([first, new_by_text[first_text]])


PARAGRAPHS = [
    "Interviewer: Hoe verloopt de samenwerking met de huisarts in uw regio op dit moment?",
    "Respondent: De samenwerking met de huisartsen is goed, maar de bereikbaarheid buiten kantooruren "
    "blijft een probleem voor de begeleiders van onze cliënten.",
    "Interviewer: Wat zou daarbij helpen, denkt u, als u zelf mocht kiezen?",
    "Respondent: Een vast aanspreekpunt bij de huisartsenpost zou veel schelen, en betere afspraken "
    "over de overdracht van medische gegevens.",
    "Interviewer: En hoe staat het met de financiering van de arts verstandelijk gehandicapten?",
    "Respondent: De financiering via de Wlz is ingewikkeld en de AVG wordt te weinig ingezet in de "
    "eerste lijn, dat merken we elke week opnieuw.",
    "Interviewer: Dank u wel voor dit gesprek en voor uw tijd vandaag.",
]


def test_edited_transcript_carries_by_alignment_and_queues_the_rest(tmp_path):
    """A typo fixed -> carried by alignment; a rewritten turn -> needs a new look with the old
    decision visible; an unchanged one -> exact; nothing is lost and the history stays."""
    name = "interview-1"
    corpus = _corpus(tmp_path, name, ".txt")
    path = corpus / f"{name}.txt"
    edited = list(PARAGRAPHS)
    edited[1] = edited[1].replace("bereikbaarheid", "bereikbaarhied")  # the typo the first version had
    path.write_text("\n\n".join(edited), "utf-8")
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    ingest_corpus(corpus, engine, workers=1)
    memos = _decide_all(engine, name)
    old = {p.text: p.id for p in load_passages(engine, name)}
    typo_id = next(pid for t, pid in old.items() if "bereikbaarhied" in t)
    with session(engine) as s:  # the typo passage is in an audit sample too (issue 18's tables)
        s.execute(
            text(
                "insert into audit_draws (id, rule, value, seed, blind, drawn_by, created_at) "
                "values (1, 'share', 0.1, 7, 0, 'chris', '2026-12-01 10:00:00')"
            )
        )
        s.execute(
            text("insert into audit_members (passage_id, draw_id, doc_id, probability) values (:p, 1, :d, 0.1)"),
            {"p": typo_id, "d": name},
        )

    fixed = list(PARAGRAPHS)
    fixed[5] = (
        "Respondent: Over geld wil ik kort zijn: het is een doolhof, en niemand in de regio weet precies "
        "wie welke zorg betaalt of wanneer een specialist mag komen."
    )
    path.write_text("\n\n".join(fixed), "utf-8")
    report = ingest_corpus(corpus, engine, workers=1)
    carried = report.carried[name]
    assert carried["aligned"] == 1 and carried["relook"] == 1 and carried["removed"] == 0
    assert carried["exact"] == len(memos) - 2
    assert carried["exact"] + carried["aligned"] + carried["relook"] == len(memos)

    new = {p.text: p.id for p in load_passages(engine, name)}
    counted = _counted_memos(engine, name)
    typo_old = next(t for t in old if "bereikbaarhied" in t)
    typo_new = next(t for t in new if "bereikbaarheid" in t)
    assert counted[typo_new] == memos[old[typo_old]]
    with session(engine) as s:
        members = set(s.execute(text("select passage_id from audit_members")).scalars())
    assert members == {typo_id, new[typo_new]}  # the sample membership followed the passage
    rewritten = next(t for t in new if "doolhof" in t)
    assert rewritten not in counted  # the old decision does not silently count on other words
    pending = pending_relooks(engine)
    assert list(pending) == [new[rewritten]]
    old_rewritten = next(t for t in old if "Wlz" in t)
    assert pending[new[rewritten]] == [{"old_passage_id": old[old_rewritten], "old_text": old_rewritten}]
    with session(engine) as s:
        statuses = sorted(s.scalars(select(PassageCarryRow.status)).all())
    assert statuses == ["aligned", "relook"]  # unchanged passages kept their ids: nothing to record

    # The review screen: its own queue, the old text and decision shown on the passage page.
    _review_screen_shows_the_relook(engine, new[rewritten], old_rewritten, memos[old[old_rewritten]])

    # Deciding on it clears the queue; the old passage's decision is still in the history.
    add_reviews(engine, [{"passage_id": new[rewritten], "reviewer": "anna", "labels": LABELS}])
    assert pending_relooks(engine) == {}
    with session(engine) as s:
        assert s.scalar(select(ReviewRow.memo).where(ReviewRow.passage_id == old[old_rewritten])) is not None


def _p(pid: str, start: int, text: str) -> Passage:
    return Passage(pid, "paragraph", text, 1, 1, start, start + len(text))


def test_split_and_merged_passages_need_a_new_look():
    a = "De huisarts kent de cliënt al jaren en weet wat er speelt in het gezin."
    b = "Toch ontbreekt een vaste overdracht naar de avondzorg en dat geeft zorgen."
    old_text = f"{a} {b}\n\nKort."
    old = [_p("o1", 0, f"{a} {b}"), _p("o2", len(a) + len(b) + 3, "Kort.")]
    new_text = f"{a}\n\n{b} Kort."
    new = [_p("n1", 0, a), _p("n2", len(a) + 2, f"{b} Kort.")]
    carries = match_passages(old_text, old, new_text, new)
    assert sorted((c.old_id, c.new_id, c.status) for c in carries) == [
        ("o1", "n1", "relook"),
        ("o1", "n2", "relook"),
        ("o2", "n2", "relook"),
    ]


def _review_screen_shows_the_relook(engine, passage_id: str, old_text: str, old_memo: str) -> None:
    import re

    from fastapi.testclient import TestClient

    from pipeline.accounts import add_user, get_user
    from pipeline.codebook import load_codebook
    from pipeline.review import QueueFilter, ReviewIndex
    from pipeline.web.app import create_app

    codebook = load_codebook()
    add_user(engine, "anna", "een lang wachtwoord 123", "analyst")
    anna = get_user(engine, "anna")
    index = ReviewIndex(engine, codebook, None)
    assert [i.passage_id for i in index.matching(anna, QueueFilter(status="relook"))] == [passage_id]
    view = index.passage_view(passage_id, anna)
    assert view.relook[0]["old_text"] == old_text and view.relook[0]["decisions"][0].memo == old_memo

    client = TestClient(create_app(engine, codebook))
    token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
    client.post("/login", data={"name": "anna", "password": "een lang wachtwoord 123", "csrf_token": token})
    queue = client.get("/queue?status=relook").text
    assert "Opnieuw bekijken" in queue and f"/passages/{passage_id}" in queue
    page = client.get(f"/passages/{passage_id}?status=relook").text
    assert 'id="relook"' in page and old_memo in page and "Wlz" in page


def test_mgz_ingest_reports_per_document_how_decisions_were_carried(tmp_path):
    from typer.testing import CliRunner

    from pipeline.cli import app

    name = "interview-2"
    corpus = _corpus(tmp_path, name, ".txt")
    (corpus / f"{name}.txt").write_text("\n\n".join(PARAGRAPHS), "utf-8")
    store = f"sqlite:///{tmp_path / 's.sqlite'}"
    args = ["ingest", "--corpus", str(corpus), "--store", store, "--workers", "1"]
    assert CliRunner().invoke(app, args).exit_code == 0
    memos = _decide_all(open_store(store), name)
    (corpus / f"{name}.txt").write_text(
        "\n\n".join([*PARAGRAPHS[:6], "Interviewer: Dank!"]),
        "utf-8",  # the last turn rewritten wholly: a new look
    )
    result = CliRunner().invoke(app, args, terminal_width=300)
    assert result.exit_code == 0, result.output
    line = " ".join(result.output.replace("│", " ").split())  # the table may wrap the line
    expected = f"{name}: {len(memos) - 1} exact overgenomen, 0 via uitlijning, 1 opnieuw bekijken, 0 tekst verdwenen"
    assert expected in line and "0 verloren" in line, line


def test_deleted_passage_is_removed_and_a_rewritten_one_needs_a_new_look():
    a = "De huisarts kent de cliënt al jaren en weet wat er speelt."
    b = "Over de financiering via de Wlz bestaat veel onduidelijkheid bij iedereen."
    c = "Dat geeft zorgen bij de begeleiders in de avonduren."
    old = [_p("a", 0, a), _p("b", len(a) + 2, b), _p("c", len(a) + len(b) + 4, c)]
    old_text = f"{a}\n\n{b}\n\n{c}"
    deleted = match_passages(old_text, old, f"{a}\n\n{c}", [_p("A", 0, a), _p("C", len(a) + 2, c)])
    assert sorted((x.old_id, x.new_id, x.status) for x in deleted) == [
        ("a", "A", "exact"),
        ("b", None, "removed"),
        ("c", "C", "exact"),
    ]
    other = "Geen idee, eerlijk gezegd."
    new = [_p("A", 0, a), _p("X", len(a) + 2, other), _p("C", len(a) + len(other) + 4, c)]
    rewritten = match_passages(old_text, old, f"{a}\n\n{other}\n\n{c}", new)
    assert ("b", "X", "relook") in {(x.old_id, x.new_id, x.status) for x in rewritten}
