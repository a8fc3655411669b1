"""A small review store built from a real PDF, with synthetic model labels, and its users.

Shared by the review tests and the browser test; the passages and labels are
chosen so that every expectation can be checked by hand.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.engine import Engine

from pipeline.accounts import add_user
from pipeline.codebook import Codebook, load_codebook
from pipeline.corpus import ingest_corpus
from pipeline.review import CONTENT_KINDS
from pipeline.store import load_passages, open_store, save_classifications

from .conftest import make_pdf

MODEL = "clf-review-test"
PASSWORD = "correct horse battery"
DOC = "regio-a"
TRICKS = "Tekst met <script>alert('xss')</script> en &lt;b&gt;vet&lt;/b&gt; en &amp;amp; erin."
ATTRIBUTE_TRICK = 'Een attribuut "><img src=x onerror=alert(1)> en {{ 7*7 }} als sjabloon.'
PARAGRAPHS = [
    "De huisarts en de AVG overleggen maandelijks in een vast MDO over cliënten met een VB.",
    "Door tekorten aan personeel is de bereikbaarheid van de HAP in de avond slecht.",
    TRICKS,
    "De zorgverzekeraar financiert de eerstelijnszorg vanuit de Zvw volgens vaste afspraken.",
    ATTRIBUTE_TRICK,
    "Vertrouwen tussen de POH en de begeleiders groeit door vaste gezichten.",
]
PAGE_TWO = [
    "Taakherschikking naar de praktijkondersteuner ontlast de huisarts bij chronische zorg.",
    "Het ECD van de instelling en het HIS van de huisarts wisselen geen gegevens uit.",
]


@dataclass
class ReviewStore:
    engine: Engine
    url: str
    codebook: Codebook
    passages: list  # content passages in reading order
    labels: dict  # passage id -> model labels
    confidence: dict  # passage id -> the confidence the labels were built with


def write_pdf(folder: Path) -> Path:
    lines = [(57, 80, "Samenwerking in de regio", 14, True)]
    lines += [(63, 120 + 30 * k, text, 9.5, False) for k, text in enumerate(PARAGRAPHS)]
    page_two = [(57, 80, "Taken en informatie", 14, True)]
    page_two += [(63, 120 + 30 * k, text, 9.5, False) for k, text in enumerate(PAGE_TWO)]
    return make_pdf(folder / "regio-a.pdf", [{"header": "", "lines": lines}, {"header": "", "lines": page_two}])


def model_labels(codebook: Codebook, k: int, confidence: float) -> dict:
    """Deterministic model output for the k-th content passage: one condition, one stakeholder."""
    conditions = codebook.ids("conditions")
    stakeholders = codebook.ids("stakeholders")
    polarity = codebook.ids("polarity")
    condition = conditions[k % len(conditions)]
    labels = {
        "conditions": [condition],
        "interactie_type": codebook.ids("interactie_type")[0] if condition == "interactie" else None,
        "polarity": polarity[k % 2],
        "stakeholders": [stakeholders[k % len(stakeholders)]],
        "primary_condition": condition,
    }
    scores = {
        "conditions": {c: (confidence if c == condition else round(1 - confidence, 4)) for c in conditions},
        "polarity": {p: (confidence if p == labels["polarity"] else round((1 - confidence) / 2, 4)) for p in polarity},
    }
    return {**labels, "scores": scores, "needs_review": confidence < 0.7}


def build_review_store(folder: Path, users: bool = True, url: str | None = None) -> ReviewStore:
    """The store at ``url`` (default: SQLite in ``folder``)."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    write_pdf(corpus)
    (corpus / "manifest.csv").write_text(
        "doc_id,file,title,study,sector,doc_type,year\n"
        f'{DOC},regio-a.pdf,"Regio A <i>verslag</i> & co",studie,vg,verslag,2021\n',
        "utf-8",
    )
    url = url or f"sqlite:///{folder / 'review.sqlite'}"
    engine = open_store(url)
    report = ingest_corpus(corpus, engine, workers=1)
    assert report.ingested == [DOC], report.failed
    codebook = load_codebook()
    content = [p for p in load_passages(engine, DOC) if p.kind in CONTENT_KINDS]
    assert len(content) == len(PARAGRAPHS) + len(PAGE_TWO), [p.text for p in content]
    rows, labels, confidence = [], {}, {}
    for k, p in enumerate(content):
        # Confidences not in reading order, so the two queue orders differ: 0.95, 0.55, 0.9, 0.6, ...
        conf = round(0.95 - 0.05 * k if k % 2 == 0 else 0.55 + 0.05 * k, 4)
        produced = model_labels(codebook, k, conf)
        rows.append({"id": p.id, **produced, "model_version": MODEL})
        labels[p.id] = {f: produced[f] for f in codebook.fields}
        confidence[p.id] = conf
    save_classifications(engine, DOC, MODEL, rows)
    if users:
        add_user(engine, "anna", PASSWORD, "analyst")
        add_user(engine, "bert", PASSWORD, "analyst")
        add_user(engine, "chris", PASSWORD, "admin")
    return ReviewStore(engine, url, codebook, content, labels, confidence)


def clone(template: ReviewStore, folder: Path) -> ReviewStore:
    """A private copy of a built store (building one takes a second or two; copying, milliseconds)."""
    import shutil

    template.engine.dispose()  # closes connections: the WAL is checkpointed into the main file
    source = Path(template.url.removeprefix("sqlite:///"))
    target = folder / "review.sqlite"
    shutil.copy(source, target)
    url = f"sqlite:///{target}"
    return ReviewStore(open_store(url), url, template.codebook, template.passages, template.labels, template.confidence)


def csrf_of(html: str) -> str:
    """The CSRF token a page's form carries."""
    import re

    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def logged_in(rs: ReviewStore, name: str):
    """A test client of the review screen with ``name`` logged in (password ``PASSWORD``)."""
    from fastapi.testclient import TestClient

    from pipeline.nlp import load_glossary
    from pipeline.web.app import create_app

    client = TestClient(create_app(rs.engine, rs.codebook, model_version=MODEL, glossary=load_glossary()))
    token = csrf_of(client.get("/login").text)
    done = client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token}, follow_redirects=False)
    assert done.status_code == 303
    return client
