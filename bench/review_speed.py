"""Review screen latency with 20,000 passages in the store.

Builds a synthetic SQLite store (documents, passages, model classifications),
serves the review app with uvicorn on loopback, logs in, and times with a real
HTTP client:

* a trivial authenticated endpoint (``/api/ping``: session check only) as the baseline,
* the queue page (default: to review, least confident first; and with filters),
* a passage page,
* the decision round trip: POST a decision and follow the redirect to the next passage.

The store also holds earlier decisions on 5,000 passages (``--decided``), as a
project under way would.

Prints median and 90th percentile per request and the ratio of each median to the
baseline's. Requirement: queue page and decision round trip under 100 ms at the median.

    .venv/bin/python bench/review_speed.py [--passages 20000] [--runs 60]
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.accounts import add_user  # noqa: E402
from pipeline.codebook import load_codebook  # noqa: E402
from pipeline.models import SECTORS, Document, ManifestRow, Passage  # noqa: E402
from pipeline.nlp import load_glossary  # noqa: E402
from pipeline.store import ReviewRow, open_store, save_classifications, save_document, session  # noqa: E402
from pipeline.web.app import create_app, running  # noqa: E402

MODEL = "clf-bench"
PASSWORD = "benchmark password"
WORDS = (
    "huisarts AVG samenwerking MDO zorgkantoor tekort ECD HIS regio overleg bekostiging vertrouwen cliënt "
    "praktijkondersteuner ANW HAP opleiding capaciteit afspraken convenant wachttijd bereikbaarheid"
).split()


def build_store(folder: Path, n_passages: int, decided: int = 0, per_doc: int = 500, seed: int = 0):
    rng = random.Random(seed)
    codebook = load_codebook()
    conditions, polarity = codebook.ids("conditions"), codebook.ids("polarity")
    stakeholders, types = codebook.ids("stakeholders"), codebook.ids("interactie_type")
    engine = open_store(f"sqlite:///{folder / 'bench.sqlite'}")
    n_docs = -(-n_passages // per_doc)
    made = 0
    labelled: list[tuple[str, dict]] = []
    for d in range(n_docs):
        doc_id = f"doc-{d:03d}"
        passages, offset = [], 0
        for k in range(min(per_doc, n_passages - made)):
            body = " ".join(rng.choice(WORDS) for _ in range(rng.randint(12, 40))) + "."
            kind = "heading" if k % 25 == 0 else "paragraph"
            passages.append(
                Passage(
                    f"{d:04d}{k:012d}",
                    kind,
                    body,
                    1 + k // 10,
                    1 + k // 10,
                    offset,
                    offset + len(body),
                    (f"Hoofdstuk {1 + k // 100}",),
                )
            )
            offset += len(body) + 2
        made += len(passages)
        text = "\n\n".join(p.text for p in passages)
        document = Document(doc_id, f"/corpus/{doc_id}.pdf", f"{d:064d}", passages[-1].page_end, doc_id, text, passages)
        row = ManifestRow(doc_id=doc_id, file=f"{doc_id}.pdf", title=f"Document {d}", sector=SECTORS[d % 3])
        save_document(engine, document, row, "bench")
        rows = []
        for p in passages:
            if p.kind != "paragraph":
                continue
            chosen = rng.sample(conditions, rng.randint(1, 2))
            chosen = [c for c in conditions if c in chosen]
            labels = {
                "conditions": chosen,
                "interactie_type": rng.choice(types) if "interactie" in chosen else None,
                "polarity": rng.choice(polarity),
                "stakeholders": rng.sample(stakeholders, rng.randint(0, 2)),
                "primary_condition": chosen[0],
            }
            scores = {
                "conditions": {
                    c: round(rng.uniform(0.5, 1) if c in chosen else rng.uniform(0, 0.5), 4) for c in conditions
                },
                "polarity": {x: round(rng.random(), 4) for x in polarity},
            }
            rows.append({"id": p.id, **labels, "scores": scores, "needs_review": rng.random() < 0.3})
        save_classifications(engine, doc_id, MODEL, rows)
        labelled.extend((r["id"], {f: r[f] for f in codebook.fields}) for r in rows)
    # Earlier decisions, as in a project under way: they make the per-user part of the queue work.
    now = datetime.now(UTC)
    with session(engine) as s:
        s.add_all(
            ReviewRow(
                passage_id=pid,
                reviewer=rng.choice(["ann", "bob"]),
                labels=labels,
                labels_shown=labels,
                model_version=MODEL,
                memo=None,
                created_at=now,
            )
            for pid, labels in rng.sample(labelled, min(decided, len(labelled)))
        )
    add_user(engine, "bench", PASSWORD, "admin")
    return engine, codebook


def timed(client: httpx.Client, runs: int, request) -> list[float]:
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        response = request(client)
        out.append((time.perf_counter() - start) * 1000)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code} for {response.request.url}")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--passages", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument("--decided", type=int, default=5_000, help="passages with an earlier decision")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        engine, codebook = build_store(Path(tmp), args.passages, args.decided)
        print(
            f"store: {args.passages} passages with classifications and {args.decided} earlier decisions, "
            f"built in {time.perf_counter() - start:.1f} s"
        )
        start = time.perf_counter()
        app = create_app(engine, codebook, model_version=MODEL, glossary=load_glossary())
        print(f"app start (loads the queue index): {time.perf_counter() - start:.2f} s")
        with running(app) as base, httpx.Client(base_url=base, timeout=60) as client:
            token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
            client.post("/login", data={"name": "bench", "password": PASSWORD, "csrf_token": token})
            page = client.get("/queue")
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
            first = re.search(r'id="start" href="([^"]+)"', page.text).group(1).replace("&amp;", "&")
            condition = codebook.ids("conditions")[1]
            cases = {
                "baseline: GET /api/ping": lambda c: c.get("/api/ping"),
                "queue: to review, least confident first": lambda c: c.get("/queue"),
                "queue: document in reading order": lambda c: c.get("/queue?status=all&order=reading&doc=doc-007"),
                "queue: condition + polarity + sector": lambda c: c.get(
                    f"/queue?status=all&conditions={condition}&polarity=belemmerend&sector=vg"
                ),
                "passage page": lambda c: c.get(first),
            }
            for request in cases.values():  # warm up
                timed(client, 3, request)
            results = {name: timed(client, args.runs, request) for name, request in cases.items()}

            # Decision round trip: accept the shown labels, follow the redirect to the next passage.
            url, trips = first, []
            for _ in range(args.runs):
                pid, query = url.split("?", 1)[0].rsplit("/", 1)[1], url.split("?", 1)[1]
                start = time.perf_counter()
                response = client.post(
                    f"/passages/{pid}/decision?{query}",
                    data={"csrf_token": csrf, "action": "accept", "basis": "model"},
                    follow_redirects=True,
                )
                trips.append((time.perf_counter() - start) * 1000)
                if response.status_code != 200 or "/passages/" not in str(response.url):
                    raise SystemExit(f"decision round trip failed: {response.status_code} {response.url}")
                url = str(response.url).removeprefix(base)
            results["decision round trip (POST + next page)"] = trips

    baseline = statistics.median(results["baseline: GET /api/ping"])
    print(f"\n{'request':44} {'median ms':>10} {'p90 ms':>8} {'× baseline':>11}")
    failed = False
    for name, times in results.items():
        median = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        print(f"{name:44} {median:10.1f} {p90:8.1f} {median / baseline:11.1f}")
        if (name.startswith("queue: to review") or name.startswith("decision")) and median >= 100:
            failed = True
    print("\nrequirement (queue page and decision round trip < 100 ms at the median):", "FAIL" if failed else "ok")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
