"""Who is calling and whether their role may: API keys in a header, page sessions in a cookie.

Admin may do everything; every other role gets exactly the routes that name it.
Failed authentication is limited per client address and per key id (:mod:`api.ratelimit`).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from api.context import AppContext
from api.errors import ApiError, Forbidden, Unauthorized
from api.keys import Principal, Role
from api.sessions import COOKIE_NAME

# Declared for the OpenAPI document (securitySchemes, and `security` on each protected route);
# the key itself is read by _header_key, which accepts either header.
BEARER = HTTPBearer(auto_error=False, scheme_name="bearerKey",
                    description="An API key (`fraudlens keys create --role …`) as `Authorization: Bearer <key>`.")
API_KEY_HEADER = APIKeyHeader(name="X-API-Key", auto_error=False, scheme_name="apiKeyHeader",
                              description="The same API key in the `X-API-Key` header.")


class TooManyRequests(ApiError):
    status, title = 429, "Too many requests"

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed authentications from this client or for this key; "
                         f"retry in {retry_after} s", headers={"Retry-After": str(retry_after)})


def _header_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def client_address(request: Request) -> str | None:
    return request.client.host if request.client else None


def check_auth_limit(request: Request) -> None:
    """Refuse (429) an address whose failed authentications used up its allowance, before any key is looked up."""
    ctx: AppContext = request.app.state.ctx
    wait = ctx.limiter.address_wait(client_address(request))
    if wait:
        ctx.metrics.auth_failures.labels("429").inc()
        raise TooManyRequests(wait)


def record_auth_failure(request: Request, presented: str | None) -> None:
    """Count a failed authentication; 429 instead of 401 when its address or key id had no allowance left."""
    ctx: AppContext = request.app.state.ctx
    wait = ctx.limiter.failed(client_address(request), presented)
    if wait:
        ctx.metrics.auth_failures.labels("429").inc()
        raise TooManyRequests(wait)


def authenticate(request: Request, *, allow_cookie: bool) -> Principal | None:
    """The caller behind the request's API key, else (``allow_cookie``) behind its page session."""
    ctx: AppContext = request.app.state.ctx
    assert ctx.keys is not None and ctx.sessions is not None
    plaintext = _header_key(request)
    if plaintext:
        return ctx.keys.verify(plaintext)
    if allow_cookie:
        session = ctx.sessions.get(request.cookies.get(COOKIE_NAME))
        if session is not None:
            request.state.session = session
            return ctx.keys.get(session.key_id)
    return None


async def _authenticate(request: Request, *, allow_cookie: bool) -> Principal | None:
    """:func:`authenticate`, answered from the key cache on the event loop when it can."""
    ctx: AppContext = request.app.state.ctx
    assert ctx.keys is not None
    plaintext = _header_key(request)
    if plaintext:
        hit, who = ctx.keys.cached(plaintext)
        if hit:
            return who
    return await run_in_threadpool(authenticate, request, allow_cookie=allow_cookie)


def require(*roles: Role, cookie: bool = False) -> Callable[..., Awaitable[Principal]]:
    """A dependency that returns the caller, or refuses: 401 without a valid key, 403 for the wrong role,
    429 after too many failed authentications."""
    allowed = frozenset(roles) | {Role.ADMIN}
    names = ", ".join(sorted(r.value for r in allowed))

    async def dependency(
        request: Request,
        _bearer: Annotated[HTTPAuthorizationCredentials | None, Security(BEARER)],
        _header: Annotated[str | None, Security(API_KEY_HEADER)],
    ) -> Principal:
        ctx: AppContext = request.app.state.ctx
        presented = _header_key(request)
        if presented:
            check_auth_limit(request)
        who = await _authenticate(request, allow_cookie=cookie)
        if who is None:
            if presented:  # a wrong key is a guess; no key at all costs the database nothing
                record_auth_failure(request, presented)
            ctx.metrics.auth_failures.labels("401").inc()
            raise Unauthorized()
        if who.role not in allowed:
            ctx.metrics.auth_failures.labels("403").inc()
            raise Forbidden(f"role {who.role.value!r} may not do this; it needs one of: {names}")
        request.state.principal = who
        return who

    return dependency


async def metrics_access(request: Request) -> None:
    """Guards GET /metrics when ``api.metrics_key`` is set: that key, or an admin API key, as a bearer token.

    No ``Security`` parameter: /metrics is public by default, and ``create_app`` declares the
    scheme on it in the OpenAPI document only when the key is set."""
    ctx: AppContext = request.app.state.ctx
    if ctx.api.metrics_key is None:
        return
    presented = _header_key(request)
    if presented and hmac.compare_digest(presented.encode(), ctx.api.metrics_key.get_secret_value().encode()):
        return
    if presented:
        check_auth_limit(request)
        who = await _authenticate(request, allow_cookie=False)
        if who is not None and who.role is Role.ADMIN:
            return
        record_auth_failure(request, presented)
    ctx.metrics.auth_failures.labels("401").inc()
    raise Unauthorized("/metrics needs the metrics key (api.metrics_key) or an admin API key as "
                       "`Authorization: Bearer <key>`")
