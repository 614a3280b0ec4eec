"""Whole record batches queued in kafka-python's producer (streaming.record_batches), on the real broker."""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.errors import IllegalStateError

from streaming.broker import EmbeddedBroker, ensure_topics, free_port
from streaming.outputs import KafkaOutputs, PublishError, make_producer
from streaming.record_batches import BatchAppender, unsupported_reason
from streaming.settings import BrokerSettings, KafkaSettings
from tests.streaming.conftest import PARTITIONS


def read_partition(bootstrap: str, topic: str, partition: int, expected: int, timeout_s: float = 20.0) -> list[Any]:
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, metrics_enabled=False,
                             auto_offset_reset="earliest", fetch_max_wait_ms=50)
    consumer.assign([TopicPartition(topic, partition)])
    consumer.seek_to_beginning()
    seen: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(seen) < expected and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=200).values():
                seen.extend(records)
    finally:
        consumer.close()
    return seen


@pytest.fixture
def topic(broker: EmbeddedBroker) -> str:
    name = f"batches-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, [name], PARTITIONS)
    return name


def test_the_pinned_kafka_python_takes_whole_batches(broker: EmbeddedBroker) -> None:
    # The scoring loop's speed rests on this: an upgrade that moves an internal must fail
    # here, not fall back to record-by-record sends unnoticed.
    producer = make_producer(KafkaSettings(bootstrap=broker.bootstrap))
    try:
        assert unsupported_reason(producer) is None
        assert BatchAppender.for_producer(producer) is not None
    finally:
        producer.close()


def test_records_arrive_in_order_with_keys_values_and_timestamp(broker: EmbeddedBroker, topic: str) -> None:
    producer = make_producer(KafkaSettings(bootstrap=broker.bootstrap))
    appender = BatchAppender.for_producer(producer)
    assert appender is not None
    stamp = int(time.time() * 1000)
    first = [(f"card-{i % 7}".encode(), f'{{"n": {i}}}'.encode()) for i in range(300)]
    second = [(None, f'{{"n": {i}}}'.encode()) for i in range(300, 350)]
    try:
        acks = appender.append(topic, 2, first, timestamp_ms=stamp)
        # A second call on the same partition: the idempotent producer sequences it after the first.
        acks += appender.append(topic, 2, second, timestamp_ms=stamp + 5)
        KafkaOutputs.await_acks(acks, timeout_s=20)
        assert [ack.records for ack in acks] == [300, 50]
        assert all(ack.is_done and not ack.failed() and ack.exception is None for ack in acks)
    finally:
        producer.close()
    seen = read_partition(broker.bootstrap, topic, 2, expected=350)
    assert [(r.key, r.value) for r in seen] == first + second
    assert [r.offset for r in seen] == list(range(350))
    assert {r.timestamp for r in seen[:300]} == {stamp} and {r.timestamp for r in seen[300:]} == {stamp + 5}


def test_records_beyond_batch_size_fill_several_batches_in_order(broker: EmbeddedBroker, topic: str) -> None:
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, batch_size=1024, linger_ms=2, metrics_enabled=False)
    appender = BatchAppender.for_producer(producer)
    assert appender is not None
    records = [(b"card-1", b"x" * 100 + str(i).encode()) for i in range(200)]
    records.insert(50, (b"card-1", b"y" * 5000))  # larger than a batch: a batch of its own
    try:
        acks = appender.append(topic, 0, records, timestamp_ms=int(time.time() * 1000))
        KafkaOutputs.await_acks(acks, timeout_s=20)
    finally:
        producer.close()
    assert len(acks) > 20 and sum(ack.records for ack in acks) == len(records)
    assert any(ack.records == 1 for ack in acks)
    seen = read_partition(broker.bootstrap, topic, 0, expected=len(records))
    assert [r.value for r in seen] == [value for _key, value in records]


def test_an_unacknowledged_batch_fails_the_publish_with_the_brokers_error() -> None:
    # A broker of this test's own, stopped before the batch can be delivered.
    port = free_port()
    name = "gone"
    with EmbeddedBroker(BrokerSettings(port=port), topics=[name]) as embedded:
        producer = KafkaProducer(bootstrap_servers=embedded.bootstrap, linger_ms=200, request_timeout_ms=1000,
                                 delivery_timeout_ms=1500, max_block_ms=1000, retry_backoff_ms=100,
                                 reconnect_backoff_max_ms=200, metrics_enabled=False)
        # One record delivered first, as a running service has: the idempotent producer
        # then holds its producer id (without one, kafka-python expires nothing).
        producer.send(name, value=b"first", partition=1).get(timeout=10)
        appender = BatchAppender.for_producer(producer)
        assert appender is not None
    try:
        acks = appender.append(name, 1, [(b"card-9", b"{}")] * 5, timestamp_ms=int(time.time() * 1000))
        with pytest.raises(PublishError, match=r"^5 of 5 output records not acknowledged: .*Timeout"):
            KafkaOutputs.await_acks(acks, timeout_s=10)
        assert acks[0].failed() and acks[0].exception is not None
    finally:
        producer.close(timeout=1)


def test_a_closed_producer_refuses_batches(broker: EmbeddedBroker, topic: str) -> None:
    producer = make_producer(KafkaSettings(bootstrap=broker.bootstrap))
    appender = BatchAppender.for_producer(producer)
    assert appender is not None
    producer.close()
    with pytest.raises(IllegalStateError, match="closed"):
        appender.append(topic, 0, [(b"k", b"v")], timestamp_ms=0)


def test_a_producer_without_the_internals_gets_no_appender() -> None:
    # Stands in for a kafka-python release that moved its internals: one cannot be
    # installed beside the pinned one, so a bare object plays it.
    class Unfamiliar:
        pass

    assert "has no _accumulator" in (unsupported_reason(Unfamiliar()) or "")
    assert BatchAppender.for_producer(Unfamiliar()) is None
