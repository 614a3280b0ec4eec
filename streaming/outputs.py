"""Publishing a batch's outputs to Kafka, durably (acks=all, flushed, every send checked)."""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import orjson

from streaming.record_batches import BatchAppender
from streaming.records import HEADER_TRUNCATED, BatchOutputs, DeadLetter, ScoreOut, ShadowOut
from streaming.retry import Interrupted
from streaming.settings import KafkaSettings

log = logging.getLogger(__name__)

#: Room left for the record's key, headers and framing when a DLQ value must be cut.
_ENVELOPE_BYTES = 64 * 1024


class PublishError(RuntimeError):
    """At least one output record was not acknowledged by the broker; the batch is retried."""


def make_producer(settings: KafkaSettings) -> Any:
    from kafka import KafkaProducer

    return KafkaProducer(
        bootstrap_servers=settings.bootstrap.split(","),
        client_id=f"{settings.client_id}-producer",
        acks="all",
        linger_ms=settings.producer_linger_ms,
        batch_size=256 * 1024,
        max_request_size=settings.producer_max_request_bytes,
        # Bounded so that a dead broker surfaces as an error the retry loop handles,
        # instead of a send that blocks for the library's default minute.
        max_block_ms=10_000,
        request_timeout_ms=10_000,
        delivery_timeout_ms=30_000,
        reconnect_backoff_max_ms=int(settings.retry_backoff_max_s * 1000),
        metrics_enabled=False,
    )


class KafkaOutputs:
    """Sends scores, alerts and dead letters; :meth:`publish` returns only when all are acknowledged."""

    def __init__(self, producer: Any, settings: KafkaSettings) -> None:
        self.producer = producer
        self.settings = settings
        #: Queues scores as whole record batches; None: send them one by one (see streaming.record_batches).
        self._appender = BatchAppender.for_producer(producer)

    def publish(self, outputs: BatchOutputs, flush_timeout_s: float = 30.0) -> None:
        """Send every output of the batch and return once all are acknowledged (else :class:`PublishError`)."""
        futures = self.send(outputs)
        self.producer.flush(timeout=flush_timeout_s)
        self.await_acks(futures, flush_timeout_s)

    def send(self, outputs: BatchOutputs) -> list[Any]:
        """Hand every output record to the producer without waiting; returns what to await.

        The producer's I/O thread sends them within ``linger_ms``; :meth:`await_acks` waits.
        """
        s = self.settings
        send = self.producer.send
        futures = self._send_scores(outputs.scores)
        futures.extend(
            send(s.alerts_topic, key=alert.key,
                 value=alert.value if alert.value is not None else json.dumps(alert.card, default=str).encode())
            for alert in outputs.alerts
        )
        futures.extend(self._send_dead(dead) for dead in outputs.dead)
        futures.extend(self._send_shadow(shadow) for shadow in outputs.shadow)
        return futures

    def _send_scores(self, scores: list[ScoreOut]) -> list[Any]:
        """One `scores` record per transaction; as whole batches per partition where the appender can."""
        topic, dumps = self.settings.scores_topic, orjson.dumps
        if not self._co_partitioned():
            return [self.producer.send(topic, key=score.key, value=dumps(score.to_record())) for score in scores]
        if self._appender is None:
            return [self.producer.send(topic, key=score.key, value=dumps(score.to_record()),
                                       partition=score.source_partition) for score in scores]
        by_partition: dict[int, list[tuple[bytes | None, bytes]]] = {}
        for score in scores:
            by_partition.setdefault(score.source_partition, []).append((score.key, dumps(score.to_record())))
        now_ms = int(time.time() * 1000)
        acks: list[Any] = []
        for partition, records in by_partition.items():
            acks.extend(self._appender.append(topic, partition, records, now_ms))
        return acks

    @staticmethod
    def await_acks(futures: list[Any], timeout_s: float = 30.0, give_up: Callable[[], bool] = lambda: False) -> None:
        """Block until every future is acknowledged; :class:`PublishError` if any failed or timed out,
        :class:`Interrupted` once ``give_up()`` says a stopping service will not wait any longer."""
        from kafka.errors import KafkaError

        deadline = time.monotonic() + timeout_s
        # The last sends finish last: once they are done, the rest is (almost always) done too.
        for future in reversed(futures):
            while not future.is_done and (remaining := deadline - time.monotonic()) > 0:
                if give_up():
                    waiting = [f for f in futures if not f.is_done]
                    raise Interrupted(f"{_records(waiting)} output records still unacknowledged when the stop "
                                      "stopped waiting for them")
                # A failure or timeout is counted below with every other one. Short waits, so
                # that a stop is noticed while the broker is away.
                with contextlib.suppress(KafkaError):
                    future.get(timeout=min(remaining, 0.25))
        failed = [f for f in futures if not f.is_done or f.failed()]
        if failed:
            first = failed[0].exception if failed[0].is_done else "not acknowledged in time"
            raise PublishError(f"{_records(failed)} of {_records(futures)} output records not acknowledged: {first}")

    def _co_partitioned(self) -> bool:
        """True when `scores` has as many partitions as `transactions`.

        Then a score goes to its transaction's partition: the input is keyed by card, so
        each card's scores still share one partition, in order. The partition is known
        without hashing the key, so the scores can go as whole batches per partition.
        """
        source = self.producer.partitions_for(self.settings.transactions_topic)
        target = self.producer.partitions_for(self.settings.scores_topic)
        return bool(source) and source == target

    def _send_dead(self, dead: DeadLetter) -> Any:
        from kafka.errors import MessageSizeTooLargeError

        value = dead.source.value
        headers = dead.headers()
        try:
            return self.producer.send(self.settings.dlq_topic, key=dead.source.key, value=value, headers=headers)
        except MessageSizeTooLargeError:
            # Larger than the producer may send: keep the head of the original bytes and
            # say so, rather than lose the record (the source offset is in the headers).
            limit = max(0, self.settings.producer_max_request_bytes - _ENVELOPE_BYTES)
            cut = (value or b"")[:limit]
            headers.append((HEADER_TRUNCATED, str(len(value or b"")).encode()))
            return self.producer.send(self.settings.dlq_topic, key=dead.source.key, value=cut, headers=headers)

    def _send_shadow(self, shadow: ShadowOut) -> Any:
        """A challenger's verdict: its own topic, keyed like the transaction; never an alert."""
        return self.producer.send(self.settings.shadow_topic, key=shadow.key, value=orjson.dumps(shadow.to_record()))

    def close(self, timeout_s: float = 10.0) -> None:
        self.producer.close(timeout=timeout_s)


def _records(futures: list[Any]) -> int:
    """Records behind ``send`` futures (one each) and batch acks (``records`` each)."""
    return sum(getattr(future, "records", 1) for future in futures)
