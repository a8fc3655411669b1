"""Output folders replaced whole: written into a staging folder first, then swapped in.

A disk that fills up, or a folder that turns out to be read-only, halfway through
writing twelve matrices files must not leave five new files among seven old ones:
readers of ``outputs/`` would take a mix of two runs for one. So the corpus-level
outputs are written into ``out_dir/.staging-*`` (same file system, so the swap is a
rename) and each folder (``matrices``, ``comparison``, ``report``) replaces the old
one only when everything was written; on failure the previous outputs stay as they
were and the error is one line naming the folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

STAGING_PREFIX = ".staging-"


class OutputError(Exception):
    """Outputs that could not be written; ``str()`` is one line naming the folder."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


@contextmanager
def staged_outputs(out_dir: Path, names: Sequence[str]) -> Iterator[Path]:
    """Yield a staging folder to write ``names`` (sub-folders) into; swap them into ``out_dir`` after.

    Staging folders a killed run left behind are removed first. Any OSError while
    writing or swapping (no space, read-only, permission) becomes :class:`OutputError`
    with the previous outputs left in place.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for left in out_dir.glob(f"{STAGING_PREFIX}*"):
            shutil.rmtree(left, ignore_errors=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out_dir))
    except OSError as exc:
        raise OutputError(out_dir, f"cannot write outputs here ({_why(exc)}); nothing was changed") from None
    try:
        yield staging
        _swap(staging, out_dir, names)
    except OSError as exc:
        raise OutputError(
            out_dir, f"outputs not written ({_why(exc)}); the previous outputs are left as they were"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap(staging: Path, out_dir: Path, names: Sequence[str]) -> None:
    """Each written folder replaces its old one by two renames (the old one goes into staging,
    to be removed with it); a failed second rename puts the old one back."""
    for name in names:
        new = staging / name
        if not new.exists():
            continue
        final, previous = out_dir / name, staging / f"{name}.previous"
        had = final.exists()
        if had:
            os.rename(final, previous)
        try:
            os.rename(new, final)
        except OSError:
            if had:
                os.rename(previous, final)
            raise
