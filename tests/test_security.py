"""Attacks on the review screen that failed before issue 16: parallel password guesses, a forged
X-Forwarded-For, huge unauthenticated uploads, and a blind coder reaching for the model's labels."""

from __future__ import annotations

import itertools
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from pipeline.accounts import get_user
from pipeline.review import ReviewError, assign_double_coding, labels_for_basis
from pipeline.store import ReviewRow, session
from pipeline.web.app import LOGIN_FAILURES_ALLOWED, LoginLimiter, create_app, running

from .review_fixtures import MODEL, PASSWORD, build_review_store, clone, csrf_of, logged_in


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return build_review_store(tmp_path_factory.mktemp("security-template"))


@pytest.fixture()
def rs(template, tmp_path):
    return clone(template, tmp_path)


def login_form(base: str) -> tuple[dict, str]:
    """A fresh login form's cookie and token (each parallel guesser has its own, as a browser would)."""
    page = httpx.get(f"{base}/login")
    return dict(page.cookies), csrf_of(page.text)


def guess(base: str, name: str, password: str, headers: dict | None = None) -> int:
    cookies, token = login_form(base)
    response = httpx.post(
        f"{base}/login",
        data={"name": name, "password": password, "csrf_token": token, "next": "/queue"},
        cookies=cookies,
        headers=headers or {},
        follow_redirects=False,
        timeout=60,
    )
    return response.status_code


def test_parallel_guesses_never_check_more_passwords_than_the_limit(rs):
    """40 guesses at once for one name (the 40th right): at most the limit reach the password check."""
    app = create_app(rs.engine, rs.codebook, model_version=MODEL)
    with running(app) as base:
        passwords = [f"fout wachtwoord {i}" for i in range(39)] + [PASSWORD]
        with ThreadPoolExecutor(max_workers=40) as pool:
            codes = list(pool.map(lambda pw: guess(base, "anna", pw), passwords))
    checked = [c for c in codes if c in (401, 303)]
    assert len(checked) <= LOGIN_FAILURES_ALLOWED, codes
    assert codes.count(429) == 40 - len(checked)
    # The right password among the last thirty guesses never got through.
    assert 303 not in codes or codes.index(303) < LOGIN_FAILURES_ALLOWED


def test_guesses_spread_over_addresses_are_limited_per_name(rs):
    limiter = LoginLimiter(per_pair=3, per_name=5)
    slots = [limiter.begin("anna", f"10.0.0.{i}") for i in range(8)]
    assert sum(s is not None for s in slots) == 5
    assert limiter.begin("bert", "10.0.0.1") is not None  # another name is not affected


def test_forwarded_for_counts_only_from_the_trusted_proxy(rs):
    def attempts(trusted_proxy, peer, forwarded) -> list[int]:
        app = create_app(rs.engine, rs.codebook, model_version=MODEL, trusted_proxy=trusted_proxy)
        client = TestClient(app, client=(peer, 40000))
        codes = []
        for k in range(LOGIN_FAILURES_ALLOWED + 1):
            token = csrf_of(client.get("/login").text)
            headers = {"x-forwarded-for": forwarded(k)}
            codes.append(
                client.post(
                    "/login",
                    data={"name": "anna", "password": "fout wachtwoord!", "csrf_token": token},
                    headers=headers,
                    follow_redirects=False,
                ).status_code
            )
        return codes

    # Without --trusted-proxy a client cannot dodge the limit by inventing addresses.
    assert attempts(None, "192.0.2.7", lambda k: f"198.51.100.{k}")[-1] == 429
    # Behind the trusted proxy every client is counted on its own address...
    assert attempts("10.0.0.0/24", "10.0.0.2", lambda k: f"198.51.100.{k}")[-1] == 401
    # ... so one client locking "anna" out does not lock out her, on another address.
    app = create_app(rs.engine, rs.codebook, model_version=MODEL, trusted_proxy="10.0.0.2")
    client = TestClient(app, client=("10.0.0.2", 40000))
    for _ in range(LOGIN_FAILURES_ALLOWED):
        token = csrf_of(client.get("/login").text)
        client.post(
            "/login",
            data={"name": "anna", "password": "fout!!!!!!!", "csrf_token": token},
            headers={"x-forwarded-for": "203.0.113.9"},
        )
    token = csrf_of(client.get("/login").text)
    own = client.post(
        "/login",
        data={"name": "anna", "password": PASSWORD, "csrf_token": token},
        headers={"x-forwarded-for": "203.0.113.50"},
        follow_redirects=False,
    )
    assert own.status_code == 303
    with pytest.raises(ValueError):
        create_app(rs.engine, rs.codebook, trusted_proxy="geen adres")


def _raw_post(base: str, headers: str, body_chunks) -> tuple[bytes, int]:
    """Send a request by hand; returns the response's first bytes and how many body bytes went out."""
    host, port = base.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(headers.encode())
        sock.settimeout(0.0)
        response = b""
        for chunk in body_chunks:
            try:
                sock.sendall(chunk)
                sent += len(chunk)
            except (BlockingIOError, BrokenPipeError, ConnectionResetError):
                break
            try:
                response += sock.recv(4096)
            except BlockingIOError:
                continue
            except ConnectionResetError:
                break
            if response:
                break
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in response:
                data = sock.recv(4096)
                if not data:
                    break
                response += data
        except (TimeoutError, ConnectionResetError):
            pass
    return response, sent


def test_a_300_mb_upload_to_login_is_refused_before_it_is_read(rs):
    app = create_app(rs.engine, rs.codebook, model_version=MODEL)
    size = 300 * 2**20
    with running(app) as base:
        # Declared 300 MB: answered 413 after the headers, without waiting for the body.
        headers = (
            "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            f"Content-Length: {size}\r\n\r\n"
        )
        started = time.monotonic()
        response, sent = _raw_post(base, headers, (b"x" * 65536 for _ in range(size // 65536)))
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert sent < 64 * 2**20 and time.monotonic() - started < 30
        # Chunked, no length: cut off once the limit is passed.
        headers = (
            "POST /login HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
            "Transfer-Encoding: chunked\r\n\r\n"
        )
        piece = b"x" * 65536
        chunk = f"{len(piece):x}\r\n".encode() + piece + b"\r\n"
        part = b'--b\r\nContent-Disposition: form-data; name="f"; filename="big.bin"\r\n\r\n'
        first = f"{len(part):x}\r\n".encode() + part + b"\r\n"
        response, sent = _raw_post(base, headers, itertools.chain([first], (chunk for _ in range(size // 65536))))
        assert response.startswith(b"HTTP/1.1 413"), response[:200]
        assert sent < 64 * 2**20
        # Ordinary logins still work.
        assert guess(base, "anna", PASSWORD) == 303


def test_a_blind_coder_cannot_take_over_or_see_the_models_labels(rs):
    chris = get_user(rs.engine, "chris")
    doubtful = [p for p in rs.passages if rs.confidence[p.id] < 0.7]
    pid = doubtful[0].id
    assign_double_coding(rs.engine, [pid], ["anna", "bert"], chris, blind=True)
    anna = get_user(rs.engine, "anna")
    with pytest.raises(ReviewError) as refused:
        labels_for_basis(rs.engine, pid, "model", MODEL, anna)
    assert refused.value.status == 403
    client = logged_in(rs, "anna")
    page = client.get(f"/passages/{pid}").text
    posted = client.post(
        f"/passages/{pid}/decision",
        data={"csrf_token": csrf_of(page), "action": "accept", "basis": "model"},
        headers={"accept": "application/json"},
    )
    assert posted.status_code == 403
    with session(rs.engine) as s:
        assert list(s.scalars(select(ReviewRow))) == []
    # Her queue shows no confidence bar for the blind passage, and "model uncertain" does not list it.
    queue = client.get("/queue", params={"status": "double"}).text
    row = next(r for r in queue.split("<tr>")[1:] if f"/passages/{pid}?" in r)
    assert "<meter" not in row
    assert f'snippet"><a href="/passages/{pid}?' not in client.get("/queue", params={"status": "uncertain"}).text
    # Once she coded it differently from the model, nothing marks it "gecorrigeerd" for her.
    choice = {"conditions": ["interactie"], "interactie_type": "goed", "polarity": "bevorderend"}
    page = client.get(f"/passages/{pid}").text
    client.post(f"/passages/{pid}/decision", data={"csrf_token": csrf_of(page), "action": "save", **choice})
    done = client.get("/queue", params={"status": "double"}).text
    row = next(r for r in done.split("<tr>")[1:] if f"/passages/{pid}?" in r)
    assert "gecorrigeerd" not in row and "<meter" not in row
    assert f'snippet"><a href="/passages/{pid}?' not in client.get("/queue", params={"status": "corrected"}).text
    # Bert, who is no coder of this sample, sees it locked; an unassigned passage still shows the model.
    other = next(p for p in rs.passages if p.id != pid)
    assert "<meter" in next(r for r in client.get("/queue").text.split("<tr>")[1:] if f"/passages/{other.id}?" in r)


def test_a_stored_source_outside_the_corpus_folder_is_not_served(rs, tmp_path):
    import shutil

    from sqlalchemy import update

    from pipeline.store import DocumentRow, source_path

    from .review_fixtures import DOC

    client = logged_in(rs, "anna")
    assert client.get(f"/documents/{DOC}/pdf").status_code == 200
    with session(rs.engine) as s:
        row = s.get(DocumentRow, DOC)
        inside = source_path(row.source, row.corpus_root)
    elsewhere = tmp_path / "elders"
    elsewhere.mkdir()
    outside = shutil.copy(inside, elsewhere / "geheim.pdf")
    with session(rs.engine) as s:  # as a store written before ingest refused such paths
        s.execute(update(DocumentRow).where(DocumentRow.doc_id == DOC).values(source=str(outside)))
    fresh = logged_in(rs, "anna")
    refused = fresh.get(f"/documents/{DOC}/pdf")
    assert refused.status_code == 404 and not refused.content.startswith(b"%PDF")
