"""The review screen: accounts and sessions, decisions, queues, double coding, agreement, and the
HTTP layer's safety (login, CSRF, roles, escaping, concurrent writers) on a store built from a real PDF."""

from __future__ import annotations

import re
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, text, update
from typer.testing import CliRunner

from pipeline.accounts import (
    AccountError,
    UserRow,
    WebSessionRow,
    add_user,
    authenticate,
    create_session,
    get_user,
    now_utc,
    remove_user,
    session_for,
    set_password,
)
from pipeline.cli import app as cli
from pipeline.matrices import coded_passages
from pipeline.nlp import load_glossary
from pipeline.review import (
    AdjudicationRow,
    DoubleCodingRow,
    QueueFilter,
    ReviewError,
    ReviewIndex,
    agreement_report,
    assign_double_coding,
    draw_sample,
    normalise_labels,
    passage_confidence,
    record_decision,
    reviewed_labels,
)
from pipeline.store import ReviewRow, add_review, open_store, session
from pipeline.web.app import check_bind, create_app, running

from .review_fixtures import ATTRIBUTE_TRICK, DOC, MODEL, PASSWORD, TRICKS, build_review_store, clone


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_review_store(tmp_path_factory.mktemp("review-template"))


@pytest.fixture()
def rs(template, tmp_path):
    return clone(template, tmp_path)


def user(rs, name):
    return get_user(rs.engine, name)


def stored_reviews(engine) -> list[ReviewRow]:
    with session(engine) as s:
        return list(s.scalars(select(ReviewRow).order_by(ReviewRow.id)))


def coding(rs, conditions, polarity, stakeholders, itype=None):
    return normalise_labels(
        rs.codebook,
        {"conditions": conditions, "interactie_type": itype, "polarity": polarity, "stakeholders": stakeholders},
    )


# --------------------------------------------------------------------------- accounts and sessions


def test_passwords_are_argon2id_hashes_and_accounts_are_checked(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 'a.sqlite'}")
    add_user(engine, "anna", PASSWORD, "analyst")
    with session(engine) as s:
        stored = s.get(UserRow, "anna").password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert authenticate(engine, "anna", PASSWORD).role == "analyst"
    assert authenticate(engine, "anna", PASSWORD + "x") is None
    assert authenticate(engine, "niemand", PASSWORD) is None
    for bad in [("bert", "kort", "analyst"), ("bert", PASSWORD, "koning"), ("<b>", PASSWORD, "analyst")]:
        with pytest.raises(AccountError):
            add_user(engine, *bad)
    with pytest.raises(AccountError):
        add_user(engine, "anna", PASSWORD, "admin")


def test_sessions_expire_when_idle_and_absolutely_and_end_on_password_change(tmp_path):
    engine = open_store(f"sqlite:///{tmp_path / 's.sqlite'}")
    anna = add_user(engine, "anna", PASSWORD)
    idle, absolute = timedelta(hours=1), timedelta(hours=3)
    t0 = now_utc()
    token, ws = create_session(engine, anna, now=t0, idle=idle, absolute=absolute)
    assert session_for(engine, token, now=t0 + timedelta(minutes=59), idle=idle).user == anna
    # Used at 0:59, so the idle expiry slid to 1:59.
    assert session_for(engine, token, now=t0 + timedelta(minutes=110), idle=idle) is not None
    assert session_for(engine, token, now=t0 + timedelta(minutes=169), idle=idle) is not None
    # Never past the absolute expiry, however active.
    assert session_for(engine, token, now=t0 + timedelta(minutes=181), idle=idle) is None
    assert session_for(engine, token, now=t0, idle=idle) is None  # and an expired session is gone for good

    token, _ = create_session(engine, anna, now=t0, idle=idle, absolute=absolute)
    assert session_for(engine, token, now=t0 + timedelta(minutes=61), idle=idle) is None  # idle too long
    with session(engine) as s:
        assert all(row.token_hash != token for row in s.scalars(select(WebSessionRow)))  # only hashes stored

    token, _ = create_session(engine, anna)
    set_password(engine, "anna", "een ander wachtwoord")
    assert session_for(engine, token) is None
    token, _ = create_session(engine, anna)
    remove_user(engine, "anna")
    assert session_for(engine, token) is None


# --------------------------------------------------------------------------- decisions and queues


def test_decisions_are_appended_and_the_latest_counts(rs):
    p = rs.passages[0].id
    shown = rs.labels[p]
    first = record_decision(rs.engine, rs.codebook, user(rs, "anna"), p, shown, labels_shown=shown, model_version=MODEL)
    corrected = coding(rs, ["competenties", "infrastructuur"], "belemmerend", ["aanbieders"])
    record_decision(
        rs.engine,
        rs.codebook,
        user(rs, "bert"),
        p,
        corrected,
        labels_shown=shown,
        model_version=MODEL,
        memo=" twijfel ",
    )
    rows = stored_reviews(rs.engine)
    assert [(r.reviewer, r.memo) for r in rows] == [("anna", None), ("bert", "twijfel")]
    assert rows[0].labels == shown and rows[0].labels_shown == shown and rows[0].model_version == MODEL
    assert rows[0].id == first.id
    # Normalised: codebook order, primary condition the first chosen one.
    assert rows[1].labels["conditions"] == ["infrastructuur", "competenties"]
    assert rows[1].labels["primary_condition"] == "infrastructuur"
    assert reviewed_labels(rs.engine) == {p: rows[1].labels}

    with pytest.raises(ReviewError) as refused:
        record_decision(rs.engine, rs.codebook, user(rs, "anna"), p, coding(rs, ["interactie"], "bevorderend", []))
    assert refused.value.status == 422 and any("interactie_type" in x for x in refused.value.problems)
    with pytest.raises(ReviewError) as unknown:
        record_decision(rs.engine, rs.codebook, user(rs, "anna"), "nope", shown)
    assert unknown.value.status == 404
    assert len(stored_reviews(rs.engine)) == 2


def test_queue_index_sees_a_decision_that_committed_out_of_id_order(rs):
    """PostgreSQL hands out ids before commit: a lower id can land after a higher one is read."""
    from pipeline.store import ReviewRow, session

    index = ReviewIndex(rs.engine, rs.codebook, MODEL)
    first, second = rs.passages[0].id, rs.passages[1].id
    with session(rs.engine) as s:
        s.add(
            ReviewRow(id=50, passage_id=first, reviewer="anna", labels=rs.labels[first], created_at=datetime.now(UTC))
        )
    index.refresh()
    assert set(index.decisions) == {first}
    with session(rs.engine) as s:  # the late commit, with a lower id than one already seen
        s.add(
            ReviewRow(id=7, passage_id=second, reviewer="bert", labels=rs.labels[second], created_at=datetime.now(UTC))
        )
    index.refresh()
    assert set(index.decisions) == {first, second}
    assert [d.id for d in index.decisions[first]] == [50]


def test_confidence_is_the_weakest_model_decision():
    labels = {"conditions": ["a"], "polarity": "x"}
    scores = {"conditions": {"a": 0.9, "b": 0.3}, "polarity": {"x": 0.6, "y": 0.2, "z": 0.2}}
    assert passage_confidence(labels, scores) == 0.6
    assert passage_confidence({"conditions": []}, {"conditions": {"a": 0.45}}) == 0.55
    assert passage_confidence(labels, None) is None


def test_queue_orders_filters_counts_and_neighbours(rs):
    index = ReviewIndex(rs.engine, rs.codebook, MODEL)
    anna = user(rs, "anna")
    ids = [p.id for p in rs.passages]
    by_confidence = sorted(ids, key=lambda pid: rs.confidence[pid])
    page = index.queue(anna, QueueFilter(order="uncertainty"))
    assert [item.passage_id for item, _ in page.rows] == by_confidence
    assert [item.passage_id for item, _ in index.queue(anna, QueueFilter(order="reading")).rows] == ids
    assert page.progress[0]["todo"] == 8 and page.progress[0]["done"] == 0

    condition = rs.labels[ids[0]]["conditions"][0]
    filtered = index.queue(anna, QueueFilter(status="all", order="reading", labels=(("conditions", condition),)))
    assert [i.passage_id for i, _ in filtered.rows] == [pid for pid in ids if condition in rs.labels[pid]["conditions"]]
    found = index.queue(anna, QueueFilter(status="all", q="hap IN DE avond"))
    assert [i.text for i, _ in found.rows] == [rs.passages[1].text]
    uncertain = index.queue(anna, QueueFilter(status="uncertain"))
    assert {i.passage_id for i, _ in uncertain.rows} == {pid for pid in ids if rs.confidence[pid] < 0.7}

    # A decision written elsewhere (another process, a REFI-QDA import) shows up on the next refresh.
    head = by_confidence[0]
    add_review(rs.engine, head, "bert", rs.labels[head], rs.labels[head], MODEL)
    index.refresh()
    todo = index.queue(anna, QueueFilter())
    assert head not in [i.passage_id for i, _ in todo.rows]
    assert todo.progress[0]["todo"] == 7 and todo.progress[0]["done"] == 1
    # The decided passage left the queue; its neighbours are still found from its place.
    around = index.neighbours(anna, QueueFilter(), head)
    assert around["prev"] is None and around["next"] == by_confidence[1] and around["total"] == 7
    around = index.neighbours(anna, QueueFilter(order="reading", status="all"), ids[3])
    assert (around["prev"], around["next"], around["position"], around["total"]) == (ids[2], ids[4], 4, 8)
    done = index.queue(anna, QueueFilter(status="done"))
    assert [i.passage_id for i, _ in done.rows] == [head]
    assert index.queue(anna, QueueFilter(status="corrected")).total == 0


# --------------------------------------------------------------------------- double coding and agreement


def test_double_coding_keeps_coders_independent_and_agreement_is_right(rs):
    """Hand-checked figures. Polarity on four passages, anna vs bert: bel/bel, bel/bev, bev/bev, neu/neu.
    Cohen's kappa: p_o = 3/4, p_e = (2·1 + 1·2 + 1·1)/16 = 5/16, kappa = (12/16 − 5/16)/(11/16) = 7/11 = 0.636.
    Krippendorff's alpha (nominal): 8 values (bel 3, bev 3, neu 2), one disagreeing pair:
    D_o = 2/8, D_e = (2·3·3 + 2·3·2 + 2·3·2)/(8·7) = 42/56, alpha = 1 − (1/4)/(3/4) = 0.667.
    anna vs the model (bel, bev, bel, bev): p_o = 1/4, p_e = (2·2 + 1·2 + 0)/16 = 6/16, kappa = −0.2."""
    engine, codebook = rs.engine, rs.codebook
    anna, bert, chris = user(rs, "anna"), user(rs, "bert"), user(rs, "chris")
    dora = add_user(engine, "dora", PASSWORD, "analyst")
    sample = [p.id for p in rs.passages[:4]]
    with pytest.raises(ReviewError):
        assign_double_coding(engine, sample, ["anna", "bert"], anna)  # analysts do not assign
    assert assign_double_coding(engine, sample, ["anna", "bert"], chris) == 4
    assert assign_double_coding(engine, sample, ["anna", "bert"], chris) == 0  # already assigned

    index = ReviewIndex(engine, codebook, MODEL)
    polarity = {
        "anna": ["belemmerend", "belemmerend", "bevorderend", "neutraal"],
        "bert": ["belemmerend", "bevorderend", "bevorderend", "neutraal"],
    }
    for k, pid in enumerate(sample):
        for coder in (anna, bert):
            labels = coding(rs, ["infrastructuur"], polarity[coder.name][k], ["aanbieders"])
            record_decision(engine, codebook, coder, pid, labels, model_version=MODEL, memo=f"memo van {coder.name}")
        if k == 0:
            index.refresh()
            mine = index.passage_view(pid, anna)
            assert [d.reviewer for d in mine.history] == ["anna"]  # never bert's decision
            assert mine.state.mode == "double" and mine.state.labels["polarity"] == "belemmerend"
            assert index.passage_view(pid, dora).state.status == "done"
    with pytest.raises(ReviewError) as locked:
        record_decision(engine, codebook, dora, sample[0], rs.labels[sample[0]])
    assert locked.value.status == 403

    report = agreement_report(engine, codebook, MODEL)
    pair = report["pairs"][0]
    assert pair["coders"] == ["anna", "bert"] and pair["n"] == 4
    assert pair["fields"]["polarity"]["kappa"] == 0.636
    assert pair["fields"]["polarity"]["percent_agreement"] == 0.75
    assert pair["fields"]["conditions"]["kappa_per_label"]["infrastructuur"] == 1.0
    assert report["alpha_all"]["polarity"]["alpha"] == 0.667
    assert report["alpha_all"]["conditions"]["alpha"] == 1.0
    anna_vs_model = next(m for m in report["vs_model"] if m["coder"] == "anna")
    assert anna_vs_model["fields"]["polarity"]["kappa"] == -0.2
    assert [d["passage_id"] for d in report["disagreements"]] == [sample[1]]
    assert report["disagreements"][0]["fields"] == ["polarity"]

    # The screen: anna never sees bert's decision; the admin sees both and the figures.
    anna_client = logged_in(rs, "anna")
    anna_screen = anna_client.get(f"/passages/{sample[1]}").text
    assert "memo van anna" in anna_screen and "memo van bert" not in anna_screen and "Dubbele codering" in anna_screen
    bert_review = next(r for r in stored_reviews(engine) if r.reviewer == "bert" and r.passage_id == sample[1])
    copied = anna_client.post(
        f"/passages/{sample[1]}/decision",
        data={"csrf_token": csrf_of(anna_screen), "action": "accept", "basis": str(bert_review.id)},
        headers={"accept": "application/json"},
    )
    assert copied.status_code == 403 and "eigen beslissing" in copied.json()["error"]  # no copying by id
    dora_screen = logged_in(rs, "dora").get(f"/passages/{sample[1]}").text
    assert "alleen zij" in dora_screen and '<fieldset class="all" disabled>' in dora_screen  # read-only
    admin_screen = logged_in(rs, "chris")
    agreement_page = admin_screen.get("/agreement").text
    assert "0.636" in agreement_page and "0.667" in agreement_page and "-0.200" in agreement_page
    assert rs.passages[1].text[:40] in agreement_page  # the disagreement, listed for adjudication
    adjudication_page = admin_screen.get(f"/passages/{sample[1]}?status=adjudicate").text
    assert "memo van anna" in adjudication_page and "memo van bert" in adjudication_page

    # Until adjudicated the first coder's decision counts; then the adjudication.
    assert reviewed_labels(engine)[sample[1]]["polarity"] == "belemmerend"
    index.refresh()
    assert index.state(index.item(sample[1]), chris).status == "adjudicate"
    adjudicated = coding(rs, ["infrastructuur"], "neutraal", ["aanbieders"])
    record_decision(engine, codebook, chris, sample[1], adjudicated, model_version=MODEL)
    assert reviewed_labels(engine)[sample[1]]["polarity"] == "neutraal"
    with session(engine) as s:
        assert [a.adjudicator for a in s.scalars(select(AdjudicationRow))] == ["chris"]
    coded = {p.passage_id: p for p in coded_passages(engine, MODEL)}
    assert coded[sample[1]].polarity == "neutraal" and coded[sample[1]].source == "review"
    index.refresh()
    assert index.state(index.item(sample[1]), chris).status == "done"

    # The draw only offers passages nobody decided on and that are not in a sample yet.
    free = draw_sample(engine, 100, seed=1)
    assert set(free) == {p.id for p in rs.passages[4:]}
    assert draw_sample(engine, 2, seed=1) == draw_sample(engine, 2, seed=1)


def test_blind_double_coding_hides_the_model(rs):
    chris, anna = user(rs, "chris"), user(rs, "anna")
    pid = rs.passages[5].id
    assign_double_coding(rs.engine, [pid], ["anna", "bert"], chris, blind=True)
    index = ReviewIndex(rs.engine, rs.codebook, MODEL)
    view = index.passage_view(pid, anna)
    assert view.state.labels is None and not view.show_model
    client = logged_in(rs, "anna")
    page = client.get(f"/passages/{pid}").text
    assert "Blinde dubbele codering" in page and "model twijfelt" not in page
    assert 'id="accept" class="primary" disabled' in page
    choice = {"conditions": ["interactie"], "interactie_type": "goed", "polarity": "bevorderend"}
    client.post(f"/passages/{pid}/decision", data={"csrf_token": csrf_of(page), "action": "save", **choice})
    [row] = stored_reviews(rs.engine)
    assert row.labels["interactie_type"] == "goed" and row.labels_shown is None  # the model was not shown


# --------------------------------------------------------------------------- HTTP


def make_client(rs) -> TestClient:
    return TestClient(create_app(rs.engine, rs.codebook, model_version=MODEL, glossary=load_glossary()))


def csrf_of(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def log_in(client, name: str, password: str = PASSWORD):
    token = csrf_of(client.get("/login").text)
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf_token": token, "next": "/queue"},
        follow_redirects=False,
    )


def logged_in(rs, name: str) -> TestClient:
    client = make_client(rs)
    assert log_in(client, name).status_code == 303
    return client


def test_without_a_session_there_is_only_the_login_page_or_401(rs):
    client = make_client(rs)
    pid = rs.passages[0].id
    for path in ["/queue", f"/passages/{pid}", f"/documents/{DOC}/pdf", "/agreement", "/admin", "/api/ping", "/"]:
        plain = client.get(path, follow_redirects=False)
        assert plain.status_code == 401, path
        browser = client.get(path, headers={"accept": "text/html"}, follow_redirects=False)
        assert browser.status_code == 303 and browser.headers["location"].startswith("/login?next="), path
        api = client.get(path, headers={"accept": "application/json"}, follow_redirects=False)
        assert api.status_code == 401 and api.json() == {"error": "niet ingelogd"}, path
        for response in (plain, browser, api):
            assert not any(p.text[:30] in response.text for p in rs.passages)
    posted = client.post(f"/passages/{pid}/decision", data={"action": "accept", "basis": "model"})
    assert posted.status_code == 401 and stored_reviews(rs.engine) == []
    fetched = client.post(
        f"/passages/{pid}/decision",
        data={"action": "accept", "basis": "model"},
        headers={"accept": "application/json", "x-csrf-token": "x"},
    )
    assert fetched.status_code == 401 and fetched.json() == {"error": "niet ingelogd"}
    assigned = client.post("/admin/double-coding", data={"n": "3", "coder1": "anna", "coder2": "bert"})
    assert assigned.status_code == 401
    assert stored_reviews(rs.engine) == []
    login = client.get("/login?next=/queue")
    assert login.status_code == 200 and "Inloggen" in login.text
    assert not any(p.text[:30] in login.text for p in rs.passages)

    wrong = log_in(client, "anna", "fout wachtwoord!")
    assert wrong.status_code == 401 and "mgz_session" not in wrong.headers.get("set-cookie", "")
    no_token = client.post("/login", data={"name": "anna", "password": PASSWORD}, follow_redirects=False)
    assert no_token.status_code == 403
    ok = log_in(client, "anna")
    cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    ping = client.get("/api/ping").json()
    assert (ping["user"], ping["role"]) == ("anna", "analyst") and ping["csrf_token"]
    assert "access-control-allow-origin" not in client.get("/api/ping").headers
    # An external "next" is not followed after login.
    fresh = make_client(rs)
    token = csrf_of(fresh.get("/login").text)
    away = fresh.post(
        "/login",
        data={"name": "anna", "password": PASSWORD, "csrf_token": token, "next": "//evil.example/"},
        follow_redirects=False,
    )
    assert away.headers["location"] == "/queue"


def test_repeated_wrong_passwords_are_slowed_down(rs):
    client = make_client(rs)
    for _ in range(10):
        assert log_in(client, "anna", "fout wachtwoord!").status_code == 401
    assert log_in(client, "anna", PASSWORD).status_code == 429  # even the right one, for a while
    assert log_in(client, "bert").status_code == 303  # other accounts are not affected


def test_expired_session_leads_back_to_login(rs):
    client = logged_in(rs, "anna")
    assert client.get("/queue").status_code == 200
    with rs.engine.begin() as c:
        c.execute(update(WebSessionRow).values(expires_at=now_utc() - timedelta(seconds=1)))
    response = client.get("/queue", headers={"accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def test_state_changes_need_the_csrf_token(rs):
    client = logged_in(rs, "anna")
    pid = rs.passages[0].id
    page = client.get(f"/passages/{pid}")
    token = csrf_of(page.text)
    for data in ({"action": "accept", "basis": "model"}, {"action": "accept", "basis": "model", "csrf_token": "x"}):
        refused = client.post(f"/passages/{pid}/decision", data=data, follow_redirects=False)
        assert refused.status_code == 403
    assert stored_reviews(rs.engine) == []
    assert client.post("/logout", follow_redirects=False).status_code == 403
    assert client.get("/api/ping").status_code == 200  # still logged in
    accepted = client.post(
        f"/passages/{pid}/decision",
        data={"action": "accept", "basis": "model", "csrf_token": token},
        follow_redirects=False,
    )
    assert accepted.status_code == 303
    assert [r.labels for r in stored_reviews(rs.engine)] == [rs.labels[pid]]
    # The header works too (scripts), and another session's token does not.
    other = logged_in(rs, "bert")
    other_token = csrf_of(other.get("/queue").text)
    assert (
        client.post(
            f"/passages/{pid}/decision",
            data={"action": "accept", "basis": "model"},
            headers={"x-csrf-token": other_token},
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/passages/{pid}/decision",
            data={"action": "accept", "basis": "model"},
            headers={"x-csrf-token": token, "accept": "application/json"},
        ).status_code
        == 200
    )
    assert client.post("/logout", data={"csrf_token": token}, follow_redirects=False).status_code == 303
    assert client.get("/api/ping").status_code == 401


def test_analysts_cannot_reach_admin_pages(rs):
    client = logged_in(rs, "anna")
    token = csrf_of(client.get("/queue").text)
    assert client.get("/admin").status_code == 403
    assert client.get("/agreement").status_code == 403
    assigned = client.post(
        "/admin/double-coding", data={"csrf_token": token, "n": "3", "coder1": "anna", "coder2": "bert"}
    )
    assert assigned.status_code == 403
    with session(rs.engine) as s:
        assert list(s.scalars(select(DoubleCodingRow))) == []
    admin = logged_in(rs, "chris")
    token = csrf_of(admin.get("/admin").text)
    done = admin.post(
        "/admin/double-coding",
        data={"csrf_token": token, "n": "3", "coder1": "anna", "coder2": "bert", "seed": "4"},
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin?toegewezen=3"
    assert admin.get("/agreement").status_code == 200


def test_passage_text_from_the_pdf_is_shown_as_text(rs):
    client = logged_in(rs, "anna")
    script = next(p for p in rs.passages if p.text == TRICKS)
    attribute = next(p for p in rs.passages if p.text == ATTRIBUTE_TRICK)
    page = client.get(f"/passages/{script.id}")
    html = page.text
    assert "<script>alert" not in html and "&lt;script&gt;alert(&#39;xss&#39;)&lt;/script&gt;" in html
    assert "&amp;lt;b&amp;gt;vet&amp;lt;/b&amp;gt;" in html and "&amp;amp;amp;" in html  # entities stay text
    assert "Regio A &lt;i&gt;verslag&lt;/i&gt; &amp; co" in html  # the manifest title too
    assert "default-src 'self'; script-src 'self'" in page.headers["content-security-policy"]
    queue = client.get("/queue?status=all&order=reading").text
    assert "<script>alert" not in queue and "<img src=x" not in queue and "&lt;script&gt;" in queue
    passage = client.get(f"/passages/{attribute.id}").text
    assert "<img src=x" not in passage and "&#34;&gt;&lt;img src=x onerror=alert(1)&gt;" in passage
    assert "{{ 7*7 }}" in passage
    # Glossary hover: the abbreviation is wrapped, its expansion escaped into the title attribute.
    first = client.get(f"/passages/{rs.passages[0].id}").text
    assert '<abbr title="arts verstandelijk gehandicapten">AVG</abbr>' in first
    assert '<span class="kind">kop</span>' in first and "· alinea</p>" in first  # Dutch names for kinds


def test_correction_round_trip_and_invalid_input_keeps_the_analysts_choice(rs):
    client = logged_in(rs, "anna")
    pid = rs.passages[0].id
    token = csrf_of(client.get(f"/passages/{pid}").text)
    bad = client.post(
        f"/passages/{pid}/decision?status=todo&order=reading",
        data={
            "csrf_token": token,
            "action": "save",
            "basis": "model",
            "conditions": ["interactie", "competenties"],
            "polarity": "bevorderend",
            "memo": "mijn <memo>",
        },
    )
    assert bad.status_code == 422 and "Niet opgeslagen" in bad.text and "interactie_type" in bad.text
    assert 'value="competenties" checked' in bad.text and "mijn &lt;memo&gt;</textarea>" in bad.text
    assert stored_reviews(rs.engine) == []
    good = client.post(
        f"/passages/{pid}/decision?status=todo&order=reading",
        data={
            "csrf_token": token,
            "action": "save",
            "basis": "model",
            "conditions": ["interactie", "competenties"],
            "interactie_type": "goed",
            "polarity": "bevorderend",
            "stakeholders": ["gebruikers"],
            "primary_condition": "competenties",
            "memo": "mijn <memo>",
        },
        follow_redirects=False,
    )
    assert good.status_code == 303
    assert good.headers["location"].startswith(f"/passages/{rs.passages[1].id}?status=todo&order=reading")
    [row] = stored_reviews(rs.engine)
    assert row.labels == {
        "conditions": ["interactie", "competenties"],
        "interactie_type": "goed",
        "polarity": "bevorderend",
        "stakeholders": ["gebruikers"],
        "primary_condition": "competenties",
    }
    assert row.labels_shown == rs.labels[pid] and row.memo == "mijn <memo>" and row.reviewer == "anna"
    history = client.get(f"/passages/{pid}").text
    assert "mijn &lt;memo&gt;" in history and "codeerde" in history
    # Another analyst accepts what the page now starts from (anna's decision); the record keeps
    # the model's labels that were shown beside it.
    bert = logged_in(rs, "bert")
    page = bert.get(f"/passages/{pid}").text
    assert f'name="basis" value="{row.id}"' in page
    bert.post(f"/passages/{pid}/decision", data={"csrf_token": csrf_of(page), "action": "accept", "basis": str(row.id)})
    second = stored_reviews(rs.engine)[-1]
    assert second.reviewer == "bert" and second.labels == row.labels and second.labels_shown == rs.labels[pid]


def test_the_pdf_page_link_serves_the_source_under_login(rs):
    client = logged_in(rs, "anna")
    page = client.get(f"/passages/{rs.passages[6].id}").text
    assert f'href="/documents/{DOC}/pdf#page=2"' in page
    pdf = client.get(f"/documents/{DOC}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.content.startswith(b"%PDF")
    assert client.get("/documents/onbekend/pdf").status_code == 404


def fire_concurrent_decisions(rs) -> None:
    """Four analysts on two server processes' worth of engines, 64 decisions fired at once: all stored."""
    names = ["anna", "bert", "eva", "finn"]
    for name in names[2:]:
        add_user(rs.engine, name, PASSWORD)
    apps = [create_app(open_store(rs.url), rs.codebook, model_version=MODEL) for _ in range(2)]
    with running(apps[0]) as first, running(apps[1]) as second:
        clients = {}
        for k, name in enumerate(names):
            client = httpx.Client(base_url=first if k % 2 == 0 else second, timeout=60)
            token = csrf_of(client.get("/login").text)
            client.post("/login", data={"name": name, "password": PASSWORD, "csrf_token": token})
            clients[name] = (client, csrf_of(client.get("/queue").text))
        jobs = [(name, p.id, rnd) for rnd in range(2) for p in rs.passages for name in names]

        def decide(job):
            name, pid, rnd = job
            client, token = clients[name]
            response = client.post(
                f"/passages/{pid}/decision",
                data={"csrf_token": token, "action": "accept", "basis": "model", "memo": f"{name}-{pid}-{rnd}"},
                headers={"accept": "application/json"},
            )
            return response.status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            statuses = list(pool.map(decide, jobs))
        for client, _ in clients.values():
            client.close()
    assert statuses == [200] * len(jobs)
    rows = stored_reviews(rs.engine)
    assert sorted(r.memo for r in rows) == sorted(f"{n}-{pid}-{rnd}" for n, pid, rnd in jobs)
    assert all(r.labels == rs.labels[r.passage_id] for r in rows)


def test_concurrent_decisions_from_two_servers_are_all_stored(rs):
    fire_concurrent_decisions(rs)
    with rs.engine.connect() as c:
        assert c.execute(text("PRAGMA journal_mode")).scalar() == "wal"


# --------------------------------------------------------------------------- CLI


def test_binding_beyond_loopback_needs_a_flag():
    assert check_bind("127.0.0.1", False) is None and check_bind("::1", False) is None
    assert check_bind("localhost", False) is None
    with pytest.raises(ReviewError):
        check_bind("0.0.0.0", False)
    assert "0.0.0.0" in check_bind("0.0.0.0", True)
    refused = CliRunner().invoke(cli, ["review", "--host", "0.0.0.0"])
    assert refused.exit_code == 2 and refused.output.startswith("error: 0.0.0.0 is not a loopback address")


def test_users_command_manages_accounts(tmp_path):
    url = f"sqlite:///{tmp_path / 'u.sqlite'}"
    runner = CliRunner()
    added = runner.invoke(
        cli, ["users", "add", "eva", "--role", "admin", "--password-stdin", "--store", url], input=PASSWORD + "\n"
    )
    assert added.exit_code == 0, added.output
    engine = open_store(url)
    assert authenticate(engine, "eva", PASSWORD).role == "admin"
    again = runner.invoke(cli, ["users", "add", "eva", "--password-stdin", "--store", url], input=PASSWORD + "\n")
    assert again.exit_code == 2 and "error: user 'eva' already exists" in again.output
    short = runner.invoke(cli, ["users", "add", "finn", "--password-stdin", "--store", url], input="kort\n")
    assert short.exit_code == 2 and "at least" in short.output
    changed = runner.invoke(
        cli, ["users", "passwd", "eva", "--password-stdin", "--store", url], input="nieuw wachtwoord 1\n"
    )
    assert changed.exit_code == 0 and authenticate(engine, "eva", "nieuw wachtwoord 1")
    assert runner.invoke(cli, ["users", "list", "--store", url]).output == "eva\tadmin\n"
    assert runner.invoke(cli, ["users", "remove", "eva", "--store", url]).exit_code == 0
    assert runner.invoke(cli, ["users", "remove", "eva", "--store", url]).exit_code == 2
