"""Pseudonymisation: find names and contact details, replace them consistently.

Pure functions over strings; nothing here touches the store or an output yet
(issue 21 builds the outputs on top of this). The detector is rule-based on
the evidence of ``bench/pseudonymise_quality.py`` against the hand-made gold set
in ``data/pseudonymisation`` (figures in the README): person-mention recall and
precision 0.963/0.963 over the corpus, where ``deduce`` (Dutch medical
de-identification) gets 0.679/0.426 and Frog's NER 0.753/0.349; ``deduce`` also
pins ``regex<2025`` (this project's environment has a newer one) and needs 6 s
to start. Its cues are the ones Dutch research texts give:

* titles (``dr.``, ``mw.``, ``dhr.``, ``mevrouw``, ``de heer``) before a name;
* initials before or after a surname (``J.J. Schuurmans``, ``Asten, B. van``);
* Dutch particles inside a surname (``van``, ``de``, ``van der``, ``ter``);
* speaker labels at a line start (``Patricia Bangma:``, ``Bianca (VGN):``,
  ``Jeanette –``) and WebVTT voice tags (``<v Patricia Bangma>``);
* author lists of citations (``(Kaats & Opheij, 2012)``, ``Klein Woolthuis et al.``);
* once a name is found, its other occurrences in the same text (and the first
  name of a full name), unless the word is ordinary Dutch (lemma lookup table).

Citations are marked ``cited=True``: authors of cited work are not research
subjects, and :func:`pseudonymise` keeps them unless asked otherwise. E-mail
addresses, phone numbers, postcodes (with house number) and dates of birth are
found by patterns. Domain vocabulary (huisarts, zorgkantoor, ...) is protected:
it is never part of a person span.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml

from pipeline.data import read_text

PERSON = "person"
EMAIL = "email"
PHONE = "phone"
POSTCODE = "postcode"
BIRTHDATE = "birthdate"

LABELS = {PERSON: "Persoon", EMAIL: "E-mailadres", PHONE: "Telefoonnummer",
          POSTCODE: "Adres", BIRTHDATE: "Geboortedatum"}

_UP = "A-ZÀ-ÖØ-Ý"
_LO = "a-zß-öø-ÿ"
# A capitalised name word: Jansen, McKee, Standberg-Larsen, D'Hondt, Zoë.
_CAP = rf"(?:Mc|Mac|O'|D'|d')?[{_UP}][{_LO}]+(?:-[{_UP}][{_LO}]+)?"
_PARTICLE_WORDS = ("van", "von", "de", "der", "den", "ter", "ten", "te", "het", "'t", "in",
                   "op", "la", "le", "du", "da", "di", "del", "des", "vander")
_PART = r"(?:(?:[Vv]an|[Vv]on|[Dd]e|der|den|[Tt]er|[Tt]en|te|het|'t|in|op|la|le|du|da|di|del|des)\s{1,3})"
_INIT = rf"(?:[{_UP}]\.[{_UP}](?![\w.])|(?:[{_UP}]\.\s?){{1,4}})"
_SURNAME = rf"{_PART}{{0,3}}{_CAP}(?:\s{_CAP})?"
_TITLE = (r"(?:\b(?:[Dd]rs?|[Pp]rof|[Mm]r|[Ii]r|[Ii]ng|[Mm]w|[Mm]evr|[Dd]hr|[Hh]r)\.?[ \t]+|"
          r"\b(?:[Mm]evrouw|[Mm]eneer|[Dd]e heer|[Dd]okter|[Zz]uster|[Bb]roeder)[ \t]+)")
_YEAR = r"(?:19|20)\d\d[a-z]?"

_TITLE_RE = re.compile(rf"{_TITLE}((?:{_INIT})?\s?{_SURNAME})")
_INITIALS_RE = re.compile(rf"(?<![\w.])((?:{_INIT})\s?{_SURNAME})")
_INVERTED_RE = re.compile(
    rf"(?<![\w-])({_SURNAME},\s(?:{_INIT})(?:\s?(?:van der|van den|van de|van|de|der|ter)(?!\s{_PART}*{_CAP}))?)"
    rf"(?![{_LO}])(?!\s?{_PART}*{_CAP})"
)
_TRAILING_INIT_RE = re.compile(rf"(?<![\w-])({_CAP}\s(?:[{_UP}]\.){{1,3}})(?=[\s,;)])")
_LABEL_RE = re.compile(
    rf"(?m)^[ \t]*({_CAP}(?:\s{_SURNAME})?)(?:\s\([^()\n]{{1,40}}\))?\s*(?::|\s[–-]\s)"
)
_PARTICLE_NAME_RE = re.compile(rf"(?<![\w-])({_CAP}\s{_PART}{{1,3}}{_CAP})(?![\w-])")
_ROLES = ("bestuurder|manager|directeur|huisarts|collega|teamleider|wethouder|verpleegkundige|"
          "coördinator|specialist|arts|begeleider|voorzitter|moeder|vader|zoon|dochter|buurman|buurvrouw|"
          "cliënt|client|patiënt|mevrouw|meneer")
_ROLE_RE = re.compile(rf"\b(?:{_ROLES})\s+({_CAP}(?:\s{_SURNAME})?)")
_VTT_RE = re.compile(r"<v(?:\.[\w.-]+)*\s+([^>\n]+)>")
_PAREN_RE = re.compile(rf"\(([^()]*?\b{_YEAR})\)")
_ETAL_RE = re.compile(rf"(?<![\w-])({_SURNAME})\s+et\s+al\b")
_NARRATIVE_RE = re.compile(rf"(?<![\w-])({_SURNAME})\s+\({_YEAR}\)")

_EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}")
_PHONE_RE = re.compile(r"(?<![\w+])(?:\+31|0031|0)(?:[\s.-]?\(0\))?[\d\s.-]{8,14}\d(?!\d)")
_POSTCODE_RE = re.compile(r"(?<!\d)[1-9]\d{3}\s?(?!SA|SD|SS)[A-Z]{2}(?![\w])(?:,?\s+\d{1,5}\s?[a-zA-Z]?\b)?")
_STREET_RE = re.compile(
    rf"\b[{_UP}][{_LO}]+(?:straat|weg|laan|plein|singel|gracht|dijk|kade|pad|hof|park|steeg|markt)"
    r"\s+\d{1,5}\s?[a-zA-Z]?\b"
)
_MONTHS = "januari|februari|maart|april|mei|juni|juli|augustus|september|oktober|november|december"
_DATE = rf"(?:\d{{1,2}}[-/.]\d{{1,2}}[-/.](?:19|20)?\d\d|\d{{1,2}}\s+(?:{_MONTHS})\s+(?:19|20)\d\d)"
_BIRTH_RE = re.compile(
    rf"(?i)\b(?:geboren|geb\.|geboortedatum|geb\.\s?datum|d\.o\.b\.|dob)\s*(?:op|:)?\s*({_DATE})"
)


@dataclass(frozen=True)
class Span:
    """A found mention: ``text[start:end]``, its kind and the rule that found it."""

    start: int
    end: int
    text: str
    kind: str
    rule: str
    cited: bool = False


@dataclass(frozen=True)
class AllowList:
    """What is never replaced: names of non-subjects, phrases, protected vocabulary."""

    names: frozenset[str] = frozenset()
    phrases: tuple[str, ...] = ()
    protected: frozenset[str] = frozenset()


def load_allow_list(path: Path | None = None) -> AllowList:
    """Read the allow-list YAML (the bundled one unless ``path`` is given)."""
    text = read_text("pseudonymise_allow.yaml", path)
    data = yaml.safe_load(text) or {}
    return AllowList(
        names=frozenset(str(n) for n in data.get("names") or ()),
        phrases=tuple(str(p) for p in data.get("phrases") or ()),
        protected=frozenset(str(p).lower() for p in data.get("protected") or ()),
    )


@lru_cache(maxsize=1)
def dutch_words() -> frozenset[str]:
    """Ordinary Dutch word forms (spaCy's lookup lemma table, forms and lemmas).

    A capitalised word found in this set is ordinary Dutch at a sentence start
    ("Punt", "Schotten"), so it never spreads as a name by itself.
    """
    from spacy.lookups import load_lookups

    table = load_lookups("nl", ["lemma_lookup"]).get_table("lemma_lookup")
    words: set[str] = set()
    for key in table.keys():  # noqa: SIM118 - a spaCy Table, not a dict
        value = table.get(key)
        if isinstance(key, str):
            words.add(key.lower())
        if isinstance(value, str):
            words.add(value.lower())
    return frozenset(words)


def _plural_of_word(word: str, lexicon: frozenset[str]) -> bool:
    """A Dutch plural of an ordinary word ("Afkortingen"): a heading, not a speaker."""
    low = word.lower()
    return any(low.endswith(suf) and low[: -len(suf)] in lexicon for suf in ("en", "s", "'s", "’s"))


def _is_protected(words: Iterable[str], allow: AllowList) -> bool:
    return any(w.lower().strip(".,") in allow.protected for w in words)


def _name_words(name: str) -> list[str]:
    """The capitalised words of a name (no initials, no particles)."""
    return [w for w in re.findall(rf"{_CAP}", name) if w.lower() not in _PARTICLE_WORDS]


def _citation_spans(text: str) -> Iterable[tuple[int, int, str]]:
    """Author names inside parenthetical citations: ``(Kaats & Opheij, 2012; Yin, 1994)``."""
    for paren in _PAREN_RE.finditer(text):
        base = paren.start(1)
        for part in re.finditer(r"[^;]+", paren.group(1)):
            chunk = part.group(0)
            year = re.search(rf",?\s*{_YEAR}\s*$", chunk)
            if year is None:
                continue
            authors = chunk[: year.start()]
            authors = re.sub(r"\bet\s+al\.?", " ", authors)
            for m in re.finditer(rf"(?<![\w-]){_SURNAME}(?![\w-])", authors):
                if m.group(0).lower() in {"bv", "zie", "bijv"}:
                    continue
                s = base + part.start() + m.start()
                yield s, s + len(m.group(0)), "citation"


def _cited_runs(text: str, spans: list[Span]) -> set[tuple[int, int]]:
    """Spans that belong to an author list ending in a year or ``et al.``."""
    cited: set[tuple[int, int]] = set()
    ordered = sorted(spans, key=lambda s: s.start)
    run: list[Span] = []
    for i, span in enumerate(ordered):
        run.append(span)
        nxt = ordered[i + 1] if i + 1 < len(ordered) else None
        gap_end = nxt.start if nxt else len(text)
        gap = text[span.end : gap_end]
        if nxt is not None and re.fullmatch(r"[\s,&;]*(?:en\s|and\s)?[\s,&]*", gap):
            continue
        if re.match(rf"[\s,.&]*(?:et\s+al\.?[\s,]*)?\(?\s*{_YEAR}\b", gap) or re.match(r"\s+et\s+al\b", gap):
            cited.update((s.start, s.end) for s in run)
        run = []
    return cited


def detect(
    text: str,
    allow: AllowList | None = None,
    extra_names: Iterable[str] = (),
    propagate: bool = True,
) -> list[Span]:
    """Person names and contact details in ``text``, sorted, not overlapping.

    ``extra_names`` are names an admin added by hand (found wherever they occur);
    ``propagate=False`` keeps only mentions with their own cue (for the benchmark).
    """
    allow = allow if allow is not None else load_allow_list()
    lexicon = dutch_words()
    found: list[tuple[int, int, str, str]] = []

    def add(start: int, end: int, kind: str, rule: str) -> None:
        found.append((start, end, kind, rule))

    for rx, kind, rule in ((_EMAIL_RE, EMAIL, "email"), (_BIRTH_RE, BIRTHDATE, "birthdate")):
        for m in rx.finditer(text):
            g = 1 if rx.groups else 0
            add(m.start(g), m.end(g), kind, rule)
    for m in _PHONE_RE.finditer(text):
        digits = re.sub(r"\D", "", m.group(0).replace("(0)", ""))
        if (digits.startswith("0031") and len(digits) == 13) or (digits.startswith("31") and len(digits) == 11) \
                or (digits.startswith("0") and not digits.startswith("00") and len(digits) == 10):
            add(m.start(), m.end(), PHONE, "phone")
    for rx in (_POSTCODE_RE, _STREET_RE):
        for m in rx.finditer(text):
            add(m.start(), m.end(), POSTCODE, "address")

    lower_words = {w for w in re.findall(rf"[{_LO}][\w-]*", text)}

    def ordinary(word: str) -> bool:
        """Ordinary Dutch, or written in lower case elsewhere in this text: not a name."""
        return word.lower() in lexicon or word.lower() in lower_words

    def person(start: int, end: int, rule: str, need_unknown: bool = False) -> None:
        name = text[start:end].rstrip()
        end = start + len(name)
        words = _name_words(name)
        if not words or _is_protected(name.split(), allow):
            return
        if need_unknown and all(ordinary(w) for w in words):
            return
        if rule == "speaker" and all(ordinary(w) or _plural_of_word(w, lexicon) for w in words):
            return
        add(start, end, PERSON, rule)

    for m in _TITLE_RE.finditer(text):
        person(m.start(1), m.end(1), "title")
    for m in _INITIALS_RE.finditer(text):
        person(m.start(1), m.end(1), "initials")
    for m in _INVERTED_RE.finditer(text):
        person(m.start(1), m.end(1), "initials")
    for m in _TRAILING_INIT_RE.finditer(text):
        person(m.start(1), m.end(1), "initials")
    for m in _LABEL_RE.finditer(text):
        person(m.start(1), m.end(1), "speaker", need_unknown=True)
    for m in _PARTICLE_NAME_RE.finditer(text):
        if not ordinary(_name_words(m.group(1))[0]):
            person(m.start(1), m.end(1), "particle")
    for m in _ROLE_RE.finditer(text):
        if not ordinary(_name_words(m.group(1))[0]):
            person(m.start(1), m.end(1), "role")
    for m in _VTT_RE.finditer(text):
        person(m.start(1), m.start(1) + len(m.group(1).rstrip()), "speaker")
    for s, e, rule in _citation_spans(text):
        person(s, e, rule)
    for rx in (_ETAL_RE, _NARRATIVE_RE):
        for m in rx.finditer(text):
            person(m.start(1), m.end(1), "citation", need_unknown=True)

    names = {text[s:e] for s, e, k, _ in found if k == PERSON} | set(extra_names)
    if propagate or extra_names:
        targets: set[str] = set(extra_names)
        if propagate:
            for name in names:
                bare = re.sub(rf"^(?:{_INIT})\s?|,\s.*$|\s(?:[{_UP}]\.)+$", "", name).strip()
                targets.add(bare)
                words = _name_words(bare)
                if len(words) >= 2 and bare.split()[0].lower() not in _PARTICLE_WORDS:
                    targets.add(words[0])  # first name of a full name: "Jeanette"
                surname = re.sub(rf"^{_CAP}\s(?={_PART}*{_CAP}$)", "", bare) if len(words) >= 2 else bare
                targets.add(surname)
                if surname[:1].islower():
                    targets.add(surname[:1].upper() + surname[1:])  # "de Vries" → "De Vries"
        for target in sorted(targets, key=len, reverse=True):
            words = _name_words(target)
            if not words or (target not in extra_names and all(ordinary(w) for w in words)):
                continue
            for m in re.finditer(rf"(?<![\w-]){re.escape(target)}(?![\w-])", text):
                add(m.start(), m.end(), PERSON, "propagated")

    spans = _extend_right(text, _resolve(text, found), ordinary, allow)
    cited = _cited_runs(text, [s for s in spans if s.kind == PERSON])
    spans = [Span(s.start, s.end, s.text, s.kind, s.rule,
                  cited=s.rule == "citation" or (s.start, s.end) in cited) for s in spans]
    return [s for s in spans if not _allowed(s, text, allow)]


def _extend_right(text: str, spans: list[Span], ordinary, allow: AllowList) -> list[Span]:
    """Grow a first name into the full name that follows it: "Jeanette" → "Jeanette Jongsma"."""
    out: list[Span] = []
    for i, span in enumerate(spans):
        end = span.end
        if span.kind == PERSON:
            limit = spans[i + 1].start if i + 1 < len(spans) else len(text)
            m = re.match(rf" {_PART}*({_CAP})(?![\w-])", text[end:limit])
            if m and not ordinary(m.group(1)) and not _is_protected([m.group(1)], allow):
                end += m.end()
        out.append(Span(span.start, end, text[span.start : end], span.kind, span.rule))
    return out


_PRIORITY = {"email": 0, "birthdate": 1, "phone": 2, "address": 3, "speaker": 4, "title": 5,
             "initials": 6, "role": 7, "particle": 8, "citation": 9, "propagated": 10}


def _resolve(text: str, found: list[tuple[int, int, str, str]]) -> list[Span]:
    """Keep the longest (then most specific) of overlapping candidates."""
    found.sort(key=lambda f: (-(f[1] - f[0]), _PRIORITY[f[3]], f[0]))
    taken: list[tuple[int, int]] = []
    kept: list[Span] = []
    for start, end, kind, rule in found:
        if any(start < e and s < end for s, e in taken):
            continue
        taken.append((start, end))
        kept.append(Span(start, end, text[start:end], kind, rule))
    return sorted(kept, key=lambda s: s.start)


def _allowed(span: Span, text: str, allow: AllowList) -> bool:
    if span.kind != PERSON:
        return False
    bare = re.sub(rf"^(?:{_INIT})\s?|,\s.*$", "", span.text).strip()
    bare_np = re.sub(rf"^{_PART}+", "", bare)
    if span.text in allow.names or bare in allow.names or bare_np in allow.names:
        return True
    for phrase in allow.phrases:
        for m in re.finditer(re.escape(phrase), text):
            if m.start() <= span.start and span.end <= m.end():
                return True
    return False


def person_key(name: str) -> str:
    """Normalised identity of a name: surname with particles, lower case.

    "O. van der Woerd", "van der Woerd, O.S." and "Van der Woerd" share a key.
    """
    bare = re.sub(rf"^(?:{_INIT})\s?|,\s.*$|\s(?:[{_UP}]\.)+$", "", name).strip()
    inverted = re.match(rf"^({_CAP}),\s(?:{_INIT})\s?((?:van der|van den|van de|van|de|der|ter))$", name)
    if inverted:
        bare = f"{inverted.group(2)} {inverted.group(1)}"
    return " ".join(bare.lower().split())


@dataclass
class Pseudonyms:
    """The corpus-wide mapping person key → number, kept in first-seen order.

    One object is passed over every document of a corpus, so the same person
    gets the same "[Persoon N]" in each; ``aliases`` merges keys (an admin's
    correction, or a surname-only mention the document ties to a full name).
    """

    numbers: dict[str, int] = field(default_factory=dict)
    aliases: dict[str, str] = field(default_factory=dict)
    counters: dict[str, int] = field(default_factory=dict)

    def resolve(self, key: str) -> str:
        seen = set()
        while key in self.aliases and key not in seen:
            seen.add(key)
            key = self.aliases[key]
        return key

    def number(self, kind: str, key: str) -> int:
        full = f"{kind}:{self.resolve(key)}"
        if full not in self.numbers:
            self.counters[kind] = self.counters.get(kind, 0) + 1
            self.numbers[full] = self.counters[kind]
        return self.numbers[full]


@dataclass(frozen=True)
class OffsetMap:
    """Where each replaced stretch of the original went in the new text.

    ``pieces`` holds ``(old_start, old_end, new_start, new_end)`` per
    replacement, sorted; positions between replacements shift by a constant.
    """

    pieces: tuple[tuple[int, int, int, int], ...]

    def to_new(self, pos: int) -> int:
        """A position in the original text, moved to the pseudonymised text.

        A position inside a replaced name moves to the start of its pseudonym
        (for a selection start) — use ``to_new_end`` for a selection end.
        """
        i = bisect.bisect_right([p[0] for p in self.pieces], pos) - 1
        if i < 0:
            return pos
        old_s, old_e, new_s, new_e = self.pieces[i]
        return new_s if pos < old_e else new_e + (pos - old_e)

    def to_new_end(self, pos: int) -> int:
        """Like :meth:`to_new`, but a position inside a name moves past its pseudonym."""
        i = bisect.bisect_left([p[1] for p in self.pieces], pos)
        if i < len(self.pieces) and self.pieces[i][0] < pos <= self.pieces[i][1]:
            return self.pieces[i][3]
        return self.to_new(pos)

    def to_old(self, pos: int) -> int:
        """A position in the pseudonymised text, moved back to the original."""
        i = bisect.bisect_right([p[2] for p in self.pieces], pos) - 1
        if i < 0:
            return pos
        old_s, old_e, new_s, new_e = self.pieces[i]
        return old_s if pos < new_e else old_e + (pos - new_e)


def link_mentions(spans: list[Span]) -> dict[tuple[int, int], str]:
    """Person key for each person span, surname-only and first-name mentions tied to full names.

    Within one document, "Jeanette" joins "Jeanette Jongsma" and "Jongsma"
    joins it too, when exactly one full name has that first name or surname.
    """
    keys = {(s.start, s.end): person_key(s.text) for s in spans if s.kind == PERSON}
    full = {k for k in keys.values() if sum(w not in _PARTICLE_WORDS for w in k.split()) >= 2}
    by_first: dict[str, set[str]] = {}
    by_last: dict[str, set[str]] = {}
    for k in full:
        words = k.split()
        by_first.setdefault(words[0], set()).add(k)
        by_last.setdefault(" ".join(w for w in words[1:]), set()).add(k)
        by_last.setdefault(words[-1], set()).add(k)
    out = {}
    for pos, k in keys.items():
        if k in full:
            pass
        elif len(k.split()) == 1 and len(by_first.get(k, ())) == 1:
            k = next(iter(by_first[k]))
        elif k in by_last and len(by_last[k]) == 1:
            k = next(iter(by_last[k]))
        out[pos] = k
    return out


def pseudonymise(
    text: str,
    spans: list[Span],
    mapping: Pseudonyms,
    keep_cited: bool = True,
) -> tuple[str, OffsetMap]:
    """Replace each span by its pseudonym; return the new text and the offset map.

    Only the name is replaced, so role words and titles stay outside the
    bracket ("bestuurder [Persoon 3]", "dr. [Persoon 1]"). Cited authors stay
    as written unless ``keep_cited`` is false.
    """
    keys = link_mentions(spans)
    out: list[str] = []
    pieces: list[tuple[int, int, int, int]] = []
    cursor = 0
    length = 0
    for span in sorted(spans, key=lambda s: s.start):
        if span.start < cursor or (keep_cited and span.cited):
            continue
        key = keys.get((span.start, span.end), span.text.lower()) if span.kind == PERSON else span.text
        label = f"[{LABELS[span.kind]} {mapping.number(span.kind, key)}]"
        out.append(text[cursor : span.start])
        length += span.start - cursor
        pieces.append((span.start, span.end, length, length + len(label)))
        out.append(label)
        length += len(label)
        cursor = span.end
    out.append(text[cursor:])
    return "".join(out), OffsetMap(tuple(pieces))


def pseudonymise_corpus(
    texts: Mapping[str, str], allow: AllowList | None = None, mapping: Pseudonyms | None = None
) -> tuple[dict[str, str], Pseudonyms]:
    """Pseudonymise several documents with one mapping (documents in sorted id order)."""
    mapping = mapping if mapping is not None else Pseudonyms()
    allow = allow if allow is not None else load_allow_list()
    out = {}
    for doc_id in sorted(texts):
        new, _ = pseudonymise(texts[doc_id], detect(texts[doc_id], allow), mapping)
        out[doc_id] = new
    return out, mapping


def pseudonymise_document(data: Mapping, mapping: Pseudonyms, allow: AllowList | None = None) -> dict:
    """A pseudonymised copy of an extracted document (``Document.to_json()`` shape).

    The body text is pseudonymised once; passage offsets move through the offset
    map, so each passage's text is still ``text[char_start:char_end]``; the
    speaker and the title get the same pseudonym as the same name in the body.
    """
    allow = allow if allow is not None else load_allow_list()
    text = data["text"]
    new, offsets = pseudonymise(text, detect(text, allow), mapping)
    labels = {text[o_s:o_e]: new[n_s:n_e] for o_s, o_e, n_s, n_e in offsets.pieces}

    def substitute(value: str | None) -> str | None:
        if not value:
            return value
        for old in sorted(labels, key=len, reverse=True):
            value = re.sub(rf"(?<![\w-]){re.escape(old)}(?![\w-])", labels[old], value)
        return value

    out = dict(data)
    out["text"] = new
    out["title"] = substitute(data.get("title"))
    passages = []
    for passage in data.get("passages") or ():
        p = dict(passage)
        start, end = offsets.to_new(passage["char_start"]), offsets.to_new_end(passage["char_end"])
        p.update(char_start=start, char_end=end, text=new[start:end], speaker=substitute(passage.get("speaker")))
        passages.append(p)
    out["passages"] = passages
    out["pseudonymised"] = True
    return out
