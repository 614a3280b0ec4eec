"""Helpers for the process-level tests: start the real service as a subprocess, wait on the store."""

from __future__ import annotations

import contextlib
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from streaming.broker import ensure_topics, free_port
from streaming.settings import KafkaSettings, StoreSettings
from streaming.store import SqlAlertStore


def stream_settings(bootstrap: str, partitions: int = 4, **overrides: Any) -> KafkaSettings:
    """Settings with topics and a group of their own, the topics created on the broker."""
    run = uuid.uuid4().hex[:8]
    defaults: dict[str, Any] = {
        # Short group timeouts: a join waits about one session timeout on this broker.
        "session_timeout_ms": 6000, "heartbeat_interval_ms": 1000, "batch_size": 500,
        "retry_backoff_s": 0.1, "retry_backoff_max_s": 1.0,
        # Feature-state checkpoints of a stateful scorer go to a directory of the test's own, not runs/.
        "checkpoint_dir": Path(tempfile.gettempdir()) / "fraudlens-test-checkpoints" / run,
    }
    settings = KafkaSettings(
        bootstrap=bootstrap, transactions_topic=f"tx-{run}", scores_topic=f"scores-{run}",
        alerts_topic=f"alerts-{run}", dlq_topic=f"tx-{run}.dlq", group_id=f"group-{run}", **(defaults | overrides),
    )
    ensure_topics(bootstrap, [settings.transactions_topic, settings.scores_topic, settings.alerts_topic,
                              settings.dlq_topic], partitions)
    return settings


def through_proxy(store: StoreSettings) -> tuple[TcpProxy, StoreSettings]:
    """A started TcpProxy in front of a PostgreSQL store, and the store's settings pointing at it."""
    from sqlalchemy.engine import make_url

    url = make_url(store.url)
    proxy = TcpProxy(free_port(), (url.host or "127.0.0.1", url.port or 5432)).start()
    return proxy, StoreSettings(url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False))


def wait_for(predicate: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(0.05)


def count_scores(store: SqlAlertStore) -> int:
    try:
        return store.count_scores()
    except Exception:  # noqa: BLE001 - the table may not exist yet while the service starts
        return 0


def committed(bootstrap: str, group: str) -> int:
    """Sum of the group's committed offsets over all partitions (records it will not see again)."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    try:
        return sum(meta.offset for meta in admin.list_group_offsets(group)[group].values() if meta.offset > 0)
    finally:
        admin.close()


class TcpProxy:
    """Forwards 127.0.0.1:port → target. :meth:`cut` drops every connection and refuses new ones;
    :meth:`freeze` keeps every connection open and forwards nothing (a network black hole)."""

    def __init__(self, port: int, target: tuple[str, int]) -> None:
        self.port = port
        self.target = target
        self._server: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._thawed = threading.Event()
        self._thawed.set()

    def start(self) -> TcpProxy:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", self.port))
        server.listen(64)
        self._server = server
        threading.Thread(target=self._accept, args=(server,), daemon=True).start()
        return self

    def _accept(self, server: socket.socket) -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return  # closed by cut()
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                live = self._server is server
                if live:
                    self._connections += [client, upstream]
            if not live:
                # Cut while this connection was being set up: it must not outlive the cut.
                for sock in (client, upstream):
                    sock.close()
                return
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                self._thawed.wait()
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.close()

    def cut(self) -> None:
        with self._lock:
            server, self._server = self._server, None
            connections, self._connections = self._connections, []
        if server is not None:
            # shutdown() wakes the accept() blocked in the accept thread; close() alone would
            # leave the port listening until the next connection arrives.
            with contextlib.suppress(OSError):
                server.shutdown(socket.SHUT_RDWR)
            server.close()
        for sock in connections:
            # Close even when shutdown fails (a peer already gone): an open upstream socket
            # would keep a server-side session, and its locks, alive.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()

    def restore(self) -> None:
        self.start()

    def freeze(self) -> None:
        self._thawed.clear()

    def thaw(self) -> None:
        self._thawed.set()
