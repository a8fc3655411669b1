"""The audit sample in the review screen: its own queue ("Steekproef"), coded blind to the model by
default, and its decisions are what the estimates use as human labels."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from pipeline.accounts import get_user
from pipeline.audit import audit_members, draw_audit
from pipeline.matrices import coded_passages
from pipeline.review import QueueFilter, ReviewError, ReviewIndex, labels_for_basis
from pipeline.store import ReviewRow, session

from .review_fixtures import DOC, MODEL, build_review_store, clone, csrf_of, logged_in


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_review_store(tmp_path_factory.mktemp("audit-template"))


@pytest.fixture()
def rs(template, tmp_path):
    return clone(template, tmp_path)


def test_the_steekproef_queue_is_blind_and_feeds_the_estimates(rs):
    draw_audit(rs.engine, per_document=4, seed=1)
    sample = audit_members(rs.engine)[DOC]
    assert len(sample) == 4
    anna = get_user(rs.engine, "anna")
    index = ReviewIndex(rs.engine, rs.codebook, MODEL)
    queue = index.matching(anna, QueueFilter(status="audit"))
    assert {i.passage_id for i in queue} == sample
    pid = sorted(sample)[0]
    view = index.passage_view(pid, anna)
    assert view.audit and not view.show_model and view.state.labels is None
    # Nothing of the model reaches the coder: not its labels, not its doubt, not a label filter.
    uncertain = index.matching(anna, QueueFilter(status="uncertain"))
    assert not {i.passage_id for i in uncertain} & sample
    label = next(iter(index.item(pid).keys))
    filtered = index.matching(anna, QueueFilter(status="todo", labels=(label,)))
    assert pid not in {i.passage_id for i in filtered}
    with pytest.raises(ReviewError) as refused:
        labels_for_basis(rs.engine, pid, "model", MODEL, anna)
    assert refused.value.status == 403

    client = logged_in(rs, "anna")
    page = client.get("/queue", params={"status": "audit"}).text
    assert "Steekproef" in page and f"/passages/{pid}?" in page
    row = next(r for r in page.split("<tr>")[1:] if f"/passages/{pid}?" in r)
    assert "<meter" not in row
    page = client.get(f"/passages/{pid}").text
    assert "Aselecte steekproef" in page and "model twijfelt" not in page
    taken = client.post(
        f"/passages/{pid}/decision",
        data={"csrf_token": csrf_of(page), "action": "accept", "basis": "model"},
        headers={"accept": "application/json"},
    )
    assert taken.status_code == 403
    with session(rs.engine) as s:
        assert list(s.scalars(select(ReviewRow))) == []
    choice = {"conditions": ["infrastructuur"], "polarity": "belemmerend", "stakeholders": ["aanbieders"]}
    client.post(f"/passages/{pid}/decision", data={"csrf_token": csrf_of(page), "action": "save", **choice})
    with session(rs.engine) as s:
        [row] = list(s.scalars(select(ReviewRow)))
    assert row.labels_shown is None  # coded without the model's proposal
    index.refresh(force=True)
    assert pid not in {i.passage_id for i in index.matching(anna, QueueFilter(status="audit"))}
    coded = {p.passage_id: p for p in coded_passages(rs.engine, MODEL)}
    assert coded[pid].audit and coded[pid].source == "review"
    assert sum(p.audit for p in coded.values()) == 4


def test_a_draw_with_the_model_shown_is_not_blind(rs):
    draw_audit(rs.engine, per_document=3, seed=2, blind=False)
    anna = get_user(rs.engine, "anna")
    index = ReviewIndex(rs.engine, rs.codebook, MODEL)
    pid = sorted(audit_members(rs.engine)[DOC])[0]
    view = index.passage_view(pid, anna)
    assert view.audit and view.show_model and view.state.labels is not None


def test_blind_passages_never_reveal_the_models_doubt_by_their_place_in_a_queue(rs):
    draw_audit(rs.engine, per_document=5, seed=4)
    sample = audit_members(rs.engine)[DOC]
    anna = get_user(rs.engine, "anna")
    index = ReviewIndex(rs.engine, rs.codebook, MODEL)
    for status in ("todo", "all", "uncertain"):
        listed = {i.passage_id for i in index.matching(anna, QueueFilter(status=status, order="uncertainty"))}
        assert not listed & sample, status  # coded only in the Steekproef queue while undecided
    audit = index.matching(anna, QueueFilter(status="audit", order="uncertainty"))
    assert [i.seq for i in audit] == sorted(i.seq for i in audit)  # reading order, not the model's doubt


def test_a_blind_double_coders_sample_comes_in_reading_order(rs):
    from pipeline.review import assign_double_coding

    chris = get_user(rs.engine, "chris")
    doubtful = sorted(rs.passages, key=lambda p: rs.confidence[p.id])[:6]
    assign_double_coding(rs.engine, [p.id for p in doubtful], ["anna", "bert"], chris, blind=True)
    index = ReviewIndex(rs.engine, rs.codebook, MODEL)
    queue = index.matching(get_user(rs.engine, "anna"), QueueFilter(status="double", order="uncertainty"))
    assert [i.seq for i in queue] == sorted(i.seq for i in queue)
    confidences = [rs.confidence[i.passage_id] for i in queue]
    assert confidences != sorted(confidences)  # the uncertainty order would have differed
