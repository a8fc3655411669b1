"""Reference coding of the bundled corpus: records, agreement, and checks.

Annotations are versioned JSONL keyed by the passage text hash, so they survive
re-segmentation as long as a passage's text is unchanged. The raw files hold
each coder's independent work; ``reference.jsonl`` holds the final labels
(first coder, with disagreements on the double-coded sample adjudicated).
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from nltk.metrics.agreement import AnnotationTask
from nltk.metrics.distance import masi_distance
from sklearn.metrics import cohen_kappa_score

from pipeline.codebook import Codebook
from pipeline.models import Passage, text_hash

NONE_LABEL = "(geen)"


@dataclass(frozen=True)
class Coding:
    """One coder's labels for one passage, as stored in JSONL."""

    text_hash: str
    passage_id: str
    doc_id: str
    labels: dict  # field id -> list (multi) or str | None (single)
    coder: str
    date: str
    note: str = ""

    @classmethod
    def from_json(cls, record: dict, codebook: Codebook) -> Coding:
        return cls(
            text_hash=record["text_hash"],
            passage_id=record.get("passage_id", ""),
            doc_id=record.get("doc_id", ""),
            labels={f: record.get(f) for f in codebook.fields},
            coder=record.get("coder", ""),
            date=record.get("date", ""),
            note=record.get("note", "") or "",
        )

    def to_json(self) -> dict:
        return {
            "text_hash": self.text_hash,
            "passage_id": self.passage_id,
            "doc_id": self.doc_id,
            **self.labels,
            "coder": self.coder,
            "date": self.date,
            "note": self.note,
        }


def checked_records(path: Path, codebook: Codebook) -> Iterator[tuple[int, dict | None, list[str]]]:
    """Every non-empty JSONL line as (line number, record or None, problems against the codebook)."""
    for number, line in enumerate(Path(path).read_text("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, None, [f"not JSON ({exc.msg})"]
            continue
        yield number, record, codebook.validate(record)


def read_codings(paths: Iterable[Path], codebook: Codebook) -> list[Coding]:
    """Read JSONL files; the first malformed line raises ValueError naming file and line."""
    codings = []
    for path in paths:
        for number, record, problems in checked_records(path, codebook):
            if problems:
                raise ValueError(f"{path}:{number}: {'; '.join(problems)}")
            codings.append(Coding.from_json(record, codebook))
    return codings


def read_synthetic(paths: Iterable[Path], codebook: Codebook) -> list[dict]:
    """Invented passages with their coding (text, section, sector, doc_type and the codebook's
    fields), each with its ``source`` (file stem and line); a bad line raises ValueError naming it."""
    rows = []
    for path in paths:
        for number, record, problems in checked_records(path, codebook):
            if record is not None and not str(record.get("text") or "").strip():
                problems = [*problems, "no text"]
            if problems:
                raise ValueError(f"{path}:{number}: {'; '.join(problems)}")
            rows.append({**record, "source": f"{Path(path).stem}:{number}"})
    return rows


def write_codings(path: Path, codings: Sequence[Coding]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(json.dumps(c.to_json(), ensure_ascii=False) + "\n" for c in codings), "utf-8")
    tmp.replace(path)


def by_text_hash(codings: Iterable[Coding]) -> dict[str, Coding]:
    """Last coding per text hash wins (files are read in order)."""
    return {c.text_hash: c for c in codings}


def build_reference(
    primary: Sequence[Coding],
    adjudicated: Sequence[Coding],
    extra: Sequence[Coding] = (),
    carried: Sequence[Coding] = (),
) -> list[Coding]:
    """Final labels: the primary coding, replaced where a disagreement was adjudicated.

    ``extra`` holds codings for passages that the primary batches did not cover
    (e.g. passages created by a later segmentation fix), coded the same way;
    ``carried`` codings followed a new segmentation by alignment and count only
    where no coder coded that text.
    """
    final = by_text_hash(carried)
    final.update(by_text_hash(primary))
    final.update(by_text_hash(extra))
    final.update(by_text_hash(adjudicated))
    return list(final.values())


# --------------------------------------------------------------------------- agreement


def _single(value: str | None) -> str:
    return value if value is not None else NONE_LABEL


def agreement(first: Sequence[Coding], second: Sequence[Coding], codebook: Codebook) -> dict:
    """Inter-coder agreement on the passages both coders coded.

    Single-label fields: Cohen's kappa (an empty value is its own category).
    ``interactie_type`` is judged only where at least one coder coded
    ``interactie``, so that agreeing on "not applicable" does not inflate it.
    Multi-label fields: Cohen's kappa per label (present/absent) and
    Krippendorff's alpha with the MASI set distance over whole label sets.
    """
    a, b = by_text_hash(first), by_text_hash(second)
    shared = sorted(set(a) & set(b))
    result: dict = {"n": len(shared), "fields": {}}
    for field in codebook.fields.values():
        if field.multi:
            per_label = {}
            for label in field.ids:
                x = [label in a[h].labels[field.id] for h in shared]
                y = [label in b[h].labels[field.id] for h in shared]
                per_label[label] = _kappa(x, y)
            task = AnnotationTask(
                data=[
                    (coder, h, frozenset(src[h].labels[field.id]))
                    for coder, src in (("a", a), ("b", b))
                    for h in shared
                ],
                distance=_set_distance,
            )
            exact = sum(set(a[h].labels[field.id]) == set(b[h].labels[field.id]) for h in shared) / max(1, len(shared))
            result["fields"][field.id] = {
                "alpha_masi": _round(task.alpha()),
                "exact_match": _round(exact),
                "kappa_per_label": per_label,
            }
        else:
            items = shared
            if field.requires:
                req_field, req_label = field.requires
                items = [
                    h
                    for h in shared
                    if req_label in (a[h].labels.get(req_field) or [])
                    or req_label in (b[h].labels.get(req_field) or [])
                ]
            x = [_single(a[h].labels[field.id]) for h in items]
            y = [_single(b[h].labels[field.id]) for h in items]
            result["fields"][field.id] = {
                "n": len(items),
                "kappa": _kappa(x, y),
                "percent_agreement": _round(sum(p == q for p, q in zip(x, y, strict=True)) / max(1, len(items))),
            }
    return result


def _set_distance(x: frozenset, y: frozenset) -> float:
    """MASI distance; two empty label sets agree (nltk divides by zero there)."""
    return 0.0 if not x and not y else masi_distance(x, y)


def _kappa(x: Sequence, y: Sequence) -> float | None:
    if not x:
        return None
    if len(set(x) | set(y)) < 2:
        return 1.0  # both coders used one and the same category throughout
    return _round(cohen_kappa_score(x, y))


def _round(value: float) -> float:
    return round(float(value), 3)


def disagreements(first: Sequence[Coding], second: Sequence[Coding], codebook: Codebook) -> list[tuple[Coding, Coding]]:
    a, b = by_text_hash(first), by_text_hash(second)
    out = []
    for h in sorted(set(a) & set(b)):
        if any(_norm(a[h].labels[f]) != _norm(b[h].labels[f]) for f in codebook.fields):
            out.append((a[h], b[h]))
    return out


def _norm(value: object) -> object:
    return tuple(sorted(value)) if isinstance(value, list) else value


# --------------------------------------------------------------------------- statistics


def label_counts(
    passages_by_doc: dict[str, list[Passage]], sectors: dict[str, str], reference: dict[str, Coding], codebook: Codebook
) -> dict:
    """Label counts per document and per sector (multi-label fields count each label)."""
    per_doc: dict[str, dict[str, Counter]] = {}
    per_sector: dict[str, dict[str, Counter]] = defaultdict(lambda: defaultdict(Counter))
    for doc_id, passages in passages_by_doc.items():
        counts: dict[str, Counter] = defaultdict(Counter)
        for passage in passages:
            coding = reference.get(text_hash(passage.text))
            if coding is None:
                continue
            for field in codebook.fields.values():
                value = coding.labels[field.id]
                for label in value if field.multi else [_single(value)]:
                    counts[field.id][label] += 1
                    per_sector[sectors.get(doc_id, "")][field.id][label] += 1
        per_doc[doc_id] = counts
    return {
        "documents": {d: {f: dict(c) for f, c in fields.items()} for d, fields in per_doc.items()},
        "sectors": {s: {f: dict(c) for f, c in fields.items()} for s, fields in per_sector.items()},
    }


# --------------------------------------------------------------------------- researchers' structure


@dataclass(frozen=True)
class StructureCheck:
    """How often our coding agrees with what the study's own structure says."""

    name: str
    n: int
    agree: int

    @property
    def rate(self) -> float:
        return self.agree / self.n if self.n else 0.0


def section_check(
    passages: Sequence[Passage],
    reference: dict[str, Coding],
    heading_to_condition: dict[str, str],
    start_after: str = "",
    stop_at: str = "",
) -> StructureCheck:
    """Paragraphs under a findings heading named after a condition should carry that condition.

    Only the findings part counts: from the passage starting with ``start_after``
    up to the one starting with ``stop_at`` (the same headings may also define
    the framework elsewhere in the report).
    """
    n = agree = 0
    active = not start_after
    for p in passages:
        if start_after and p.text.startswith(start_after):
            active = True
            continue
        if stop_at and p.text.startswith(stop_at):
            active = False
        if not active or p.kind not in ("paragraph", "turn") or not p.section:
            continue
        expected = heading_to_condition.get(p.section[-1])
        coding = reference.get(text_hash(p.text))
        if expected is None or coding is None:
            continue
        n += 1
        agree += expected in (coding.labels.get("conditions") or [])
    return StructureCheck("section headings → condition", n, agree)


BOX_TITLE = re.compile(r"^Illustrerende? citat(?:en|aat)\b", re.I)
BARRIER_WORDS = re.compile(r"belemmer|\bremt\b|hinder", re.I)
FACILITATOR_WORDS = re.compile(r"faciliteer|faciliter|bevorder|stimuleer|essentieel", re.I)


def quote_box_check(passages: Sequence[Passage], reference: dict[str, Coding]) -> StructureCheck:
    """Quotes under a box titled '… belemmert …' / '… faciliteert …' should carry that polarity.

    Titles that negate ("hoeft geen belemmering te zijn") are skipped: their
    direction is not stated plainly.
    """
    n = agree = 0
    expected: str | None = None
    for p in passages:
        if BOX_TITLE.match(p.text):
            expected = _box_polarity(p.text)
            continue
        if not (p.text.startswith(("“", '"')) or "”" in p.text):
            expected = None  # the box ends where running text resumes
            continue
        coding = reference.get(text_hash(p.text))
        if expected is None or coding is None:
            continue
        n += 1
        agree += coding.labels.get("polarity") == expected
    return StructureCheck("quote boxes '… belemmert / faciliteert …' → polarity", n, agree)


def _box_polarity(title: str) -> str | None:
    if re.search(r"\bgeen\b|\bniet\b", title, re.I):
        return None
    if BARRIER_WORDS.search(title):
        return "belemmerend"
    if FACILITATOR_WORDS.search(title):
        return "bevorderend"
    return None


# --------------------------------------------------------------------------- the bundled reference


@dataclass(frozen=True)
class AnnotationSet:
    """Where the reference coding lives; every path is explicit (no hidden defaults in stages)."""

    root: Path

    @property
    def primary(self) -> list[Path]:
        return sorted((self.root / "raw").glob("batch*.jsonl"))

    @property
    def second(self) -> list[Path]:
        return sorted((self.root / "raw").glob("double-*.jsonl"))

    @property
    def adjudicated(self) -> Path:
        return self.root / "adjudicated.jsonl"

    @property
    def extra(self) -> Path:
        return self.root / "extra-coded.jsonl"

    @property
    def reference(self) -> Path:
        return self.root / "reference.jsonl"

    @property
    def carried(self) -> Path:
        """Codings carried onto a later segmentation (``reanchor_reference``), below every coder's own."""
        return self.root / "carried.jsonl"

    @property
    def synthetic(self) -> list[Path]:
        """Invented, coded passages written from the codebook alone: training data, never test data."""
        return sorted((self.root / "synthetic").glob("*.jsonl"))

    def build(self, codebook: Codebook) -> list[Coding]:
        """Rebuild ``reference.jsonl`` from the raw, adjudicated and extra codings."""
        existing = [p for p in (self.adjudicated,) if p.exists()]
        extra = [p for p in (self.extra,) if p.exists()]
        carried = [p for p in (self.carried,) if p.exists()]
        final = build_reference(
            read_codings(self.primary, codebook),
            read_codings(existing, codebook),
            read_codings(extra, codebook),
            read_codings(carried, codebook),
        )
        write_codings(self.reference, final)
        return final


def annotation_stats(
    passages_by_doc: dict[str, list[Passage]],
    sectors: dict[str, str],
    codebook: Codebook,
    annotations: AnnotationSet,
    structure: dict | None = None,
) -> dict:
    """Counts, coverage and agreement figures for ``mgz annotations stats``."""
    reference = by_text_hash(read_codings([annotations.reference], codebook))
    primary = read_codings(annotations.primary, codebook)
    second = read_codings(annotations.second, codebook)
    agreed = agreement(primary, second, codebook)
    fields = agreed["fields"]
    all_passages = [p for ps in passages_by_doc.values() for p in ps]
    missing = [p for p in all_passages if text_hash(p.text) not in reference]
    checks = []
    for doc_id, spec in (structure or {}).items():
        passages = passages_by_doc.get(doc_id, [])
        if spec.get("headings"):
            check = section_check(
                passages, reference, spec["headings"], spec.get("start_after", ""), spec.get("stop_at", "")
            )
            checks.append(
                {"doc_id": doc_id, "check": check.name, "n": check.n, "agree": check.agree, "rate": _round(check.rate)}
            )
        if spec.get("quote_boxes"):
            check = quote_box_check(passages, reference)
            checks.append(
                {"doc_id": doc_id, "check": check.name, "n": check.n, "agree": check.agree, "rate": _round(check.rate)}
            )
    return {
        "documents": len(passages_by_doc),
        "passages": len(all_passages),
        "coded": len(all_passages) - len(missing),
        "uncoded_passage_ids": [p.id for p in missing],
        "double_coded": agreed["n"],
        "agreement": {
            "polarity_kappa": fields.get("polarity", {}).get("kappa"),
            "primary_condition_kappa": fields.get("primary_condition", {}).get("kappa"),
            "interactie_type_kappa": fields.get("interactie_type", {}).get("kappa"),
            "conditions_alpha": fields.get("conditions", {}).get("alpha_masi"),
            "stakeholders_alpha": fields.get("stakeholders", {}).get("alpha_masi"),
        },
        "agreement_detail": fields,
        "structure_checks": checks,
        "label_counts": label_counts(passages_by_doc, sectors, reference, codebook),
    }


# --------------------------------------------------------------------------- following a new segmentation


@dataclass
class ReanchorReport:
    """Per document: reference codings whose passage text no longer exists, and where they went."""

    doc_id: str
    orphaned: int = 0  # coded texts that the current segmentation no longer has
    aligned: int = 0  # carried onto a new passage with (almost) the same words
    relook: int = 0  # split, merged or rewritten: the new passages need coding
    removed: int = 0  # the text is gone from the document
    to_code: list[str] = dataclasses.field(default_factory=list)  # new passage ids that need a coder


def coded_texts(task_files: Iterable[Path]) -> list[dict]:
    """The passages as the coders saw them (``data/coding-tasks``): doc id, reading order, text.

    The reference keys codings by text hash only; these are the texts, so a later
    segmentation can be aligned against the one that was coded."""
    rows: dict[str, dict] = {}
    for path in task_files:
        for line in Path(path).read_text("utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                if row.get("text") and row.get("text_hash"):
                    rows.setdefault(row["text_hash"], row)
    return list(rows.values())


def reanchor_reference(
    reference: dict[str, Coding],
    tasks: Sequence[dict],
    documents: Sequence[tuple[str, str, Sequence[Passage]]],
) -> tuple[list[Coding], list[ReanchorReport]]:
    """Carry reference codings onto a new segmentation, the way analysts' decisions follow a
    re-ingested document (``pipeline.carry``): exact text first, then word alignment of the
    coded passage onto the new text, split or merged passages left for a coder.

    ``documents`` are (doc id, cleaned text, passages) of the current segmentation. Returns
    the codings for new passages whose text carries an old coding (keyed by the new text
    hash, the note naming the old one) and a report per document.
    """
    from pipeline.carry import match_passages

    carried: list[Coding] = []
    reports = []
    for doc_id, new_text, new_passages in documents:
        current = {text_hash(p.text) for p in new_passages}
        coded = sorted((t for t in tasks if t.get("doc_id") == doc_id), key=lambda t: t.get("seq", 0))
        orphans = {t["text_hash"] for t in coded if t["text_hash"] in reference and t["text_hash"] not in current}
        report = ReanchorReport(doc_id, orphaned=len(orphans))
        reports.append(report)
        if not orphans:
            continue
        old_passages, offset, parts = [], 0, []
        for t in coded:
            old_passages.append(Passage(t["text_hash"], t.get("kind", "paragraph"), t["text"], 1, 1, offset,
                                        offset + len(t["text"])))  # fmt: skip
            parts.append(t["text"])
            offset += len(t["text"]) + 2
        carries = match_passages("\n\n".join(parts), old_passages, new_text, list(new_passages), wanted=orphans)
        new_by_id = {p.id: p for p in new_passages}
        relooked: set[str] = set()
        for c in carries:
            if c.old_id not in orphans:
                continue
            if c.status == "aligned" and c.new_id:
                new = new_by_id[c.new_id]
                old = reference[c.old_id]
                report.aligned += 1
                if text_hash(new.text) not in reference:
                    carried.append(
                        Coding(text_hash(new.text), new.id, doc_id, dict(old.labels), old.coder, old.date,
                               f"gevolgd van {c.old_id} (woordovereenkomst {c.similarity:.2f})")
                    )  # fmt: skip
            elif c.status == "relook" and c.new_id:
                relooked.add(c.old_id)
                if text_hash(new_by_id[c.new_id].text) not in reference:
                    report.to_code.append(c.new_id)
            elif c.status == "removed":
                report.removed += 1
        report.relook = len(relooked)
        report.to_code = sorted(set(report.to_code))
    return carried, reports
