"""REFI-QDA exchange (QDA-XML 1.0): the coded corpus out to ATLAS.ti, NVivo, MAXQDA or
QualCoder, and their coding back in as reviewed labels.

Export writes a ``.qdpx`` project: ``project.qde`` (users, the codebook as codes,
variables, cases, sets, one TextSource per document with a PlainTextSelection per
coded passage) and ``sources/<guid>.txt`` holding each document's cleaned text as
UTF-8 without BOM, so a selection's ``startPosition``/``endPosition`` are exactly the
passage's ``char_start``/``char_end`` (positions count Unicode characters, as Python
does). GUIDs are uuid5 values from fixed keys, so exporting the same corpus twice
gives the same GUIDs (and the same bytes).

Import reads a ``.qdpx`` from any of those programs, refuses malformed or hostile
files before touching the store, aligns each text source to a stored document by
content, maps selections onto passages by character overlap, turns the codes on a
passage into a codebook-valid labels dict and stores them, in one transaction, as
reviews by the importing coder.
"""

from __future__ import annotations

import io
import re
import unicodedata
import uuid
import xml.etree.ElementTree as ET
import zipfile
import zlib
from bisect import bisect_left
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import yaml
from defusedxml import DefusedXmlException
from defusedxml.ElementTree import fromstring as safe_fromstring
from lxml import etree
from sqlalchemy import select
from sqlalchemy.engine import Engine

from pipeline.align import Alignment, word_pairs
from pipeline.align import Words as _Words
from pipeline.align import words as _words
from pipeline.codebook import Codebook
from pipeline.corpus import write_atomic
from pipeline.models import Passage
from pipeline.store import DocumentRow, add_reviews, load_classifications, load_passages, session
from pipeline.transcripts import origin_note

PROJECT_NS = "urn:QDA-XML:project:1.0"
CODEBOOK_NS = "urn:QDA-XML:codebook:1.0"
# Fixed namespace for every GUID this module makes: uuid5(namespace, key) is stable.
GUID_NAMESPACE = uuid.UUID("5b0c6f2e-8d7a-4c1e-9f3b-6a2d4e8c1f70")
MODEL_USER = "mgz-model"
DEFAULT_CONFIDENCE_FLOOR = 0.6
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed member dates: the same corpus gives the same bytes
# Lower case, as the REFI-QDA standard (8.1), ATLAS.ti and MAXQDA have it; reportedly ATLAS.ti
# refuses "Sources/". Import accepts either.
SOURCES_DIR = "sources"

# Import limits: a project file or text source larger than this is refused, not read.
MAX_MEMBERS = 20_000
MAX_XML_BYTES = 256 * 2**20
MAX_SOURCE_BYTES = 64 * 2**20
# Per import, over all text sources together (a source that refers to a member another source
# already read counts again: it is aligned again). Memory grows with words (about 0.5 KB each
# while aligning), so these bound what one file can make the import hold.
MAX_IMPORT_CHARS = 128 * 2**20
MAX_IMPORT_WORDS = 1_000_000
MAX_CODE_DEPTH = 100  # codes nested deeper than this are refused (no program nests a codebook so)
_NON_SPACE = re.compile(r"\S+")  # a word, as the aligner counts them
# Alignment: a source belongs to a document when at least this share of the shorter
# of the two (in words) matches in order.
MIN_ALIGNED_SHARE = 0.8
MIN_ALIGNED_WORDS = 20

_INVALID_XML_CHARS = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_RGB = re.compile(r"^#(?:[0-9A-Fa-f]{6}|[0-9A-Fa-f]{3})$")


class ExchangeError(Exception):
    """A file that cannot be exported or imported; ``str()`` is one line naming the file."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def make_guid(*key: str) -> str:
    """Stable GUID for a key (doc sha256, passage id, label id, user name …)."""
    return str(uuid.uuid5(GUID_NAMESPACE, "\x1f".join(key)))


# --------------------------------------------------------------------------- codebook as codes


@dataclass
class CodeSpec:
    """One REFI-QDA code: a field's group (not codable) or a label (codable)."""

    guid: str
    name: str
    codable: bool
    field_id: str | None = None
    label: str | None = None
    colour: str | None = None
    description: str = ""
    children: list[CodeSpec] = field(default_factory=list)


def code_tree(codebook: Codebook) -> list[CodeSpec]:
    """The codebook as a code hierarchy.

    Each field becomes a non-codable group code with its labels as children; a
    field that requires a label of another field (interaction type → interaction)
    hangs under that label's code instead. Names are unique over the whole tree
    (ATLAS.ti needs that): a label whose name is taken is prefixed with its field's
    name, so primary-condition codes read "Belangrijkste voorwaarde: …".
    """
    used: set[str] = set()
    by_label: dict[tuple[str, str], CodeSpec] = {}
    roots: list[CodeSpec] = []

    def unique(name: str, prefix: str) -> str:
        chosen = name if name not in used else f"{prefix}: {name}"
        while chosen in used:
            chosen += " ·"
        used.add(chosen)
        return chosen

    def label_codes(f) -> list[CodeSpec]:
        codes = []
        for label in f.labels:
            spec = CodeSpec(
                guid=make_guid("code", codebook.id, f.id, label.id),
                name=unique(label.name, f.name),
                codable=True,
                field_id=f.id,
                label=label.id,
                colour=_rgb(label.colour),
                description=_label_description(label),
            )
            by_label[(f.id, label.id)] = spec
            codes.append(spec)
        return codes

    ordered = [f for f in codebook.fields.values() if not f.requires] + [
        f for f in codebook.fields.values() if f.requires
    ]
    for f in ordered:
        children = label_codes(f)
        parent = by_label.get(f.requires) if f.requires else None
        if parent is not None:
            parent.children.extend(children)
            continue
        group = CodeSpec(
            guid=make_guid("field", codebook.id, f.id),
            name=unique(f.name, "Veld"),
            codable=False,
            field_id=f.id,
            description=f"Veld {f.id} van codeboek {codebook.id} {codebook.version}".strip(),
            children=children,
        )
        roots.append(group)
    return roots


def _rgb(colour: str | None) -> str | None:
    """A codebook colour as ``#RRGGBB`` (``#RGB`` expanded: not every program reads three digits); None if invalid."""
    if not _RGB.match(colour or ""):
        return None
    digits = colour[1:]  # type: ignore[index]
    return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits)


def _label_description(label) -> str:
    parts = [label.definition]
    if label.include:
        parts.append("Wel: " + "; ".join(label.include))
    if label.exclude:
        parts.append("Niet: " + "; ".join(label.exclude))
    parts.append(f"id: {label.id}")
    return "\n".join(p for p in parts if p)


def _flat(codes: Iterable[CodeSpec]) -> Iterator[CodeSpec]:
    for code in codes:
        yield code
        yield from _flat(code.children)


def label_codes(codebook: Codebook) -> dict[tuple[str, str], CodeSpec]:
    """(field id, label id) → its code."""
    return {(c.field_id, c.label): c for c in _flat(code_tree(codebook)) if c.codable}  # type: ignore[misc]


# --------------------------------------------------------------------------- XML helpers


def _clean(text: str | None) -> str:
    """Text safe for XML 1.0 (control characters other than tab and newlines removed)."""
    return _INVALID_XML_CHARS.sub("", text or "")


def _sub(
    parent: etree._Element, tag: str, ns: str = PROJECT_NS, text: str | None = None, **attrs: object
) -> etree._Element:
    element = etree.SubElement(parent, f"{{{ns}}}{tag}", {k: _clean(str(v)) for k, v in attrs.items() if v is not None})
    if text is not None:
        element.text = _clean(text)
    return element


def _code_elements(parent: etree._Element, codes: Iterable[CodeSpec], ns: str) -> None:
    for code in codes:
        element = _sub(
            parent,
            "Code",
            ns,
            guid=code.guid,
            name=code.name,
            isCodable="true" if code.codable else "false",
            color=code.colour,
        )
        if code.description:
            _sub(element, "Description", ns, text=code.description)
        _code_elements(element, code.children, ns)


def _xml_bytes(root: etree._Element) -> bytes:
    """UTF-8 XML with the usual declaration; the root carries its namespace as default, so no prefixes."""
    return b'<?xml version="1.0" encoding="utf-8"?>\n' + etree.tostring(root, encoding="utf-8")


def _timestamp(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _excerpt(text: str, size: int = 60) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= size else flat[: size - 1] + "…"


def _origin() -> str:
    try:
        from importlib.metadata import version

        return f"mgz {version('mgz')}"
    except Exception:  # not installed as a package (running from a checkout)
        return "mgz"


# --------------------------------------------------------------------------- export


def export_codebook(codebook: Codebook, path: Path) -> int:
    """Write the codebook alone as a REFI-QDA ``.qdc`` file; returns the number of codes."""
    root = etree.Element(f"{{{CODEBOOK_NS}}}CodeBook", {"origin": _origin()}, nsmap={None: CODEBOOK_NS})
    tree = code_tree(codebook)
    _code_elements(_sub(root, "Codes", CODEBOOK_NS), tree, CODEBOOK_NS)
    write_atomic(Path(path), _xml_bytes(root))
    return sum(1 for _ in _flat(tree))


@dataclass
class ExportReport:
    path: str
    documents: int = 0
    reviewed_selections: int = 0
    model_selections: int = 0
    model_below_floor: int = 0
    users: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class _Selection:
    passage: Passage
    labels: dict
    user: str
    created: datetime | None
    name: str
    description: str | None


def _stored_documents(engine: Engine) -> list[dict]:
    """Current documents with their cleaned text and metadata."""
    with session(engine) as s:
        rows = s.scalars(select(DocumentRow).where(DocumentRow.status == "ok").order_by(DocumentRow.doc_id))
        return [
            {
                "doc_id": r.doc_id,
                "sha256": r.sha256 or r.doc_id,
                "title": r.title,
                "study": r.study,
                "sector": r.sector,
                "doc_type": r.doc_type,
                "year": r.year,
                "text": r.text,
            }
            for r in rows
            if r.text is not None
        ]


def _latest_reviews(engine: Engine) -> dict:
    """The decision that counts per passage, memo included: the same rule as matrices and training
    (latest decision; on double-coded passages the adjudication, else the first coder's)."""
    from pipeline.review import reviewed_decisions

    return reviewed_decisions(engine)


def model_confidence(prediction: dict, codebook: Codebook) -> float | None:
    """The weakest calibrated score among the labels the model gave (None without scores)."""
    scores = prediction.get("scores") or {}
    values = []
    for f in codebook.fields.values():
        value = prediction.get(f.id)
        for label in (value or []) if f.multi else ([value] if value else []):
            score = (scores.get(f.id) or {}).get(label)
            if score is not None:
                values.append(float(score))
    return min(values) if values else None


def _selections(
    engine: Engine,
    doc: dict,
    codebook: Codebook,
    reviews: dict,
    model_version: str | None,
    floor: float,
    report: ExportReport,
) -> list[_Selection]:
    """One selection per coded passage: the latest review, else (when asked) a confident model coding."""
    model = load_classifications(engine, doc["doc_id"], model_version) if model_version else {}
    out = []
    for p in load_passages(engine, doc["doc_id"]):
        if doc["text"][p.char_start : p.char_end] != p.text:
            raise ExchangeError(doc["doc_id"], f"passage {p.id} does not match the document text at its offsets")
        review = reviews.get(p.id)
        if review is not None:
            out.append(_Selection(p, review.labels, review.reviewer, review.created_at, _excerpt(p.text), review.memo))
            report.reviewed_selections += 1
        elif p.id in model:
            confidence = model_confidence(model[p.id], codebook)
            if confidence is None or confidence < floor:
                report.model_below_floor += 1
                continue
            note = f"{MODEL_USER} {model_version}: zekerheid {confidence:.2f} (laagste score van de gegeven labels)"
            name = f"[model {confidence:.2f}] {_excerpt(p.text, 48)}"
            out.append(_Selection(p, model[p.id], MODEL_USER, None, name, note))
            report.model_selections += 1
    return out


def _users(selections: Iterable[_Selection], model_version: str | None) -> dict[str, dict]:
    """name → User attributes; the model is one user whose id attribute holds its version."""
    names = sorted({s.user for s in selections})
    return {
        name: {
            "guid": make_guid("user", name),
            "name": f"{MODEL_USER} {model_version}" if name == MODEL_USER else name,
            "id": model_version if name == MODEL_USER else None,
        }
        for name in names
    }


VARIABLES = (("sector", "Text"), ("study", "Text"), ("doc_type", "Text"), ("year", "Integer"))


def _variable_values(parent: etree._Element, doc: dict) -> None:
    for name, kind in VARIABLES:
        value = doc.get(name)
        if value in (None, ""):
            continue
        element = _sub(parent, "VariableValue")
        _sub(element, "VariableRef", targetGUID=make_guid("variable", name))
        _sub(element, "IntegerValue" if kind == "Integer" else "TextValue", text=str(value))


def _source_element(sources: etree._Element, doc: dict, selections: list[_Selection], codes, users) -> None:
    source_guid = make_guid("source", doc["sha256"])
    element = _sub(
        sources, "TextSource", guid=source_guid, name=doc["doc_id"], plainTextPath=f"internal://{source_guid}.txt"
    )
    about = [doc["title"], *(f"{k}: {doc[k]}" for k in ("study", "sector", "doc_type", "year") if doc.get(k))]
    _sub(element, "Description", text="\n".join(str(a) for a in about if a))
    for sel in selections:
        coded = _coded_labels(sel.labels, codes)
        if not coded and not sel.description:
            continue  # nothing this codebook knows (reported as a warning)
        user = users[sel.user]["guid"]
        created = _timestamp(sel.created)
        node = _sub(
            element,
            "PlainTextSelection",
            guid=make_guid("selection", sel.passage.id),
            name=sel.name,
            startPosition=sel.passage.char_start,
            endPosition=sel.passage.char_end,
            creatingUser=user,
            creationDateTime=created,
        )
        description = "\n".join(filter(None, [origin_note(sel.passage), sel.description]))
        if description:  # a transcript turn's time span and OCR go with the selection (pipeline.transcripts)
            _sub(node, "Description", text=description)
        for field_id, label in coded:
            coding = _sub(
                node,
                "Coding",
                guid=make_guid("coding", sel.passage.id, field_id, label),
                creatingUser=user,
                creationDateTime=created,
            )
            _sub(coding, "CodeRef", targetGUID=codes[(field_id, label)].guid)
    _variable_values(element, doc)


def _coded_labels(labels: dict, codes: dict[tuple[str, str], CodeSpec]) -> list[tuple[str, str]]:
    """(field, label) pairs of a labels dict that the codebook knows, in codebook order."""

    def values(field_id: str) -> list:
        value = labels.get(field_id)
        return value if isinstance(value, list) else [value]

    return [(field_id, label) for field_id, label in codes if label in values(field_id)]


def export_project(
    engine: Engine,
    codebook: Codebook,
    path: Path,
    include_model: bool = False,
    confidence_floor: float = DEFAULT_CONFIDENCE_FLOOR,
    model_version: str | None = None,
    project_name: str = "mgz",
) -> ExportReport:
    """Write the stored corpus with its coding as a REFI-QDA project (``.qdpx``).

    Reviewed passages are coded by their reviewer; with ``include_model`` the
    model's labels for unreviewed passages are added, attributed to one model user,
    when their weakest calibrated score reaches ``confidence_floor``.
    """
    if include_model and not model_version:
        raise ExchangeError(path, "--include-model needs a trained model (none found)")
    report = ExportReport(path=str(path))
    codes = label_codes(codebook)
    reviews = _latest_reviews(engine)
    docs = _stored_documents(engine)
    per_doc = {
        d["doc_id"]: _selections(
            engine, d, codebook, reviews, model_version if include_model else None, confidence_floor, report
        )
        for d in docs
    }
    users = _users((s for sels in per_doc.values() for s in sels), model_version)
    report.documents = len(docs)
    report.users = [u["name"] for u in users.values()]
    unknown = {
        f"{f}={v}"
        for sels in per_doc.values()
        for s in sels
        for f, value in s.labels.items()
        if f in codebook.fields
        for v in (value if isinstance(value, list) else [value])
        if v is not None and (f, v) not in codes
    }
    if unknown:
        report.warnings.append(f"labels not in codebook {codebook.id}, left out: {', '.join(sorted(unknown))}")
    if include_model and not (report.model_selections or report.model_below_floor):
        report.warnings.append(f"no stored model labels of model {model_version} for unreviewed passages")
    wide = [d["doc_id"] for d in docs if any(ord(c) > 0xFFFF for c in d["text"])]
    if wide:
        report.warnings.append(
            "characters outside the Basic Multilingual Plane (emoji …) in "
            f"{', '.join(wide)}: programs counting UTF-16 units place later selections one position off per character"
        )

    attrs = {"name": _clean(project_name), "origin": _origin()}
    root = etree.Element(f"{{{PROJECT_NS}}}Project", attrs, nsmap={None: PROJECT_NS})
    if users:
        users_el = _sub(root, "Users")
        for user in users.values():
            _sub(users_el, "User", **user)
    _code_elements(_sub(_sub(root, "CodeBook"), "Codes"), code_tree(codebook), PROJECT_NS)
    if docs:
        _project_variables_and_cases(root, docs)
        sources = _sub(root, "Sources")
        for doc in docs:
            _source_element(sources, doc, per_doc[doc["doc_id"]], codes, users)
        _project_sets(root, docs)
    about = f"Geëxporteerd door {_origin()}; codeboek {codebook.id} {codebook.version}"
    if include_model:
        about += f"; modelcoderingen van {model_version} vanaf zekerheid {confidence_floor:.2f}"
    _sub(root, "Description", text=about)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(zipfile.ZipInfo("project.qde", ZIP_DATE), _xml_bytes(root), zipfile.ZIP_DEFLATED)
        for doc in docs:
            name = f"{SOURCES_DIR}/{make_guid('source', doc['sha256'])}.txt"
            archive.writestr(zipfile.ZipInfo(name, ZIP_DATE), doc["text"].encode("utf-8"), zipfile.ZIP_DEFLATED)
    write_atomic(Path(path), buffer.getvalue())
    return report


def _project_variables_and_cases(root: etree._Element, docs: list[dict]) -> None:
    """Document metadata as variables, and one case per document carrying them (NVivo compares cases)."""
    variables = _sub(root, "Variables")
    for name, kind in VARIABLES:
        variable = _sub(variables, "Variable", guid=make_guid("variable", name), name=name, typeOfVariable=kind)
        _sub(variable, "Description", text=f"Documentkenmerk {name} uit corpus/manifest.csv")
    cases = _sub(root, "Cases")
    for doc in docs:
        case = _sub(cases, "Case", guid=make_guid("case", doc["sha256"]), name=doc["doc_id"])
        _variable_values(case, doc)
        _sub(case, "SourceRef", targetGUID=make_guid("source", doc["sha256"]))


def _project_sets(root: etree._Element, docs: list[dict]) -> None:
    """Document groups per metadata value (ATLAS.ti shows sets as document groups)."""
    groups: dict[tuple[str, str], list[str]] = defaultdict(list)
    for doc in docs:
        for name, _ in VARIABLES:
            if doc.get(name) not in (None, ""):
                groups[(name, str(doc[name]))].append(make_guid("source", doc["sha256"]))
    if not groups:
        return
    sets = _sub(root, "Sets")
    for (name, value), members in sorted(groups.items()):
        element = _sub(sets, "Set", guid=make_guid("set", name, value), name=f"{name}: {value}")
        for member in members:
            _sub(element, "MemberSource", targetGUID=member)


# --------------------------------------------------------------------------- reading a project


@dataclass(frozen=True)
class QdaCode:
    guid: str
    name: str
    codable: bool
    parent: str | None = None  # the enclosing code's guid (MAXQDA, NVivo and ATLAS.ti nest codes)


@dataclass(frozen=True)
class QdaSelection:
    """A coded stretch of a text source; positions index the source's text (newlines as ``\\n``)."""

    guid: str
    start: int
    end: int
    codings: tuple[tuple[str, str | None], ...]  # (code guid, user guid)


@dataclass(frozen=True)
class QdaSource:
    guid: str
    name: str
    text: str
    selections: tuple[QdaSelection, ...]


@dataclass
class QdaProject:
    """What this pipeline uses of a REFI-QDA project, as plain data."""

    path: str
    name: str
    origin: str
    users: dict[str, str]  # guid → name
    codes: dict[str, QdaCode]  # guid → code
    sources: list[QdaSource]
    unreadable_sources: list[str] = field(default_factory=list)
    refused_sources: list[str] = field(default_factory=list)  # read, but its positions fit its text under no rule
    counts: dict = field(default_factory=dict)  # what the file holds, before alignment: users, codes, sources, ...


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1]


def _children(element: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in element if _local(child.tag) == name]


def _guid(value: str | None) -> str:
    """GUIDs compare case-insensitively and may come in braces."""
    return (value or "").strip().strip("{}").lower()


def _unsafe_member(name: str) -> bool:
    """Absolute paths, drive letters, NUL bytes or '..' components: a path-traversal attempt."""
    posix = name.replace("\\", "/")
    return (
        "\x00" in posix
        or posix.startswith("/")
        or re.match(r"^[A-Za-z]:", posix) is not None
        or ".." in PurePosixPath(posix).parts
    )


def _checked_members(path: Path, archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """Lower-cased member name → entry, after refusing hostile or ambiguous names."""
    infos = archive.infolist()
    if len(infos) > MAX_MEMBERS:
        raise ExchangeError(path, f"archive has {len(infos)} members, more than the limit of {MAX_MEMBERS}")
    members: dict[str, zipfile.ZipInfo] = {}
    for info in infos:
        if _unsafe_member(info.filename):
            raise ExchangeError(path, f"archive member {info.filename!r} has an unsafe path (absolute or ..); refused")
        key = info.filename.replace("\\", "/").lower()
        if key in members:
            raise ExchangeError(path, f"archive holds {info.filename!r} twice; refused")
        members[key] = info
    return members


def _read_member(path: Path, archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """A member's bytes, never more than ``limit`` (a declared size can lie: zip bombs)."""
    if info.flag_bits & 0x1:
        raise ExchangeError(path, f"archive member {info.filename!r} is encrypted")
    if info.file_size > limit:
        raise ExchangeError(path, f"archive member {info.filename!r} is {info.file_size} bytes, over the {limit} limit")
    with archive.open(info) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise ExchangeError(path, f"archive member {info.filename!r} unpacks to more than {limit} bytes; refused")
    return data


def _project_member(path: Path, members: dict[str, zipfile.ZipInfo]) -> zipfile.ZipInfo:
    """``project.qde``, or the one ``*.qde`` at the top (ATLAS.ti names it after the project)."""
    if "project.qde" in members:
        return members["project.qde"]
    top = [info for key, info in members.items() if key.endswith(".qde") and "/" not in key]
    if len(top) != 1:
        raise ExchangeError(path, "no project.qde in the archive; not a REFI-QDA project")
    return top[0]


def _parse_xml(path: Path, member: str, data: bytes) -> ET.Element:
    """Parse with DTDs and entities forbidden: no external entities, no entity expansion bombs."""
    try:
        return safe_fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise ExchangeError(
            path, f"{member} declares a DTD or entities ({type(exc).__name__}); refused as possibly hostile XML"
        ) from None
    except ET.ParseError as exc:
        raise ExchangeError(path, f"{member} is not well-formed XML ({exc})") from None


def _newline_positions(raw: str, positions_in_raw: bool) -> tuple[str, list[int] | None, int]:
    """The text with ``\\r\\n`` and ``\\r`` as ``\\n``, a map from the program's positions into it
    (None when they are the same), and the largest valid position.

    Programs differ: NVivo and MAXQDA count a Windows line end as two characters,
    ATLAS.ti as one (QualCoder's importer makes the same distinction).
    """
    if "\r" not in raw:
        return raw, None, len(raw)
    text = raw.replace("\r\n", "\n").replace("\r", "\n")
    if not positions_in_raw:
        return text, None, len(text)
    mapping = []
    position = 0
    for i, char in enumerate(raw):
        mapping.append(position)
        if not (char == "\r" and raw[i + 1 : i + 2] == "\n"):
            position += 1
    mapping.append(position)
    return text, mapping, len(raw)


def _archive_member(location: str, members: dict[str, zipfile.ZipInfo]) -> tuple[zipfile.ZipInfo | None, bool]:
    """The archive member a ``plainTextPath`` names, and whether it said ``internal://``.

    ``internal://x.txt`` is ``sources/x.txt`` (or ``x.txt``); a path without a scheme
    (some exporters write ``sources/x.txt`` or just ``x.txt``) and ``relative://`` are
    looked up in the archive the same way. ``absolute://`` and other schemes name a
    file on the exporter's disk: never looked for here.
    """
    lowered = location.lower()
    internal = lowered.startswith("internal://")
    if internal:
        inner = location[len("internal://") :]
    elif lowered.startswith("relative://"):
        inner = location[len("relative://") :]
    elif "://" not in location and not re.match(r"^[A-Za-z]:", location):
        inner = location
    else:
        return None, False
    inner = inner.replace("\\", "/").lstrip("/")
    if not inner or _unsafe_member(inner):
        return None, internal
    return members.get(f"sources/{inner}".lower()) or members.get(inner.lower()), internal


def _source_text(
    path: Path,
    archive: zipfile.ZipFile,
    members: dict[str, zipfile.ZipInfo],
    element: ET.Element,
    name: str,
    cache: dict[str, str] | None = None,
) -> str | None:
    """A text source's plain text (inline or from the archive); None for files outside the archive.

    ``cache`` holds the members already read: many sources naming one member read it once."""
    inline = [child for child in element if _local(child.tag).lower() == "plaintextcontent"]
    if inline:
        return "".join(inline[0].itertext())
    location = element.get("plainTextPath") or ""
    info, internal = _archive_member(location, members)
    if info is None:
        if internal:
            raise ExchangeError(path, f"text source {name!r}: {location} is missing from the archive")
        return None  # absolute:// (or a path not in the archive): a file on the exporter's disk
    if cache is not None and info.filename in cache:
        return cache[info.filename]
    data = _read_member(path, archive, info, MAX_SOURCE_BYTES)
    try:
        if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16 with BOM: not the standard's UTF-8, but unambiguous
            text = data.decode("utf-16")
        else:
            text = data.decode("utf-8-sig")
        del data
        if cache is not None:
            cache[info.filename] = text
        return text
    except UnicodeDecodeError:
        raise ExchangeError(
            path, f"text source {name!r} ({info.filename}) is not UTF-8 (or UTF-16 with BOM) text"
        ) from None


def _text_source(path: Path, element: ET.Element, raw: str, name: str, atlas: bool) -> QdaSource:
    in_raw = _counting_rule(element, raw, name, default=not atlas)
    text, mapping, limit = _newline_positions(raw, positions_in_raw=in_raw)
    selections = []
    for node in _children(element, "PlainTextSelection"):
        guid = _guid(node.get("guid"))
        try:
            start, end = int(node.get("startPosition", "")), int(node.get("endPosition", ""))
        except ValueError:
            raise ExchangeError(path, f"selection {guid} in {name!r} has no integer start/end position") from None
        if not 0 <= start <= end <= limit:
            raise ExchangeError(
                path, f"selection {guid} ({start}–{end}) lies outside its source {name!r} ({limit} characters)"
            )
        if mapping is not None:
            start, end = mapping[start], mapping[end]
        user = node.get("creatingUser")
        codings = tuple(
            (_guid(ref.get("targetGUID")), _guid(coding.get("creatingUser") or user) or None)
            for coding in _children(node, "Coding")
            for ref in _children(coding, "CodeRef")[:1]
        )
        if end > start and codings:
            selections.append(QdaSelection(guid, start, end, codings))
    return QdaSource(_guid(element.get("guid")), name, text, tuple(selections))


def _codes(element: ET.Element | None, path: Path | str = "") -> dict[str, QdaCode]:
    """Every code at any depth, with its parent code (None at the top).

    Walked with an explicit stack, not recursion, and refused past ``MAX_CODE_DEPTH``
    levels: a hostile file nesting codes a thousand deep gets one line, not a traceback."""
    found: dict[str, QdaCode] = {}
    if element is None:
        return found
    stack: list[tuple[ET.Element, str | None, int]] = [(element, None, 0)]
    while stack:
        node, parent, depth = stack.pop()
        for code in reversed(list(node)):
            if _local(code.tag) == "Codes":  # CodeBook/Codes, or a program nesting another Codes element
                stack.append((code, parent, depth))
            elif _local(code.tag) == "Code":
                if depth >= MAX_CODE_DEPTH:
                    raise ExchangeError(path, f"codes nested more than {MAX_CODE_DEPTH} levels deep; refused")
                guid = _guid(code.get("guid"))
                name = code.get("name") or guid
                found[guid] = QdaCode(guid, name, code.get("isCodable", "true") != "false", parent)
                stack.append((code, guid, depth + 1))
    return found


def _ancestors(codes: dict[str, QdaCode], guid: str) -> Iterator[str]:
    """The GUIDs of the codes enclosing a code, nearest first."""
    seen = {guid}
    parent = codes[guid].parent if guid in codes else None
    while parent and parent not in seen:
        seen.add(parent)
        yield parent
        parent = codes[parent].parent if parent in codes else None


def read_project(path: Path) -> QdaProject:
    """Read a ``.qdpx`` safely into plain data, or raise :class:`ExchangeError` with one clear line.

    Nothing is extracted to disk; member names, sizes and the XML are checked
    before anything is used.
    """
    path = Path(path)
    if not path.is_file():
        raise ExchangeError(path, "file not found")
    if not zipfile.is_zipfile(path):
        raise ExchangeError(path, "not a REFI-QDA project (a .qdpx file is a zip archive; this is not one)")
    try:
        with zipfile.ZipFile(path) as archive:
            members = _checked_members(path, archive)
            qde = _project_member(path, members)
            root = _parse_xml(path, qde.filename, _read_member(path, archive, qde, MAX_XML_BYTES))
            if _local(root.tag) != "Project" or not str(root.tag).startswith("{urn:QDA-XML:project:"):
                raise ExchangeError(path, f"{qde.filename} is not a QDA-XML project (root element {root.tag!r})")
            return _project(path, archive, members, root)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError, OSError) as exc:
        raise ExchangeError(path, f"corrupt or unsupported zip archive ({type(exc).__name__}: {exc})") from None
    except zlib.error as exc:
        raise ExchangeError(path, f"corrupt zip archive ({exc})") from None


def _project(path: Path, archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], root: ET.Element) -> QdaProject:
    origin = root.get("origin") or ""
    atlas = "ATLAS" in origin.upper()
    users = {_guid(u.get("guid")): u.get("name") or "" for group in _children(root, "Users") for u in group}
    codes = _codes(next(iter(_children(root, "CodeBook")), None), path)
    project = QdaProject(str(path), root.get("name") or "", origin, users, codes, [])
    project.counts = _project_counts(root, users, codes)
    budget = _ReadBudget(path)
    cache: dict[str, str] = {}
    for sources in _children(root, "Sources"):
        for element in sources:
            kind = _local(element.tag)
            name = element.get("name") or _guid(element.get("guid"))
            if kind == "PDFSource":  # coded PDFs carry a plain-text representation with text selections
                representation = _children(element, "Representation")
                if not representation:
                    project.unreadable_sources.append(f"{name} (PDF without text representation)")
                    continue
                element = representation[0]
            elif kind != "TextSource":
                project.unreadable_sources.append(f"{name} ({kind})")
                continue
            raw = _source_text(path, archive, members, element, name, cache)
            if raw is None:
                project.unreadable_sources.append(f"{name} (file outside the archive)")
                continue
            budget.take(raw, name)
            try:
                project.sources.append(_text_source(path, element, raw, name, atlas))
            except _SourceRefused as refused:
                project.refused_sources.append(f"{name}: {refused}")
    return project


# --------------------------------------------------------------------------- import limits and checks (issue 16)


class _SourceRefused(Exception):
    """One text source left out (the rest of the file is read): ``str()`` says why, in one line."""


class _ReadBudget:
    """Characters and words read from all text sources of one import, refused past the limits.

    Counted per source, so 48 sources naming one 60 MB member count 48 times: each
    would be aligned on its own."""

    def __init__(self, path: Path) -> None:
        self.path, self.chars, self.words = path, 0, 0

    def take(self, text: str, name: str) -> None:
        self.chars += len(text)
        if self.chars > MAX_IMPORT_CHARS:
            raise ExchangeError(
                self.path,
                f"text sources hold more than {MAX_IMPORT_CHARS} characters together (at {name!r}); "
                "refused (import the project in parts)",
            )
        self.words += sum(1 for _ in _NON_SPACE.finditer(text))
        if self.words > MAX_IMPORT_WORDS:
            raise ExchangeError(
                self.path,
                f"text sources hold more than {MAX_IMPORT_WORDS} words together (at {name!r}); "
                "refused (import the project in parts)",
            )


def _project_counts(root: ET.Element, users: dict[str, str], codes: dict[str, QdaCode]) -> dict:
    """What the file holds, counted before anything is aligned or mapped (for the import report)."""
    sources = [element for group in _children(root, "Sources") for element in group]
    selections = [node for element in sources for node in element.iter() if _local(node.tag).endswith("Selection")]
    codings = sum(1 for node in selections for child in node if _local(child.tag) == "Coding")
    return {
        "users": len(users),
        "codes": len(codes),
        "sources": len(sources),
        "selections": len(selections),
        "codings": codings,
    }


def _collapse(text: str) -> str:
    """Whitespace runs as one space: XML turns line ends inside an attribute into spaces."""
    return " ".join(text.split())


def _counting_rule(element: ET.Element, raw: str, name: str, default: bool) -> bool:
    """Whether positions count a Windows line end as two characters (True) or one (False).

    Programs disagree (NVivo and MAXQDA: two; ATLAS.ti: one; QualCoder's "line
    endings for MAXQDA" export writes CRLF but counts one), so where selections carry
    the selected text in their ``name`` (QualCoder, and others) the rule is the one
    under which those texts match the positions. Without such names, ``default``
    (from the program's name). When names hold text from the source but neither rule
    makes them all match, the source is refused rather than coded at wrong places.
    """
    if "\r" not in raw:
        return default
    named = []
    for node in _children(element, "PlainTextSelection"):
        key = _collapse(node.get("name") or "")
        try:
            start, end = int(node.get("startPosition", "")), int(node.get("endPosition", ""))
        except ValueError:
            continue
        if len(key) >= 3 and end > start:
            named.append((start, end, key))
    if not named:
        return default
    body = _collapse(raw)
    evidence = [row for row in named if row[2] in body]
    if not evidence:
        return default  # names are labels ("1", "Citaat"), not the selected text
    matches = {}
    for rule in (True, False):
        text, mapping, limit = _newline_positions(raw, positions_in_raw=rule)
        hits = 0
        for start, end, key in evidence:
            if 0 <= start <= end <= limit:
                a, b = (mapping[start], mapping[end]) if mapping is not None else (start, end)
                hits += _collapse(text[a:b]) == key
        matches[rule] = hits
    best = max((True, False), key=lambda rule: (matches[rule], rule == default))
    if matches[best] < len(evidence):
        raise _SourceRefused(
            f"the selected text of {len(evidence) - matches[best]} of {len(evidence)} selections (their name) "
            "matches its positions neither with a line end counted as one character nor as two; source left out"
        )
    return best


# --------------------------------------------------------------------------- aligning sources to documents


def align_source(text: str, docs: list[dict], words: dict[str, _Words]) -> Alignment | None:
    """The stored document this source's text is, by content; None when no document is close enough.

    Rule: identical text (line ends normalised) aligns exactly. Otherwise the
    document sharing most words is compared in order; it aligns when the matched
    words are at least 80 % of the shorter text's words (and at least 20 words), so
    a version with running headers or different hyphenation still aligns while an
    unrelated text does not.
    """
    for doc in docs:
        if doc["text"] == text:
            return Alignment(doc["doc_id"], "exact", 1.0)
    src = _words(text)
    if not src.keys:
        return None
    best, best_share = None, 0.0
    for doc in docs:
        target = words[doc["doc_id"]]
        shorter = min(len(src.keys), len(target.keys)) or 1
        share = sum((src.bag & target.bag).values()) / shorter
        if share > best_share:
            best, best_share = doc, share
    if best is None or best_share < MIN_ALIGNED_SHARE:
        return None
    target = words[best["doc_id"]]
    pairs = word_pairs(src, target)
    share = len(pairs) / min(len(src.keys), len(target.keys))
    if share < MIN_ALIGNED_SHARE or len(pairs) < MIN_ALIGNED_WORDS:
        return None
    return Alignment(best["doc_id"], "fuzzy", round(share, 4), src, target, pairs)


def passages_covered(passages: list[Passage], starts: list[int], start: int, end: int) -> Iterator[tuple[Passage, int]]:
    """Passages (sorted, with their ``char_start`` list) that take a selection's codes, with the overlap.

    Rule: a passage takes them when the selection covers at least half of the
    passage, or when at least half of the selection lies inside the passage (a
    short quote coded inside a long passage still counts for that passage).
    """
    for p in passages[max(0, bisect_left(starts, start) - 1) :]:
        if p.char_start >= end:
            break
        overlap = min(end, p.char_end) - max(start, p.char_start)
        if overlap > 0 and (2 * overlap >= p.char_end - p.char_start or 2 * overlap >= end - start):
            yield p, overlap


# --------------------------------------------------------------------------- codes to labels


def _key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def _target(codebook: Codebook, value: str) -> tuple[str, str]:
    """A mapping target: ``label_id`` (unique among fields with their own labels) or ``field_id:label_id``."""
    if ":" in value:
        field_id, label = (part.strip() for part in value.split(":", 1))
        if field_id not in codebook.fields or label not in codebook.ids(field_id):
            raise ValueError(f"unknown codebook label {value!r}")
        return field_id, label
    owners = [f.id for f in codebook.fields.values() if not f.labels_from and value in f.ids]
    if not owners:
        raise ValueError(f"unknown codebook label {value!r}")
    if len(owners) > 1:
        raise ValueError(f"label {value!r} is in several fields ({', '.join(owners)}); write field:label")
    return owners[0], value


def load_mapping(path: Path, codebook: Codebook) -> dict[str, tuple[str, str] | None]:
    """Read a mapping YAML ``{their code name: label id | field:label | null}``; null leaves a code out on purpose."""
    try:
        data = yaml.safe_load(Path(path).read_text("utf-8"))
    except OSError as exc:
        raise ExchangeError(path, f"cannot read mapping file ({exc.strerror})") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ExchangeError(path, f"mapping file is not valid YAML ({type(exc).__name__})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ExchangeError(path, "mapping file must map code names to codebook label ids")
    mapping: dict[str, tuple[str, str] | None] = {}
    for name, value in data.items():
        if value is None:
            mapping[_key(str(name))] = None
            continue
        try:
            mapping[_key(str(name))] = _target(codebook, str(value))
        except ValueError as exc:
            raise ExchangeError(path, f"code {str(name)!r}: {exc}") from None
    return mapping


def _name_index(codebook: Codebook) -> dict[str, tuple[str, str]]:
    """Names a code may carry to match a label without a mapping: our exported code name, and for
    fields with their own labels the label's name or id. A name that fits two labels matches none."""
    index: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for key, code in label_codes(codebook).items():
        index[_key(code.name)].add(key)
        f = codebook.fields[key[0]]
        if not f.labels_from:
            label = f.label(key[1])
            index[_key(label.name)].add(key)
            index[_key(label.id)].add(key)
    return {name: next(iter(keys)) for name, keys in index.items() if len(keys) == 1}


def resolve_codes(
    project: QdaProject, codebook: Codebook, mapping: dict[str, tuple[str, str] | None]
) -> tuple[dict[str, tuple[str, str] | None], set[str]]:
    """Their code GUIDs → (field, label) or None, and the GUIDs left out on purpose (mapped to null).

    Order: the mapping file, then our own GUIDs (a code renamed in the QDA program
    keeps its GUID), then the name. Nothing else is guessed.
    """
    ours = {_guid(code.guid): key for key, code in label_codes(codebook).items()}
    names = _name_index(codebook)
    resolved: dict[str, tuple[str, str] | None] = {}
    ignored: set[str] = set()
    for guid, code in project.codes.items():
        key = _key(code.name)
        if key in mapping:
            resolved[guid] = mapping[key]
            if mapping[key] is None:
                ignored.add(guid)
        else:
            resolved[guid] = ours.get(guid) or names.get(key)
    return resolved, ignored


def labels_from_codes(codebook: Codebook, weights: Counter) -> tuple[dict, list[str]]:
    """A labels dict from the (field, label) codes on one passage, weighted by characters of overlap.

    A child code implies its parent (an interaction type implies interaction; a
    primary condition implies that condition). A single-label field coded twice
    keeps the label with the most overlap ("conflict"). A primary condition that
    was not coded is the only condition, or the one with the most overlap
    ("derived"). The result is checked against the codebook by the caller.
    """
    notes: list[str] = []
    coded: dict[str, Counter] = defaultdict(Counter)
    for (field_id, label), weight in weights.items():
        coded[field_id][label] += weight
    for f in codebook.fields.values():
        own = dict(coded[f.id])
        implied = [(*f.requires, max(own.values()))] if f.requires and own else []
        if f.labels_from:
            implied += [(f.labels_from, label, weight) for label, weight in own.items()]
        for field_id, label, weight in implied:
            coded[field_id][label] = max(coded[field_id][label], weight)

    def pick(counts: Counter, ids: tuple[str, ...]) -> str | None:
        present = [label for label in ids if counts[label] > 0]
        if len(present) > 1:
            notes.append("conflict")
        return max(present, key=lambda label: (counts[label], -ids.index(label))) if present else None

    labels: dict = {}
    for f in codebook.fields.values():
        if f.multi:
            labels[f.id] = [label for label in f.ids if coded[f.id][label] > 0]
        elif not f.labels_from:
            labels[f.id] = pick(coded[f.id], f.ids)
    for f in codebook.fields.values():
        if f.labels_from and not f.multi:
            if coded[f.id]:
                labels[f.id] = pick(coded[f.id], f.ids)
            else:
                candidates = labels.get(f.labels_from) or []
                overlap = coded[f.labels_from]
                labels[f.id] = max(candidates, key=lambda c: (overlap[c], -f.ids.index(c)), default=None)
                if len(candidates) > 1:
                    notes.append("derived")
    return {f: labels[f] for f in codebook.fields}, notes


# --------------------------------------------------------------------------- import


@dataclass
class ImportReport:
    """What an import stored and what it left out, and why."""

    path: str
    coder: str
    origin: str
    dry_run: bool = False
    stored: int = 0
    unchanged: int = 0
    sources: list[dict] = field(default_factory=list)  # {source, doc_id, mode, share}
    unaligned_sources: list[str] = field(default_factory=list)
    unreadable_sources: list[str] = field(default_factory=list)
    refused_sources: list[str] = field(default_factory=list)  # "name: reason" (positions fit no counting rule)
    read: dict = field(default_factory=dict)  # users, codes, sources, selections, codings in the file
    unmapped_codes: list[dict] = field(default_factory=list)  # {code, codings}
    ignored_codes: list[str] = field(default_factory=list)
    model_codings_skipped: int = 0
    implied_by_parent_code: int = 0  # labels added because a coded code sits under a mapped code
    unplaced_selections: int = 0
    incomplete: list[dict] = field(default_factory=list)  # {passage_id, doc_id, problems}
    conflicts: int = 0
    derived_primary: int = 0

    @property
    def complete(self) -> bool:
        """True when nothing in the file was left out."""
        return not (
            self.unaligned_sources
            or self.unreadable_sources
            or self.refused_sources
            or self.unmapped_codes
            or self.incomplete
            or self.unplaced_selections
        )

    def to_json(self) -> dict:
        return {**asdict(self), "complete": self.complete}


@dataclass
class _Placed:
    """Their coding on one of our passages: (field, label) → characters of overlap, and who coded it."""

    weights: Counter = field(default_factory=Counter)
    users: set[str] = field(default_factory=set)


def _model_users(project: QdaProject) -> set[str]:
    """Users that stand for this pipeline's model: its coding never comes back as a human review."""
    model = {_guid(make_guid("user", MODEL_USER))}
    return model | {guid for guid, name in project.users.items() if name.split(" ")[0] == MODEL_USER}


def _place_codings(
    engine: Engine,
    project: QdaProject,
    resolved: dict[str, tuple[str, str] | None],
    ignored: set[str],
    docs: list[dict],
    report: ImportReport,
) -> tuple[dict[str, dict[str, _Placed]], Counter]:
    """doc_id → passage id → their coding placed on it, plus codings per unmapped code GUID."""
    words = {d["doc_id"]: _words(d["text"]) for d in docs}
    model_users = _model_users(project)
    # A code nested under a mapped code means that code too (MAXQDA "Infrastructuur > belemmerend");
    # worked out once per code, not per coding.
    implied_by = {
        guid: {key for a in _ancestors(project.codes, guid) if (key := resolved.get(a)) is not None}
        for guid in project.codes
    }
    unmapped: Counter = Counter()
    placed: dict[str, dict[str, _Placed]] = defaultdict(lambda: defaultdict(_Placed))
    for source in project.sources:
        alignment = align_source(source.text, docs, words)
        if alignment is None:
            report.unaligned_sources.append(source.name)
            continue
        report.sources.append(
            {"source": source.name, "doc_id": alignment.doc_id, "mode": alignment.mode, "share": alignment.share}
        )
        passages = load_passages(engine, alignment.doc_id)
        starts = [p.char_start for p in passages]
        for selection in source.selections:
            own: set[tuple[str, str]] = set()  # each label once per selection, however many codings carry it
            implied: set[tuple[str, str]] = set()
            user_names: set[str] = set()
            for code_guid, user in selection.codings:
                if user in model_users:
                    report.model_codings_skipped += 1
                    continue
                key = resolved.get(code_guid)
                if key is not None:
                    own.add(key)
                elif code_guid not in ignored:
                    unmapped[code_guid] += 1
                above = implied_by.get(code_guid, set())
                implied |= above
                if (key is not None or above) and project.users.get(user or ""):
                    user_names.add(project.users[user or ""])
            report.implied_by_parent_code += len(implied - own)
            keys = own | implied
            if not keys:
                continue
            span = alignment.span(selection.start, selection.end)
            hits = list(passages_covered(passages, starts, *span)) if span else []
            if not hits:
                report.unplaced_selections += 1
            for passage, overlap in hits:
                target = placed[alignment.doc_id][passage.id]
                for key in keys:
                    target.weights[key] += overlap
                target.users.update(user_names)
    return placed, unmapped


def _same_labels(a: dict, b: dict) -> bool:
    def norm(labels: dict) -> dict:
        return {k: sorted(v) if isinstance(v, list) else v for k, v in labels.items()}

    return norm(a) == norm(b)


def import_project(
    engine: Engine,
    codebook: Codebook,
    path: Path,
    coder: str,
    mapping: Path | None = None,
    dry_run: bool = False,
) -> ImportReport:
    """Bring a QDA program's coding back as reviews by ``coder``, all in one transaction.

    Everything that can refuse the file (archive, XML, positions, mapping file)
    is checked before the store is touched. Passages whose combined codes do not
    make a codebook-valid coding are listed, not stored; coding by this
    pipeline's model user is skipped (it is not human coding). A passage whose
    latest review is already this coder's identical labels is left alone, so
    importing the same file twice stores nothing new.
    """
    path = Path(path)
    if not coder.strip():
        raise ExchangeError(path, "the coder to attribute the imported coding to is empty")
    table = load_mapping(mapping, codebook) if mapping is not None else {}
    project = read_project(path)
    report = ImportReport(path=str(path), coder=coder, origin=project.origin, dry_run=dry_run)
    report.unreadable_sources = list(project.unreadable_sources)
    report.refused_sources = list(project.refused_sources)
    report.read = dict(project.counts)
    resolved, ignored = resolve_codes(project, codebook, table)
    report.ignored_codes = sorted(project.codes[g].name for g in ignored)
    docs = _stored_documents(engine)
    placed, unmapped = _place_codings(engine, project, resolved, ignored, docs, report)
    report.unmapped_codes = sorted(
        (
            {"code": project.codes[g].name if g in project.codes else f"(unknown code {g})", "codings": n}
            for g, n in unmapped.items()
        ),
        key=lambda row: row["code"],
    )
    latest = _latest_reviews(engine)
    memo = f"REFI-QDA import {path.name}" + (f" ({project.origin})" if project.origin else "")
    rows = []
    for doc_id in sorted(placed):
        for passage_id, coding in sorted(placed[doc_id].items()):
            labels, notes = labels_from_codes(codebook, coding.weights)
            report.conflicts += notes.count("conflict")
            report.derived_primary += notes.count("derived")
            problems = codebook.validate(labels)
            if problems:
                report.incomplete.append({"passage_id": passage_id, "doc_id": doc_id, "problems": problems})
                continue
            previous = latest.get(passage_id)
            if previous is not None and previous.reviewer == coder and _same_labels(previous.labels, labels):
                report.unchanged += 1
                continue
            coders = f"; codeurs in het QDA-programma: {', '.join(sorted(coding.users))}" if coding.users else ""
            rows.append({"passage_id": passage_id, "reviewer": coder, "labels": labels, "memo": memo + coders})
    if not dry_run:
        add_reviews(engine, rows)
    report.stored = len(rows)
    return report
