"""The pure part of the service: bytes in, records out.

No Kafka and no I/O here, so every rule can be tested with plain values:

* :func:`decode_batch` turns consumed records into validated transactions or
  dead letters that say why (never raises on bad input);
* :func:`score_decoded` runs a :class:`~streaming.scoring.Scorer` on the valid
  ones and builds the score records and alert cards.

The Kafka loop (`streaming.consumer`) only moves bytes and offsets around these.
"""

from __future__ import annotations

import hashlib
import json
import logging
import operator
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from features.pipeline import failure_reason, short_message
from features.schema import DEFAULT_LIMITS, SchemaError, Transaction, ValidationLimits
from streaming.alerts import CardBuilder, MinimalCards
from streaming.records import AlertOut, BatchOutputs, DeadLetter, ScoreOut, ShadowOut, SourceRecord
from streaming.scoring import ScoredBatch, Scorer, ShadowScores

log = logging.getLogger(__name__)


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

    def split_replayed(self, scored: Mapping[str, str | None]) -> tuple[Decoded, Decoded]:
        """Split off the transactions already scored (``scored``: id -> stored content fingerprint).

        Returns ``(to_score, replayed)``. A record with a scored id and the same content is a
        replay (after a crash or rebalance): it goes to ``replayed``, counted as a duplicate
        and never scored or published again (its feature state may still need it). One with
        other content is a conflict: a dead letter of ``to_score``. A stored row without a
        fingerprint (written before fingerprints) counts as the same content.
        """
        if not scored:
            return self, Decoded()
        out, replayed = Decoded(dead=list(self.dead), duplicates=self.duplicates), Decoded()
        for tx, src in zip(self.transactions, self.sources, strict=True):
            if tx.transaction_id not in scored:
                out.transactions.append(tx)
                out.sources.append(src)
                continue
            stored = scored[tx.transaction_id]
            if stored is None or stored == content_fingerprint(tx):
                replayed.transactions.append(tx)
                replayed.sources.append(src)
                out.duplicates += 1
            else:
                out.dead.append(DeadLetter(src, DUPLICATE_CONFLICT, "transaction_id"))
        return out, replayed


#: Why a record whose transaction id was already scored with other content is dead-lettered.
DUPLICATE_CONFLICT = "duplicate transaction id, different content"

#: What a transaction's content is for duplicate detection: every field but the label (a label
#: arriving later for the same transaction is not a different transaction).
_CONTENT = operator.attrgetter(
    "transaction_id", "timestamp_ms", "card_id", "merchant_id", "amount", "currency", "customer_id", "mcc",
    "channel", "country", "latitude", "longitude", "device_id",
)


def content_fingerprint(tx: Transaction) -> str:
    """A 128-bit hex digest of the transaction's validated content (field values, not the bytes sent,
    so key order or spacing does not matter), for comparing a repeated id's content."""
    try:
        return stored_fingerprint(tx)
    except TypeError:  # text that is not UTF-8 (lone surrogates): the same values, through the stdlib
        return hashlib.blake2b(json.dumps(_CONTENT(tx)).encode(), digest_size=16).hexdigest()


def stored_fingerprint(tx: Transaction) -> str:
    """:func:`content_fingerprint` as stored with a score. Raises ``TypeError`` for text that is not
    valid UTF-8 (a lone surrogate, which the stdlib JSON parser lets through as ``\\ud800``): such a
    record could be neither published nor stored, so building its score record fails and the
    safety net dead-letters it."""
    return hashlib.blake2b(orjson.dumps(_CONTENT(tx)), digest_size=16).hexdigest()


def decode_record(
    record: SourceRecord, *, max_bytes: int, limits: ValidationLimits = DEFAULT_LIMITS
) -> Transaction | DeadLetter:
    """One record → a valid :class:`Transaction`, or a :class:`DeadLetter` with the reason.

    The rules are the transaction contract's (``features.schema``, bounded by ``limits``),
    the same as for ``POST /v1/score`` and the file readers. Reasons name the field and
    the rule, never the offending value: values can be PII and the DLQ keeps the
    original bytes anyway.
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
        return Transaction.from_mapping(parsed, limits)
    except SchemaError as exc:
        return DeadLetter(record, f"invalid field '{exc.field}': {exc.reason}", exc.field)
    except Exception as exc:  # noqa: BLE001 - a validator bug must dead-letter the record, not stop the service
        return DeadLetter(record, f"validation failed: {type(exc).__name__}")


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


def decode_batch(
    records: Iterable[SourceRecord], *, max_bytes: int, limits: ValidationLimits = DEFAULT_LIMITS
) -> Decoded:
    """Decode a micro-batch against the contract's ``limits``. A transaction id seen twice in it is
    scored once (the first); a repeat with other content is a dead letter."""
    out = Decoded()
    seen: dict[str, Transaction] = {}
    for record in records:
        result = decode_record(record, max_bytes=max_bytes, limits=limits)
        if isinstance(result, DeadLetter):
            out.dead.append(result)
        elif result.transaction_id in seen:
            # Rare: fingerprints are only computed for a repeated id.
            first = seen[result.transaction_id]
            if content_fingerprint(first) == content_fingerprint(result):
                out.duplicates += 1
            else:
                out.dead.append(DeadLetter(record, DUPLICATE_CONFLICT, "transaction_id"))
        else:
            seen[result.transaction_id] = result
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
    transient: tuple[type[BaseException], ...] = (),
) -> BatchOutputs:
    """Score the valid transactions of a batch and build every output record.

    ``received_at`` (epoch seconds) is when the batch was polled; each score carries
    the processing time from then to now. Alert cards come from ``cards`` (default:
    minimal masked cards), built once for all alerted rows of the batch. A challenger's
    verdicts (shadow scoring) ride on the scores and never become alerts.

    The safety net: a transaction that a step raises on (features, scoring, its alert
    card, its output records) becomes a dead letter naming the step and the exception,
    and the rest of the batch is scored. Exceptions of the ``transient`` classes (an
    outage: the caller retries the batch) propagate. A scorer's refusals
    (``ScoredBatch.refused``: late events, a feature family that raised) are dead letters too.
    """
    outputs = BatchOutputs(dead=list(decoded.dead))
    txs: Sequence[Transaction] = decoded.transactions
    if not txs:
        return outputs
    scored, txs, sources = _score(scorer, txs, decoded.sources, outputs.dead, transient)
    outputs.drift = scored.drift
    if not txs:
        return outputs
    processing_ms = (clock() - received_at) * 1000.0
    threshold = float(scored.threshold)
    version = scored.model_version
    # Plain lists and positional named tuples: this loop runs once per transaction, and
    # indexing numpy arrays element by element costs more than converting them once.
    values = scored.scores.tolist()
    alerted = np.flatnonzero(scored.alerts).tolist()
    decisions = ["pass"] * len(txs)
    for i in alerted:
        decisions[i] = "alert"
    verdict = _shadow_builder(scored.shadow, version) if scored.shadow is not None else None

    def build(i: int) -> ScoreOut:
        tx, src = txs[i], sources[i]
        score = ScoreOut(tx.transaction_id, src.key or tx.card_id.encode(), values[i], decisions[i], threshold,
                         version, tx.timestamp_ms, src.partition, src.offset, src.timestamp_ms, processing_ms,
                         None, stored_fingerprint(tx))
        return score if verdict is None else score._replace(shadow=verdict(i, tx, score))

    built: list[ScoreOut | None]
    try:
        # The usual case in one comprehension (no call per row); ``build`` is its row-by-row twin.
        keys = [src.key or tx.card_id.encode() for tx, src in zip(txs, sources, strict=True)]
        scores = [
            ScoreOut(tx.transaction_id, key, value, decision, threshold, version, tx.timestamp_ms, src.partition,
                     src.offset, src.timestamp_ms, processing_ms, None, stored_fingerprint(tx))
            for tx, src, key, value, decision in zip(txs, sources, keys, values, decisions, strict=True)
        ]
        if verdict is not None:
            scores = [score._replace(shadow=verdict(i, tx, score))
                      for i, (tx, score) in enumerate(zip(txs, scores, strict=True))]
        built = list[ScoreOut | None](scores)
    except transient:
        raise
    except Exception:  # noqa: BLE001 - find the record(s), below
        built = [_guarded(build, i, sources[i], "score record", outputs.dead, transient) for i in range(len(txs))]
    alerted = [i for i in alerted if built[i] is not None]
    carded = _alert_cards(cards or MinimalCards(), txs, sources, scored, alerted, outputs.dead, transient)
    if len(carded) < len(alerted):  # a dead-lettered card takes its score along
        missing = set(alerted).difference(i for i, _ in carded)
        for i in missing:
            built[i] = None
    for i, card in carded:
        score = built[i]
        assert score is not None
        try:
            # Encoded here, once: the alerts topic and the store then get the same plain JSON.
            value = json.dumps(card, default=str).encode()
            card = json.loads(value)
        except transient:
            raise
        except Exception as exc:  # noqa: BLE001 - a card that cannot be serialised loses its record, not the batch
            outputs.dead.append(_failed(sources[i], "alert record", exc))
            built[i] = None
            continue
        outputs.alerts.append(AlertOut(transaction_id=score.transaction_id, key=score.key, score=score.score,
                                       model_version=score.model_version, card=card, value=value))
    outputs.scores = [score for score in built if score is not None]
    return outputs


def _failed(source: SourceRecord, step: str, exc: BaseException) -> DeadLetter:
    """The safety net's dead letter: the step, the exception's class and its message."""
    log.error("record dead-lettered: a step raised on it", exc_info=exc,
              extra={"step": step, "partition": source.partition, "offset": source.offset})
    return DeadLetter(source, failure_reason(step, exc), None, type(exc).__name__, short_message(exc))


def _guarded(fn: Callable[[int], Any], i: int, source: SourceRecord, step: str, dead: list[DeadLetter],
             transient: tuple[type[BaseException], ...]) -> Any:
    """``fn(i)``, or None with a dead letter for ``source`` when it raises (transient errors propagate)."""
    try:
        return fn(i)
    except transient:
        raise
    except Exception as exc:  # noqa: BLE001 - the safety net
        dead.append(_failed(source, step, exc))
        return None


def _score(scorer: Scorer, txs: Sequence[Transaction], sources: Sequence[SourceRecord], dead: list[DeadLetter],
           transient: tuple[type[BaseException], ...]) -> tuple[ScoredBatch, list[Transaction], list[SourceRecord]]:
    """Score a batch; returns the scores and the transactions (and sources) they are aligned with.

    When the whole batch raises, each transaction is scored alone to find the one that
    breaks it. That retry suits a scorer whose failure leaves no state behind; the
    ModelScorer's feature step isolates its rows itself (``ScoredBatch.refused``).
    """
    try:
        scored = scorer.score_batch(txs)
    except transient:
        raise
    except Exception:  # noqa: BLE001 - one record's bug must not stop the batch: find it
        log.warning("batch scoring failed; scoring its transactions one by one", exc_info=True,
                    extra={"transactions": len(txs)})
        return _score_one_by_one(scorer, txs, sources, dead, transient)
    txs, sources = list(txs), list(sources)
    if not scored.refused:
        return scored, txs, sources
    for refusal in scored.refused:
        dead.append(DeadLetter(sources[refusal.index], refusal.reason, None, refusal.error_type,
                               refusal.error_message))
    kept = scored.kept
    if kept is None:
        gone = {refusal.index for refusal in scored.refused}
        kept = [i for i in range(len(txs)) if i not in gone]
    return scored, [txs[i] for i in kept], [sources[i] for i in kept]


def _score_one_by_one(scorer: Scorer, txs: Sequence[Transaction], sources: Sequence[SourceRecord],
                      dead: list[DeadLetter], transient: tuple[type[BaseException], ...],
                      ) -> tuple[ScoredBatch, list[Transaction], list[SourceRecord]]:
    parts: list[ScoredBatch] = []
    kept_txs: list[Transaction] = []
    kept_sources: list[SourceRecord] = []
    for i, (tx, src) in enumerate(zip(txs, sources, strict=True)):
        one = _guarded(lambda _: scorer.score_batch([tx]), i, src, "scoring", dead, transient)  # noqa: B023 - called at once
        if one is None:
            continue
        if one.refused:
            refusal = one.refused[0]
            dead.append(DeadLetter(src, refusal.reason, None, refusal.error_type, refusal.error_message))
            continue
        parts.append(one)
        kept_txs.append(tx)
        kept_sources.append(src)
    return _concat(parts, scorer), kept_txs, kept_sources


def _concat(parts: list[ScoredBatch], scorer: Scorer) -> ScoredBatch:
    """One ScoredBatch from single-row ones (the one-by-one path)."""
    if not parts:
        return ScoredBatch(scores=np.empty(0), alerts=np.zeros(0, dtype=bool), threshold=0.0,
                           model_version=scorer.model_version)
    first = parts[0]
    features = None
    if all(part.features is not None for part in parts):
        features = np.vstack([part.features for part in parts])  # type: ignore[misc]
    shadow = None
    if all(part.shadow is not None for part in parts):
        shadows = [part.shadow for part in parts if part.shadow is not None]
        shadow = ShadowScores(scores=np.concatenate([sh.scores for sh in shadows]),
                              alerts=np.concatenate([sh.alerts for sh in shadows]),
                              threshold=shadows[0].threshold, model_version=shadows[0].model_version)
    return ScoredBatch(
        scores=np.concatenate([part.scores for part in parts]),
        alerts=np.concatenate([np.asarray(part.alerts, dtype=bool) for part in parts]),
        threshold=first.threshold, model_version=first.model_version, features=features,
        feature_names=first.feature_names, model=first.model, shadow=shadow,
        drift=next((part.drift for part in parts if part.drift is not None), None),
    )


def _alert_cards(builder: CardBuilder, txs: Sequence[Transaction], sources: Sequence[SourceRecord],
                 scored: ScoredBatch, alerted: list[int], dead: list[DeadLetter],
                 transient: tuple[type[BaseException], ...]) -> list[tuple[int, dict[str, Any]]]:
    """(row, card) for the alerted rows, built for all at once; when that raises, one by one, and a
    row whose card cannot be built is a dead letter (its score is not published either)."""
    if not alerted:
        return []
    try:
        return list(zip(alerted, builder.build([txs[i] for i in alerted], scored, alerted), strict=True))
    except transient:
        raise
    except Exception:  # noqa: BLE001 - find the record(s), below
        log.warning("alert cards failed for the batch; building them one by one", exc_info=True)
    out = []
    for i in alerted:
        card = _guarded(lambda row: builder.build([txs[row]], scored, [row])[0], i, sources[i], "alert card",
                        dead, transient)
        if card is not None:
            out.append((i, card))
    return out
