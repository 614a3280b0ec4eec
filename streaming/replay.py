"""Replay a transaction dataset onto the transactions topic: time order, keyed by card, paced.

Labels (``is_fraud``, ``label_timestamp``) are left out by default: a payment
platform does not know them when it asks for a score.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from features.schema import Transaction
from streaming.settings import KafkaSettings

log = logging.getLogger(__name__)

_LABEL_FIELDS = ("is_fraud", "label_timestamp")


@dataclass(slots=True)
class ReplaySummary:
    sent: int
    seconds: float
    failed: int = 0

    @property
    def rate(self) -> float:
        return self.sent / self.seconds if self.seconds > 0 else 0.0


def encode_transaction(tx: Transaction, *, labels: bool = False) -> bytes:
    record = tx.to_record()
    if not labels:
        for name in _LABEL_FIELDS:
            record.pop(name, None)
    return json.dumps({k: v for k, v in record.items() if v is not None}).encode()


class Pacer:
    """Holds a sender to ``rate`` records per second on average (None: as fast as possible)."""

    def __init__(self, rate: float | None, clock: Callable[[], float] = time.perf_counter,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.rate = rate
        self._clock = clock
        self._sleep = sleep
        self._start: float | None = None

    def wait(self, index: int) -> None:
        if not self.rate:
            return
        now = self._clock()
        if self._start is None:
            self._start = now
        ahead = self._start + index / self.rate - now
        if ahead > 0.0005:
            self._sleep(ahead)


def replay(
    txs: Iterable[Transaction],
    settings: KafkaSettings,
    *,
    rate: float | None = None,
    labels: bool = False,
    producer: Any = None,
    on_progress: Callable[[int], None] | None = None,
) -> ReplaySummary:
    """Send ``txs`` in the order given (sort by time first) and wait until all are acknowledged."""
    from streaming.outputs import make_producer

    own = producer is None
    producer = make_producer(settings) if own else producer
    failures: list[BaseException] = []
    pacer = Pacer(rate)
    started = time.perf_counter()
    sent = 0
    topic = settings.transactions_topic
    try:
        for sent, tx in enumerate(txs, start=1):
            pacer.wait(sent - 1)
            future = producer.send(topic, key=tx.card_id.encode(), value=encode_transaction(tx, labels=labels))
            future.add_errback(failures.append)
            if on_progress is not None and sent % 1000 == 0:
                on_progress(1000)
        producer.flush()
    finally:
        if own:
            producer.close()
    if on_progress is not None:
        on_progress(sent % 1000)
    summary = ReplaySummary(sent=sent, seconds=time.perf_counter() - started, failed=len(failures))
    if failures:
        log.error("records not acknowledged", extra={"failed": len(failures), "error": type(failures[0]).__name__})
    return summary
