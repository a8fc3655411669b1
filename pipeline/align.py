"""Word-by-word alignment of one text onto another.

Two stages need to know where a span of one version of a text lies in another
version: REFI-QDA import (their copy of a document onto ours, ``pipeline.exchange``)
and re-ingest (the previous extraction of a document onto the new one, so
analysts' decisions follow their passages, ``pipeline.carry``). Both use this
module, so a span maps the same way everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from difflib import SequenceMatcher

_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class Words:
    """Whitespace-separated words of a text: spans, end offsets, comparison keys and their bag."""

    spans: list[tuple[int, int]]
    ends: list[int]
    keys: list[str]
    bag: Counter


def words(text: str) -> Words:
    """Whitespace-separated words with their spans; keys ignore case and compatibility forms (ligatures)."""
    matches = list(_WORD.finditer(text))
    keys = [unicodedata.normalize("NFKC", m.group()).casefold() for m in matches]
    return Words([m.span() for m in matches], [m.end() for m in matches], keys, Counter(keys))


def word_pairs(a: Words, b: Words) -> dict[int, int]:
    """Index of each word of ``a`` matched in order to a word of ``b`` (difflib's matching blocks)."""
    pairs: dict[int, int] = {}
    for block in SequenceMatcher(None, a.keys, b.keys).get_matching_blocks():
        pairs.update({block.a + k: block.b + k for k in range(block.size)})
    return pairs


@dataclass
class Alignment:
    """How one text lies on another (a document ``doc_id``).

    ``exact``: same text, positions carry over.
    ``fuzzy``: words matched in order (difflib); a span maps to the target
    span from its first to its last matched word.
    """

    doc_id: str
    mode: str
    share: float
    _src: Words | None = None
    _doc: Words | None = None
    _pairs: dict[int, int] | None = None

    def span(self, start: int, end: int) -> tuple[int, int] | None:
        """The target span of source span ``[start, end)``; None when none of its words matched."""
        if self.mode == "exact":
            return start, end
        assert self._src is not None and self._doc is not None and self._pairs is not None
        first = bisect_right(self._src.ends, start)  # first word ending after the span starts
        matched = []
        for i in range(first, len(self._src.spans)):
            if self._src.spans[i][0] >= end:
                break
            if i in self._pairs:
                matched.append(self._pairs[i])
        if not matched:
            return None
        return self._doc.spans[min(matched)][0], self._doc.spans[max(matched)][1]


def align_texts(source: str, target: str, doc_id: str = "") -> Alignment:
    """Align ``source`` onto ``target`` word by word (exact when the texts are equal)."""
    if source == target:
        return Alignment(doc_id, "exact", 1.0)
    src, dst = words(source), words(target)
    pairs = word_pairs(src, dst)
    share = len(pairs) / (min(len(src.keys), len(dst.keys)) or 1)
    return Alignment(doc_id, "fuzzy", round(share, 4), src, dst, pairs)
