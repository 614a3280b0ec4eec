"""Reading fetched record batches in compiled code instead of record by record in Python.

Why: kafka-python parses every consumed record in Python (a varint at a time, a
``DefaultRecord`` and then a ``ConsumerRecord`` per record). Once scores left as whole
batches (``streaming.record_batches``) that was the largest Kafka cost left in the scoring
loop. Here one compiled call per record batch (:func:`record_layout`, numba) finds where
every record's fields lie, and a short Python loop slices keys and values out and builds
the same ``ConsumerRecord`` tuples. Measured on the streaming benchmark's records, our
2-core box: parsing alone 10.8 us a record in kafka-python against 1.7 us here (both with
the collector off); a bare consumer polling the embedded broker used 16-18 us of CPU a record
before and 7-7.6 us after (alternating runs).

:class:`FastPartitionRecords` replaces kafka-python's ``Fetcher.PartitionRecords`` on
one consumer (:func:`install`). Its batch-level logic (CRC check, transactions, control
batches, the fetch position) takes kafka-python 3.0.12's steps in the same order; only the
loop over the records of a format-v2 batch is new. Older formats (brokers before 0.11) go
through a copy of kafka-python's own per-record loop. The tests parse the same batches
both ways (keys, values, nulls, headers, compressed, log-append time, a skipped offset
prefix, format v1) and require identical records. One difference: a malformed batch raises
``CorruptRecordError`` before any of its records is handed out (the whole layout is read
first), where kafka-python hands out the records before the damage and raises on the next
poll; either way the consumer cannot read past the damage.

This uses kafka-python internals, so pyproject pins the minor series, :func:`install`
checks what it uses and leaves the consumer as it is (logging why) when one is missing.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import numpy as np
from numba import njit

log = logging.getLogger(__name__)

#: Columns of :func:`record_layout`'s table, one row per record.
LENGTH, TS_DELTA, OFFSET_DELTA, KEY_POS, KEY_LEN, VALUE_POS, VALUE_LEN, HEADER_COUNT, HEADERS_POS, RECORD_END = range(10)
_COLUMNS = 10


@njit(cache=True, nogil=True)
def _varint(buf, pos, stop):
    """A zigzag varint (Kafka's varint and varlong) at ``pos``, and the position after it."""
    result = 0
    shift = 0
    while True:
        if pos >= stop:
            raise ValueError("varint runs past the end of the record")
        byte = buf[pos]
        pos += 1
        result |= np.int64(byte & 0x7F) << shift
        if byte < 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7
        if shift >= 64:
            raise ValueError("varint out of int64 range")


@njit(cache=True, nogil=True)
def record_layout(buf, pos, count):
    """Where the fields of ``count`` v2 records starting at ``buf[pos]`` lie; and where they end.

    Every read is bounds-checked against the buffer and the record's own length (numba
    does not check array indexing), and a record whose fields do not fill exactly its
    length raises ``ValueError``, as kafka-python's parser does. Headers are only
    located (count and start): the caller decodes the rare records that have some.
    """
    end = buf.shape[0]
    out = np.empty((count, _COLUMNS), np.int64)
    for row in range(count):
        length, pos = _varint(buf, pos, end)
        stop = pos + length
        if length < 0 or stop > end:
            raise ValueError("record length runs past the end of the batch")
        _attributes, pos = _varint(buf, pos, stop)
        ts_delta, pos = _varint(buf, pos, stop)
        offset_delta, pos = _varint(buf, pos, stop)
        key_len, pos = _varint(buf, pos, stop)
        key_pos = pos
        if key_len > 0:
            pos += key_len
        value_len, pos = _varint(buf, pos, stop)
        value_pos = pos
        if value_len > 0:
            pos += value_len
        if pos > stop:
            raise ValueError("key or value runs past the end of the record")
        header_count, pos = _varint(buf, pos, stop)
        if header_count < 0:
            raise ValueError("negative record header count")
        if header_count == 0 and pos != stop:
            raise ValueError("record fields do not fill the record's length")
        out[row, LENGTH] = length
        out[row, TS_DELTA] = ts_delta
        out[row, OFFSET_DELTA] = offset_delta
        out[row, KEY_POS] = key_pos
        out[row, KEY_LEN] = key_len
        out[row, VALUE_POS] = value_pos
        out[row, VALUE_LEN] = value_len
        out[row, HEADER_COUNT] = header_count
        out[row, HEADERS_POS] = pos
        out[row, RECORD_END] = stop
        pos = stop
    return out, pos


def _headers(data: bytes, pos: int, count: int, stop: int) -> list[tuple[str, bytes | None]]:
    """Decode ``count`` headers at ``pos``; they must end exactly at ``stop`` (the record's end)."""
    from kafka.errors import CorruptRecordError
    from kafka.record.util import decode_varint

    headers: list[tuple[str, bytes | None]] = []
    for _ in range(count):
        key_len, pos = decode_varint(data, pos)
        if key_len < 0:
            raise CorruptRecordError(f"Invalid negative header key size {key_len}")
        key = data[pos : pos + key_len].decode("utf-8")
        pos += key_len
        value_len, pos = decode_varint(data, pos)
        value = None
        if value_len >= 0:
            value = data[pos : pos + value_len]
            pos += value_len
        headers.append((key, value))
    if pos != stop:
        raise CorruptRecordError(f"Invalid record size: headers end at {pos}, the record at {stop}")
    return headers


@functools.cache
def fast_partition_records() -> type:
    """The class, built once on first use; the kernel is compiled (or loaded from numba's cache) here too,
    so that the first poll does not pay for it."""
    record_layout(np.zeros(1, np.uint8), 0, 0)
    from kafka.consumer.fetcher import ConsumerRecord, Fetcher
    from kafka.errors import CorruptRecordError
    from kafka.protocol.consumer import IsolationLevel

    class FastPartitionRecords(Fetcher.PartitionRecords):
        """``Fetcher.PartitionRecords`` whose v2 batches are parsed by :func:`record_layout`."""

        def _unpack_records(self, tp: Any, records: Any, key_deserializer: Any, value_deserializer: Any) -> Any:
            # kafka-python 3.0.12's PartitionRecords._unpack_records: the same steps per batch, in the same order.
            try:
                batch = records.next_batch()
                last_batch = None
                while batch is not None:
                    last_batch = batch

                    if self.check_crcs and not batch.validate_crc():
                        raise CorruptRecordError(
                            f"Record batch for partition {self.topic_partition} at offset {batch.base_offset}"
                            " failed crc check")

                    if batch.magic == 2:
                        self.leader_epoch = batch.leader_epoch
                        if self.isolation_level == IsolationLevel.READ_COMMITTED and batch.has_producer_id():
                            self._consume_aborted_transactions_up_to(batch.last_offset)
                            producer_id = batch.producer_id
                            if self._contains_abort_marker(batch):
                                self.aborted_producer_ids.discard(producer_id)
                            elif self._is_batch_aborted(batch):
                                self.next_fetch_offset = batch.next_offset
                                batch = records.next_batch()
                                continue
                        if batch.is_control_batch:
                            self.next_fetch_offset = batch.next_offset
                            batch = records.next_batch()
                            continue
                        yield from self._v2_records(tp, batch, key_deserializer, value_deserializer)
                    else:
                        yield from self._legacy_records(tp, batch, key_deserializer, value_deserializer)

                    batch = records.next_batch()
                else:
                    # Format v2 keeps a batch's last offset even when compaction removed its last
                    # record: fetching from there avoids fetching the same batch again.
                    if last_batch and last_batch.magic == 2:
                        self.next_fetch_offset = last_batch.next_offset
                    self.drain()
            except StopIteration:
                # A StopIteration escaping into the generator would end it silently (kafka-python issue 545).
                log.exception("StopIteration raised unpacking messageset")
                raise RuntimeError("StopIteration raised unpacking messageset") from None

        def _v2_records(self, tp: Any, batch: Any, key_deserializer: Any, value_deserializer: Any) -> Any:
            batch._maybe_uncompress()
            buffer = batch._buffer
            try:
                layout, end = record_layout(np.frombuffer(buffer, np.uint8), batch._pos, batch._num_records)
            except ValueError as exc:
                raise CorruptRecordError(f"Found invalid record structure: {exc}") from None
            if end != len(buffer):
                raise CorruptRecordError(f"{len(buffer) - end} unconsumed bytes after all records consumed")
            data = bytes(buffer)  # one copy per batch; keys and values are slices of it
            topic, partition, epoch = tp.topic, tp.partition, self.leader_epoch
            base_offset, timestamp_type = batch.base_offset, batch.timestamp_type
            log_append = timestamp_type == batch.LOG_APPEND_TIME
            first_timestamp = batch.max_timestamp if log_append else batch.first_timestamp
            deserialize = key_deserializer is not None or value_deserializer is not None
            for length, ts_delta, offset_delta, key_pos, key_len, value_pos, value_len, n_headers, headers_pos, stop in (
                layout.tolist()
            ):
                key = data[key_pos : key_pos + key_len] if key_len >= 0 else None
                value = data[value_pos : value_pos + value_len] if value_len >= 0 else None
                headers: list[tuple[str, bytes | None]] = []
                header_size = -1
                if n_headers:
                    headers = _headers(data, headers_pos, n_headers, stop)
                    header_size = sum(len(k.encode("utf-8")) + (len(v) if v is not None else 0) for k, v in headers)
                if deserialize:
                    key = self._deserialize(key_deserializer, topic, headers, key)
                    value = self._deserialize(value_deserializer, topic, headers, value)
                offset = base_offset + offset_delta
                self.records_read += 1
                self.bytes_read += length
                self.next_fetch_offset = offset + 1
                yield ConsumerRecord(topic, partition, epoch, offset,
                                     first_timestamp if log_append else first_timestamp + ts_delta,
                                     timestamp_type, key, value, headers, None,
                                     key_len if key_len >= 0 else -1, value_len if value_len >= 0 else -1,
                                     header_size)

        def _legacy_records(self, tp: Any, batch: Any, key_deserializer: Any, value_deserializer: Any) -> Any:
            # Message formats 0 and 1 (brokers before 0.11): kafka-python's own per-record loop.
            for record in batch:
                if self.check_crcs and not record.validate_crc():
                    raise CorruptRecordError(
                        f"Record for partition {self.topic_partition} at offset {record.offset} failed crc check")
                key_size = len(record.key) if record.key is not None else -1
                value_size = len(record.value) if record.value is not None else -1
                key = self._deserialize(key_deserializer, tp.topic, record.headers, record.key)
                value = self._deserialize(value_deserializer, tp.topic, record.headers, record.value)
                self.records_read += 1
                self.bytes_read += record.size_in_bytes
                self.next_fetch_offset = record.offset + 1
                yield ConsumerRecord(
                    tp.topic, tp.partition, self.leader_epoch, record.offset, record.timestamp,
                    record.timestamp_type, key, value, record.headers, record.checksum,
                    key_size, value_size, -1)

    return FastPartitionRecords


_FETCHER_INTERNALS = ("PartitionRecords",)
_PARTITION_RECORDS_INTERNALS = ("_unpack_records", "_deserialize", "_consume_aborted_transactions_up_to",
                                "_contains_abort_marker", "_is_batch_aborted", "drain")
_BATCH_INTERNALS = ("_maybe_uncompress", "_buffer", "_pos", "_num_records")


def unsupported_reason(consumer: Any) -> str | None:
    """Why :func:`install` cannot serve ``consumer`` (``None``: it can)."""
    import kafka
    from kafka.record.default_records import DefaultRecordBatch

    fetcher = getattr(consumer, "_fetcher", None)
    if fetcher is None:
        return f"kafka-python {kafka.__version__} has no KafkaConsumer._fetcher"
    missing = [f"Fetcher.{name}" for name in _FETCHER_INTERNALS if not hasattr(fetcher, name)]
    if not missing:
        missing = [f"PartitionRecords.{name}" for name in _PARTITION_RECORDS_INTERNALS
                   if not hasattr(fetcher.PartitionRecords, name)]
    # The batch's slots are checked on the class: __slots__ names every attribute an instance can have.
    missing += [f"DefaultRecordBatch.{name}" for name in _BATCH_INTERNALS
                if not hasattr(DefaultRecordBatch, name) and name not in getattr(DefaultRecordBatch, "__slots__", ())]
    if missing:
        return f"kafka-python {kafka.__version__} has no {', '.join(missing)}"
    return None


def install(consumer: Any) -> bool:
    """Parse ``consumer``'s fetched v2 batches with :func:`record_layout`; False (and a log line) when unsupported."""
    reason = unsupported_reason(consumer)
    if reason:
        log.warning("parsing consumed records in Python (slower)", extra={"reason": reason})
        return False
    consumer._fetcher.PartitionRecords = fast_partition_records()
    return True
