"""Dutch NLP: a spaCy ``nl`` pipeline built from parts that work offline.

No trained Dutch spaCy model can be downloaded here, so the pipeline is
``spacy.blank("nl")`` plus: tokenizer special cases for Dutch and domain
abbreviations (so ``o.a.`` or ``t.a.v.`` never end a sentence), a rule-based
sentencizer, the lookup lemmatizer from ``spacy-lookups-data`` and a registered
component that attaches glossary expansions to abbreviation tokens.
"""

from __future__ import annotations

import re
import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import spacy
import yaml
from spacy.language import Language
from spacy.tokens import Doc, Token

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
    if path is None:
        text = resources.files("pipeline.data").joinpath("glossary.yaml").read_text("utf-8")
    else:
        text = Path(path).read_text("utf-8")
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


def _case_variants(abbreviation: str) -> set[str]:
    return {abbreviation, abbreviation[:1].upper() + abbreviation[1:], abbreviation.upper()}


def make_nlp(glossary: Glossary, lemmas: bool = True) -> Language:
    """Build the project's Dutch pipeline.

    ``lemmas=False`` skips the lookup lemmatizer for callers that only need
    sentences (ingestion), which keeps start-up fast.
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
    if lemmas:
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
