"""Data files that ship with the package (codebook, glossary, allow-list, seed themes)."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def read_text(name: str, path: Path | str | None = None) -> str:
    """The text of ``path``, or of the bundled data file ``name`` when no path is given."""
    if path is None:
        return resources.files("pipeline.data").joinpath(name).read_text("utf-8")
    return Path(path).read_text("utf-8")
