"""The analyst review screen: a small server-rendered FastAPI app over the project store.

Every page except the login page needs a session; an unauthenticated browser
request is sent to the login page, any other request gets 401, never data.
Every state-changing request carries the session's CSRF token. Passage text
comes from untrusted PDFs and is only ever put on a page through Jinja2's
autoescaping (the glossary hover builds its markup from escaped pieces), and a
strict Content-Security-Policy (no inline script or style) backs that up.
"""

from __future__ import annotations

import ipaddress
import re
import secrets
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from importlib import resources
from pathlib import Path
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from jinja2 import Environment, PackageLoader, select_autoescape
from markupsafe import Markup, escape
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from pipeline.accounts import (
    DEFAULT_ABSOLUTE,
    DEFAULT_IDLE,
    WebSession,
    authenticate,
    create_session,
    csrf_matches,
    end_session,
    list_users,
    session_for,
)
from pipeline.codebook import Codebook
from pipeline.nlp import Glossary
from pipeline.review import (
    ORDERS,
    STATUSES,
    QueueFilter,
    ReviewError,
    ReviewIndex,
    agreement_report,
    assign_double_coding,
    double_coding_overview,
    draw_sample,
    empty_coding,
    labels_for_basis,
    model_labels_shown,
    normalise_labels,
    record_decision,
    same_labels,
)
from pipeline.store import passage_origin, source_path
from pipeline.transcripts import format_timestamp

SESSION_COOKIE = "mgz_session"
LOGIN_COOKIE = "mgz_login_csrf"
LOGIN_FAILURES_ALLOWED = 10  # per user name and client address within LOGIN_WINDOW; then 429 until it passes
LOGIN_FAILURES_PER_NAME = 50  # per user name from all addresses together (guessing spread over many addresses)
LOGIN_WINDOW = 15 * 60
MAX_BODY_BYTES = 2**20  # the largest request body accepted (a decision form is a few KB); larger ones get 413
# Keys for label toggles, one keyboard row per codebook field with its own labels, in
# codebook order; a field that takes its labels from another (primary_condition) uses
# Shift with that field's keys. Enter, Escape, arrows, m and ? are kept for actions.
KEY_ROWS = ("1234567890", "qwertyuiop", "asdfghjkl", "zxcvbn")
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
# Passage kinds as the screen names them (the store keeps the English kind ids).
KIND_NAMES = {"paragraph": "alinea", "heading": "kop", "table": "tabel", "footnote": "voetnoot", "turn": "spreekbeurt"}
SAFE_ID = re.compile(r"[^A-Za-z0-9_-]")
COLOUR = re.compile(r"^#[0-9A-Fa-f]{3,8}$")


class NotAuthenticated(Exception):
    pass


class LoginLimiter:
    """Counts login attempts per (name, address) and per name, *before* the password is checked.

    Each attempt takes a slot under a lock before the (slow) argon2 check and keeps
    it unless the password was right, so parallel guesses cannot all pass the check
    while the count still reads low: at most ``per_pair`` passwords for one name from
    one address, and ``per_name`` from all addresses, are ever checked per window.
    The lock is per process: several server processes each keep their own count.
    """

    def __init__(
        self,
        per_pair: int = LOGIN_FAILURES_ALLOWED,
        per_name: int = LOGIN_FAILURES_PER_NAME,
        window: float = LOGIN_WINDOW,
    ) -> None:
        self.per_pair, self.per_name, self.window = per_pair, per_name, window
        self._attempts: dict[tuple, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def _recent(self, key: tuple, now: float) -> deque:
        recent = self._attempts[key]
        while recent and now - recent[0] > self.window:
            recent.popleft()
        return recent

    def begin(self, name: str, address: str) -> float | None:
        """Take a slot for one attempt; None when the limit is reached (refuse without checking)."""
        now = time.monotonic()
        pair, whole = ("pair", name, address), ("name", name)
        with self._lock:
            if len(self._recent(pair, now)) >= self.per_pair or len(self._recent(whole, now)) >= self.per_name:
                return None
            self._attempts[pair].append(now)
            self._attempts[whole].append(now)
        return now

    def succeeded(self, name: str, address: str, stamp: float) -> None:
        """A right password: this name and address start again; the name's other failures stay counted."""
        with self._lock:
            self._attempts.pop(("pair", name, address), None)
            whole = self._attempts.get(("name", name))
            if whole is not None and stamp in whole:
                whole.remove(stamp)


def client_address(request: Request, trusted_proxy: str | None) -> str:
    """The client's address: the connection's, or, when the connection comes from ``trusted_proxy``
    (an address or network), the last address that proxy put in X-Forwarded-For. Without
    ``trusted_proxy`` the header is ignored: anyone can write it."""
    peer = request.client.host if request.client else ""
    if not trusted_proxy:
        return peer
    try:
        trusted = ipaddress.ip_address(peer) in ipaddress.ip_network(trusted_proxy, strict=False)
    except ValueError:  # the peer is no IP address (a Unix socket)
        trusted = False
    if not trusted:
        return peer
    forwarded = [part.strip() for part in request.headers.get("x-forwarded-for", "").split(",") if part.strip()]
    return forwarded[-1] if forwarded else peer


class BodySizeLimit:
    """Pure ASGI middleware: refuses a request body over ``max_bytes`` with 413 before anything parses it.

    A declared Content-Length over the limit is answered at once, without reading
    the body; a body without one (chunked) is counted as it streams in and cut off
    as soon as it passes the limit. So an unauthenticated upload to /login is never
    spooled to disk.
    """

    def __init__(self, app, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def _refuse(self, send) -> None:
        body = f"Het verzoek is groter dan {self.max_bytes} bytes.".encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"connection", b"close"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.strip().isdigit() or int(declared) > self.max_bytes):
            await self._refuse(send)
            return
        received = 0
        started = False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _BodyTooLarge()
            return message

        async def tracked_send(message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracked_send)
        except _BodyTooLarge:
            if not started:
                await self._refuse(send)


class _BodyTooLarge(Exception):
    pass


class Forbidden(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --------------------------------------------------------------------------- helpers


def key_map(codebook: Codebook) -> dict[tuple[str, str], dict]:
    """(field id, label id) -> {"code": KeyboardEvent.code to press, "hint": what the screen shows}."""
    keys: dict[tuple[str, str], dict] = {}
    rows = iter(KEY_ROWS)
    for f in codebook.fields.values():
        if f.labels_from:
            continue
        row = next(rows, None)
        if row is None:
            break
        for label, char in zip(f.ids, row, strict=False):
            code = f"Digit{char}" if char.isdigit() else f"Key{char.upper()}"
            keys[(f.id, label)] = {"code": code, "hint": char}
    for f in codebook.fields.values():
        if f.labels_from:
            for label in f.ids:
                source = keys.get((f.labels_from, label))
                if source:
                    keys[(f.id, label)] = {"code": "Shift+" + source["code"], "hint": "⇧" + source["hint"]}
    return keys


def check_bind(host: str, allow_remote: bool) -> str | None:
    """None for a loopback address; a warning to print for another address with ``allow_remote``;
    ReviewError without it."""
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if loopback:
        return None
    if not allow_remote:
        raise ReviewError(
            f"{host} is not a loopback address; the review screen shows research data, so serving it to "
            "other machines needs --allow-remote"
        )
    return (
        f"serving the review screen on {host}: anyone who can reach this port gets the login page. "
        "Put it behind HTTPS (a reverse proxy) and keep the port off the public internet."
    )


def glossing(glossary: Glossary | None):
    """A Jinja2 filter: escaped text with glossary abbreviations in <abbr title=expansion>."""
    terms = dict(glossary.terms) if glossary else {}
    pattern = (
        re.compile(r"(?<!\w)(" + "|".join(re.escape(t) for t in sorted(terms, key=len, reverse=True)) + r")(?!\w)")
        if terms
        else None
    )

    def glossed(text: str | None) -> Markup:
        text = text or ""
        if pattern is None:
            return escape(text)
        parts, last = [], 0
        for m in pattern.finditer(text):
            parts.append(escape(text[last : m.start()]))
            parts.append(Markup('<abbr title="{}">{}</abbr>').format(terms[m.group(0)], m.group(0)))
            last = m.end()
        parts.append(escape(text[last:]))
        return Markup("").join(parts)

    return glossed


def codebook_css(codebook: Codebook) -> str:
    lines = []
    for f in codebook.fields.values():
        for label in f.labels:
            colour = label.colour if COLOUR.match(label.colour) else "#7f7f7f"
            lines.append(f".lbl-{SAFE_ID.sub('_', f.id)}-{SAFE_ID.sub('_', label.id)} {{ --label: {colour}; }}")
    return "\n".join(lines) + "\n"


def _safe_next(target: str | None) -> str:
    """Only local paths: no open redirect through the login form."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/queue"


def _inside_corpus(path: Path, corpus_root: str | None, corpus_dir: Path | None) -> bool:
    """True when ``path`` (symbolic links followed) lies in the corpus folder: ``--corpus``, the
    root recorded at ingest, or for documents stored before roots were recorded the folder the
    server runs in. Ingest refuses files outside the corpus (issue 16); this keeps a store
    written before that, or by hand, from serving other files to every analyst."""
    roots = [Path(r) for r in (corpus_dir, corpus_root) if r] or [Path.cwd()]
    try:
        target = path.resolve()
        return any(target.is_relative_to(root.resolve()) for root in roots)
    except (OSError, RuntimeError):
        return False


def _wants_html(request: Request) -> bool:
    return request.method == "GET" and "text/html" in request.headers.get("accept", "")


# --------------------------------------------------------------------------- the app


def create_app(
    engine: Engine,
    codebook: Codebook,
    *,
    model_version: str | None = None,
    glossary: Glossary | None = None,
    idle: timedelta = DEFAULT_IDLE,
    absolute: timedelta = DEFAULT_ABSOLUTE,
    trusted_proxy: str | None = None,
    max_body_bytes: int = MAX_BODY_BYTES,
    limiter: LoginLimiter | None = None,
    corpus_dir: Path | None = None,
) -> FastAPI:
    """The review screen over ``engine``; ``model_version`` picks the classifications shown.

    ``trusted_proxy`` (an address or network) is the reverse proxy whose X-Forwarded-For
    names the client for the login limit; without it the connection's address counts.
    ``corpus_dir`` is where the source files are when not in the corpus folder recorded at ingest."""
    if trusted_proxy:
        ipaddress.ip_network(trusted_proxy, strict=False)  # ValueError for something that is no address
    index = ReviewIndex(engine, codebook, model_version)
    env = Environment(
        loader=PackageLoader("pipeline.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
    )
    env.filters["glossed"] = glossing(glossary)
    env.filters["timestamp"] = format_timestamp
    env.globals.update(
        codebook=codebook,
        statuses=STATUSES,
        orders=ORDERS,
        model_version=model_version,
        kind_name=lambda kind: KIND_NAMES.get(kind, kind),
        corrected=lambda item, state: bool(
            state.basis and item.model_labels and not same_labels(codebook, state.labels, item.model_labels)
        ),
    )
    templates = Jinja2Templates(env=env)
    keys = key_map(codebook)
    css = codebook_css(codebook)
    limiter = limiter or LoginLimiter()

    app = FastAPI(title="mgz review", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.index = index
    app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes)
    app.mount("/static", StaticFiles(directory=str(resources.files("pipeline.web").joinpath("static"))), name="static")

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        if response.headers.get("content-type", "").startswith("text/html"):
            response.headers["Content-Security-Policy"] = CSP
        if not request.url.path.startswith("/static/"):
            response.headers["Cache-Control"] = "no-store"
        return response

    @app.exception_handler(NotAuthenticated)
    async def not_authenticated(request: Request, _exc: NotAuthenticated) -> Response:
        if _wants_html(request):
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error": "niet ingelogd"}, status_code=401)
        return PlainTextResponse("Niet ingelogd.", status_code=401)

    @app.exception_handler(Forbidden)
    async def forbidden(request: Request, exc: Forbidden) -> Response:
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"error": exc.message}, status_code=403)
        if "text/html" in request.headers.get("accept", ""):
            return templates.TemplateResponse(
                request, "error.html", {"title": "Geen toegang", "message": exc.message, "ws": None}, status_code=403
            )
        return PlainTextResponse(exc.message, status_code=403)

    def current(request: Request) -> WebSession:
        ws = session_for(engine, request.cookies.get(SESSION_COOKIE), idle=idle)
        if ws is None:
            raise NotAuthenticated()
        return ws

    def admin(request: Request) -> WebSession:
        ws = current(request)
        if not ws.user.is_admin:
            raise Forbidden("Deze pagina is alleen voor beheerders.")
        return ws

    async def checked_form(request: Request, ws: WebSession):
        form = await request.form()
        token = form.get("csrf_token") or request.headers.get("x-csrf-token")
        if not csrf_matches(ws.csrf_token, token if isinstance(token, str) else None):
            raise Forbidden(
                "Het formulier is verlopen of komt niet van deze site (CSRF-token klopt niet). Laad de pagina opnieuw."
            )
        return form

    def render(request: Request, name: str, context: dict, status_code: int = 200) -> HTMLResponse:
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    # ------------------------------------------------------------------ login

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/queue") -> Response:
        if session_for(engine, request.cookies.get(SESSION_COOKIE), idle=idle):
            return RedirectResponse(_safe_next(next), status_code=303)
        return _login_form(request, next, None, 200)

    def _login_form(request: Request, next_url: str, error: str | None, status: int) -> Response:
        token = secrets.token_urlsafe(24)
        response = render(
            request,
            "login.html",
            {"ws": None, "next": _safe_next(next_url), "error": error, "login_csrf": token},
            status,
        )
        response.set_cookie(
            LOGIN_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/login"
        )
        return response

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        name = str(form.get("name") or "").strip()
        password = str(form.get("password") or "")
        next_url = str(form.get("next") or "/queue")
        if not csrf_matches(request.cookies.get(LOGIN_COOKIE) or "", str(form.get("csrf_token") or "")):
            return _login_form(request, next_url, "Het inlogformulier was verlopen; probeer het opnieuw.", 403)
        address = client_address(request, trusted_proxy)
        stamp = limiter.begin(name, address)  # counted before the check, so parallel guesses cannot slip past
        if stamp is None:
            return _login_form(request, next_url, "Te veel mislukte pogingen; probeer het later opnieuw.", 429)
        user = await run_in_threadpool(authenticate, engine, name, password)
        if user is None:
            return _login_form(request, next_url, "Naam of wachtwoord klopt niet.", 401)
        limiter.succeeded(name, address, stamp)
        token, _ = await run_in_threadpool(create_session, engine, user, None, idle, absolute)
        response = RedirectResponse(_safe_next(next_url), status_code=303)
        response.set_cookie(
            SESSION_COOKIE, token, httponly=True, samesite="strict", secure=request.url.scheme == "https", path="/"
        )
        response.delete_cookie(LOGIN_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        ws = await run_in_threadpool(current, request)
        await checked_form(request, ws)
        await run_in_threadpool(end_session, engine, request.cookies.get(SESSION_COOKIE))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    # ------------------------------------------------------------------ pages

    @app.get("/")
    def home(request: Request) -> Response:
        current(request)
        return RedirectResponse("/queue", status_code=303)

    @app.get("/api/ping")
    def ping(request: Request) -> dict:
        """Who is logged in, and this session's CSRF token (same-origin reads only: no CORS)."""
        ws = current(request)
        return {"user": ws.user.name, "role": ws.user.role, "csrf_token": ws.csrf_token}

    @app.get("/favicon.ico")
    def favicon() -> Response:
        return Response(status_code=204)

    @app.get("/codebook.css")
    def colours() -> Response:
        return Response(css, media_type="text/css")

    @app.get("/queue", response_class=HTMLResponse)
    def queue_page(request: Request, page: int = 1) -> Response:
        ws = current(request)
        index.refresh()
        f = QueueFilter.from_params(request.query_params, codebook)
        result = index.queue(ws.user, f, page)
        return render(
            request,
            "queue.html",
            {
                "ws": ws,
                "f": f,
                "result": result,
                "docs": sorted(index.docs.values(), key=lambda d: d.doc_id),
                "titles": {d.doc_id: d.title for d in index.docs.values()},
                "sectors": sorted({d.sector for d in index.docs.values() if d.sector}),
                "done_message": request.query_params.get("klaar"),
                "model_hidden": lambda item: index.model_hidden(item.passage_id, ws.user),
            },
        )

    def passage_context(request: Request, ws: WebSession, pid: str, f: QueueFilter, **extra) -> dict:
        view = index.passage_view(pid, ws.user)
        if view is None:
            raise ReviewError("Deze passage bestaat niet (meer) in de store.", status=404)
        around = index.neighbours(ws.user, f, pid)
        state = view.state
        form_labels = extra.pop("form_labels", None)
        if form_labels is None:
            form_labels = normalise_labels(codebook, state.labels) if state.labels else empty_coding(codebook)
        basis = str(state.basis.id) if state.basis else ("model" if state.source == "model" else "")
        model = view.item.model_labels if view.show_model else None
        return {
            "ws": ws,
            "f": f,
            "view": view,
            "around": around,
            "form_labels": form_labels,
            "basis": basis,
            "can_accept": state.labels is not None and state.mode != "locked",
            "model": model,
            "scores": (view.item.scores or {}) if view.show_model else {},
            "keys": keys,
            "saved": request.query_params.get("opgeslagen"),
            "errors": [],
            "memo": "",
            "origin": passage_origin(index.engine, pid),
            **extra,
        }

    @app.get("/passages/{pid}", response_class=HTMLResponse)
    def passage_page(request: Request, pid: str) -> Response:
        ws = current(request)
        index.refresh()
        f = QueueFilter.from_params(request.query_params, codebook)
        try:
            context = passage_context(request, ws, pid, f)
        except ReviewError as exc:
            return render(request, "error.html", {"ws": ws, "title": "Niet gevonden", "message": str(exc)}, exc.status)
        return render(request, "passage.html", context)

    @app.post("/passages/{pid}/decision")
    async def decide(request: Request, pid: str) -> Response:
        ws = await run_in_threadpool(current, request)
        form = await checked_form(request, ws)
        f = QueueFilter.from_params(request.query_params, codebook)
        action = str(form.get("action") or "save")
        memo = str(form.get("memo") or "")
        submitted = {
            fld.id: [str(v) for v in form.getlist(fld.id)] if fld.multi else (str(form.get(fld.id) or "") or None)
            for fld in codebook.fields.values()
        }

        def work():
            # "accept" keeps the coding the page started from (the model's, or the decision that
            # counted); the record keeps the model's labels the page showed, for model-vs-analyst.
            start = labels_for_basis(engine, pid, str(form.get("basis") or ""), model_version, ws.user)
            if action == "accept":
                if start is None:
                    raise ReviewError("Er is geen codering om te accepteren; kies de labels en sla op.", status=422)
                labels = start
            else:
                labels = submitted
            shown = model_labels_shown(engine, pid, model_version, ws.user)
            decision = record_decision(
                engine, codebook, ws.user, pid, labels, labels_shown=shown, model_version=model_version, memo=memo
            )
            index.refresh()
            return decision, index.neighbours(ws.user, f, pid)

        try:
            decision, around = await run_in_threadpool(work)
        except ReviewError as exc:
            if "application/json" in request.headers.get("accept", ""):
                return JSONResponse({"error": str(exc), "problems": exc.problems}, status_code=exc.status)
            try:
                context = await run_in_threadpool(
                    passage_context,
                    request,
                    ws,
                    pid,
                    f,
                    form_labels=normalise_labels(codebook, submitted),
                    errors=[str(exc), *exc.problems],
                    memo=memo,
                )
            except ReviewError as missing:
                return render(
                    request,
                    "error.html",
                    {"ws": ws, "title": "Niet opgeslagen", "message": str(missing)},
                    missing.status,
                )
            return render(request, "passage.html", context, status_code=exc.status)
        if around["next"]:
            target = f"/passages/{around['next']}?{f.query(opgeslagen=pid)}"
        else:
            target = f"/queue?{f.query(klaar=pid)}"
        if "application/json" in request.headers.get("accept", ""):
            return JSONResponse({"saved": decision.id, "next": target})
        return RedirectResponse(target, status_code=303)

    @app.get("/documents/{doc_id}/pdf")
    def document_pdf(request: Request, doc_id: str) -> Response:
        ws = current(request)
        index.refresh()
        doc = index.docs.get(doc_id)
        path = source_path(doc.source, doc.corpus_root, corpus_dir) if doc else None
        if path is not None and not _inside_corpus(path, doc.corpus_root, corpus_dir):
            path = None  # a source stored from outside the corpus folder is never served
        if path is None or path.suffix.lower() != ".pdf" or not path.is_file():
            return render(
                request,
                "error.html",
                {
                    "ws": ws,
                    "title": "PDF niet gevonden",
                    "message": "Het bronbestand van dit document is niet (meer) beschikbaar op de server.",
                },
                404,
            )
        return FileResponse(
            path, media_type="application/pdf", headers={"Content-Disposition": f'inline; filename="{doc_id}.pdf"'}
        )

    # ------------------------------------------------------------------ admin

    @app.get("/agreement", response_class=HTMLResponse)
    def agreement_page(request: Request) -> Response:
        ws = admin(request)
        index.refresh()
        report = agreement_report(engine, codebook, model_version)
        return render(request, "agreement.html", {"ws": ws, "report": report, "items": index})

    def admin_context(ws, assigned: str | None, errors: list[str]) -> dict:
        """What the admin page shows: accounts, double-coding samples, reviewers, documents, sectors."""
        return {
            "ws": ws,
            "users": list_users(engine),
            "overview": double_coding_overview(engine),
            "reviewers": index.reviewer_counts(),
            "docs": sorted(index.docs.values(), key=lambda d: d.doc_id),
            "sectors": sorted({d.sector for d in index.docs.values() if d.sector}),
            "assigned": assigned,
            "errors": errors,
        }

    @app.get("/admin", response_class=HTMLResponse)
    def admin_page(request: Request) -> Response:
        ws = admin(request)
        index.refresh()
        return render(request, "admin.html", admin_context(ws, request.query_params.get("toegewezen"), []))

    @app.post("/admin/double-coding")
    async def double_coding(request: Request) -> Response:
        ws = await run_in_threadpool(admin, request)
        form = await checked_form(request, ws)

        def work() -> int:
            try:
                n = int(str(form.get("n") or "0"))
                seed = int(str(form.get("seed"))) if form.get("seed") else None
            except ValueError:
                raise ReviewError("aantal en seed zijn gehele getallen", status=422) from None
            ids = draw_sample(
                engine,
                n,
                doc_id=str(form.get("doc") or "") or None,
                sector=str(form.get("sector") or "") or None,
                seed=seed,
            )
            coders = [str(form.get("coder1") or ""), str(form.get("coder2") or "")]
            return assign_double_coding(engine, ids, coders, ws.user, blind=bool(form.get("blind")))

        try:
            count = await run_in_threadpool(work)
        except ReviewError as exc:
            return render(request, "admin.html", admin_context(ws, None, [str(exc)]), exc.status)
        return RedirectResponse(f"/admin?toegewezen={count}", status_code=303)

    return app


# --------------------------------------------------------------------------- serving


def serve(app: FastAPI, host: str, port: int) -> None:
    """uvicorn with its own proxy-header handling off: the app reads X-Forwarded-For itself, and
    only from ``--trusted-proxy``."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level="info", proxy_headers=False)


@contextmanager
def running(app: FastAPI, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``app`` with uvicorn on a free port in a background thread (tests, benchmarks)."""
    import uvicorn

    # IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY only on sockets that say so (as uvicorn's own
    # bind does); without it Nagle's algorithm adds ~40 ms to every keep-alive response.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the review server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
