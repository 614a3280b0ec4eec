"""The safety net in the pure pipeline: a scorer, a card builder or an output that raises on one
transaction costs that transaction only (no broker needed to see the rule)."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

import pytest

from features.pipeline import Refusal
from features.schema import Transaction
from streaming.pipeline import decode_batch, score_decoded
from streaming.records import HEADER_ERROR_CLASS, HEADER_ERROR_MESSAGE, SourceRecord
from streaming.scoring import RuleScorer, ScoredBatch


def batch(n: int, bad: dict[int, dict[str, Any]] | None = None) -> Any:
    records = []
    for i in range(n):
        payload = {"transaction_id": f"t{i}", "timestamp": "2026-01-01T10:00:00Z", "card_id": f"c{i}",
                   "merchant_id": "m1", "amount": 10.0 + i, **(bad or {}).get(i, {})}
        records.append(SourceRecord("transactions", 0, i, None, json.dumps(payload).encode(), 0))
    return decode_batch(records, max_bytes=65536)


class FragileScorer(RuleScorer):
    """RuleScorer with a planted bug (amount 13.0 raises): the net is for bugs nobody has found yet."""

    def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch:
        if any(tx.amount == 13.0 for tx in txs):
            raise ArithmeticError("planted scoring bug " + "x" * 1000)
        return super().score_batch(txs)


def test_a_batch_the_scorer_raises_on_is_scored_row_by_row_and_the_culprit_dead_lettered() -> None:
    out = score_decoded(batch(6), FragileScorer(), received_at=time.time())
    assert [s.transaction_id for s in out.scores] == ["t0", "t1", "t2", "t4", "t5"]
    (dead,) = out.dead
    assert dead.source.offset == 3
    assert dead.reason.startswith("processing failed in scoring: ArithmeticError: planted scoring bug xxx")
    assert len(dead.reason) < 400  # the message is cut to a sane length
    headers = dict(dead.headers())
    assert headers[HEADER_ERROR_CLASS] == b"ArithmeticError"
    assert headers[HEADER_ERROR_MESSAGE].startswith(b"planted scoring bug") and len(headers[HEADER_ERROR_MESSAGE]) < 400


def test_transient_errors_propagate_for_the_caller_to_retry() -> None:
    class Outage(RuleScorer):
        def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch:
            raise ConnectionError("state store unreachable")

    with pytest.raises(ConnectionError):
        score_decoded(batch(3), Outage(), received_at=time.time(), transient=(ConnectionError,))


def test_a_scorer_that_refuses_rows_gets_them_dead_lettered_with_its_reason() -> None:
    class Refusing(RuleScorer):
        def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch:
            kept = [tx for tx in txs if tx.transaction_id != "t1"]
            scored = super().score_batch(kept)
            scored.refused = [Refusal(1, "t1", "older than the card's latest transaction by more than 1 day")]
            return scored  # ``kept`` left unset: the pipeline derives it from the refusals

    out = score_decoded(batch(3), Refusing(), received_at=time.time())
    assert [s.transaction_id for s in out.scores] == ["t0", "t2"]
    assert [(d.source.offset, d.reason) for d in out.dead] == [
        (1, "older than the card's latest transaction by more than 1 day")]
    assert out.scores[1].score == RuleScorer().score_one(12.0)  # rows stay aligned with their scores


def test_every_score_carries_its_content_fingerprint() -> None:
    out = score_decoded(batch(2), RuleScorer(), received_at=time.time())
    assert all(s.fingerprint and len(s.fingerprint) == 32 for s in out.scores)
    assert out.scores[0].fingerprint != out.scores[1].fingerprint


def test_a_transaction_id_that_cannot_be_encoded_is_dead_lettered_before_any_output() -> None:
    # A genuine poison record, no planted bug: the stdlib JSON parser (the fallback for what orjson
    # refuses) turns "\\ud800" into a lone surrogate, which neither Kafka nor the store can encode.
    decoded = batch(3)
    decoded.transactions[1] = Transaction("t\ud800", decoded.transactions[1].timestamp_ms, "c1", "m1", 11.0)
    out = score_decoded(decoded, RuleScorer(), received_at=time.time())
    assert [s.transaction_id for s in out.scores] == ["t0", "t2"]
    (dead,) = out.dead
    assert dead.source.offset == 1
    assert dead.reason == "processing failed in score record: TypeError: str is not valid UTF-8: surrogates not allowed"
