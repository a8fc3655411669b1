"""The corpus flow on a real (temporary) Prefect server: isolation, incremental work, retirement."""

from __future__ import annotations

import json
import shutil

import pytest
from prefect.testing.utilities import prefect_test_harness

from flows.corpus import corpus_flow
from pipeline.store import add_review, document_rows, latest_reviews, load_passages, open_store

from .conftest import CORPUS, ROOT, make_pdf

GOOD = "vg-deelsessie-huisartsenzorg"


@pytest.fixture(scope="module", autouse=True)
def prefect_server():
    with prefect_test_harness(server_startup_timeout=120):
        yield


def write_manifest(corpus, rows):
    header = "doc_id,file,title,study,sector,doc_type,year\n"
    (corpus / "manifest.csv").write_text(header + "".join(f"{r},s,vg,rapport,2021\n" for r in rows), "utf-8")


def run(tmp_path, corpus):
    state = corpus_flow(str(corpus), str(tmp_path / "out"), None, str(ROOT / "models"), 50, False, return_state=True)
    return state, json.loads((tmp_path / "out" / "run_report.json").read_text("utf-8"))


def test_broken_document_fails_alone_and_reruns_do_no_work(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / f"{GOOD}.pdf", corpus)
    whole = make_pdf(tmp_path / "heel.pdf", [{"header": "", "lines": [(63, 100, "Tekst.", 9.5, False)]}] * 3)
    (corpus / "kapot.pdf").write_bytes(whole.read_bytes()[:300])
    write_manifest(corpus, [f"{GOOD},{GOOD}.pdf,Sessie", "kapot,kapot.pdf,Kapot"])

    state, report = run(tmp_path, corpus)
    assert state.is_failed()
    assert "kapot" in state.message and "corrupt or truncated PDF" in state.message
    assert report["ingested"] == [GOOD] and report["classified"][GOOD] > 0
    out = tmp_path / "out"
    assert (out / "passages" / f"{GOOD}.json").exists() and (out / "report" / "index.html").exists()
    assert (out / "matrices" / f"{GOOD}.csv").exists() and not (out / "matrices" / "kapot.csv").exists()

    again, report = run(tmp_path, corpus)
    assert report["ingested"] == [] and report["unchanged"] == [GOOD]
    assert report["classified"] == {GOOD: 0}  # counted work: nothing re-extracted, nothing re-classified


def test_removed_row_is_retired_from_outputs_but_keeps_its_reviews(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / f"{GOOD}.pdf", corpus)
    write_manifest(corpus, [f"{GOOD},{GOOD}.pdf,Sessie"])
    state, _ = run(tmp_path, corpus)
    assert state.is_completed()
    engine = open_store(f"sqlite:///{tmp_path / 'out' / 'mgz.sqlite'}")
    passage = load_passages(engine, GOOD)[3]
    add_review(
        engine,
        passage.id,
        "analist",
        {
            "conditions": [],
            "interactie_type": None,
            "polarity": "neutraal",
            "stakeholders": [],
            "primary_condition": None,
        },
    )
    write_manifest(corpus, [])
    state, report = run(tmp_path, corpus)
    assert report["retired"] == [GOOD]
    assert {d["doc_id"]: d["status"] for d in document_rows(engine)} == {GOOD: "retired"}
    assert not (tmp_path / "out" / "passages" / f"{GOOD}.json").exists()
    assert not list((tmp_path / "out" / "matrices").glob(f"{GOOD}.*"))
    assert passage.id in latest_reviews(engine)


def test_deployment_is_scheduled_and_runs_through_the_api(tmp_path):
    import asyncio

    import yaml
    from prefect import get_client
    from prefect.runner import Runner

    from flows.corpus import DEFAULT_CRON, corpus_deployment

    declared = yaml.safe_load((ROOT / "prefect.yaml").read_text("utf-8"))["deployments"][0]
    assert declared["entrypoint"] == "flows/corpus.py:corpus_flow"
    assert declared["schedules"][0]["cron"] == DEFAULT_CRON

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / f"{GOOD}.pdf", corpus)
    write_manifest(corpus, [f"{GOOD},{GOOD}.pdf,Sessie"])
    deployment = corpus_deployment(
        corpus_dir=str(corpus), out_dir=str(tmp_path / "out"), models_dir=str(ROOT / "models")
    )
    deployment_id = deployment.apply()

    async def schedule_and_run():
        async with get_client() as client:
            stored = await client.read_deployment(deployment_id)
            run = await client.create_flow_run_from_deployment(deployment_id)
        await Runner().execute_flow_run(run.id)
        async with get_client() as client:
            return stored, await client.read_flow_run(run.id)

    stored, finished = asyncio.run(schedule_and_run())
    assert [s.schedule.cron for s in stored.schedules] == [DEFAULT_CRON] and stored.schedules[0].active
    assert stored.entrypoint == declared["entrypoint"]
    assert finished.state.is_completed(), finished.state.message
    assert (tmp_path / "out" / "passages" / f"{GOOD}.json").exists()


def test_dask_cluster_gives_the_same_outputs_as_a_local_run(tmp_path):
    from distributed import LocalCluster

    from flows.corpus import task_runner

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    shutil.copy(CORPUS / f"{GOOD}.pdf", corpus)
    write_manifest(corpus, [f"{GOOD},{GOOD}.pdf,Sessie"])
    outputs = {}
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        for name, runner in (("local", task_runner(2)), ("dask", task_runner(2, cluster.scheduler_address))):
            out = tmp_path / name
            state = corpus_flow.with_options(task_runner=runner)(
                str(corpus), str(out), None, str(ROOT / "models"), 50, False, return_state=True
            )
            assert state.is_completed(), state.message
            files = [*out.glob("passages/*.json"), *out.glob("matrices/*.csv"), *out.glob("comparison/*.csv")]
            outputs[name] = {str(f.relative_to(out)): f.read_bytes() for f in files}
    assert len(outputs["local"]) >= 4 and outputs["dask"] == outputs["local"]
