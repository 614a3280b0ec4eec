"""Helpers for the process-level tests: start the real service as a subprocess, wait on the store."""

from __future__ import annotations

import time
from collections.abc import Callable

from streaming.store import SqlAlertStore


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
