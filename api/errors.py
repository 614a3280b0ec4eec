"""RFC 9457 problem details: one root error type, one handler per kind of failure.

Every error leaves the API as ``application/problem+json``; bad input is a 422 that
names the field, never a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from features.schema import SchemaError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class ApiError(Exception):
    """An error with its HTTP status; raise a subclass or pass ``status``."""

    status: int = 400
    title: str = "Bad request"

    def __init__(self, detail: str, *, status: int | None = None, title: str | None = None,
                 errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.status = status or type(self).status
        self.title = title or type(self).title
        self.errors = errors or []
        self.headers = headers or {}


class NotFound(ApiError):
    status, title = 404, "Not found"


class Unauthorized(ApiError):
    status, title = 401, "Unauthorized"

    def __init__(self, detail: str = "an API key is required: send it as `Authorization: Bearer <key>` "
                 "or `X-API-Key: <key>`") -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="fraudlens"'})


class Forbidden(ApiError):
    status, title = 403, "Forbidden"


class Unavailable(ApiError):
    status, title = 503, "Service unavailable"


#: Errors a problem lists when the app does not say (``ApiSettings.max_errors``).
DEFAULT_MAX_ERRORS = 20


def problem(status: int, title: str, detail: str, *, instance: str | None = None,
            errors: list[dict[str, Any]] | None = None, headers: dict[str, str] | None = None,
            max_errors: int = DEFAULT_MAX_ERRORS) -> JSONResponse:
    """A problem+json response; ``errors`` keeps its first ``max_errors`` entries, ``error_count`` says how many."""
    body: dict[str, Any] = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if instance:
        body["instance"] = instance
    if errors:
        # Capped: a batch of bad items must not come back as an error body larger than the request.
        body["errors"] = errors[:max_errors]
        body["error_count"] = len(errors)
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


def _max_errors(request: Request) -> int:
    ctx = getattr(request.app.state, "ctx", None)
    return int(ctx.api.max_errors) if ctx is not None else DEFAULT_MAX_ERRORS


def _branch(loc: tuple[Any, ...] | list[Any]) -> str | None:
    """The union member pydantic names in a location ("TransactionIn", "list[TransactionIn]"), if any."""
    if len(loc) > 1 and loc[0] == "body" and isinstance(loc[1], str) and (loc[1][:1].isupper() or "[" in loc[1]):
        return loc[1]
    return None


def _field(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "transactions", 0, "amount") -> "transactions[0].amount"; the location kind is dropped.
    parts = [p for p in loc if p not in ("body", "query", "path", "header", "cookie")]
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == _branch(loc):
            continue  # the union member pydantic names, e.g. "list[TransactionIn]"
        else:
            out += f".{part}" if out else str(part)
    return out or str(loc[0] if loc else "request")


def install_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return problem(exc.status, exc.title, exc.detail, instance=request.url.path, errors=exc.errors,
                       headers=exc.headers, max_errors=_max_errors(request))

    @app.exception_handler(SchemaError)
    async def _schema_error(request: Request, exc: SchemaError) -> JSONResponse:
        return problem(422, "Invalid transaction", str(exc), instance=request.url.path,
                       errors=[{"field": exc.field, "reason": exc.reason}])

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        # A union body ("one transaction | a batch") fails in both members: report the one the client sent.
        sent_list = isinstance(exc.body, list)
        raw = [e for e in exc.errors()
               if (b := _branch(e.get("loc", ()))) is None or b.startswith("list[") == sent_list]
        errors = [{"field": _field(e.get("loc", ())), "reason": e.get("msg", "invalid")} for e in raw]
        unique: dict[str, dict[str, Any]] = {}
        for error in errors:
            unique.setdefault(error["field"], error)  # one entry per field, the first reason
        listed = list(unique.values())
        detail = "; ".join(f"{e['field']}: {e['reason']}" for e in listed[:5])
        if len(listed) > 5:
            detail += f"; and {len(listed) - 5} more"
        return problem(422, "Invalid request", detail, instance=request.url.path, errors=listed,
                       max_errors=_max_errors(request))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        title = {404: "Not found", 405: "Method not allowed"}.get(exc.status_code, "HTTP error")
        return problem(exc.status_code, title, str(exc.detail), instance=request.url.path,
                       headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__,
                  exc_info=exc)
        return problem(500, "Internal server error", "an unexpected error occurred; it has been logged",
                       instance=request.url.path)
