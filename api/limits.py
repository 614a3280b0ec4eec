"""Request-size limits, enforced before a body is parsed: 413 for a body too large, 422 for too many items.

A plain ASGI middleware: FastAPI reads and parses a JSON body (on the event loop)
before any dependency or route runs, so a limit checked there comes too late. Here
a declared ``Content-Length`` over the limit is refused without reading a byte; a
body that streams past it (chunked, or lying about its length) is cut off at the
limit. For routes that take a JSON array with a cap, the items are counted one by
one and counting stops at the cap, so an oversize batch is refused without its
tail ever being decoded.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

PROBLEM_JSON = b"application/problem+json"
_DECODER = json.JSONDecoder()
_WHITESPACE = re.compile(r"[ \t\r\n]*")


class BodyTooLarge(Exception):
    """Raised from ``receive`` when a body grows past the limit; the middleware answers 413."""


def count_items(body: bytes, cap: int) -> int | None:
    """How many items the top-level JSON array in ``body`` holds, counting no further than ``cap + 1``.

    None when the body is not an array or is malformed before the cap: the route's own
    parser then says what is wrong. Items past the cap are never decoded.

    >>> count_items(b'[{"a": 1}, {}, {}]', cap=2)
    3
    >>> count_items(b'{"a": 1}', cap=2) is None
    True
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    n = len(text)

    def skip(at: int) -> int:
        return _WHITESPACE.match(text, at).end()  # type: ignore[union-attr]  # matches the empty string too

    i = skip(0)
    if i >= n or text[i] != "[":
        return None
    i = skip(i + 1)
    if i < n and text[i] == "]":
        return 0
    count = 0
    while True:
        try:
            _, i = _DECODER.raw_decode(text, i)
        except ValueError:
            return None
        count += 1
        if count > cap:
            return count
        i = skip(i)
        if i < n and text[i] == ",":
            i = skip(i + 1)
        elif i < n and text[i] == "]":
            return count
        else:
            return None


def problem_bytes(status: int, title: str, detail: str, path: str, errors: list[dict[str, Any]]) -> bytes:
    return json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail,
                       "instance": path, "errors": errors, "error_count": len(errors)}).encode()


class BodyLimitMiddleware:
    """Refuse oversize bodies (413) on every route, and oversize JSON batches (422) on the routes in ``item_caps``.

    ``item_caps`` maps ``(method, path)`` to the most items its JSON array body may hold.
    """

    def __init__(self, app: Any, *, max_body_bytes: int, item_caps: Mapping[tuple[str, str], int]) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.item_caps = dict(item_caps)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        limited = self._limited(receive)
        cap = self.item_caps.get((scope["method"], scope["path"]))
        try:
            if cap is not None:
                body = await _read_all(limited)
                count = count_items(body, cap)
                if count is not None and count > cap:
                    await _send_problem(send, 422, problem_bytes(
                        422, "Invalid request", f"a batch holds at most {cap} items; this one holds more",
                        scope["path"], [{"field": "body", "reason": f"more than {cap} items (the cap is {cap})"}]))
                    return
                limited = _replay(body, receive)
            await self.app(scope, limited, send_wrapper)
        except BodyTooLarge:
            if started:
                raise
            await self._too_large(scope, send)

    def _limited(self, receive: Receive) -> Receive:
        seen = 0

        async def wrapped() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_body_bytes:
                    raise BodyTooLarge()
            return message

        return wrapped

    async def _too_large(self, scope: Scope, send: Send) -> None:
        limit = self.max_body_bytes
        await _send_problem(send, 413, problem_bytes(
            413, "Request body too large", f"a request body may hold at most {limit} bytes", scope["path"],
            [{"field": "body", "reason": f"larger than {limit} bytes"}]))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _read_all(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # after the body: wait for the disconnect, as the server would say it

    return replay


async def _send_problem(send: Send, status: int, body: bytes) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", PROBLEM_JSON), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
