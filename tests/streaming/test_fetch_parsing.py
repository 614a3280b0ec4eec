"""Compiled parsing of fetched record batches (streaming.fetch_parsing) against kafka-python's own parser.

The batches are built with kafka-python's ``MemoryRecordsBuilder``, the code its producer
uses, so both parsers read real format-v2 (and v1) bytes; the last test consumes through
the embedded broker.
"""

from __future__ import annotations

import struct
import uuid
from typing import Any

import numpy as np
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import Fetcher
from kafka.errors import CorruptRecordError
from kafka.record.memory_records import MemoryRecords, MemoryRecordsBuilder
from kafka.record.util import calc_crc32c

from streaming.broker import EmbeddedBroker, ensure_topics
from streaming.consumer import make_consumer
from streaming.fetch_parsing import (
    fast_partition_records,
    install,
    record_layout,
    unsupported_reason,
)
from streaming.settings import KafkaSettings

TP = TopicPartition("tx", 3)


def batch_bytes(records: list[tuple[Any, Any, Any]], *, base_offset: int = 0, magic: int = 2, compression: int = 0,
                timestamp_ms: int = 1_767_225_600_000) -> bytes:
    """One record batch of ``(key, value, headers)`` records, as kafka-python's producer writes it."""
    builder = MemoryRecordsBuilder(magic=magic, compression_type=compression, batch_size=1 << 20, offset=base_offset)
    for i, (key, value, headers) in enumerate(records):
        assert builder.append(timestamp_ms + 7 * i, key, value, headers if magic == 2 else None) is not None
    builder.close()
    return bytes(builder.buffer())


def parse_both(data: bytes, *, fetch_offset: int = 0, take: int | None = None) -> tuple[list[Any], list[Any], Any]:
    """The records kafka-python's PartitionRecords and ours return for the same bytes, and the two readers."""
    theirs = Fetcher.PartitionRecords(fetch_offset, TP, MemoryRecords(data))
    ours = fast_partition_records()(fetch_offset, TP, MemoryRecords(data))
    return theirs.take(take), ours.take(take), (theirs, ours)


def varied() -> list[tuple[Any, Any, Any]]:
    return [
        (b"card-1", b'{"transaction_id": "t1", "amount": 12.5}', []),
        (None, b"value without a key", []),
        (b"tombstone", None, []),
        (b"", b"", []),
        (b"card-2", b"x" * 70_000, []),  # multi-byte length varints
        (b"card-3", b"with headers", [("trace", b"abc"), ("empty", None), ("\u00e9t\u00e9", b"")]),
        (b"card-\xff\x00", bytes(range(256)), []),  # arbitrary bytes
    ]


def test_the_same_records_as_kafka_python() -> None:
    theirs, ours, _ = parse_both(batch_bytes(varied(), base_offset=40))
    assert len(ours) == len(varied())
    assert ours == theirs
    assert [r.offset for r in ours] == list(range(40, 47))
    assert ours[5].headers == [("trace", b"abc"), ("empty", None), ("\u00e9t\u00e9", b"")]
    assert ours[5].serialized_header_size == theirs[5].serialized_header_size == 5 + 3 + 5 + 0 + 5 + 0  # UTF-8 key bytes + value bytes
    assert (ours[1].key, ours[1].serialized_key_size, ours[2].value, ours[2].serialized_value_size) == (None, -1, None, -1)


def test_several_batches_compressed_and_a_position_inside_a_batch() -> None:
    first = batch_bytes(varied(), base_offset=0)
    second = batch_bytes(varied(), base_offset=7, compression=1)  # gzip
    theirs, ours, (their_part, our_part) = parse_both(first + second, fetch_offset=3)
    assert ours == theirs
    assert [r.offset for r in ours] == list(range(3, 14))  # offsets before the fetch offset are skipped
    assert (our_part.next_fetch_offset, our_part.records_read, our_part.bytes_read) == (
        their_part.next_fetch_offset, their_part.records_read, their_part.bytes_read)


def test_taken_a_few_at_a_time_the_position_follows_each_record() -> None:
    data = batch_bytes(varied(), base_offset=100)
    theirs = Fetcher.PartitionRecords(100, TP, MemoryRecords(data))
    ours = fast_partition_records()(100, TP, MemoryRecords(data))
    for _ in range(3):
        assert ours.take(3) == theirs.take(3)
        assert ours.next_fetch_offset == theirs.next_fetch_offset
    assert not ours and not theirs  # drained once every record is out


def test_log_append_time_batches_take_the_brokers_time() -> None:
    data = bytearray(batch_bytes(varied()))
    # Set the timestamp-type bit of the batch attributes (bytes 21-22) and re-sign the batch,
    # as a broker with log.message.timestamp.type=LogAppendTime does.
    (attributes,) = struct.unpack_from(">h", data, 21)
    struct.pack_into(">h", data, 21, attributes | 0x08)
    theirs, ours, _ = parse_both(signed(data))
    assert ours == theirs
    assert len({r.timestamp for r in ours}) == 1 and ours[0].timestamp_type == 1


def signed(data: bytearray) -> bytes:
    """The batch with its CRC recomputed (after a test edited its attributes)."""
    struct.pack_into(">I", data, 17, calc_crc32c(memoryview(data)[21:]))
    return bytes(data)


def transactional_batch(records: list[tuple[Any, Any, Any]], *, base_offset: int, producer_id: int,
                        abort_marker: bool = False) -> bytes:
    builder = MemoryRecordsBuilder(magic=2, compression_type=0, batch_size=1 << 20, offset=base_offset,
                                   transactional=True, producer_id=producer_id, producer_epoch=0, base_sequence=0)
    for key, value, headers in records:
        builder.append(1_767_225_600_000, key, value, headers)
    builder.close()
    data = bytearray(builder.buffer())
    if abort_marker:
        (attributes,) = struct.unpack_from(">h", data, 21)
        struct.pack_into(">h", data, 21, attributes | 0x20)  # a control batch
    return signed(data)


@pytest.mark.parametrize("committed_only", [False, True])
def test_transactions_and_control_batches_as_kafka_python_reads_them(committed_only: bool) -> None:
    from collections import namedtuple

    from kafka.protocol.consumer import IsolationLevel

    aborted = transactional_batch(varied()[:3], base_offset=0, producer_id=7)
    marker = transactional_batch([(struct.pack(">hh", 0, 0), b"\0" * 6, [])], base_offset=3, producer_id=7,
                                 abort_marker=True)  # control record type 0: abort
    plain = batch_bytes(varied()[3:5], base_offset=4)
    data = aborted + marker + plain
    level = IsolationLevel.READ_COMMITTED if committed_only else IsolationLevel.READ_UNCOMMITTED
    # What the broker's fetch response lists for that partition: producer 7 aborted from offset 0.
    aborted_transactions = [namedtuple("Aborted", "producer_id first_offset")(7, 0)]
    readers = [cls(0, TP, MemoryRecords(data), isolation_level=level, aborted_transactions=aborted_transactions)
               for cls in (Fetcher.PartitionRecords, fast_partition_records())]
    theirs, ours = (reader.take() for reader in readers)
    assert ours == theirs
    # The control batch is never a record; the aborted records are only for read_uncommitted.
    assert [r.offset for r in ours] == ([4, 5] if committed_only else [0, 1, 2, 4, 5])
    assert readers[0].next_fetch_offset == readers[1].next_fetch_offset == 6


def test_legacy_format_goes_through_kafka_pythons_own_loop() -> None:
    records = [(b"k1", b"v1", None), (None, b"v2", None), (b"k3", None, None)]
    theirs, ours, _ = parse_both(batch_bytes(records, magic=1, base_offset=5))
    assert ours == theirs and [r.value for r in ours] == [b"v1", b"v2", None]


@pytest.mark.parametrize("cut", [1, 20, 200])
def test_a_truncated_record_is_corrupt_not_a_crash(cut: int) -> None:
    """Bytes cut from the end of the records (and the batch length and CRC fixed to match).

    A CRC-valid batch with malformed records can only come from a broken producer or broker;
    numba does not bounds-check, so the kernel's own checks are what stand between it and
    reading past the buffer.
    """
    data = bytearray(batch_bytes(varied())[:-cut])
    struct.pack_into(">i", data, 8, len(data) - 12)
    data = bytearray(signed(data))
    # The compiled reader checks the whole batch before it hands out a record, so it raises at once;
    # kafka-python's hands out the records before the damage first and raises on the next take.
    # Either way the consumer cannot read past the damage.
    with pytest.raises(CorruptRecordError):
        fast_partition_records()(0, TP, MemoryRecords(bytes(data))).take()
    theirs = Fetcher.PartitionRecords(0, TP, MemoryRecords(bytes(data)))
    with pytest.raises(CorruptRecordError):
        theirs.take()
        theirs.take()


def test_the_kernel_checks_every_length_against_the_buffer() -> None:
    good = batch_bytes([(b"k", b"value", [])])
    records_at = 61  # the v2 batch header is 61 bytes
    layout, end = record_layout(np.frombuffer(good, np.uint8), records_at, 1)
    assert end == len(good) and layout[0].tolist()[3:7] == [records_at + 5, 1, records_at + 7, 5]  # key, value: where, how long
    for bad in (
        bytearray(good[:-1]),  # the record is one byte short of its length
        bytearray(good[:records_at]) + b"\xff",  # a length varint that never ends
    ):
        with pytest.raises(ValueError):
            record_layout(np.frombuffer(bytes(bad), np.uint8), records_at, 1)
    declares_more = bytearray(good)
    declares_more[records_at + 6] = 0x7E  # the value's length: 63 bytes, more than the record holds
    with pytest.raises(ValueError, match="past the end"):
        record_layout(np.frombuffer(bytes(declares_more), np.uint8), records_at, 1)


def test_a_consumer_without_the_internals_is_left_as_it_is() -> None:
    # A bare object stands in for another kafka-python release: it cannot be installed beside the pinned one.
    class OtherConsumer:
        pass

    assert "no KafkaConsumer._fetcher" in (unsupported_reason(OtherConsumer()) or "")
    assert install(OtherConsumer()) is False


def test_the_service_consumer_reads_through_it_on_the_real_broker(broker: EmbeddedBroker) -> None:
    topic = f"fetch-{uuid.uuid4().hex[:8]}"
    ensure_topics(broker.bootstrap, [topic], 1)
    producer = KafkaProducer(bootstrap_servers=broker.bootstrap, linger_ms=20)
    sent = [(f"card-{i % 7}".encode(), f'{{"n": {i}}}'.encode(), [("h", b"1")] if i % 50 == 0 else []) for i in range(3000)]
    for key, value, headers in sent:
        producer.send(topic, key=key, value=value, headers=headers)
    producer.flush()
    producer.close()
    settings = KafkaSettings(bootstrap=broker.bootstrap, transactions_topic=topic, group_id=f"g-{uuid.uuid4().hex[:6]}")
    consumer = make_consumer(settings)
    assert consumer._fetcher.PartitionRecords is fast_partition_records()
    got = poll_all(consumer, len(sent))
    assert [(r.key, r.value, r.headers) for r in got] == [(k, v, h) for k, v, h in sent]
    assert [r.offset for r in got] == list(range(len(sent)))
    # And kafka-python's own consumer reads the same records from the same topic.
    plain = KafkaConsumer(bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False,
                          metrics_enabled=False)
    plain.assign([TopicPartition(topic, 0)])
    assert poll_all(plain, len(sent)) == got


def poll_all(consumer: Any, expected: int) -> list[Any]:
    """Poll until ``expected`` records came (or 100 polls), then close the consumer."""
    got: list[Any] = []
    try:
        for _ in range(100):
            for records in consumer.poll(timeout_ms=200).values():
                got.extend(records)
            if len(got) >= expected:
                break
    finally:
        consumer.close()
    return got
