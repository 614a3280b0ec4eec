"""Offset commits when an asynchronous commit fails.

A failed async commit cannot be caused on demand against the real broker (it needs the
group coordinator to move between the request and its answer), so the consumer here is
a stand-in that fails chosen commits; everything else is the real service code.
"""

from __future__ import annotations

import time
from typing import Any

from kafka import TopicPartition
from kafka.errors import KafkaError

from streaming.consumer import StreamService
from streaming.records import BatchOutputs, SourceRecord
from streaming.scoring import RuleScorer
from streaming.settings import KafkaSettings
from streaming.writer import InFlight


class FailingCommitsConsumer:
    """Answers async commits at once; the first ``failures`` of them fail."""

    def __init__(self, assigned: set[TopicPartition], failures: int) -> None:
        self.assigned = assigned
        self.failures = failures
        self.async_commits: list[dict[TopicPartition, int]] = []
        self.sync_commits: list[dict[TopicPartition, int]] = []
        self.sync_timeouts_ms: list[int | None] = []

    def commit_async(self, offsets: dict[Any, Any], callback: Any) -> None:
        self.async_commits.append({tp: meta.offset for tp, meta in offsets.items()})
        failed = self.failures > 0
        self.failures -= 1
        callback(offsets, KafkaError("coordinator moved") if failed else object())

    def commit(self, offsets: dict[Any, Any], timeout_ms: int | None = None) -> None:
        self.sync_commits.append({tp: meta.offset for tp, meta in offsets.items()})
        self.sync_timeouts_ms.append(timeout_ms)

    def assignment(self) -> set[TopicPartition]:
        return self.assigned

    def highwater(self, _tp: TopicPartition) -> None:
        return None


class DoneBatches:
    """The writer's side: hands back finished batches once."""

    error = None

    def __init__(self, items: list[InFlight]) -> None:
        self.items = items

    def completed(self) -> list[InFlight]:
        done, self.items = self.items, []
        return done


def service_with(consumer: FailingCommitsConsumer, records: list[SourceRecord]) -> StreamService:
    service = StreamService(KafkaSettings(commit_interval_ms=0), RuleScorer(), store=None)  # type: ignore[arg-type]
    now = time.time()
    service._consumer = consumer
    service._writer = DoneBatches([InFlight(records, BatchOutputs(), [], now, durable_at=now)])  # type: ignore[assignment]
    return service


def record(partition: int, offset: int) -> SourceRecord:
    return SourceRecord("tx", partition, offset, b"k", b"{}", 0)


def test_a_failed_async_commit_is_sent_again_even_when_no_new_record_arrives() -> None:
    p0, p1 = TopicPartition("tx", 0), TopicPartition("tx", 1)
    consumer = FailingCommitsConsumer({p0, p1}, failures=1)
    service = service_with(consumer, [record(0, 4), record(1, 7), record(0, 5)])

    service._commit_completed()  # sent, fails
    service._commit_completed()  # nothing new arrived: the failed offsets go again
    service._commit_completed()  # acknowledged: nothing left to commit

    assert consumer.async_commits == [{p0: 6, p1: 8}, {p0: 6, p1: 8}]
    assert consumer.sync_commits == []


def test_a_forced_commit_waits_and_a_failed_commit_of_a_moved_partition_is_dropped() -> None:
    p0, p1 = TopicPartition("tx", 0), TopicPartition("tx", 1)
    consumer = FailingCommitsConsumer({p0}, failures=1)  # partition 1 went to another consumer
    service = service_with(consumer, [record(0, 2), record(1, 9)])

    service._commit_completed()  # fails; only partition 0 is still ours
    service._commit_completed(force=True)  # stop or rebalance: synchronous

    assert consumer.async_commits == [{p0: 3, p1: 10}]
    assert consumer.sync_commits == [{p0: 3}]
    # Bounded, so a stop fits within shutdown_timeout_s (25 s): a sixth of it (a stop makes three
    # such calls after a third of the limit for acks), not kafka-python's own wait.
    assert consumer.sync_timeouts_ms == [4166]
