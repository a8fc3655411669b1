"""The corpus flow: manifest → per document ingest → classify → topics → corpus-level outputs.

Each task calls the same library function as its `mgz` sub-command and passes
only ids, paths and URLs, so tasks can run in other threads or processes.
Incremental work comes from the store's own record: a document whose sha256 and
ingest version are unchanged is not re-extracted, and passages already
classified by the current model version are not classified again.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.futures import as_completed
from prefect.states import Completed, Failed
from prefect.task_runners import ProcessPoolTaskRunner
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn
from sqlalchemy.exc import OperationalError

from pipeline.codebook import load_codebook
from pipeline.corpus import ingest_document, row_is_current, start_corpus, write_json
from pipeline.ingest import ExtractOptions
from pipeline.models import ManifestRow
from pipeline.store import document_rows, open_store


def transient(task, task_run, state) -> bool:
    """Retry only what may pass: a locked database or a flaky file system, never a corrupt file."""
    try:
        state.result()
    except (OperationalError, sqlite3.OperationalError, TimeoutError, ConnectionError):
        return True
    except OSError as exc:
        return exc.errno in (4, 11, 16, 110)  # EINTR, EAGAIN, EBUSY, ETIMEDOUT
    except Exception:
        return False
    return False


@task(task_run_name="ingest {doc_id}", retries=2, retry_delay_seconds=1, retry_condition_fn=transient)
def ingest_task(doc_id: str, corpus_dir: str, row: dict, store_url: str, max_pages: int, ocr: str = "auto") -> dict:
    options = ExtractOptions(max_pages, ocr=ocr)
    report = ingest_document(open_store(store_url), Path(corpus_dir), ManifestRow(**row), options)
    return report.to_json()


@task(task_run_name="classify {doc_id}", retries=2, retry_delay_seconds=1, retry_condition_fn=transient)
def classify_task(doc_id: str, store_url: str, models_dir: str) -> int:
    from pipeline.classify import classify_document, load_model, needs_classification, read_card
    from pipeline.embeddings import make_encoder
    from pipeline.nlp import load_glossary, make_nlp

    engine = open_store(store_url)
    doc = next(d for d in document_rows(engine) if d["doc_id"] == doc_id)
    card = read_card(Path(models_dir)) or {}
    if card and not needs_classification(engine, doc, card["model_version"]):
        return 0  # nothing new for this model version: do not even load the model
    model, card = load_model(Path(models_dir), load_codebook())
    return classify_document(engine, doc, model, card, make_nlp(load_glossary()), make_encoder(card_encoder(card)))


def card_encoder(card: dict) -> str:
    return "use" if card.get("encoder", "").startswith("use-") else "e5"


@task(task_run_name="topics")
def topics_task(store_url: str, out_dir: str, model_version: str | None, encoder_key: str, guided: bool) -> dict:
    """BERTopic themes; a corpus too small for a topic model gets a warning and no model, not a failure."""
    from pipeline.embeddings import make_encoder
    from pipeline.nlp import load_glossary, make_nlp
    from pipeline.topics import TopicsError, build_topics

    try:
        summary = build_topics(
            open_store(store_url),
            load_codebook(),
            Path(out_dir),
            make_encoder(encoder_key),
            model_version,
            nlp=make_nlp(load_glossary()) if guided else None,
            guided=guided,
        )
    except TopicsError as exc:
        get_run_logger().warning("no topic model: %s", exc)
        return {"skipped": str(exc)}
    return {k: summary[k] for k in ("n_topics", "n_passages", "outliers_after_reduction", "reused")}


@task(task_run_name="matrices, comparison and report")
def outputs_task(
    store_url: str, out_dir: str, model_version: str | None, models_dir: str | None = None
) -> tuple[dict, str | None]:
    """Coverage per document, and None or the one-line reason the outputs could not be written
    (a full disk or read-only folder: the previous outputs are left whole)."""
    from pipeline.outputs import OutputError
    from pipeline.report import build_outputs, write_passages

    engine = open_store(store_url)
    try:
        write_passages(engine, Path(out_dir), model_version)
        result = build_outputs(
            engine, load_codebook(), Path(out_dir), model_version, models_dir=Path(models_dir) if models_dir else None
        )
    except OutputError as exc:
        return {}, str(exc)
    except OSError as exc:  # the passages files: written one by one, each atomically
        return {}, f"{out_dir}: outputs not written ({exc.strerror or type(exc).__name__})"
    return result["coverage"], None


def _encoder_key(models_dir: Path) -> str:
    """The encoder the classifier was trained with, so the topic model reuses its cached embeddings."""
    from pipeline.classify import read_card

    return card_encoder(read_card(models_dir) or {})


def task_runner(workers: int = 2, dask_address: str | None = None):
    """Local process pool sized to the cores, or an existing Dask cluster (prefect-dask)."""
    if dask_address:
        from prefect_dask import DaskTaskRunner

        return DaskTaskRunner(address=dask_address)
    return ProcessPoolTaskRunner(max_workers=workers)


def _model_version(models_dir: Path) -> str | None:
    from pipeline.classify import ModelError, load_model

    try:
        return load_model(models_dir, load_codebook())[1]["model_version"]
    except ModelError:
        return None


@flow(name="mgz-corpus", task_runner=ProcessPoolTaskRunner(max_workers=2))
def corpus_flow(
    corpus_dir: str = "corpus",
    out_dir: str = "outputs",
    store_url: str | None = None,
    models_dir: str = "models",
    max_pages: int = 2000,
    show_progress: bool = True,
    guided_topics: bool = False,
    ocr: str = "auto",
):
    """Reprocess the corpus: only what changed is redone; one broken document fails alone."""
    logger = get_run_logger()
    store_url = store_url or f"sqlite:///{Path(out_dir) / 'mgz.sqlite'}"
    engine = open_store(store_url)
    manifest, report = start_corpus(engine, Path(corpus_dir))
    failures = {p.doc_id or p.source: p.reason for p in report.failed}
    model_version = _model_version(Path(models_dir))
    if model_version is None:
        logger.warning("no trained model in %s: passages are not classified", models_dir)

    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), disable=not show_progress
    ) as progress:
        # What the store already holds is settled here, so a run with nothing new starts no worker process.
        todo = [r for r in manifest.rows if not row_is_current(engine, Path(corpus_dir), r)]
        report.unchanged += [r.doc_id for r in manifest.rows if r not in todo]
        bar = progress.add_task("inlezen", total=len(manifest.rows), completed=len(report.unchanged))
        ingests = {
            ingest_task.submit(r.doc_id, corpus_dir, r.model_dump(), store_url, max_pages, ocr): r.doc_id
            for r in todo
        }
        ready = list(report.unchanged)
        for future in as_completed(list(ingests)):
            progress.advance(bar)
            try:
                result = future.result()
            except Exception as exc:  # an unexpected error stays with its own document
                failures[ingests[future]] = f"ingest failed: {type(exc).__name__}: {exc}"
                continue
            report.ingested += result["ingested"]
            report.unchanged += result["unchanged"]
            report.carried.update(result.get("carried", {}))
            for failed in result["failed"]:
                failures[failed["doc_id"]] = f"{failed['source']}: {failed['reason']}"
            ready += result["ingested"] + result["unchanged"]
        classified: dict[str, int] = {}
        if model_version is not None:
            from pipeline.classify import needs_classification

            docs = {d["doc_id"]: d for d in document_rows(engine)}
            pending = [d for d in sorted(ready) if needs_classification(engine, docs[d], model_version)]
            classified.update({d: 0 for d in ready if d not in pending})
            bar = progress.add_task("classificeren", total=len(ready), completed=len(ready) - len(pending))
            futures = {classify_task.submit(doc_id, store_url, models_dir): doc_id for doc_id in pending}
            for future in as_completed(list(futures)):
                progress.advance(bar)
                try:
                    classified[futures[future]] = future.result()
                except Exception as exc:
                    failures[futures[future]] = f"classification failed: {type(exc).__name__}: {exc}"
        bar = progress.add_task("thema's en rapport", total=2)
        topics = topics_task(store_url, out_dir, model_version, _encoder_key(Path(models_dir)), guided_topics)
        progress.advance(bar)
        coverage, outputs_error = outputs_task(store_url, out_dir, model_version, models_dir)
        progress.advance(bar)
    if outputs_error:
        failures["outputs"] = outputs_error

    summary = {
        **report.to_json(),
        "classified": classified,
        "failed": failures,
        "model_version": model_version,
        "coverage": coverage,
        "topics": topics,
    }
    try:
        write_json(Path(out_dir) / "run_report.json", summary)
    except OSError as exc:
        failures["run_report.json"] = f"not written ({exc.strerror or type(exc).__name__})"
    logger.info("ingested %s, unchanged %s, classified %s", report.ingested, report.unchanged, classified)
    if failures:
        message = "; ".join(f"{doc}: {reason}" for doc, reason in sorted(failures.items()))
        return Failed(message=f"{len(failures)} document(s) failed: {message}", data=summary)
    return Completed(message="all documents processed", data=summary)


DEFAULT_CRON = "0 3 * * *"


def corpus_deployment(
    name: str = "mgz-corpus",
    cron: str = DEFAULT_CRON,
    corpus_dir: str = "corpus",
    out_dir: str = "outputs",
    store_url: str | None = None,
    models_dir: str = "models",
):
    """The corpus flow as a scheduled deployment (what `mgz serve` serves and prefect.yaml declares)."""
    parameters = {
        "corpus_dir": corpus_dir,
        "out_dir": out_dir,
        "store_url": store_url,
        "models_dir": models_dir,
        "show_progress": False,
    }
    return corpus_flow.to_deployment(
        name=name, cron=cron, parameters=parameters, description="Scheduled reprocessing of the mgz corpus"
    )
