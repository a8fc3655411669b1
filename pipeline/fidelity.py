"""Extraction fidelity against ground-truth paragraphs (used by tests and bench/)."""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass


def _tokens(text: str) -> list[str]:
    return unicodedata.normalize("NFC", text).split()


def _bigrams(tokens: list[str]) -> Counter[tuple[str, str]]:
    return Counter(zip(tokens, tokens[1:], strict=False))


@dataclass(frozen=True)
class Fidelity:
    bigram_recall: float
    word_precision: float
    word_recall: float
    header_lines: int
    hyphen_fragments: int


def score(extracted: str, truth_paragraphs: list[str], header: str) -> Fidelity:
    """Compare an extracted text stream with the paragraphs rendered into the PDF.

    Bigram recall over the whole token stream measures reading order (a column
    read in the wrong order breaks bigrams at every line); word precision
    measures leaked boilerplate and mangled words.
    """
    truth_tokens = _tokens("\n".join(truth_paragraphs))
    got_tokens = _tokens(extracted)
    truth_bi, got_bi = _bigrams(truth_tokens), _bigrams(got_tokens)
    truth_words, got_words = Counter(truth_tokens), Counter(got_tokens)
    matched_bi = sum((truth_bi & got_bi).values())
    matched_words = sum((truth_words & got_words).values())
    truth_text = "\n".join(truth_paragraphs)
    header_lines = max(0, extracted.count(header) - truth_text.count(header)) if header else 0
    fragments = sum(
        1
        for a, b in zip(got_tokens, got_tokens[1:], strict=False)
        if a.endswith("-") and a[:-1].isalpha() and (a + b) not in truth_text and f"{a} {b}" not in truth_text
    )
    return Fidelity(
        bigram_recall=matched_bi / max(1, sum(truth_bi.values())),
        word_precision=matched_words / max(1, sum(got_words.values())),
        word_recall=matched_words / max(1, sum(truth_words.values())),
        header_lines=header_lines,
        hyphen_fragments=fragments,
    )
