"""REFI-QDA exchange: schema-valid export, stable GUIDs, exact text, safe import, round trip."""

from __future__ import annotations

import io
import re
import shutil
import zipfile
from collections import Counter
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

import pytest
import xmlschema
from defusedxml.ElementTree import fromstring
from sqlalchemy import func, select
from typer.testing import CliRunner

from pipeline import corpus as corpus_module
from pipeline import exchange
from pipeline.cli import app
from pipeline.codebook import load_codebook
from pipeline.corpus import ingest_corpus
from pipeline.exchange import ExchangeError, export_codebook, export_project, import_project, read_project
from pipeline.models import Passage
from pipeline.store import (
    ReviewRow,
    add_reviews,
    document_rows,
    latest_reviews,
    load_passages,
    open_store,
    save_classifications,
    session,
)

from .conftest import CORPUS, FIXTURES

PDF_DOC = "vg-deelsessie-huisartsenzorg"
TXT_DOC = "tekens"
MODEL = "test-model-1"
NS = {"q": exchange.PROJECT_NS}
SPECIAL = "ë’&<"
TEXT = """# Samenwerking & zorg in de regio

De huisarts zegt: ‘Ik werk samen met de AVG’s & de wijkverpleging.’ Patiënten < 65 jaar krijgen geen extra zorg \
van de praktijkondersteuner. Coördinatie tussen de partijen blijft lastig.

De gemeente financiert de Wmo-ondersteuning en de zorgverzekeraar financiert de eerstelijnszorg. Er is één keer \
per maand overleg tussen de huisarts, de wijkverpleegkundige en de sociaal werker. Dat overleg werkt goed, zeggen de \
deelnemers.

Door tekorten aan huisartsen in de regio ontstaan lange wachttijden voor cliënten. De financiering is versnipperd \
over drie domeinen, wat samenwerking bemoeilijkt & vertraagt. Naïeve verwachtingen over de rol van de gemeente \
spelen ook mee.

In totaal zijn er veertien interviews gehouden met zestien deelnemers uit verschillende organisaties. De gesprekken \
duurden ongeveer een uur en werden letterlijk uitgeschreven.
"""

CODEBOOK = load_codebook()


def varied_labels(i: int) -> dict:
    """A valid coding that differs with i: one or two conditions, interaction types, every polarity."""
    conditions, polarity = CODEBOOK.ids("conditions"), CODEBOOK.ids("polarity")
    stakeholders, types = CODEBOOK.ids("stakeholders"), CODEBOOK.ids("interactie_type")
    picked = {conditions[i % len(conditions)]} | ({conditions[(i + 3) % len(conditions)]} if i % 2 else set())
    chosen = [] if i % 5 == 4 else [c for c in conditions if c in picked]  # codebook order, as the classifier gives
    required = CODEBOOK.fields["interactie_type"].requires[1]
    labels = {
        "conditions": chosen,
        "interactie_type": types[i % len(types)] if required in chosen else None,
        "polarity": polarity[i % len(polarity)],
        "stakeholders": list(stakeholders[: i % 3]),
        "primary_condition": chosen[-1] if chosen else None,
    }
    assert CODEBOOK.validate(labels) == []
    return labels


def build_store(folder: Path) -> tuple[Path, object]:
    """Ingest the small bundled PDF and a TXT file with ë, ’, &, <; review some passages, classify the rest."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True)
    shutil.copy(CORPUS / f"{PDF_DOC}.pdf", corpus)
    (corpus / f"{TXT_DOC}.txt").write_text(TEXT, "utf-8")
    (corpus / "manifest.csv").write_text(
        "doc_id,file,title,study,sector,doc_type,year\n"
        f"{PDF_DOC},{PDF_DOC}.pdf,Sessie,deelsessie,vg,sessieverslag,2021\n"
        f"{TXT_DOC},{TXT_DOC}.txt,Tekens & <zorg>,tekens-studie,eerstelijn,interview,\n",
        "utf-8",
    )
    db = folder / "mgz.sqlite"
    engine = open_store(f"sqlite:///{db}")
    assert ingest_corpus(corpus, engine, workers=1).ok
    rows, model_rows = [], []
    for doc in (PDF_DOC, TXT_DOC):
        for i, p in enumerate(load_passages(engine, doc)):
            if doc == TXT_DOC or i % 3:
                rows.append({"passage_id": p.id, "reviewer": "analist-a", "labels": varied_labels(i)})
            else:
                labels = varied_labels(i)
                score = 0.9 if i % 2 else 0.3
                scores = {
                    f: {v: score for v in (val if isinstance(val, list) else [val]) if v} for f, val in labels.items()
                }
                model_rows.append({"id": p.id, **labels, "scores": scores, "needs_review": False})
    add_reviews(engine, rows)
    save_classifications(engine, PDF_DOC, MODEL, model_rows)
    return db, engine


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    folder = tmp_path_factory.mktemp("exchange")
    db, engine = build_store(folder)
    engine.dispose()
    return folder


@pytest.fixture
def engine(built, tmp_path):
    """A private copy of the built store, so imports in one test never leak into another."""
    for suffix in ("", "-wal", "-shm"):
        if (built / f"mgz.sqlite{suffix}").exists():
            shutil.copy(built / f"mgz.sqlite{suffix}", tmp_path / f"mgz.sqlite{suffix}")
    return open_store(f"sqlite:///{tmp_path / 'mgz.sqlite'}")


def review_count(engine) -> int:
    with session(engine) as s:
        return s.scalar(select(func.count()).select_from(ReviewRow))


def qde_root(path: Path):
    with zipfile.ZipFile(path) as archive:
        return fromstring(archive.read("project.qde"))


def doc_text(engine, doc_id: str) -> str:
    return next(d["text"] for d in exchange._stored_documents(engine) if d["doc_id"] == doc_id)


# --------------------------------------------------------------------------- export


def test_exported_project_validates_and_carries_codebook_users_metadata_and_positions(engine, tmp_path):
    path = tmp_path / "corpus.qdpx"
    report = export_project(engine, CODEBOOK, path, include_model=True, confidence_floor=0.6, model_version=MODEL)

    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        qde = archive.read("project.qde")
        files = {n: archive.read(n).decode("utf-8") for n in names if n.startswith("sources/")}
    assert names[0] == "project.qde" and len(files) == 2
    xmlschema.XMLSchema(str(FIXTURES / "Project.xsd")).validate(qde.decode("utf-8"))

    root = fromstring(qde)
    users = {u.get("guid"): u.get("name") for u in root.iterfind("q:Users/q:User", NS)}
    assert sorted(users.values()) == ["analist-a", f"{exchange.MODEL_USER} {MODEL}"]
    codes = {c.get("guid"): c for c in root.iter(f"{{{exchange.PROJECT_NS}}}Code")}
    codable = [c for c in codes.values() if c.get("isCodable") == "true"]
    assert len(codable) == sum(len(f.ids) for f in CODEBOOK.fields.values())
    interactie = next(c for c in codable if c.get("name") == CODEBOOK.fields["conditions"].label("interactie").name)
    assert [c.get("name") for c in interactie.findall("q:Code", NS)] == [
        label.name for label in CODEBOOK.fields["interactie_type"].labels
    ]
    assert interactie.get("color") == CODEBOOK.fields["conditions"].label("interactie").colour
    assert CODEBOOK.fields["conditions"].label("interactie").definition[:40] in interactie.findtext(
        "q:Description", "", NS
    )
    assert len({c.get("name") for c in codes.values()}) == len(codes)  # unique names (ATLAS.ti needs it)

    variables = {v.get("name"): v.get("guid") for v in root.iterfind("q:Variables/q:Variable", NS)}
    assert set(variables) == {"sector", "study", "doc_type", "year"}
    cases = {c.get("name"): c for c in root.iterfind("q:Cases/q:Case", NS)}
    sector_of = {
        name: v.findtext("q:TextValue", None, NS)
        for name, case in cases.items()
        for v in case.iterfind("q:VariableValue", NS)
        if v.find("q:VariableRef", NS).get("targetGUID") == variables["sector"]
    }
    assert sector_of == {PDF_DOC: "vg", TXT_DOC: "eerstelijn"}
    assert {s.get("name") for s in root.iterfind("q:Sets/q:Set", NS)} >= {"sector: vg", "sector: eerstelijn"}

    reviews = latest_reviews(engine)
    n_model = 0
    for source in root.iterfind("q:Sources/q:TextSource", NS):
        text = files["sources/" + source.get("plainTextPath").removeprefix("internal://")]
        assert text == doc_text(engine, source.get("name"))
        by_start = {p.char_start: p for p in load_passages(engine, source.get("name"))}
        for selection in source.iterfind("q:PlainTextSelection", NS):
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            passage = by_start[start]
            assert text[start:end] == passage.text and end == passage.char_end
            coded = {c.find("q:CodeRef", NS).get("targetGUID") for c in selection.iterfind("q:Coding", NS)}
            assert coded <= set(codes)
            if users[selection.get("creatingUser")].startswith(exchange.MODEL_USER):
                n_model += 1
                assert passage.id not in reviews
                assert "zekerheid 0.90" in selection.findtext("q:Description", "", NS)
            else:
                assert users[selection.get("creatingUser")] == reviews[passage.id]["reviewer"]
    assert n_model == report.model_selections > 0 and report.model_below_floor > 0
    assert report.reviewed_selections == len(reviews)


def test_codebook_export_holds_the_same_codes(engine, tmp_path):
    qdc = tmp_path / "codeboek.qdc"
    count = export_codebook(CODEBOOK, qdc)
    root = fromstring(qdc.read_bytes())
    assert root.tag == f"{{{exchange.CODEBOOK_NS}}}CodeBook"
    codes = [(c.get("guid"), c.get("name"), c.get("color")) for c in root.iter(f"{{{exchange.CODEBOOK_NS}}}Code")]
    assert len(codes) == count
    export_project(engine, CODEBOOK, tmp_path / "p.qdpx")
    in_project = [
        (c.get("guid"), c.get("name"), c.get("color"))
        for c in qde_root(tmp_path / "p.qdpx").iter(f"{{{exchange.PROJECT_NS}}}Code")
    ]
    assert codes == in_project
    # The code elements are the project schema's CodeType (Codebook.xsd uses the same type).
    body = qdc.read_text("utf-8").split("<Codes>", 1)[1].rsplit("</Codes>", 1)[0]
    wrapped = f'<Project xmlns="{exchange.PROJECT_NS}" name="x"><CodeBook><Codes>{body}</Codes></CodeBook></Project>'
    xmlschema.XMLSchema(str(FIXTURES / "Project.xsd")).validate(wrapped)


def test_guids_and_bytes_are_stable_across_exports_of_the_same_corpus(engine, tmp_path):
    first, second = tmp_path / "a.qdpx", tmp_path / "b.qdpx"
    export_project(engine, CODEBOOK, first, include_model=True, model_version=MODEL)
    export_project(engine, CODEBOOK, second, include_model=True, model_version=MODEL)
    assert first.read_bytes() == second.read_bytes()

    rebuilt_db, rebuilt = build_store(tmp_path / "rebuilt")  # the same files ingested again from scratch
    third = tmp_path / "c.qdpx"
    export_project(rebuilt, CODEBOOK, third, include_model=True, model_version=MODEL)

    def guids(path):
        return sorted(re.findall(rb'guid="([^"]+)"', zipfile.ZipFile(path).read("project.qde"), flags=re.I))

    assert guids(third) == guids(first) and len(guids(first)) > 50

    def undated(path):  # the rebuilt store's reviews were made at another time; nothing else may differ
        return re.sub(rb' creationDateTime="[^"]*"', b"", zipfile.ZipFile(path).read("project.qde"))

    assert undated(third) == undated(first)


def test_text_with_special_characters_round_trips_byte_exact(engine, tmp_path):
    path = tmp_path / "p.qdpx"
    export_project(engine, CODEBOOK, path)
    stored = doc_text(engine, TXT_DOC)
    assert all(c in stored for c in SPECIAL)
    with zipfile.ZipFile(path) as archive:
        source = next(s for s in qde_root(path).iterfind("q:Sources/q:TextSource", NS) if s.get("name") == TXT_DOC)
        raw = archive.read("sources/" + source.get("plainTextPath").removeprefix("internal://"))
        qde = archive.read("project.qde")
    assert raw == stored.encode("utf-8")  # no BOM, no re-encoding, no line-end changes
    assert b"&amp;" in qde and b"&lt;" in qde and b"Tekens &amp; &lt;zorg&gt;" in qde
    assert source.findtext("q:Description", "", NS).startswith("Tekens & <zorg>")
    selections = source.findall("q:PlainTextSelection", NS)
    special = [p for p in load_passages(engine, TXT_DOC) if any(c in p.text for c in SPECIAL)]
    assert special
    for passage in special:
        node = next(s for s in selections if int(s.get("startPosition")) == passage.char_start)
        assert raw.decode("utf-8")[passage.char_start : int(node.get("endPosition"))] == passage.text
        assert node.get("name") == exchange._excerpt(passage.text)
    back = read_project(path)
    assert next(s.text for s in back.sources if s.name == TXT_DOC) == stored


def test_a_failed_export_leaves_the_previous_file_and_no_temp_file(engine, tmp_path, monkeypatch):
    path = tmp_path / "p.qdpx"
    path.write_bytes(b"previous export")

    def disk_full(*_args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(corpus_module.os, "replace", disk_full)  # the shared atomic writer
    with pytest.raises(OSError):
        export_project(engine, CODEBOOK, path)
    assert path.read_bytes() == b"previous export"
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


# --------------------------------------------------------------------------- round trip


def test_export_then_import_as_another_coder_gives_identical_labels_on_every_passage(engine, tmp_path):
    path = tmp_path / "p.qdpx"
    exported = export_project(engine, CODEBOOK, path, include_model=True, model_version=MODEL)
    before = latest_reviews(engine)
    count = review_count(engine)

    report = import_project(engine, CODEBOOK, path, coder="analist-b")

    assert report.complete and report.stored == len(before) == exported.reviewed_selections
    assert report.model_codings_skipped > 0  # the model's coding does not come back as a human review
    assert {s["mode"] for s in report.sources} == {"exact"} and len(report.sources) == 2
    after = latest_reviews(engine)
    assert set(after) == set(before)  # model-only passages got no review
    for passage_id, review in before.items():
        assert after[passage_id]["reviewer"] == "analist-b"
        assert after[passage_id]["labels"] == review["labels"]
    assert review_count(engine) == count + len(before)

    again = import_project(engine, CODEBOOK, path, coder="analist-b")
    assert again.stored == 0 and again.unchanged == len(before) and review_count(engine) == count + len(before)


def test_imported_coding_feeds_the_agreement_figures_and_training(engine, tmp_path):
    """The expert is the second coder of a double-coded sample: the import is their decision there."""
    from pipeline.accounts import add_user
    from pipeline.review import agreement_report, assign_double_coding, reviewed_decisions

    admin = add_user(engine, "beheer", "x" * 16, "admin")
    for name in ("analist-a", "expert"):
        add_user(engine, name, "x" * 16)
    reviewed = latest_reviews(engine)
    sample = [p.id for p in load_passages(engine, PDF_DOC) if p.id not in reviewed][:4]
    assert len(sample) == 4 and assign_double_coding(engine, sample, ["analist-a", "expert"], admin) == 4
    add_reviews(
        engine,
        [{"passage_id": pid, "reviewer": "analist-a", "labels": varied_labels(i)} for i, pid in enumerate(sample)],
    )
    path = tmp_path / "p.qdpx"
    export_project(engine, CODEBOOK, path)  # what the expert opens; they leave the sample's coding as it is
    report = import_project(engine, CODEBOOK, path, coder="expert")
    assert report.complete
    pair = next(p for p in agreement_report(engine, CODEBOOK, None)["pairs"] if p["coders"] == ["analist-a", "expert"])
    assert pair["n"] == 4
    decisions = reviewed_decisions(engine)  # what matrices and training use
    assert {decisions[pid].reviewer for pid in sample} == {"analist-a"}  # first coder counts until adjudicated
    outside = [pid for pid in reviewed if pid not in sample]
    assert outside and {decisions[pid].reviewer for pid in outside} == {"expert"}


# --------------------------------------------------------------------------- hostile and malformed files


def _valid_project(engine, tmp_path) -> bytes:
    export_project(engine, CODEBOOK, tmp_path / "valid.qdpx")
    return (tmp_path / "valid.qdpx").read_bytes()


def _zip(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _members(data: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {n: archive.read(n) for n in archive.namelist()}


LOL = (
    '<?xml version="1.0"?><!DOCTYPE Project [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + f']><Project xmlns="{exchange.PROJECT_NS}" name="&lol9;"/>'
)


def _hostile(kind: str, engine, tmp_path: Path) -> Path:
    path = tmp_path / f"{kind}.qdpx"
    if kind == "not_a_zip":
        path.write_text("Dit is geen zip maar tekst.", "utf-8")
        return path
    members = _members(_valid_project(engine, tmp_path))
    if kind == "traversal":
        members["../../buiten.txt"] = b"x"
    elif kind == "absolute_path":
        members["/etc/cron.d/x"] = b"x"
    elif kind == "external_entity":
        secret = tmp_path / "geheim.txt"
        secret.write_text("GEHEIM", "utf-8")
        members["project.qde"] = (
            f'<?xml version="1.0"?><!DOCTYPE Project [<!ENTITY xxe SYSTEM "file://{secret}">]>'
            f'<Project xmlns="{exchange.PROJECT_NS}" name="&xxe;"/>'
        ).encode()
    elif kind == "billion_laughs":
        members["project.qde"] = LOL.encode()
    elif kind == "selection_outside_source":
        members["project.qde"] = re.sub(
            rb'endPosition="\d+"', b'endPosition="99999999"', members["project.qde"], count=1
        )
    elif kind == "not_xml":
        members["project.qde"] = b"<Project><unclosed>"
    elif kind == "no_project":
        del members["project.qde"]
    return _zip(path, members)


@pytest.mark.parametrize(
    "kind, reason",
    [
        ("not_a_zip", "not a REFI-QDA project"),
        ("traversal", "unsafe path"),
        ("absolute_path", "unsafe path"),
        ("external_entity", "DTD or entities"),
        ("billion_laughs", "DTD or entities"),
        ("selection_outside_source", "lies outside its source"),
        ("not_xml", "not well-formed XML"),
        ("no_project", "no project.qde"),
    ],
)
def test_malformed_or_hostile_files_are_refused_and_change_nothing(engine, tmp_path, kind, reason):
    path = _hostile(kind, engine, tmp_path)
    before, latest = review_count(engine), latest_reviews(engine)
    with pytest.raises(ExchangeError) as refused:
        import_project(engine, CODEBOOK, path, coder="analist-b")
    message = str(refused.value)
    assert message.startswith(f"{path}: ") and reason in message and "\n" not in message
    assert "GEHEIM" not in message
    assert review_count(engine) == before and latest_reviews(engine) == latest


def test_oversized_members_are_refused_before_reading(engine, tmp_path, monkeypatch):
    path = tmp_path / "p.qdpx"
    path.write_bytes(_valid_project(engine, tmp_path))
    monkeypatch.setattr(exchange, "MAX_XML_BYTES", 1000)
    with pytest.raises(ExchangeError, match="over the 1000 limit"):
        import_project(engine, CODEBOOK, path, coder="analist-b")


def test_cli_refusal_is_one_error_line_with_exit_status_2(engine, tmp_path):
    path = _hostile("billion_laughs", engine, tmp_path)
    url = str(engine.url)
    result = CliRunner().invoke(app, ["import", "qdpx", str(path), "--coder", "b", "--store", url])
    assert result.exit_code == 2
    assert result.stderr.strip().splitlines() == [result.stderr.strip()] and f"error: {path}: " in result.stderr


# --------------------------------------------------------------------------- projects made by other programs


def write_foreign(
    path: Path,
    sources: list[dict],
    codes: list[str],
    origin: str = "NVivo 14",
    qde_name: str = "Mijn project.qde",
    folder: str = "sources",
) -> Path:
    """A project as another QDA program writes it: its own GUIDs, names and file layout.

    sources: {name, text, crlf, bom, selections: [(start, end, [code names])]} with positions
    counted in the text as that program counts them.
    """
    code_guid = {name: f"{i:08d}-aaaa-4aaa-8aaa-{i:012d}" for i, name in enumerate(codes, start=1)}
    user = "11111111-2222-4333-8444-555555555555"
    xml = [f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="{exchange.PROJECT_NS}" name="Hun project" ']
    xml.append(f'origin={quoteattr(origin)}><Users><User guid="{user}" name="Expert"/></Users><CodeBook><Codes>')
    xml += [f'<Code guid="{g}" name={quoteattr(n)} isCodable="true"/>' for n, g in code_guid.items()]
    xml.append("</Codes></CodeBook><Sources>")
    members = {}
    for k, source in enumerate(sources):
        guid = f"{k:08d}-bbbb-4bbb-8bbb-{k:012d}"
        text = source["text"].replace("\n", "\r\n") if source.get("crlf") else source["text"]
        members[f"{folder}/{guid}.txt"] = ("\ufeff" if source.get("bom") else "").encode() + text.encode("utf-8")
        xml.append(f'<TextSource guid="{guid}" name={quoteattr(source["name"])} plainTextPath="internal://{guid}.txt">')
        for n, (start, end, names) in enumerate(source["selections"]):
            xml.append(
                f'<PlainTextSelection guid="{k:08d}-cccc-4ccc-8ccc-{n:012d}" startPosition="{start}" '
                f'endPosition="{end}" creatingUser="{user}" name="{escape(str(n))}">'
            )
            xml += [
                f'<Coding guid="{k:08d}-dddd-4ddd-8ddd-{n:06d}{j:06d}"><CodeRef targetGUID="{code_guid[c]}"/></Coding>'
                for j, c in enumerate(names)
            ]
            xml.append("</PlainTextSelection>")
        xml.append("</TextSource>")
    xml.append("</Sources></Project>")
    members[qde_name] = "".join(xml).encode("utf-8")
    return _zip(path, members)


def label_name(field: str, label: str) -> str:
    return CODEBOOK.fields[field].label(label).name


def crlf_position(text: str, position: int) -> int:
    """Where a position lands when every line end is counted as two characters."""
    return position + text.count("\n", 0, position)


@pytest.mark.parametrize(
    "origin, crlf, bom",
    [("NVivo 14 (14.23)", True, True), ("ATLAS.ti 23.2", True, False), ("MAXQDA 2022", False, True)],
)
def test_a_project_from_another_program_aligns_by_content_not_file_name(engine, tmp_path, origin, crlf, bom):
    text = doc_text(engine, TXT_DOC)
    passages = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"]
    first, second = passages[0], passages[-1]
    infra, belemmerend = label_name("conditions", "infrastructuur"), label_name("polarity", "belemmerend")
    neutraal = label_name("polarity", "neutraal")

    def pos(p):  # NVivo counts \r\n as two characters, ATLAS.ti as one
        return p if not crlf or "ATLAS" in origin else crlf_position(text, p)

    quote = text.index("Patiënten < 65")  # a short quote inside the first passage
    selections = [
        (pos(quote), pos(quote + len("Patiënten < 65 jaar")), [infra]),
        (pos(first.char_start), pos(first.char_end), [belemmerend]),
        (pos(second.char_start - 2), pos(second.char_end), [neutraal]),
    ]
    path = write_foreign(
        tmp_path / "ander.qdpx",
        [
            {"name": "Interview 3 (definitief).docx", "text": text, "crlf": crlf, "bom": bom, "selections": selections},
            {
                "name": "Iets anders",
                "text": "Een recept voor appeltaart met kaneel en rozijnen. " * 30,
                "selections": [],
            },
        ],
        [infra, belemmerend, neutraal],
        origin=origin,
    )
    source = read_project(path).sources[0]
    assert source.text == text  # BOM dropped, line ends back to \n
    assert [source.text[s.start : s.end] for s in source.selections] == [
        "Patiënten < 65 jaar",
        first.text,
        text[second.char_start - 2 : second.char_end],
    ]
    report = import_project(engine, CODEBOOK, path, coder="expert")
    assert report.sources == [
        {"source": "Interview 3 (definitief).docx", "doc_id": TXT_DOC, "mode": "exact", "share": 1.0}
    ]
    assert report.unaligned_sources == ["Iets anders"] and report.stored == 2
    latest = latest_reviews(engine)
    assert latest[first.id]["reviewer"] == "expert"
    assert latest[first.id]["labels"]["conditions"] == ["infrastructuur"]
    assert latest[first.id]["labels"]["primary_condition"] == "infrastructuur"  # derived: the only condition
    assert latest[first.id]["labels"]["polarity"] == "belemmerend"
    assert latest[second.id]["labels"] == {
        "conditions": [],
        "interactie_type": None,
        "polarity": "neutraal",
        "stakeholders": [],
        "primary_condition": None,
    }


SOURCE_GUID = "ABCDEF01-2345-4789-8BCD-EF0123456789"


def write_variant(path: Path, kind: str, text: str, start: int, end: int, codes: list[str]) -> Path:
    """One text source with one selection coded with ``codes``, laid out as a given program writes it."""
    code_guid = {name: f"C{i:07d}-0000-4000-8000-{i:012d}" for i, name in enumerate(codes, start=1)}
    codings = "".join(
        f'<Coding guid="e{i:07d}-0000-4000-8000-000000000000"><CodeRef targetGUID="{{{g}}}"/></Coding>'
        for i, g in enumerate(code_guid.values())
    )
    selection = (
        f'<PlainTextSelection guid="d0000000-0000-4000-8000-000000000001" startPosition="{start}" '
        f'endPosition="{end}">{codings}</PlainTextSelection>'
    )
    guid, members = SOURCE_GUID, {}
    if kind == "inline_text":  # the text inside project.qde, no file
        source = f'<TextSource guid="{guid}" name="x"><PlainTextContent>{escape(text)}</PlainTextContent>'
    elif kind == "pdf_representation":
        members[f"sources/{guid}.pdf"] = b"%PDF-1.4"
        members[f"sources/{guid}.txt"] = text.encode("utf-8")
        source = (
            f'<PDFSource guid="{guid}" name="x.pdf" path="internal://{guid}.pdf"><Representation '
            f'guid="{guid[:-1]}0" plainTextPath="internal://{guid}.txt">'
        )
    else:
        folder, file_name, location = "sources", f"{guid}.txt", f"internal://{guid}.txt"
        data = text.encode("utf-8")
        if kind == "capital_sources_folder":  # QualCoder reads both; file and path differ in case
            folder, location = "Sources", f"internal://{guid.lower()}.txt"
        elif kind == "triple_slash":
            location = f"internal:///{guid}.txt"
        elif kind == "utf16_with_bom":
            data = text.encode("utf-16")
        members[f"{folder}/{file_name}"] = data
        rich = ""
        if kind == "rich_and_plain":
            members[f"sources/{guid}.docx"] = b"PK\x03\x04"
            rich = f' richTextPath="internal://{guid}.docx"'
        source = f'<TextSource guid="{guid}" name="x.docx" plainTextPath="{location}"{rich}>'
    closing = "</Representation></PDFSource>" if kind == "pdf_representation" else "</TextSource>"
    code_xml = "".join(f'<Code guid="{g}" name={quoteattr(n)} isCodable="true"/>' for n, g in code_guid.items())
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="{exchange.PROJECT_NS}" name="p" origin="X">'
        f"<CodeBook><Codes>{code_xml}</Codes></CodeBook><Sources>{source}{selection}{closing}</Sources></Project>"
    )
    if kind == "prefixed_namespace":  # same document, with a namespace prefix on every element
        xml = re.sub(r"<(/?)(?=[A-Z])", r"<\1qda:", xml).replace('xmlns="', 'xmlns:qda="')
    members["project.qde"] = xml.encode("utf-8")
    return _zip(path, members)


@pytest.mark.parametrize(
    "kind",
    [
        "capital_sources_folder",
        "triple_slash",
        "inline_text",
        "rich_and_plain",
        "utf16_with_bom",
        "prefixed_namespace",
        "pdf_representation",
    ],
)
def test_layouts_of_real_programs_are_read(engine, tmp_path, kind):
    text = doc_text(engine, TXT_DOC)
    passage = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"][1]
    path = write_variant(
        tmp_path / f"{kind}.qdpx",
        kind,
        text,
        passage.char_start,
        passage.char_end,
        [label_name("polarity", "bevorderend"), label_name("stakeholders", "gebruikers")],
    )
    if kind == "prefixed_namespace":
        assert b"<qda:Project" in zipfile.ZipFile(path).read("project.qde")
    project = read_project(path)
    assert [s.text for s in project.sources] == [text] and not project.unreadable_sources
    report = import_project(engine, CODEBOOK, path, coder="expert")
    assert report.complete and report.stored == 1 and report.sources[0]["mode"] == "exact"
    labels = latest_reviews(engine)[passage.id]["labels"]
    assert labels["polarity"] == "bevorderend" and labels["stakeholders"] == ["gebruikers"]


def test_codes_nested_under_a_mapped_code_imply_it(engine, tmp_path):
    """MAXQDA style: polarity and actor subcodes under each condition; coding a subcode means its condition."""
    text = doc_text(engine, TXT_DOC)
    passage = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"][2]
    infra, bel = label_name("conditions", "infrastructuur"), label_name("polarity", "belemmerend")
    codes = (
        '<Code guid="a0000000-0000-4000-8000-000000000001" name="Voorwaarden" isCodable="false">'
        f'<Code guid="a0000000-0000-4000-8000-000000000002" name={quoteattr(infra)} isCodable="true">'
        f'<Code guid="a0000000-0000-4000-8000-000000000003" name={quoteattr(bel)} isCodable="true"/>'
        '<Code guid="a0000000-0000-4000-8000-000000000004" name="Huisartsen" isCodable="true"/>'
        "</Code></Code>"
    )
    coded = "".join(
        f'<Coding guid="b0000000-0000-4000-8000-00000000000{i}"><CodeRef targetGUID="{g}"/></Coding>'
        for i, g in enumerate(("a0000000-0000-4000-8000-000000000003", "a0000000-0000-4000-8000-000000000004"))
    )
    xml = (
        f'<?xml version="1.0" encoding="utf-8"?><Project xmlns="{exchange.PROJECT_NS}" name="p" origin="MAXQDA 24">'
        f'<CodeBook><Codes>{codes}</Codes></CodeBook><Sources><TextSource guid="{SOURCE_GUID}" name="x" '
        f'plainTextPath="internal://{SOURCE_GUID}.txt"><PlainTextSelection guid="c0000000-0000-4000-8000-000000000001"'
        f' startPosition="{passage.char_start}" endPosition="{passage.char_end}">{coded}</PlainTextSelection>'
        "</TextSource></Sources></Project>"
    )
    path = _zip(tmp_path / "maxqda.qdpx", {"project.qde": xml.encode(), f"sources/{SOURCE_GUID}.txt": text.encode()})
    project = read_project(path)
    assert project.codes["a0000000-0000-4000-8000-000000000003"].parent == "a0000000-0000-4000-8000-000000000002"
    report = import_project(engine, CODEBOOK, path, coder="expert")
    assert report.stored == 1 and report.implied_by_parent_code == 1
    assert report.unmapped_codes == [{"code": "Huisartsen", "codings": 1}]  # still listed, not guessed
    labels = latest_reviews(engine)[passage.id]["labels"]
    assert labels["conditions"] == ["infrastructuur"] and labels["primary_condition"] == "infrastructuur"
    assert labels["polarity"] == "belemmerend"


def test_colours_are_written_as_six_hex_digits():
    assert exchange._rgb("#AbC") == "#AAbbCC" and exchange._rgb("#1f77b4") == "#1f77b4"
    assert exchange._rgb("red") is None and exchange._rgb(None) is None and exchange._rgb("#12345") is None
    assert all(re.fullmatch(r"#[0-9A-Fa-f]{6}", c.colour) for c in exchange.label_codes(CODEBOOK).values())


def test_a_reworded_copy_with_headers_and_hyphenation_aligns_fuzzily(engine, tmp_path):
    text = doc_text(engine, PDF_DOC)
    passages = [p for p in load_passages(engine, PDF_DOC) if len(p.text.split()) > 8]
    target = passages[len(passages) // 2]
    # Their copy: a running header, a page header just before the passage, words hyphenated at line ends.
    prefix = text[: target.char_start]
    for word in sorted({w for w in prefix.split() if len(w) >= 10 and w.isalpha()})[:3]:
        prefix = prefix.replace(f" {word} ", f" {word[:4]}-\n{word[4:]} ", 1)
    prefix = "Verslag deelsessie | pagina 1\n" + prefix + "Kopregel pagina 2\n"
    variant, start = prefix + text[target.char_start :], len(prefix)
    assert variant[start : start + len(target.text)] == target.text and "-\n" in variant
    bevorderend = label_name("polarity", "bevorderend")
    path = write_foreign(
        tmp_path / "pdf.qdpx",
        [{"name": "deelsessie.pdf", "text": variant, "selections": [(start, start + len(target.text), [bevorderend])]}],
        [bevorderend],
        origin="ATLAS.ti 24",
    )
    before = review_count(engine)
    report = import_project(engine, CODEBOOK, path, coder="expert", dry_run=True)
    assert report.sources[0]["doc_id"] == PDF_DOC and report.sources[0]["mode"] == "fuzzy"
    assert report.sources[0]["share"] > 0.9 and report.stored == 1 and not report.incomplete
    assert review_count(engine) == before  # a dry run stores nothing
    import_project(engine, CODEBOOK, path, coder="expert")
    assert latest_reviews(engine)[target.id]["labels"]["polarity"] == "bevorderend"
    assert review_count(engine) == before + 1


def test_unmapped_codes_are_listed_and_a_mapping_file_maps_them(engine, tmp_path):
    text = doc_text(engine, TXT_DOC)
    passage = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"][1]
    belemmerend = label_name("polarity", "belemmerend")
    codes = ["Te weinig samenwerking", belemmerend, "Mooi citaat", "Huisartsen"]
    path = write_foreign(
        tmp_path / "codes.qdpx",
        [{"name": "x", "text": text, "selections": [(passage.char_start, passage.char_end, codes)]}],
        codes,
    )
    before = review_count(engine)
    report = import_project(engine, CODEBOOK, path, coder="expert")
    assert report.unmapped_codes == [
        {"code": "Huisartsen", "codings": 1},
        {"code": "Mooi citaat", "codings": 1},
        {"code": "Te weinig samenwerking", "codings": 1},
    ]
    assert not report.complete and report.stored == 1  # polarity alone is a valid coding; nothing guessed
    assert latest_reviews(engine)[passage.id]["labels"]["conditions"] == []

    mapping = tmp_path / "mapping.yaml"
    mapping.write_text(
        "Te weinig samenwerking: te_zwak\nHuisartsen: stakeholders:aanbieders\n'Mooi citaat': null\n", "utf-8"
    )
    report = import_project(engine, CODEBOOK, path, coder="expert", mapping=mapping)
    assert report.unmapped_codes == [] and report.ignored_codes == ["Mooi citaat"] and report.complete
    labels = latest_reviews(engine)[passage.id]["labels"]
    assert labels["conditions"] == ["interactie"] and labels["interactie_type"] == "te_zwak"  # child implies parent
    assert labels["stakeholders"] == ["aanbieders"] and labels["primary_condition"] == "interactie"
    assert review_count(engine) == before + 2

    mapping.write_text("Te weinig samenwerking: bestaat_niet\n", "utf-8")
    with pytest.raises(ExchangeError, match=r"mapping.yaml: code 'Te weinig samenwerking': unknown codebook label"):
        import_project(engine, CODEBOOK, path, coder="expert", mapping=mapping)
    assert review_count(engine) == before + 2


def test_incomplete_coding_is_listed_not_stored(engine, tmp_path):
    text = doc_text(engine, TXT_DOC)
    passage = [p for p in load_passages(engine, TXT_DOC) if p.kind == "paragraph"][2]
    infra = label_name("conditions", "infrastructuur")
    path = write_foreign(
        tmp_path / "half.qdpx",
        [{"name": "x", "text": text, "selections": [(passage.char_start, passage.char_end, [infra])]}],
        [infra],
    )
    before = review_count(engine)
    report = import_project(engine, CODEBOOK, path, coder="expert")
    assert report.stored == 0 and report.incomplete == [
        {"passage_id": passage.id, "doc_id": TXT_DOC, "problems": ["polarity may not be empty"]}
    ]
    assert review_count(engine) == before


# --------------------------------------------------------------------------- rules


def _p(start: int, end: int) -> Passage:
    return Passage(f"p{start}", "paragraph", "x" * (end - start), 1, 1, start, end)


def test_overlap_rule_half_of_the_passage_or_half_of_the_selection():
    passages = [_p(0, 100), _p(102, 140), _p(142, 400)]
    starts = [p.char_start for p in passages]

    def hits(start, end):
        return [(p.char_start, overlap) for p, overlap in exchange.passages_covered(passages, starts, start, end)]

    assert hits(0, 100) == [(0, 100)]
    assert hits(10, 30) == [(0, 20)]  # a short quote inside a passage counts for it
    assert hits(60, 160) == [(102, 38)]  # 40 % of the first passage and 40 % of the selection: not taken
    assert hits(60, 130) == [(0, 40), (102, 28)]  # 57 % of this selection lies in the first passage
    assert hits(0, 400) == [(0, 100), (102, 38), (142, 258)]
    assert hits(99, 103) == []  # a quarter of the selection in each passage, a sliver of each passage


def test_labels_from_codes_implies_parents_resolves_conflicts_and_derives_the_primary_condition():
    weights = Counter(
        {
            ("interactie_type", "goed"): 50,
            ("conditions", "competenties"): 80,
            ("polarity", "belemmerend"): 30,
            ("polarity", "bevorderend"): 70,
        }
    )
    labels, notes = exchange.labels_from_codes(CODEBOOK, weights)
    assert labels == {
        "conditions": ["interactie", "competenties"],
        "interactie_type": "goed",
        "polarity": "bevorderend",
        "stakeholders": [],
        "primary_condition": "competenties",
    }
    assert sorted(notes) == ["conflict", "derived"] and CODEBOOK.validate(labels) == []


def test_cli_export_and_import(engine, tmp_path):
    url, out = str(engine.url), tmp_path / "cli.qdpx"
    runner = CliRunner()
    result = runner.invoke(app, ["export", "qdpx", "--out", str(out), "--store", url])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["export", "qdc", "--out", str(tmp_path / "c.qdc")])
    assert result.exit_code == 0 and (tmp_path / "c.qdc").exists()
    result = runner.invoke(app, ["import", "qdpx", str(out), "--coder", "analist-c", "--store", url, "--json"])
    assert result.exit_code == 0, result.output
    assert {r["reviewer"] for r in latest_reviews(engine).values()} == {"analist-c"}
    assert len(document_rows(engine)) == 2
