"""The codebook as data: label ids, Dutch names, definitions and colours.

Loaded once and passed to every stage, so no stage hard-codes a label id. Any
codebook with the same shape loads without code changes (CFIR, the eerstelijn
study's five aspects, …): fields are read from the file, not assumed.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import yaml


class CodebookError(ValueError):
    """A codebook file that does not have the expected shape."""


@dataclass(frozen=True)
class Label:
    id: str
    name: str
    definition: str = ""
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    examples: tuple[str, ...] = ()
    colour: str = "#7f7f7f"


@dataclass(frozen=True)
class Field:
    """One coded dimension: multi-label (a list) or single-label (a value or null)."""

    id: str
    name: str
    multi: bool
    labels: tuple[Label, ...]
    allow_none: bool = False
    requires: tuple[str, str] | None = None  # (field, label) that must be present
    labels_from: str | None = None  # e.g. primary_condition takes its ids from conditions

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(label.id for label in self.labels)

    def label(self, label_id: str) -> Label:
        for label in self.labels:
            if label.id == label_id:
                return label
        raise KeyError(f"{self.id}: unknown label {label_id!r}")


@dataclass(frozen=True)
class Codebook:
    id: str
    name: str
    version: str
    fields: dict[str, Field] = field(default_factory=dict)

    def ids(self, field_id: str) -> tuple[str, ...]:
        return self.fields[field_id].ids

    def validate(self, coding: dict) -> list[str]:
        """Problems with one coding (empty list when it is valid)."""
        problems: list[str] = []
        for f in self.fields.values():
            if f.id not in coding:
                problems.append(f"missing field {f.id!r}")
                continue
            value = coding[f.id]
            if f.multi:
                if not isinstance(value, list):
                    problems.append(f"{f.id} must be a list")
                    continue
                unknown = [v for v in value if v not in f.ids]
                if unknown:
                    problems.append(f"{f.id}: unknown label(s) {unknown}")
                if len(set(value)) != len(value):
                    problems.append(f"{f.id}: duplicate labels")
            else:
                if value is None:
                    if f.requires and f.requires[1] in (coding.get(f.requires[0]) or []):
                        problems.append(f"{f.id} is required when {f.requires[0]} has {f.requires[1]!r}")
                    elif f.labels_from and coding.get(f.labels_from):
                        problems.append(f"{f.id} is empty although {f.labels_from} is not")
                    elif not f.requires and not f.allow_none:
                        problems.append(f"{f.id} may not be empty")
                    continue
                if value not in f.ids:
                    problems.append(f"{f.id}: unknown label {value!r}")
                if f.requires and f.requires[1] not in (coding.get(f.requires[0]) or []):
                    problems.append(f"{f.id} given but {f.requires[0]} lacks {f.requires[1]!r}")
                if f.labels_from and value not in (coding.get(f.labels_from) or []):
                    problems.append(f"{f.id} {value!r} is not among {f.labels_from}")
        return problems


def _label(raw: dict, where: str) -> Label:
    if not isinstance(raw, dict) or "id" not in raw:
        raise CodebookError(f"{where}: every label needs an id")
    return Label(
        id=str(raw["id"]),
        name=str(raw.get("name", raw["id"])),
        definition=str(raw.get("definition", "")).strip(),
        include=tuple(map(str, raw.get("include") or ())),
        exclude=tuple(map(str, raw.get("exclude") or ())),
        examples=tuple(map(str, raw.get("examples") or ())),
        colour=str(raw.get("colour", "#7f7f7f")),
    )


def parse_codebook(data: dict, where: str = "codebook") -> Codebook:
    if not isinstance(data, dict) or not isinstance(data.get("fields"), dict) or not data["fields"]:
        raise CodebookError(f"{where}: needs a non-empty 'fields' mapping")
    fields: dict[str, Field] = {}
    raw_fields = data["fields"]
    for field_id, raw in raw_fields.items():
        if "labels_from" in raw:
            source = raw["labels_from"]
            if source not in raw_fields:
                raise CodebookError(f"{where}: field {field_id} takes labels from unknown field {source!r}")
            labels = tuple(_label(x, f"{where}.{source}") for x in raw_fields[source]["labels"])
        else:
            labels = tuple(_label(x, f"{where}.{field_id}") for x in raw.get("labels") or ())
        if not labels:
            raise CodebookError(f"{where}: field {field_id} has no labels")
        ids = [label.id for label in labels]
        if len(set(ids)) != len(ids):
            raise CodebookError(f"{where}: field {field_id} has duplicate label ids")
        requires = raw.get("requires")
        fields[field_id] = Field(
            id=field_id,
            name=str(raw.get("name", field_id)),
            multi=bool(raw.get("multi", False)),
            labels=labels,
            allow_none=bool(raw.get("allow_none", False)),
            requires=(str(requires["field"]), str(requires["label"])) if requires else None,
            labels_from=raw.get("labels_from"),
        )
    return Codebook(
        id=str(data.get("id", "codebook")),
        name=str(data.get("name", "")),
        version=str(data.get("version", "")),
        fields=fields,
    )


def load_codebook(path: Path | str | None = None) -> Codebook:
    """Load a codebook YAML file (the bundled system-framework codebook by default)."""
    if path is None:
        text = resources.files("pipeline.data").joinpath("codebook.yaml").read_text("utf-8")
        where = "pipeline/data/codebook.yaml"
    else:
        where = str(path)
        try:
            text = Path(path).read_text("utf-8")
        except OSError as exc:
            raise CodebookError(f"{where}: cannot read ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise CodebookError(f"{where}: not valid YAML ({exc.__class__.__name__})") from None
    return parse_codebook(data, where)


if __name__ == "__main__":  # check annotation files: python -m pipeline.codebook FILE...
    from pipeline.annotations import checked_records

    codebook = load_codebook()
    bad = 0
    for name in sys.argv[1:]:
        for number, _, problems in checked_records(Path(name), codebook):
            for problem in problems:
                print(f"{name}:{number}: {problem}")
                bad += 1
    print("ok" if not bad else f"{bad} problem(s)")
    sys.exit(1 if bad else 0)
