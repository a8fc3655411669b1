"""Queue strategies in the review screen: a seeded random order and a diversity-aware
uncertainty order over clusters of the cached e5 passage embeddings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.accounts import get_user
from pipeline.models import text_hash
from pipeline.review import ORDERS, QueueFilter, ReviewIndex
from pipeline.store import save_embeddings

from .review_fixtures import MODEL, build_review_store, clone, logged_in

ENCODER = "multilingual-e5-small-q4@test"


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_review_store(tmp_path_factory.mktemp("orders-template"))


@pytest.fixture()
def rs(template, tmp_path):
    return clone(template, tmp_path)


def ids(index: ReviewIndex, order: str) -> list[str]:
    anna = get_user(index.engine, "anna")
    return [i.passage_id for i in index.matching(anna, QueueFilter(status="all", order=order))]


def test_random_is_a_stable_permutation_unlike_the_uncertainty_order(rs):
    first = ids(ReviewIndex(rs.engine, rs.codebook, MODEL), "random")
    again = ids(ReviewIndex(rs.engine, rs.codebook, MODEL), "random")
    every = [p.id for p in rs.passages]
    assert sorted(first) == sorted(every) and len(first) == len(every)
    assert first == again
    assert first != ids(ReviewIndex(rs.engine, rs.codebook, MODEL), "uncertainty")
    assert first != every


def test_diverse_takes_the_clusters_in_turn_least_confident_first(rs):
    passages = rs.passages[:-1]  # the last one has no cached embedding
    k = round(math.sqrt((len(passages)) / 2))
    assert k >= 2
    cluster = {p.id: n % k for n, p in enumerate(passages)}
    rng = np.random.default_rng(0)
    vectors = {}
    for p in passages:
        v = np.zeros(8, np.float32)
        v[cluster[p.id]] = 1.0
        vectors[text_hash(p.text)] = (v + rng.normal(0, 0.01, 8)).astype(np.float32).tobytes()
    save_embeddings(rs.engine, ENCODER, vectors, 8)
    order = ids(ReviewIndex(rs.engine, rs.codebook, MODEL), "diverse")
    assert sorted(order) == sorted(p.id for p in rs.passages)
    assert len({cluster[p] for p in order[:k]}) == k  # the first k: k different kinds
    assert order[-1] == rs.passages[-1].id  # no embedding: at the end
    for c in range(k):
        within = [p for p in order if cluster.get(p) == c]
        assert [rs.confidence[p] for p in within] == sorted(rs.confidence[p] for p in within)
    assert order != ids(ReviewIndex(rs.engine, rs.codebook, MODEL), "uncertainty")


def test_orders_are_selectable_over_http(rs):
    client = logged_in(rs, "anna")
    assert {"uncertainty", "random", "diverse", "reading"} <= set(ORDERS)
    page = client.get("/queue?status=all&order=random")
    assert page.status_code == 200
    assert 'value="random" selected' in page.text and 'value="diverse"' in page.text
    index = ReviewIndex(rs.engine, rs.codebook, MODEL)
    rows = [f'class="snippet"><a href="/passages/{pid}?' for pid in ids(index, "random")]
    assert all(r in page.text for r in rows)  # every passage on the one page ...
    positions = [page.text.index(r) for r in rows]
    assert positions == sorted(positions)  # ... in the random order
    assert client.get("/queue?status=all&order=diverse").status_code == 200
