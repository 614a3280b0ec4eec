"""Browser-facing protections as one plain ASGI middleware: security headers and the Origin check.

Every response gets a Content-Security-Policy that allows no inline script and no
framing, ``X-Frame-Options``, ``nosniff`` and a Referrer-Policy; everything except
``/static/`` is ``Cache-Control: no-store`` (pages and API answers show alerts and
card data that must not linger in a shared cache or the browser's history).

A state-changing request (POST, PUT, PATCH, DELETE) whose ``Origin`` (or, without
one, ``Referer``) names another site is refused 403 before it reaches a route: the
page forms ride on a cookie, and a cross-site form post must not reach them. A
request with neither header (curl, a server calling the API with its key) passes;
the pages' CSRF token still guards them.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
       "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
_HEADERS = [
    (b"content-security-policy", CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]
_NO_STORE = (b"cache-control", b"no-store")
_STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
STATIC_PREFIX = "/static/"


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == name:
            return value.decode("latin-1")
    return None


def _origin_of(url: str) -> str | None:
    """``scheme://host[:port]`` of a URL, lower-cased; None when it has no host (``null``, garbage)."""
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


class SecurityMiddleware:
    def __init__(self, app: Any, *, allowed_origins: Iterable[str] = ()) -> None:
        self.app = app
        self.allowed = {o for o in (_origin_of(x) for x in allowed_origins) if o}

    def same_site(self, scope: Scope) -> bool:
        """False when the request says it comes from a page of another origin."""
        claimed = _header(scope, b"origin") or _header(scope, b"referer")
        if claimed is None:
            return True
        origin = _origin_of(claimed)
        if origin is None:
            return False  # "Origin: null" (sandboxed frame, file://) is never our own page
        if origin in self.allowed:
            return True
        host = (_header(scope, b"host") or "").lower()
        # The host (and port) must match; the scheme may differ behind a TLS-terminating proxy.
        return bool(host) and urlsplit(origin).netloc == host

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith(STATIC_PREFIX)

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [h for h in _HEADERS if h[0] not in names]
                if not static and _NO_STORE[0] not in names:
                    extra.append(_NO_STORE)
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        if scope["method"] in _STATE_CHANGING and not self.same_site(scope):
            body = json.dumps({"type": "about:blank", "title": "Forbidden", "status": 403,
                               "detail": "cross-origin request refused: Origin/Referer is not this site",
                               "instance": scope["path"]}).encode()
            await send_wrapper({"type": "http.response.start", "status": 403,
                                "headers": [(b"content-type", b"application/problem+json"),
                                            (b"content-length", str(len(body)).encode())]})
            await send_wrapper({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send_wrapper)
