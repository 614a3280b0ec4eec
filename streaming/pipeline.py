"""The pure part of the service: bytes in, records out.

No Kafka and no I/O here, so every rule can be tested with plain values:

* :func:`decode_batch` turns consumed records into validated transactions or
  dead letters that say why (never raises on bad input);
* :func:`score_decoded` runs a :class:`~streaming.scoring.Scorer` on the valid
  ones and builds the score records and alert cards.

The Kafka loop (`streaming.consumer`) only moves bytes and offsets around these.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from features.schema import SchemaError, Transaction
from streaming.alerts import CardBuilder, MinimalCards
from streaming.records import AlertOut, BatchOutputs, DeadLetter, ScoreOut, ShadowOut, SourceRecord
from streaming.scoring import Scorer

#: Ids end up as primary keys in PostgreSQL/SQLite; unbounded ids would let one
#: record break every later store write, so they are bounded here.
MAX_ID_LENGTH = 128
_ID_FIELDS = ("transaction_id", "card_id", "merchant_id")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f]")
_TEXT_FIELDS = ("transaction_id", "card_id", "merchant_id", "currency", "customer_id", "mcc", "channel", "country", "device_id")


@dataclass(slots=True)
class Decoded:
    """A micro-batch after decoding: valid transactions (with their source) and dead letters."""

    transactions: list[Transaction] = field(default_factory=list)
    sources: list[SourceRecord] = field(default_factory=list)
    dead: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0

    def without(self, transaction_ids: set[str]) -> Decoded:
        """The same batch minus transactions already scored (a replay); they are counted as duplicates."""
        if not transaction_ids:
            return self
        kept = [(tx, src) for tx, src in zip(self.transactions, self.sources, strict=True) if tx.transaction_id not in transaction_ids]
        return Decoded(
            transactions=[tx for tx, _ in kept],
            sources=[src for _, src in kept],
            dead=self.dead,
            duplicates=self.duplicates + len(self.transactions) - len(kept),
        )


def decode_record(record: SourceRecord, *, max_bytes: int) -> Transaction | DeadLetter:
    """One record → a valid :class:`Transaction`, or a :class:`DeadLetter` with the reason.

    Reasons name the field and the rule, never the offending value: values can be PII
    and the DLQ keeps the original bytes anyway.
    """
    value = record.value
    if value is None:
        return DeadLetter(record, "empty record (no value)")
    if len(value) > max_bytes:
        # Checked before parsing so a huge payload costs nothing but its size check.
        return DeadLetter(record, f"payload too large: {len(value)} bytes > {max_bytes}")
    try:
        # orjson parses (and checks UTF-8) several times faster than json; anything it
        # refuses goes through the stdlib parser, which decides, so the accepted inputs
        # and the dead-letter reasons are the stdlib's either way.
        parsed: Any = orjson.loads(value)
    except orjson.JSONDecodeError:
        parsed = _parse_strictly(value)
        if isinstance(parsed, _Reason):
            return DeadLetter(record, str(parsed))
    if not isinstance(parsed, dict):
        return DeadLetter(record, f"expected a JSON object, got {_json_type(parsed)}")
    try:
        tx = Transaction.from_mapping(parsed)
    except SchemaError as exc:
        return DeadLetter(record, f"invalid field '{exc.field}': {exc.reason}", exc.field)
    except Exception as exc:  # noqa: BLE001 - a validator bug must dead-letter the record, not stop the service
        return DeadLetter(record, f"validation failed: {type(exc).__name__}")
    # A valid JSON string holds a control character only as a backslash escape: without a
    # backslash in the record there is none to look for.
    problem = _storage_problem(tx, escaped=b"\\" in value)
    if problem is not None:
        return DeadLetter(record, f"invalid field '{problem[0]}': {problem[1]}", problem[0])
    return tx


class _Reason(str):
    """A dead-letter reason (distinguished from a parsed JSON string)."""


def _parse_strictly(value: bytes) -> Any:
    """The stdlib JSON parse of a record orjson refused: the parsed value, or a :class:`_Reason`."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return _Reason("not UTF-8 text (binary payload)")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        return _Reason(f"malformed JSON: {exc.msg} at position {exc.pos}")
    except RecursionError:
        return _Reason("malformed JSON: nested too deeply")


def _storage_problem(tx: Transaction, *, escaped: bool = True) -> tuple[str, str] | None:
    # One comparison for the usual record; only a long id looks for the field to name.
    if max(len(tx.transaction_id), len(tx.card_id), len(tx.merchant_id)) > MAX_ID_LENGTH:
        for name in _ID_FIELDS:
            if len(getattr(tx, name)) > MAX_ID_LENGTH:
                return name, f"longer than {MAX_ID_LENGTH} characters"
    if not escaped:
        return None
    texts = [getattr(tx, name) for name in _TEXT_FIELDS]
    # One search over all fields (a record with no control characters, the usual case, costs one
    # regex call); only a hit looks for the field to name.
    if _CONTROL_CHARS.search("".join(t for t in texts if t is not None)):
        for name, text in zip(_TEXT_FIELDS, texts, strict=True):
            # PostgreSQL text cannot hold NUL; control characters in ids are never legitimate.
            if text is not None and _CONTROL_CHARS.search(text):
                return name, "contains control characters"
    return None


def _json_type(value: Any) -> str:
    if isinstance(value, list):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return "a number"


def decode_batch(records: Iterable[SourceRecord], *, max_bytes: int) -> Decoded:
    """Decode a micro-batch. A transaction id seen twice in it is scored once (the first)."""
    out = Decoded()
    seen: set[str] = set()
    for record in records:
        result = decode_record(record, max_bytes=max_bytes)
        if isinstance(result, DeadLetter):
            out.dead.append(result)
        elif result.transaction_id in seen:
            out.duplicates += 1
        else:
            seen.add(result.transaction_id)
            out.transactions.append(result)
            out.sources.append(record)
    return out


def _shadow_builder(shadow: Any, champion_version: str) -> Callable[[int, Transaction, ScoreOut], ShadowOut]:
    """The challenger's verdict on row ``i``, beside the champion's score and decision."""
    scores, alerts = shadow.scores.tolist(), shadow.alerts.tolist()

    def build(i: int, tx: Transaction, champion: ScoreOut) -> ShadowOut:
        return ShadowOut(
            transaction_id=tx.transaction_id,
            key=champion.key,
            model_version=shadow.model_version,
            score=scores[i],
            decision="alert" if alerts[i] else "pass",
            threshold=shadow.threshold,
            champion_version=champion_version,
            champion_score=champion.score,
            champion_decision=champion.decision,
            event_time_ms=tx.timestamp_ms,
        )

    return build


def score_decoded(
    decoded: Decoded,
    scorer: Scorer,
    *,
    received_at: float,
    clock: Callable[[], float] = time.time,
    cards: CardBuilder | None = None,
) -> BatchOutputs:
    """Score the valid transactions of a batch and build every output record.

    ``received_at`` (epoch seconds) is when the batch was polled; each score carries
    the processing time from then to now. Alert cards come from ``cards`` (default:
    minimal masked cards), built once for all alerted rows of the batch. A challenger's
    verdicts (shadow scoring) ride on the scores and never become alerts.
    """
    outputs = BatchOutputs(dead=list(decoded.dead))
    txs: Sequence[Transaction] = decoded.transactions
    if not txs:
        return outputs
    scored = scorer.score_batch(txs)
    processing_ms = (clock() - received_at) * 1000.0
    threshold = float(scored.threshold)
    shadow = scored.shadow
    outputs.drift = scored.drift
    version = scored.model_version
    # Plain lists and positional named tuples: this loop runs once per transaction, and
    # indexing numpy arrays element by element costs more than converting them once.
    values = scored.scores.tolist()
    alerted = np.flatnonzero(scored.alerts).tolist()
    decisions = ["pass"] * len(txs)
    for i in alerted:
        decisions[i] = "alert"
    keys = [src.key or tx.card_id.encode() for tx, src in zip(txs, decoded.sources, strict=True)]
    rows = zip(txs, decoded.sources, keys, values, decisions, strict=True)
    outputs.scores = [
        ScoreOut(tx.transaction_id, key, value, decision, threshold, version, tx.timestamp_ms,
                 src.partition, src.offset, src.timestamp_ms, processing_ms)
        for tx, src, key, value, decision in rows
    ]
    if shadow is not None:
        verdict = _shadow_builder(shadow, version)
        outputs.scores = [
            score._replace(shadow=verdict(i, tx, score))
            for i, (tx, score) in enumerate(zip(txs, outputs.scores, strict=True))
        ]
    if alerted:
        alerted_txs = [txs[i] for i in alerted]
        built = (cards or MinimalCards()).build(alerted_txs, scored, alerted)
        for i, card in zip(alerted, built, strict=True):
            score = outputs.scores[i]
            outputs.alerts.append(
                AlertOut(transaction_id=score.transaction_id, key=score.key, score=score.score,
                         model_version=score.model_version, card=card)
            )
    return outputs
