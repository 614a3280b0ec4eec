"""The pure pipeline: bytes in, transactions or dead letters with a reason out."""

from __future__ import annotations

import json
from typing import Any

import pytest

from features.schema import MAX_ID_LENGTH, Transaction
from streaming.alerts import mask_card
from streaming.pipeline import decode_batch, decode_record, score_decoded
from streaming.records import (
    HEADER_OFFSET,
    HEADER_PARTITION,
    HEADER_REASON,
    HEADER_TOPIC,
    DeadLetter,
    SourceRecord,
)
from streaming.scoring import RuleScorer

GOOD: dict[str, Any] = {
    "transaction_id": "t-1",
    "timestamp": "2026-01-01T10:00:00Z",
    "card_id": "4000000000001234",
    "merchant_id": "m-1",
    "amount": 12.5,
}


def record(value: bytes | None, offset: int = 0, key: bytes | None = b"card") -> SourceRecord:
    return SourceRecord("transactions", 2, offset, key, value, 1_767_261_600_000)


def as_bytes(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def test_numeric_ids_decode_as_their_text_and_other_fields_keep_their_rules() -> None:
    tx = decode_record(record(as_bytes({**GOOD, "card_id": 12345, "merchant_id": " m9 ", "amount": 7})), max_bytes=65536)
    assert isinstance(tx, Transaction), tx
    assert (tx.card_id, tx.merchant_id, tx.amount) == ("12345", "m9", 7.0)


def test_valid_record_decodes_to_a_transaction() -> None:
    tx = decode_record(record(as_bytes(GOOD)), max_bytes=65536)
    assert not isinstance(tx, DeadLetter)
    assert tx.transaction_id == "t-1" and tx.amount == 12.5


@pytest.mark.parametrize(
    ("value", "reason_start", "field"),
    [
        (None, "empty record", None),
        (b"", "malformed JSON", None),
        (b"{not json", "malformed JSON", None),
        (b"\xff\xfe\x00\x81binary\x00junk", "not UTF-8", None),
        (bytes(range(256)), "not UTF-8", None),
        (b"[" * 100_000 + b"]" * 100_000, "payload too large", None),
        (b"[" * 30_000 + b"]" * 30_000, "malformed JSON: nested too deeply", None),
        (as_bytes([GOOD]), "expected a JSON object, got an array", None),
        (as_bytes("hello"), "expected a JSON object, got a string", None),
        (as_bytes(42), "expected a JSON object, got a number", None),
        (as_bytes({k: v for k, v in GOOD.items() if k != "amount"}), "invalid field 'amount': missing", "amount"),
        (as_bytes({**GOOD, "card_id": None}), "invalid field 'card_id': missing", "card_id"),
        (as_bytes({**GOOD, "amount": "lots"}), "invalid field 'amount': not a number", "amount"),
        (as_bytes({**GOOD, "amount": -3}), "invalid field 'amount': negative", "amount"),
        (as_bytes({**GOOD, "amount": True}), "invalid field 'amount'", "amount"),
        (as_bytes({**GOOD, "timestamp": "yesterday-ish"}), "invalid field 'timestamp'", "timestamp"),
        (as_bytes({**GOOD, "timestamp": [1, 2]}), "invalid field 'timestamp'", "timestamp"),
        (as_bytes({**GOOD, "merchant_id": {"a": 1}}), "invalid field 'merchant_id'", "merchant_id"),
        (as_bytes({**GOOD, "latitude": 123.0}), "invalid field 'latitude': out of range", "latitude"),
        (as_bytes({**GOOD, "transaction_id": "x" * (MAX_ID_LENGTH + 1)}), "invalid field 'transaction_id': longer", "transaction_id"),
        (as_bytes({**GOOD, "merchant_id": "m" * (MAX_ID_LENGTH + 1)}), "invalid field 'merchant_id': longer", "merchant_id"),
        (as_bytes({**GOOD, "amount": float("inf")}), "invalid field 'amount': not a finite", "amount"),
        (as_bytes({**GOOD, "amount": -0.01}), "invalid field 'amount': negative", "amount"),
        (as_bytes({**GOOD, "transaction_id": "t\u00001"}), "invalid field 'transaction_id': contains control", "transaction_id"),
        (as_bytes({**GOOD, "device_id": "d\t2"}), "invalid field 'device_id': contains control", "device_id"),
        # A raw (unescaped) control byte inside a string is not JSON at all.
        (as_bytes(GOOD).replace(b'"card_id": "', b'"card_id": "\x01'), "malformed JSON", None),
        (b'{"amount": NaN, "transaction_id": "t", "timestamp": 1767261600, "card_id": "c", "merchant_id": "m"}', "invalid field 'amount'", "amount"),
    ],
)
def test_bad_records_become_dead_letters_with_a_reason(value: bytes | None, reason_start: str, field: str | None) -> None:
    result = decode_record(record(value), max_bytes=65536)
    assert isinstance(result, DeadLetter), result
    assert result.reason.startswith(reason_start), result.reason
    assert result.field == field
    assert result.source.value == value  # the original bytes travel to the DLQ untouched


def test_dead_letter_reason_never_echoes_the_value() -> None:
    secret = "4111-1111-1111-1111 not a number"
    result = decode_record(record(as_bytes({**GOOD, "amount": secret})), max_bytes=65536)
    assert isinstance(result, DeadLetter)
    assert "4111" not in result.reason


def test_dead_letter_headers_carry_reason_and_source() -> None:
    dead = decode_record(record(b"junk", offset=17), max_bytes=65536)
    assert isinstance(dead, DeadLetter)
    headers = dict(dead.headers())
    assert headers[HEADER_REASON].startswith(b"malformed JSON")
    assert headers[HEADER_TOPIC] == b"transactions"
    assert headers[HEADER_PARTITION] == b"2"
    assert headers[HEADER_OFFSET] == b"17"


def test_decode_batch_splits_and_scores_a_repeated_id_once() -> None:
    records = [record(as_bytes(GOOD), 0), record(b"bad", 1), record(as_bytes(GOOD), 2), record(as_bytes({**GOOD, "transaction_id": "t-2"}), 3)]
    decoded = decode_batch(records, max_bytes=65536)
    assert [tx.transaction_id for tx in decoded.transactions] == ["t-1", "t-2"]
    assert [s.offset for s in decoded.sources] == [0, 3]
    assert len(decoded.dead) == 1 and decoded.duplicates == 1
    replay = decoded.without({"t-1"})
    assert [tx.transaction_id for tx in replay.transactions] == ["t-2"] and replay.duplicates == 2


def test_score_decoded_builds_scores_and_masked_alert_cards() -> None:
    records = [
        record(as_bytes({**GOOD, "transaction_id": "small", "amount": 10}), 0),
        record(as_bytes({**GOOD, "transaction_id": "big", "amount": 5000}), 1, key=None),
        record(b"\x00", 2),
    ]
    decoded = decode_batch(records, max_bytes=65536)
    out = score_decoded(decoded, RuleScorer(threshold=0.9), received_at=0.0, clock=lambda: 0.005)
    assert [(s.transaction_id, s.decision) for s in out.scores] == [("small", "pass"), ("big", "alert")]
    assert out.scores[0].key == b"card"
    assert out.scores[1].key == GOOD["card_id"].encode()  # unkeyed input: keyed by card for the outputs
    assert out.scores[0].processing_ms == pytest.approx(5.0)
    assert len(out.dead) == 1
    (alert,) = out.alerts
    assert alert.transaction_id == "big"
    assert alert.card["transaction"]["card"] == "****1234"
    assert alert.card["transaction"]["transaction_id"] == "big"
    assert GOOD["card_id"] not in json.dumps(alert.card)
    assert alert.card["model_version"] == "rule-amount-v1"


def test_mask_card_keeps_only_the_last_four() -> None:
    assert mask_card("4000123412341234") == "****1234"
    assert mask_card("123") == "****"
