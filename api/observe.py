"""Access log and request metrics as a plain ASGI middleware.

Plain ASGI rather than ``@app.middleware("http")``: Starlette's BaseHTTPMiddleware
wraps every request and response in extra tasks and streams, which cost more than a
score itself.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from api.metrics import ApiMetrics
from explain.redaction import install_log_redaction, secret_values

log = logging.getLogger("api.access")

#: The server's own loggers: uvicorn gives them handlers of their own, which do not see the root's filters.
SERVER_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")


def mask_secrets_in_logs(settings: Any) -> None:
    """Every log handler of this process (root and uvicorn's) masks URL credentials and the settings' secrets.

    Called at the app's startup, once the server has configured its logging, so that an app built by
    any server (not only `fraudlens serve`) never logs a Redis or database password.
    """
    install_log_redaction(secret_values(settings), loggers=SERVER_LOGGERS)

Scope = dict[str, Any]


class ObserveMiddleware:
    def __init__(self, app: Any, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            # The route template, not the raw path: bounded metric labels, and no ids in them.
            template = getattr(scope.get("route"), "path", "unmatched")
            method = scope["method"]
            self.metrics.requests.labels(method, template, str(status[0])).inc()
            self.metrics.latency.labels(method, template).observe(elapsed)
            who = (scope.get("state") or {}).get("principal")
            # Never the body or the query (transactions carry card ids): method, route, status, key id.
            log.info("%s %s %d %.1fms key=%s", method, template, status[0], elapsed * 1000,
                     who.key_id if who else "-")
