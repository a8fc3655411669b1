"""The ``mgz`` command line: parses arguments and calls the library, nothing more."""

from __future__ import annotations

import json
import sys
from enum import Enum
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from pipeline.corpus import IngestReport, ingest_corpus, write_atomic, write_json
from pipeline.ingest import ExtractJob, ExtractOptions, IngestError, extract_many
from pipeline.settings import Settings
from pipeline.store import document_rows, load_passages, open_store

app = typer.Typer(help="Text mining for Dutch qualitative research on medisch-generalistische zorg.", no_args_is_help=True)
console = Console(stderr=True)


class OutputFormat(str, Enum):
    text = "text"
    json = "json"


def _settings(**overrides: object) -> Settings:
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


@app.command()
def extract(
    paths: list[Path] = typer.Argument(..., help="PDF, DOCX or TXT files."),
    format: OutputFormat = typer.Option(OutputFormat.text, "--format", help="text: cleaned body text; json: document with passages."),
    out: Path | None = typer.Option(None, "--out", help="Write one file per document here instead of printing."),
    workers: int | None = typer.Option(None, help="Parallel processes (default: cores, max 4)."),
    max_pages: int | None = typer.Option(None, help="Refuse documents with more pages than this."),
) -> None:
    """Extract clean text and passages from documents."""
    settings = _settings(workers=workers, max_pages=max_pages)
    results = extract_many(
        [ExtractJob(str(p)) for p in paths], workers=settings.workers, options=ExtractOptions(settings.max_pages)
    )
    failed = 0
    for result in results:
        if result.document is None:
            failed += 1
            typer.echo(f"error: {result.error}", err=True)
            continue
        doc = result.document
        payload = json.dumps(doc.to_json(), ensure_ascii=False, indent=2) if format is OutputFormat.json else doc.text
        if out is not None:
            write_atomic(out / f"{doc.doc_id}.{'json' if format is OutputFormat.json else 'txt'}", payload + "\n")
        else:
            sys.stdout.write(payload + "\n")
    raise typer.Exit(code=1 if failed else 0)


def _print_report(report: IngestReport) -> None:
    table = Table(title="Ingest")
    table.add_column("status")
    table.add_column("documents")
    table.add_row("ingested", ", ".join(report.ingested) or "-")
    table.add_row("unchanged", ", ".join(report.unchanged) or "-")
    console.print(table)
    for problem in report.failed:
        typer.echo(f"error: {problem}", err=True)


@app.command()
def ingest(
    corpus: Path | None = typer.Option(None, help="Corpus folder with manifest.csv (default corpus/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    workers: int | None = typer.Option(None),
) -> None:
    """Ingest the corpus into the store; unchanged files are skipped."""
    settings = _settings(corpus_dir=corpus, store_url=store, out_dir=out, workers=workers)
    report = _ingest(settings)
    raise typer.Exit(code=0 if report.ok else 1)


def _ingest(settings: Settings) -> IngestReport:
    engine = open_store(settings.resolved_store_url())
    try:
        with console.status("Documenten inlezen …"):
            report = ingest_corpus(settings.corpus_dir, engine, settings.workers, ExtractOptions(settings.max_pages))
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    _print_report(report)
    return report


@app.command()
def run(
    corpus: Path | None = typer.Option(None, help="Corpus folder with manifest.csv (default corpus/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    workers: int | None = typer.Option(None),
) -> None:
    """The main job: ingest the corpus and write passages per document to outputs/."""
    settings = _settings(corpus_dir=corpus, out_dir=out, store_url=store, workers=workers)
    report = _ingest(settings)
    engine = open_store(settings.resolved_store_url())
    for doc in document_rows(engine):
        if doc["status"] != "ok":
            continue
        passages = [p.to_json() for p in load_passages(engine, doc["doc_id"])]
        write_json(settings.out_dir / "passages" / f"{doc['doc_id']}.json", {**doc, "passages": passages})
    write_json(settings.out_dir / "ingest_report.json", report.to_json())
    console.print(f"Uitvoer geschreven naar {settings.out_dir}/")
    raise typer.Exit(code=0 if report.ok else 1)


@app.command()
def documents(
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None),
) -> None:
    """List stored documents with their status."""
    engine = open_store(_settings(store_url=store, out_dir=out).resolved_store_url())
    table = Table()
    for column in ("doc_id", "status", "pages", "sector", "error"):
        table.add_column(column)
    for doc in document_rows(engine):
        table.add_row(doc["doc_id"], doc["status"], str(doc["pages"] or ""), doc["sector"], doc["error"] or "")
    Console().print(table)


if __name__ == "__main__":
    app()
