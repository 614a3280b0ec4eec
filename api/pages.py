"""The investigator's pages: log in with a key, work the queue, read a card, decide.

Server-rendered with Jinja2; CSS and the few lines of JS are inline (no CDN, no
build step). The browser holds a signed session cookie, never the API key. Forms
carry a CSRF token and the cookie is SameSite=Strict.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from api.alerts import STATUS_OF_LABEL, STATUSES, AlertFilter
from api.audit import record_audit
from api.auth import authenticate
from api.context import AppContext
from api.errors import ApiError
from api.keys import Principal, Role
from api.sessions import COOKIE_NAME
from api.svg import narrative_badge, waterfall_svg

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))

PAGE_ROLES = frozenset({Role.INVESTIGATOR, Role.VALIDATOR, Role.ADMIN})
DECIDE_ROLES = frozenset({Role.INVESTIGATOR, Role.ADMIN})
SORTS = ("created_at", "score", "amount")


def _ctx(request: Request) -> AppContext:
    return request.app.state.ctx


async def _form(request: Request) -> dict[str, str]:
    # url-encoded forms parsed here: python-multipart is not needed for three fields.
    body = (await request.body())[:20_000].decode("utf-8", "replace")
    return {k: v[0] for k, v in parse_qs(body, keep_blank_values=True).items()}


def _user(request: Request) -> Principal | None:
    who = authenticate(request, allow_cookie=True)
    if who is not None:
        request.state.principal = who
    return who


def _login_redirect(request: Request) -> RedirectResponse:
    return RedirectResponse("/login?" + urlencode({"next": request.url.path}), status_code=303)


def _forbidden(request: Request, who: Principal) -> HTMLResponse:
    return templates.TemplateResponse(request, "error.html", {"who": who, "title": "Forbidden",
                                      "message": f"The role {who.role.value} may not use this page."},
                                      status_code=403)


def _age(created: Any) -> str:
    if not isinstance(created, datetime):
        return ""
    seconds = (datetime.now(UTC) - created).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{max(int(seconds), 0)}s"


@router.get("/")
def home() -> RedirectResponse:
    return RedirectResponse("/ui/alerts", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str = "/ui/alerts", error: str = "") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"next": _safe_next(next), "error": error, "who": None})


def _safe_next(target: str) -> str:
    # Only local paths: a login link must not bounce the user to another site.
    return target if target.startswith("/ui/") and "//" not in target else "/ui/alerts"


@router.post("/login")
async def login(request: Request) -> Response:
    ctx = _ctx(request)
    form = await _form(request)
    assert ctx.keys is not None
    who = ctx.keys.verify(form.get("key", "").strip())
    target = _safe_next(form.get("next", "/ui/alerts"))
    if who is None or who.role not in PAGE_ROLES:
        ctx.metrics.auth_failures.labels("401").inc()
        error = "That key is not valid." if who is None else f"The role {who.role.value} has no pages."
        return templates.TemplateResponse(request, "login.html", {"next": target, "error": error, "who": None},
                                          status_code=401)
    with ctx.store.engine.begin() as conn:
        record_audit(conn, who, "login", None, {"via": "page"})
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(COOKIE_NAME, ctx.signer.issue(who.key_id), max_age=ctx.api.session_max_age_s,
                        httponly=True, samesite="strict", secure=ctx.api.secure_cookies, path="/")
    return response


@router.post("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(COOKIE_NAME, path="/")
    return response


@router.get("/ui/alerts", response_class=HTMLResponse)
def queue_page(request: Request, status: str = "", sort: str = "created_at", order: str = "desc",
               merchant_id: str = "", min_score: str = "", cursor: str = "") -> Response:
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
    return templates.TemplateResponse(request, "queue.html", {
        "who": who, "items": items, "next_cursor": next_cursor, "sort": sort, "order": order, "params": params,
        "statuses": STATUSES, "urlencode": urlencode,
    })


@router.get("/ui/alerts/{transaction_id}", response_class=HTMLResponse)
def alert_page(request: Request, transaction_id: str) -> Response:
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
        return templates.TemplateResponse(request, "error.html", {"who": who, "title": exc.title,
                                          "message": exc.detail}, status_code=exc.status)
    with ctx.store.engine.begin() as conn:
        record_audit(conn, who, "view", transaction_id, {"via": "page"})
    card = alert["card"] or {}
    badge, badge_class = narrative_badge(card)
    return templates.TemplateResponse(request, "alert.html", {
        "who": who, "alert": alert, "card": card, "tx": card.get("transaction") or {},
        "waterfall": waterfall_svg(card), "badge": badge, "badge_class": badge_class,
        "can_decide": who.role in DECIDE_ROLES, "csrf": ctx.signer.csrf_token(who.key_id),
        "labels": list(STATUS_OF_LABEL), "age": _age(alert["created_at"]),
    })


async def _page_action(request: Request) -> tuple[Principal | None, dict[str, str], Response | None]:
    who = _user(request)
    if who is None:
        return None, {}, _login_redirect(request)
    if who.role not in DECIDE_ROLES:
        return who, {}, _forbidden(request, who)
    form = await _form(request)
    if not _ctx(request).signer.check_csrf(who.key_id, form.get("csrf")):
        return who, form, templates.TemplateResponse(request, "error.html", {
            "who": who, "title": "Form expired", "message": "Reload the page and try again."}, status_code=403)
    return who, form, None


@router.post("/ui/alerts/{transaction_id}/decision")
async def decide_page(request: Request, transaction_id: str) -> Response:
    who, form, refused = await _page_action(request)
    if refused is not None or who is None:
        return refused or _login_redirect(request)
    label = form.get("label", "")
    if label not in STATUS_OF_LABEL:
        return templates.TemplateResponse(request, "error.html", {"who": who, "title": "Invalid decision",
                                          "message": "Choose one of the decision buttons."}, status_code=422)
    ctx = _ctx(request)
    assert ctx.desk is not None
    try:
        ctx.desk.decide(transaction_id, label, form.get("note", "")[:2000], who)  # type: ignore[arg-type]
    except ApiError as exc:
        return templates.TemplateResponse(request, "error.html", {"who": who, "title": exc.title,
                                          "message": exc.detail}, status_code=exc.status)
    ctx.metrics.decisions.labels(label).inc()
    return RedirectResponse(f"/ui/alerts/{quote(transaction_id, safe='')}?saved=1", status_code=303)


@router.post("/ui/alerts/{transaction_id}/assign")
async def assign_page(request: Request, transaction_id: str) -> Response:
    who, _form_data, refused = await _page_action(request)
    if refused is not None or who is None:
        return refused or _login_redirect(request)
    ctx = _ctx(request)
    assert ctx.desk is not None
    try:
        ctx.desk.assign(transaction_id, who.name, who)
    except ApiError as exc:
        return templates.TemplateResponse(request, "error.html", {"who": who, "title": exc.title,
                                          "message": exc.detail}, status_code=exc.status)
    return RedirectResponse(f"/ui/alerts/{quote(transaction_id, safe='')}", status_code=303)
