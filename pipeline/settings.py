"""Validated settings: defaults, overridable by ``MGZ_*`` environment variables and CLI flags."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MGZ_")

    corpus_dir: Path = Path("corpus")
    out_dir: Path = Path("outputs")
    models_dir: Path = Path("models")  # the trained classifier and its card (MGZ_MODELS_DIR)
    store_url: str | None = None  # default: SQLite inside out_dir
    max_pages: int = Field(default=2000, ge=1)
    ocr: str = Field(default="auto", pattern="^(auto|never|force)$")  # scanned pages (pipeline.ocr), MGZ_OCR
    dask_address: str | None = None  # e.g. tcp://10.0.0.5:8786; None runs on local processes
    topics_guided: bool = False  # guided BERTopic: seed topics from the codebook's condition terms
    workers: int = Field(default_factory=lambda: max(1, min(4, os.cpu_count() or 1)), ge=1)

    def resolved_store_url(self) -> str:
        return self.store_url or f"sqlite:///{self.out_dir / 'mgz.sqlite'}"
