"""Who is calling and whether their role may: API keys in a header, page sessions in a cookie.

Admin may do everything; every other role gets exactly the routes that name it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.context import AppContext
from api.errors import Forbidden, Unauthorized
from api.keys import Principal, Role
from api.sessions import COOKIE_NAME


def _header_key(request: Request) -> str | None:
    auth = request.headers.get("authorization")
    if auth and auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return request.headers.get("x-api-key")


def authenticate(request: Request, *, allow_cookie: bool) -> Principal | None:
    ctx: AppContext = request.app.state.ctx
    assert ctx.keys is not None
    plaintext = _header_key(request)
    if plaintext:
        return ctx.keys.verify(plaintext)
    if allow_cookie:
        key_id = ctx.signer.verify(request.cookies.get(COOKIE_NAME))
        if key_id:
            return ctx.keys.get(key_id)
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


def require(*roles: Role, cookie: bool = False) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency that returns the caller, or refuses: 401 without a valid key, 403 for the wrong role."""
    allowed = frozenset(roles) | {Role.ADMIN}
    names = ", ".join(sorted(r.value for r in allowed))

    async def dependency(request: Request) -> Principal:
        ctx: AppContext = request.app.state.ctx
        who = await _authenticate(request, allow_cookie=cookie)
        if who is None:
            ctx.metrics.auth_failures.labels("401").inc()
            raise Unauthorized()
        if who.role not in allowed:
            ctx.metrics.auth_failures.labels("403").inc()
            raise Forbidden(f"role {who.role.value!r} may not do this; it needs one of: {names}")
        request.state.principal = who
        return who

    return dependency
