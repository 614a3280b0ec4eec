"""The labels feed: fraud labels (chargebacks, confirmed cases, cleared transactions) learnt online.

Label-based features (``merchant_risk``: a merchant's fraud rate among labels already
known) are computed in training from every label known at each transaction's time.
Without labels the stream would score with merchant state frozen at start-up: the
model would see different inputs than it was trained on. So each scoring process
reads the labels topic and folds every label into its feature state before it
scores the next batch.

Every process reads *every* partition of the labels topic, from the beginning, with
no consumer group and no commits: merchant state is a function of the labels alone,
so each process rebuilds it by itself (with Redis for card state, merchant keys stay
in the process's memory, see :class:`features.state.RoutedStateStore`), and a restart
simply reads the topic again. Keep the topic's retention at least the widest label
window plus the label delay (90 + 7 days by default).

Records are canonical transaction JSON (``transaction_id``, ``timestamp``,
``card_id``, ``merchant_id``, ``amount``, ``is_fraud``, optional ``label_timestamp``):
the same schema and validation as the transactions topic, so a label is known at
``label_timestamp``, else ``timestamp`` + the model's label delay, exactly as in
training. A label learnt before its time is ignored by the features until then, so
labels may arrive early; a label that arrives after transactions it should have
informed cannot change their scores (the model's label delay should cover the feed's
own delay). A record that fails validation is counted and logged with its offset; it
stays on the labels topic where a person finds it (every process reads the topic, so
it is not copied to a dead-letter topic once per process).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from features.base import LabelEvent
from features.schema import DEFAULT_LIMITS, ValidationLimits
from streaming.pipeline import decode_record
from streaming.records import DeadLetter, SourceRecord
from streaming.settings import KafkaSettings

log = logging.getLogger(__name__)


class LabelFeed:
    """Reads the labels topic (all partitions, from the start) into :class:`LabelEvent` lists."""

    def __init__(self, settings: KafkaSettings, label_event: Callable[[Any], LabelEvent | None],
                 consumer_factory: Callable[[KafkaSettings], Any] | None = None,
                 limits: ValidationLimits = DEFAULT_LIMITS) -> None:
        self.settings = settings
        self.limits = limits
        self._label_event = label_event
        self._consumer = (consumer_factory or _make_label_consumer)(settings)
        self.learnt = 0
        self.rejected = 0

    def catch_up(self, timeout_s: float = 120.0) -> list[LabelEvent]:
        """Every label on the topic now (up to the end offsets at call time)."""
        from kafka import TopicPartition

        partitions = [TopicPartition(self.settings.labels_topic, p)
                      for p in sorted(self._consumer.partitions_for_topic(self.settings.labels_topic) or ())]
        if not partitions:
            raise RuntimeError(f"labels topic {self.settings.labels_topic!r} does not exist; create it "
                               "(fraudlens broker creates it) or turn consume_labels off")
        self._consumer.assign(partitions)
        self._consumer.seek_to_beginning(*partitions)
        end = self._consumer.end_offsets(partitions)
        out: list[LabelEvent] = []
        deadline = time.monotonic() + timeout_s
        while any(self._consumer.position(tp) < end[tp] for tp in partitions):
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading the labels topic took longer than {timeout_s:g} s")
            out.extend(self.poll(timeout_ms=200))
        return out

    def poll(self, timeout_ms: int = 0) -> list[LabelEvent]:
        """Labels that arrived since the last call (none is fine: returns at once by default)."""
        out: list[LabelEvent] = []
        for messages in self._consumer.poll(timeout_ms=timeout_ms, max_records=50_000).values():
            for m in messages:
                record = SourceRecord(m.topic, m.partition, m.offset, m.key, m.value, m.timestamp)
                decoded = decode_record(record, max_bytes=self.settings.max_record_bytes, limits=self.limits)
                event = None if isinstance(decoded, DeadLetter) else self._label_event(decoded)
                if event is None:
                    self.rejected += 1
                    reason = decoded.reason if isinstance(decoded, DeadLetter) else "no is_fraud label"
                    log.warning("label record rejected", extra={"topic": m.topic, "partition": m.partition,
                                                               "offset": m.offset, "reason": reason})
                    continue
                out.append(event)
        self.learnt += len(out)
        return out

    def close(self) -> None:
        self._consumer.close()


def _make_label_consumer(settings: KafkaSettings) -> Any:
    from kafka import KafkaConsumer

    return KafkaConsumer(
        bootstrap_servers=settings.bootstrap.split(","),
        client_id=f"{settings.client_id}-labels",
        group_id=None,
        enable_auto_commit=False,
        fetch_max_wait_ms=settings.fetch_max_wait_ms,
        reconnect_backoff_max_ms=int(settings.retry_backoff_max_s * 1000),
        metrics_enabled=False,
    )
