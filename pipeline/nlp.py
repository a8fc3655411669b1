"""Dutch NLP: a spaCy ``nl`` pipeline built from parts that work offline.

No trained Dutch spaCy model can be downloaded here, so the pipeline is
``spacy.blank("nl")`` plus: tokenizer special cases for Dutch and domain
abbreviations (so ``o.a.`` or ``t.a.v.`` never end a sentence), a rule-based
sentencizer, the lookup lemmatizer from ``spacy-lookups-data`` and a registered
component that attaches glossary expansions to abbreviation tokens.
"""

from __future__ import annotations

import re
import shutil
import string
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import spacy
import yaml
from spacy.language import Language
from spacy.tokens import Doc, Token

from pipeline.data import read_text

GLOSSARY_COMPONENT = "mgz_glossary"


@dataclass(frozen=True)
class Glossary:
    """Domain abbreviations and their expansions (data, loaded once per process)."""

    terms: dict[str, str]
    abbreviations: tuple[str, ...]

    def expand(self, token: str) -> str | None:
        return self.terms.get(token) or self.terms.get(token.rstrip(".,;:"))


def load_glossary(path: Path | None = None) -> Glossary:
    """Read the glossary YAML (the bundled one unless ``path`` is given)."""
    text = read_text("glossary.yaml", path)
    data = yaml.safe_load(text) or {}
    return Glossary(
        terms={str(k): str(v) for k, v in (data.get("terms") or {}).items()},
        abbreviations=tuple(str(a) for a in data.get("abbreviations") or ()),
    )


if not Token.has_extension("expansion"):
    Token.set_extension("expansion", default=None)


@Language.factory(GLOSSARY_COMPONENT, default_config={"terms": {}})
def make_glossary_component(nlp: Language, name: str, terms: dict[str, str]) -> GlossaryTagger:
    return GlossaryTagger(terms)


class GlossaryTagger:
    """Sets ``token._.expansion`` for domain abbreviations (HA → huisarts)."""

    def __init__(self, terms: dict[str, str]) -> None:
        self.terms = terms

    def __call__(self, doc: Doc) -> Doc:
        for token in doc:
            expansion = self.terms.get(token.text)
            if expansion is not None:
                token._.expansion = expansion
        return doc


FROG_COMPONENT = "frog_lemmatizer"


def frog_available(binary: str = "frog") -> bool:
    """Frog (Radboud's Dutch NLP suite) comes from Debian's `frog` and `frogdata` packages."""
    return shutil.which(binary) is not None


@Language.factory(FROG_COMPONENT, default_config={"binary": "frog", "batch_size": 2000})
def make_frog_component(nlp: Language, name: str, binary: str, batch_size: int) -> FrogLemmatizer:
    return FrogLemmatizer(binary, batch_size)


class FrogLemmatizer:
    """Sets ``token.lemma_`` from Frog's memory-based lemmatizer, on spaCy's own tokens.

    Frog runs once per batch of documents (its start-up costs about a second),
    on pre-tokenised input so its output aligns one-to-one with spaCy's tokens.
    """

    def __init__(self, binary: str = "frog", batch_size: int = 2000) -> None:
        if not frog_available(binary):
            raise RuntimeError(f"{binary}: not found; install Debian's frog and frogdata packages")
        self.binary = binary
        self.batch_size = batch_size

    def __call__(self, doc: Doc) -> Doc:
        return next(self.pipe([doc]))

    def pipe(self, docs: Iterable[Doc], batch_size: int | None = None) -> Iterator[Doc]:
        batch: list[Doc] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= (batch_size or self.batch_size):
                yield from self._lemmatize(batch)
                batch = []
        if batch:
            yield from self._lemmatize(batch)

    def _lemmatize(self, docs: list[Doc]) -> list[Doc]:
        lines, positions = [], []
        for doc in docs:
            keep = [t.i for t in doc if t.text.strip() and " " not in t.text]
            positions.append(keep)
            lines.append(" ".join(doc[i].text for i in keep) or ".")
        with tempfile.TemporaryDirectory() as tmp:
            source, target = f"{tmp}/in.txt", f"{tmp}/out.tsv"
            with open(source, "w", encoding="utf-8") as handle:
                handle.write("\n".join(lines) + "\n")
            subprocess.run(
                [self.binary, "-t", source, "-n", "--skip=tmpcna", "-o", target],
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            with open(target, encoding="utf-8") as handle:
                blocks = [b for b in handle.read().split("\n\n") if b.strip()]
        if len(blocks) != len(docs):
            raise RuntimeError(f"frog returned {len(blocks)} sentences for {len(docs)} documents")
        for doc, keep, block in zip(docs, positions, blocks, strict=True):
            rows = [line.split("\t") for line in block.strip().split("\n")]
            if len(rows) != len(keep) and keep:
                raise RuntimeError("frog changed the tokenisation; cannot align lemmas")
            for i, row in zip(keep, rows, strict=False):
                doc[i].lemma_ = row[2] or doc[i].text
        return docs


def _case_variants(abbreviation: str) -> set[str]:
    return {abbreviation, abbreviation[:1].upper() + abbreviation[1:], abbreviation.upper()}


def make_nlp(glossary: Glossary, lemmas: bool = True, lemmatizer: str = "lookup") -> Language:
    """Build the project's Dutch pipeline.

    ``lemmas=False`` skips lemmatization for callers that only need sentences
    (ingestion), which keeps start-up fast. ``lemmatizer`` is ``"lookup"``
    (spaCy's tables from spacy-lookups-data; always available) or ``"frog"``
    (Frog, when Debian's package is installed); see ``bench/lemmatizers.py``.
    """
    nlp = spacy.blank("nl")
    for abbreviation in glossary.abbreviations:
        for variant in _case_variants(abbreviation):
            if " " not in variant:
                nlp.tokenizer.add_special_case(variant, [{"ORTH": variant}])
    # Single initials ("J.J. Schuurmans", "R. Bal") are not sentence ends either.
    for letter in string.ascii_uppercase:
        nlp.tokenizer.add_special_case(f"{letter}.", [{"ORTH": f"{letter}."}])
    nlp.add_pipe("sentencizer")
    nlp.add_pipe(GLOSSARY_COMPONENT, config={"terms": glossary.terms})
    if lemmas and lemmatizer == "frog":
        nlp.add_pipe(FROG_COMPONENT)
    elif lemmas:
        nlp.add_pipe("lemmatizer", config={"mode": "lookup"})
        nlp.initialize()
    return nlp


def sentence_spans(nlp: Language, text: str) -> list[tuple[int, int]]:
    """Character spans of the sentences in ``text`` (whitespace trimmed)."""
    with nlp.select_pipes(enable=["sentencizer"]):
        doc = nlp(text)
    spans = []
    for sent in doc.sents:
        start, end = sent.start_char, sent.end_char
        while end > start and text[end - 1].isspace():
            end -= 1
        if end > start:
            spans.append((start, end))
    return _merge_fragments(text, spans)


def _merge_fragments(text: str, spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Glue splits that are not sentence ends: '(n = 53).' or a lone closing quote."""
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        piece = text[start:end]
        if merged and (len(piece) < 3 or not re.search(r"\w", piece) or piece[:1].islower()):
            merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def lemmas(nlp: Language, text: str, drop_stop_words: bool = True) -> list[str]:
    """Lower-cased lookup lemmas of the content words in ``text``."""
    doc = nlp(text)
    return [(t.lemma_ or t.text).lower() for t in doc if t.is_alpha and not (drop_stop_words and t.is_stop)]
