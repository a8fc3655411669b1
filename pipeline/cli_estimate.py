"""``mgz audit`` and ``mgz estimate``: the random audit sample and model-assisted estimates.

Registered on the main app by ``pipeline.cli``; like it, this module only parses
arguments and calls the library, and imports the library only inside commands so
that ``mgz --help`` stays fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

console = Console(stderr=True)

audit_app = typer.Typer(
    help="Random audit sample of passages for model-assisted estimates (coded in the review screen).",
    no_args_is_help=True,
)


def _engine(store: str | None, out: Path | None):
    from pipeline.settings import Settings
    from pipeline.store import open_store

    settings = Settings(**{k: v for k, v in {"store_url": store, "out_dir": out}.items() if v is not None})
    return open_store(settings.resolved_store_url())


@audit_app.command("draw")
def audit_draw(
    per_document: int | None = typer.Option(None, "--per-document", help="N more passages per document."),
    share: float | None = typer.Option(None, "--share", help="Grow the sample to this share P of each document."),
    doc: str | None = typer.Option(None, "--doc", help="Only this document."),
    seed: int | None = typer.Option(None, "--seed", help="Random seed (stored with the draw; default: random)."),
    show_model: bool = typer.Option(
        False, "--show-model", help="Let coders see the model's labels (default: coded blind to the model)."
    ),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder holding the default store."),
) -> None:
    """Draw a simple random sample of content passages per document; it appears in the review
    screen as the queue "Steekproef"."""
    from pipeline.audit import AuditError, draw_audit

    try:
        result = draw_audit(
            _engine(store, out), per_document=per_document, share=share, doc_id=doc, seed=seed, blind=not show_model
        )
    except AuditError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    for doc_id, added in result.per_document.items():
        console.print(
            f"{doc_id}: {added} passages getrokken, steekproef nu {result.sample_size[doc_id]} "
            f"van {result.content[doc_id]} inhoudelijke passages"
        )
    console.print(f"Trekking {result.draw_id} met seed {result.seed}")


@audit_app.command("list")
def audit_list(
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder holding the default store."),
) -> None:
    """Every draw of the audit sample with its design."""
    from pipeline.audit import audit_draws

    for d in audit_draws(_engine(store, out)):
        rule = f"{d['value']:g} per document" if d["rule"] == "per_document" else f"aandeel {d['value']:g}"
        typer.echo(
            f"trekking {d['id']}: {rule}, {d['doc'] or 'alle documenten'}, seed {d['seed']}, "
            f"{'blind' if d['blind'] else 'model zichtbaar'}, {d['passages']} passages, "
            f"door {d['drawn_by']} op {d['created_at']}"
        )


def estimate(
    predictions: Path = typer.Option(..., "--predictions", help="`mgz classify` output for all passages (JSONL)."),
    labels: Path = typer.Option(..., "--labels", help="Human labels (id + codebook fields) of a random subset."),
    field: list[str] = typer.Option([], "--field", help="Field(s) to estimate (default: every field)."),
    confidence: float = typer.Option(0.95, "--confidence", min=0.5, max=0.999, help="Interval confidence."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
) -> None:
    """Label shares with valid intervals from model predictions and a random sample of human labels
    (prediction-powered inference, PPI++). The labelled passages must be a simple random sample."""
    from pipeline.codebook import load_codebook
    from pipeline.estimate import EstimateInputError, estimate_labels, read_rows

    codebook = load_codebook()
    unknown = [f for f in field if f not in codebook.fields]
    if unknown:
        typer.echo(f"error: unknown field(s) {', '.join(unknown)}; known: {', '.join(codebook.fields)}", err=True)
        raise typer.Exit(code=2)
    try:
        rows = estimate_labels(
            read_rows(predictions),
            {r["id"]: r for r in read_rows(labels)},
            codebook,
            field or list(codebook.fields),
            confidence,
        )
    except EstimateInputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        typer.echo(json.dumps(rows, ensure_ascii=False, indent=1))
        return
    table = Table("veld", "label", "schatting", "interval", "model", "methode", "gelabeld", "totaal")
    for r in rows:
        interval = "" if r["ci_low"] is None else f"{r['ci_low']:.3f}–{r['ci_high']:.3f}"
        table.add_row(
            r["field"], r["label"], f"{r['estimate']:.3f}", interval, f"{r['model_share']:.3f}", r["method"],
            str(r["n_labeled"]), str(r["n_total"]),
        )  # fmt: skip
    Console().print(table)
