"""The investigator's pages: log in with a key, work the queue, read a card, decide.

Server-rendered with Jinja2; the stylesheet and the queue's few lines of JS are files
under ``/static`` (no CDN, no build step, no inline script: see :mod:`api.security`).
The browser holds a server-side session id in an HttpOnly, SameSite=Strict cookie,
never the API key; logout revokes the session. Every form carries the session's CSRF
token (the login form a token of its own, double-submitted in a cookie).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from api.alerts import STATUS_OF_LABEL, STATUSES, AlertFilter
from api.audit import record_audit
from api.auth import TooManyRequests, authenticate, check_auth_limit, record_auth_failure
from api.context import AppContext
from api.deps import AlertId
from api.errors import ApiError
from api.keys import Principal, Role
from api.sessions import COOKIE_NAME, LOGIN_COOKIE_NAME, same_token
from api.svg import narrative_badge, waterfall_svg
from api.text import CleanText, TextError, clean_text

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

PAGE_ROLES = frozenset({Role.INVESTIGATOR, Role.VALIDATOR, Role.ADMIN})
DECIDE_ROLES = frozenset({Role.INVESTIGATOR, Role.ADMIN})
SORTS = ("created_at", "score", "amount")
#: Form fields that are free text (line breaks allowed); every other field is one line.
_MULTILINE_FIELDS = frozenset({"note"})
PageText = Annotated[CleanText, Query(max_length=1000)]


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


class _BadForm(Exception):
    def __init__(self, error: TextError) -> None:
        super().__init__(error.reason)
        self.error = error


async def _form(request: Request) -> dict[str, str]:
    """The url-encoded form, each field through the shared text check (python-multipart is not needed)."""
    body = (await request.body())[:20_000].decode("utf-8", "replace")
    try:
        fields = parse_qs(body, keep_blank_values=True, max_num_fields=20)
    except ValueError:  # more fields than any page form has
        raise _BadForm(TextError("form", "more than 20 fields")) from None
    form = {k: v[0] for k, v in fields.items()}
    try:
        return {k: clean_text(v, field=k, multiline=k in _MULTILINE_FIELDS) for k, v in form.items()}
    except TextError as exc:
        raise _BadForm(exc) from None


def _render(request: Request, name: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """A page; a logged-in page gets its session's CSRF token (the header's logout form needs it)."""
    session = getattr(request.state, "session", None)
    return templates.TemplateResponse(request, name, {"csrf": session.csrf if session else "", **context},
                                      status_code=status_code)


def _error(request: Request, who: Principal | None, title: str, message: str, status_code: int) -> HTMLResponse:
    return _render(request, "error.html", {"who": who, "title": title, "message": message}, status_code=status_code)


def _user(request: Request) -> Principal | None:
    who = authenticate(request, allow_cookie=True)
    if who is not None:
        request.state.principal = who
    return who


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)


def _forbidden(request: Request, who: Principal) -> HTMLResponse:
    return _error(request, who, "Forbidden", f"The role {who.role.value} may not use this page.", 403)


def _bad_field(request: Request, who: Principal | None, exc: _BadForm) -> HTMLResponse:
    return _error(request, who, "Invalid input", f"{exc.error.field}: {exc.error.reason}", 422)


def _age(created: Any) -> str:
    if not isinstance(created, datetime):
        return ""
    seconds = (datetime.now(UTC) - created).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


def _set_cookie(request: Request, response: Response, name: str, value: str, max_age: int | None) -> None:
    ctx = _ctx(request)
    response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="strict", path="/",
                        secure=ctx.api.secure_cookie(request.url.scheme))


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/alerts", status_code=303)


def _login_form(request: Request, next_path: str, error: str, status_code: int) -> HTMLResponse:
    # The login form's CSRF token: a fresh one in a cookie, echoed by the form (a cross-site form cannot read it).
    token = secrets.token_urlsafe(24)
    response = _render(request, "login.html", {"next": next_path, "error": error, "who": None, "login_csrf": token},
                       status_code=status_code)
    _set_cookie(request, response, LOGIN_COOKIE_NAME, token, max_age=3600)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: PageText = "/ui/alerts", error: PageText = "") -> HTMLResponse:
    return _login_form(request, _safe_next(next), error, 200)


def _safe_next(target: str) -> str:
    # Only local paths: a login link must not bounce the user to another site.
    return target if target.startswith("/ui/") and "//" not in target and "\\" not in target else "/ui/alerts"


def _start_session(request: Request, plaintext: str) -> Principal | None:
    """Verify the key and, for a page role, open a session (audited); in a worker thread."""
    ctx = _ctx(request)
    assert ctx.keys is not None and ctx.sessions is not None
    who = ctx.keys.verify(plaintext)
    if who is None or who.role not in PAGE_ROLES:
        return who
    session_id, session = ctx.sessions.create(who.key_id)
    with ctx.store.engine.begin() as conn:
        record_audit(conn, who, "login", None, {"via": "page"})
    request.state.new_session = session_id
    return who


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = _ctx(request)
    try:
        form = await _form(request)
    except _BadForm as exc:
        return _bad_field(request, None, exc)
    target = _safe_next(form.get("next", "/ui/alerts"))
    plaintext = form.get("key", "").strip()
    try:
        check_auth_limit(request)
    except TooManyRequests as exc:
        return _too_many(request, target, exc)
    if not same_token(request.cookies.get(LOGIN_COOKIE_NAME), form.get("csrf")):
        insecure = request.url.scheme != "https" and ctx.api.secure_cookie(request.url.scheme)
        if insecure and LOGIN_COOKIE_NAME not in request.cookies:
            # A browser keeps no Secure cookie from a plain-http page: say so rather than "expired" forever.
            return _login_form(request, target, "This desk sends its cookies over HTTPS only (api.cookie_secure): "
                               "open it with https://.", 403)
        return _login_form(request, target, "The login form expired: try again.", 403)
    who = await run_in_threadpool(_start_session, request, plaintext)
    if who is None or who.role not in PAGE_ROLES:
        if who is None:
            try:
                record_auth_failure(request, plaintext)
            except TooManyRequests as exc:
                return _too_many(request, target, exc)
        ctx.metrics.auth_failures.labels("401").inc()
        error = "That key is not valid." if who is None else f"The role {who.role.value} has no pages."
        return _login_form(request, target, error, 401)
    response = RedirectResponse(target, status_code=303)
    _set_cookie(request, response, COOKIE_NAME, request.state.new_session, max_age=ctx.api.session_max_age_s)
    response.delete_cookie(LOGIN_COOKIE_NAME, path="/")
    return response


def _too_many(request: Request, target: str, exc: TooManyRequests) -> HTMLResponse:
    page = _login_form(request, target, "Too many failed logins: wait and try again.", 429)
    page.headers.update(exc.headers)
    return page


def _end_session(request: Request, csrf: str | None) -> bool:
    """Revoke the request's session if the form proves it came from our page; in a worker thread."""
    ctx = _ctx(request)
    assert ctx.sessions is not None
    cookie = request.cookies.get(COOKIE_NAME)
    session = ctx.sessions.get(cookie)
    if session is None:
        return True  # nothing to end
    if not same_token(session.csrf, csrf):
        return False
    ctx.sessions.revoke(cookie)
    return True


@router.post("/logout")
async def logout(request: Request) -> Response:
    try:
        form = await _form(request)
    except _BadForm as exc:
        return _bad_field(request, None, exc)
    if not await run_in_threadpool(_end_session, request, form.get("csrf")):
        return _error(request, None, "Form expired", "Reload the page and log out again.", 403)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("/ui/alerts", response_class=HTMLResponse)
def queue_page(request: Request, status: PageText = "", sort: PageText = "created_at", order: PageText = "desc",
               merchant_id: PageText = "", min_score: PageText = "", cursor: PageText = "") -> Response:
    who = _user(request)
    if who is None:
        return _login_redirect(request)
    if who.role not in PAGE_ROLES:
        return _forbidden(request, who)
    ctx = _ctx(request)
    assert ctx.desk is not None
    sort = sort if sort in SORTS else "created_at"
    order = order if order in ("asc", "desc") else "desc"
    try:
        min_value = float(min_score) if min_score else None
    except ValueError:
        min_value = None
    filters = AlertFilter(status=status if status in STATUSES else None, merchant_id=merchant_id[:128] or None,
                          min_score=min_value)
    try:
        items, next_cursor = ctx.desk.page(filters, sort=sort, order=order,  # type: ignore[arg-type]
                                           limit=ctx.api.page_size, cursor=cursor or None)
    except ApiError:
        items, next_cursor = ctx.desk.page(filters, sort=sort, order=order,  # type: ignore[arg-type]
                                           limit=ctx.api.page_size)
    for item in items:
        item["age"] = _age(item["created_at"])
    params = {"status": filters.status or "", "merchant_id": merchant_id, "min_score": min_score}
    return _render(request, "queue.html", {
        "who": who, "items": items, "next_cursor": next_cursor, "sort": sort, "order": order, "params": params,
        "statuses": STATUSES, "urlencode": urlencode,
    })


@router.get("/ui/alerts/{transaction_id}", response_class=HTMLResponse)
def alert_page(request: Request, transaction_id: AlertId) -> Response:
    who = _user(request)
    if who is None:
        return _login_redirect(request)
    if who.role not in PAGE_ROLES:
        return _forbidden(request, who)
    ctx = _ctx(request)
    assert ctx.desk is not None
    try:
        alert = ctx.desk.get(transaction_id)
    except ApiError as exc:
        return _error(request, who, exc.title, exc.detail, exc.status)
    with ctx.store.engine.begin() as conn:
        record_audit(conn, who, "view", transaction_id, {"via": "page"})
    card = alert["card"] or {}
    badge, badge_class = narrative_badge(card)
    return _render(request, "alert.html", {
        "who": who, "alert": alert, "card": card, "tx": card.get("transaction") or {},
        "waterfall": waterfall_svg(card), "badge": badge, "badge_class": badge_class,
        "can_decide": who.role in DECIDE_ROLES, "labels": list(STATUS_OF_LABEL), "age": _age(alert["created_at"]),
    })


async def _page_action(request: Request) -> tuple[Principal | None, dict[str, str], Response | None]:
    """The caller and the form of a page POST, or the page that refuses it (login, role, field, CSRF)."""
    who = await run_in_threadpool(_user, request)
    if who is None:
        return None, {}, _login_redirect(request)
    if who.role not in DECIDE_ROLES:
        return who, {}, _forbidden(request, who)
    try:
        form = await _form(request)
    except _BadForm as exc:
        return who, {}, _bad_field(request, who, exc)
    session = getattr(request.state, "session", None)
    if session is None or not same_token(session.csrf, form.get("csrf")):
        return who, form, _error(request, who, "Form expired", "Reload the page and try again.", 403)
    return who, form, None


def _decide(request: Request, transaction_id: str, label: str, note: str, who: Principal) -> None:
    ctx = _ctx(request)
    assert ctx.desk is not None
    ctx.desk.decide(transaction_id, label, note, who)  # type: ignore[arg-type]


@router.post("/ui/alerts/{transaction_id}/decision")
async def decide_page(request: Request, transaction_id: AlertId) -> Response:
    who, form, refused = await _page_action(request)
    if refused is not None or who is None:
        return refused or _login_redirect(request)
    label = form.get("label", "")
    if label not in STATUS_OF_LABEL:
        return _error(request, who, "Invalid decision", "Choose one of the decision buttons.", 422)
    note = form.get("note", "")
    if len(note) > 2000:
        return _error(request, who, "Invalid input", "note: at most 2000 characters", 422)
    try:
        await run_in_threadpool(_decide, request, transaction_id, label, note, who)
    except ApiError as exc:
        return _error(request, who, exc.title, exc.detail, exc.status)
    _ctx(request).metrics.decisions.labels(label).inc()
    return RedirectResponse(f"/ui/alerts/{quote(transaction_id, safe='')}?saved=1", status_code=303)


def _assign(request: Request, transaction_id: str, who: Principal) -> None:
    ctx = _ctx(request)
    assert ctx.desk is not None
    ctx.desk.assign(transaction_id, who.name, who)


@router.post("/ui/alerts/{transaction_id}/assign")
async def assign_page(request: Request, transaction_id: AlertId) -> Response:
    who, _form_data, refused = await _page_action(request)
    if refused is not None or who is None:
        return refused or _login_redirect(request)
    try:
        await run_in_threadpool(_assign, request, transaction_id, who)
    except ApiError as exc:
        return _error(request, who, exc.title, exc.detail, exc.status)
    return RedirectResponse(f"/ui/alerts/{quote(transaction_id, safe='')}", status_code=303)
