"""The feature pipeline: every family, in order, as one batch transform and one online engine.

>>> from features.schema import Transaction
>>> from features.state import MemoryStateStore
>>> pipeline = FeaturePipeline.from_settings(FeatureSettings())
>>> online = pipeline.online(MemoryStateStore())
>>> online.transform_one(Transaction("t1", 1_767_225_600_000, "c1", "m1", 12.5)).shape
(37,)
>>> pipeline.family_of["card_tx_count_1h"]
'card_velocity'

Batch (:meth:`FeaturePipeline.transform_many`) and online
(:meth:`OnlineFeatures.transform_one` / ``transform_batch``) give the same numbers
for the same stream, provided labels reach the online engine by the time they are
known (``tests/features/test_parity.py``).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from features.base import FeatureFamily, LabelEvent
from features.families import Family, days_to_ms, default_families
from features.families._context import BatchContext
from features.families._labels import label_arrays, label_event
from features.schema import Transaction, iter_transactions
from features.state import MemoryStateStore, StateStore
from fraudlens.settings import FeatureSettings

log = logging.getLogger(__name__)

_ENTITY_FIELD = {"card": "card_id", "merchant": "merchant_id"}
_DEFAULT_TTL_MS = days_to_ms(90)

Step = Callable[[Transaction, Any], list[float]]
#: Plan slots of families that keep no entity state: stateless ones, and ones derived from earlier features.
_STATELESS = -1
_DERIVED = -2
#: The engine's own entry in a card's state: the time of the card's latest transaction (ms). Not a
#: family name (those are identifiers), so no family can clash with it.
LATEST_KEY = "@t"
#: Longest exception message a refusal repeats (the DLQ headers and the API's 422 carry it).
_MESSAGE_CHARS = 300


class EventRefused(ValueError):
    """The online engine refused one event; ``reason`` says why (it goes to the DLQ or the 422)."""

    def __init__(self, reason: str, *, step: str = "features", error: BaseException | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.step = step
        self.error = error


class LateEvent(EventRefused):
    """An event older than its card's latest transaction by more than the allowed lateness."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why the event at ``index`` of a batch was refused; it left no trace in the state (see transform_rows)."""

    index: int
    transaction_id: str
    reason: str
    #: Exception class and message when a step raised (None for a rule, e.g. lateness).
    error_type: str | None = None
    error_message: str | None = None


@dataclass(slots=True)
class OnlineRows:
    """Features of the events a batch kept, and the refusals of the others."""

    #: (len(kept), n_features), rows in ``kept`` order.
    values: np.ndarray
    #: Indexes (into the input batch) of the rows in ``values``, ascending.
    kept: list[int]
    refused: list[Refusal] = dataclasses.field(default_factory=list)


class RowsRefused(EventRefused):
    """:meth:`OnlineFeatures.transform_batch` refused events; ``rows`` holds the kept ones' features."""

    def __init__(self, rows: OnlineRows) -> None:
        first = rows.refused[0]
        more = f" (and {len(rows.refused) - 1} more)" if len(rows.refused) > 1 else ""
        super().__init__(f"transaction {first.transaction_id!r}: {first.reason}{more}")
        self.rows = rows


def failure_reason(step: str, error: BaseException) -> str:
    """``processing failed in <step>: <ExceptionClass>: <message>``, the message cut to a sane length."""
    return f"processing failed in {step}: {type(error).__name__}: {short_message(error)}"


def short_message(error: BaseException) -> str:
    text = str(error)
    return text if len(text) <= _MESSAGE_CHARS else text[: _MESSAGE_CHARS - 1] + "…"


def _refusal(index: int, tx: Transaction, exc: EventRefused) -> Refusal:
    error = exc.error
    if error is None:
        return Refusal(index, tx.transaction_id, exc.reason)
    return Refusal(index, tx.transaction_id, exc.reason, type(error).__name__, short_message(error))


def lateness_text(ms: int) -> str:
    """``86400000`` -> ``"1 day"``; ``5400000`` -> ``"90 minutes"`` (reasons name the setting in plain units)."""
    for unit, size in (("day", 86_400_000), ("hour", 3_600_000), ("minute", 60_000), ("second", 1000)):
        if ms >= size and ms % size == 0:
            n = ms // size
            return f"{n} {unit}" + ("s" if n != 1 else "")
    return f"{ms} ms"


class FeaturePipeline:
    """An ordered list of feature families with unique feature names."""

    def __init__(
        self,
        families: Sequence[FeatureFamily],
        *,
        label_delay_ms: int = days_to_ms(7),
        max_lateness_ms: int | None = None,
    ) -> None:
        self.families: list[FeatureFamily] = list(families)
        self.label_delay_ms = label_delay_ms
        #: What a serving engine (``online(..., refuse_late=True)``) allows; None: no limit.
        self.max_lateness_ms = max_lateness_ms
        self.feature_names: list[str] = [
            name for fam in self.families for name in fam.feature_names
        ]
        self.family_of: dict[str, str] = {
            name: fam.name for fam in self.families for name in fam.feature_names
        }
        clashes = sorted(name for name, n in Counter(self.feature_names).items() if n > 1)
        if clashes:
            raise ValueError(
                f"feature names {clashes} are produced by more than one family; rename them in one family"
            )
        horizons = [getattr(fam, "horizon_ms", 0) for fam in self.families]
        #: Entities idle this long are dropped by the state store (longest family horizon).
        self.state_ttl_ms: int = max([h for h in horizons if h] or [_DEFAULT_TTL_MS])

    @classmethod
    def from_settings(cls, settings: FeatureSettings | None = None) -> FeaturePipeline:
        """All default families, configured by ``settings``."""
        settings = settings or FeatureSettings()
        lateness = settings.max_lateness_s
        return cls(
            default_families(settings),
            label_delay_ms=days_to_ms(settings.label_delay_days),
            max_lateness_ms=None if lateness is None else int(round(lateness * 1000)),
        )

    # -- batch ---------------------------------------------------------------------

    def transform_many(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Features of every row (any row order in), float64 columns ``feature_names``, aligned to ``frame.index``."""
        ctx = BatchContext(frame)
        blocks = [self._block(fam, ctx) for fam in self.families]
        values = np.hstack(blocks) if blocks else np.empty((ctx.n, 0))
        return pd.DataFrame(
            ctx.unsort(values.astype(np.float64, copy=False)),
            index=frame.index,
            columns=self.feature_names,
        )

    @staticmethod
    def _block(fam: FeatureFamily, ctx: BatchContext) -> np.ndarray:
        if isinstance(fam, Family):
            return np.asarray(fam.transform_context(ctx), dtype=np.float64).reshape(
                ctx.n, len(fam.feature_names)
            )
        # A family from elsewhere sees the frame sorted, as its contract promises.
        out = fam.transform_many(ctx.frame.iloc[ctx.order])
        return out[fam.feature_names].to_numpy(dtype=np.float64)

    def label_frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Label events of a frame as columns (the vectorised :meth:`label_events`).

        Columns ``transaction_id, card_id, merchant_id, transaction_ms, known_at_ms,
        is_fraud``, ordered by ``known_at_ms`` (ties: processing order).
        """
        ctx = BatchContext(frame)
        labels = label_arrays(ctx, self.label_delay_ms)
        by_known = np.argsort(labels.known_at_ms, kind="stable")
        positions = labels.position[by_known]
        rows = ctx.order[positions]
        out = {
            name: frame[name].to_numpy(dtype=object)[rows]
            for name in ("transaction_id", "card_id", "merchant_id")
        }
        out["transaction_ms"] = ctx.ts[positions]
        out["known_at_ms"] = labels.known_at_ms[by_known]
        out["is_fraud"] = labels.is_fraud[by_known].astype(np.int64)
        return pd.DataFrame(out)

    def label_events(self, frame: pd.DataFrame) -> list[LabelEvent]:
        """Label events of a frame, ordered by ``known_at_ms`` (ties: processing order)."""
        columns = self.label_frame(frame)
        return [
            LabelEvent(*fields)
            for fields in zip(
                columns["transaction_id"].tolist(),
                columns["card_id"].tolist(),
                columns["merchant_id"].tolist(),
                columns["transaction_ms"].tolist(),
                columns["known_at_ms"].tolist(),
                columns["is_fraud"].tolist(),
                strict=True,
            )
        ]

    def label_event(self, tx: Transaction) -> LabelEvent | None:
        """The label a streamed labelled record carries (same known-at rule as :meth:`label_frame`)."""
        return label_event(tx, self.label_delay_ms)

    # -- online --------------------------------------------------------------------

    def online(self, store: StateStore | None = None, *, refuse_late: bool = False) -> OnlineFeatures:
        """An online engine over ``store`` (a fresh :class:`MemoryStateStore` by default).

        ``refuse_late``: refuse events older than their card's latest one by more than
        ``max_lateness_ms`` (serving). Off, late events are processed like any other
        (replaying history, parity with :meth:`transform_many`).
        """
        return OnlineFeatures(
            self,
            MemoryStateStore() if store is None else store,
            max_lateness_ms=self.max_lateness_ms if refuse_late else None,
        )


def _step_of(fam: FeatureFamily) -> Step:
    if isinstance(fam, Family) and fam.entity == "none" and type(fam).update_one is FeatureFamily.update_one:
        return fam.values_one  # stateless: there is nothing to update
    step = getattr(fam, "step_one", None)
    if step is not None:
        return step
    names = fam.feature_names

    def generic(tx: Transaction, state: Any) -> list[float]:
        values = fam.transform_one(tx, state)
        fam.update_one(tx, state)
        return [float(values[name]) for name in names]

    return generic


def _derived_step(fam: FeatureFamily, earlier: Sequence[FeatureFamily]) -> Step | None:
    """A family computed from features earlier in the row (no state of its own), when it offers one."""
    online_inputs = getattr(fam, "online_inputs", None)
    inputs = online_inputs(earlier) if online_inputs is not None else None
    if not inputs:
        return None
    before = [name for family in earlier for name in family.feature_names]
    positions = [before.index(name) for name in inputs]
    values_from = fam.values_from  # type: ignore[attr-defined]

    def derive(tx: Transaction, row: list[float]) -> list[float]:
        return values_from(tx, [row[i] for i in positions])

    return derive


class OnlineFeatures:
    """Per-event features against a :class:`StateStore`; state is updated after each event.

    Each entity (``"card:<id>"``, ``"merchant:<id>"``) has one state: a dict from
    family name to that family's state. Labels go in through :meth:`learn_labels`;
    learn every label known by ``t`` before transforming a transaction at ``t``
    (learning one earlier is harmless: the label families ignore it until then).
    """

    def __init__(
        self, pipeline: FeaturePipeline, store: StateStore, *, max_lateness_ms: int | None = None
    ) -> None:
        self.pipeline = pipeline
        self.store = store
        #: Events older than their card's latest by more than this are refused (None: never).
        self.max_lateness_ms = max_lateness_ms
        self._late_reason = (
            None
            if max_lateness_ms is None
            else f"older than the card's latest transaction by more than {lateness_text(max_lateness_ms)}"
        )
        self.feature_names = pipeline.feature_names
        self._ttl_ms = pipeline.state_ttl_ms
        entities = sorted({fam.entity for fam in pipeline.families} - {"none"})
        unknown = set(entities) - set(_ENTITY_FIELD)
        if unknown:
            raise ValueError(
                f"families use entities {sorted(unknown)}; the online engine knows {sorted(_ENTITY_FIELD)}"
            )
        self._entities = [(entity, _ENTITY_FIELD[entity], entity + ":") for entity in entities]
        slot_of = {entity: slot for slot, (entity, _, _) in enumerate(self._entities)}
        #: Where the card's state is in a row's entity states (-1: no family keeps card state).
        self._card_slot = slot_of.get("card", -1)
        #: One entry per family: (entity slot, or _STATELESS / _DERIVED; state key; step; new_state).
        self._plan: list[tuple[int, str, Step, Callable[[], Any]]] = []
        for position, fam in enumerate(pipeline.families):
            derived = _derived_step(fam, pipeline.families[:position])
            if derived is not None:
                self._plan.append((_DERIVED, fam.name, derived, fam.new_state))
            elif fam.entity == "none":
                self._plan.append((_STATELESS, fam.name, _step_of(fam), fam.new_state))
            else:
                self._plan.append((slot_of[fam.entity], fam.name, _step_of(fam), fam.new_state))
        self._label_families = [fam for fam in pipeline.families if fam.uses_labels]
        # Stateless families at the end of the pipeline that offer ``values_many`` are computed
        # once per micro-batch with numpy instead of once per event in ``_step`` (no later
        # family reads their features, so the per-event row does not need them).
        self._batched: list[Any] = []
        for (slot, _name, _step, _new), fam in zip(reversed(self._plan), reversed(pipeline.families), strict=True):
            if slot != _STATELESS or getattr(fam, "values_many", None) is None:
                break
            self._batched.insert(0, fam)
        self._batch_plan = self._plan[: len(self._plan) - len(self._batched)]
        self._batched_width = sum(len(fam.feature_names) for fam in self._batched)

    def _keys(self, tx: Transaction) -> list[str]:
        return [prefix + getattr(tx, field) for _, field, prefix in self._entities]

    def _step(self, tx: Transaction, keys: list[str], states: dict[str, Any],
              plan: list[tuple[int, str, Step, Callable[[], Any]]] | None = None) -> list[float]:
        """One event's features; its entity states are updated. Raises :class:`EventRefused`.

        A late event is refused before any state is touched. A family that raises is
        reported as :class:`EventRefused` naming the family; families before it in the
        plan have already folded the event in (see :meth:`transform_rows` for the repair).
        """
        entity_states: list[dict[str, Any]] = []
        for key in keys:
            state = states.get(key)
            if state is None:
                state = states[key] = {}
            entity_states.append(state)
        t = tx.timestamp_ms
        card: dict[str, Any] | None = None
        latest = None
        if self._card_slot >= 0:
            card = entity_states[self._card_slot]
            latest = card.get(LATEST_KEY)
            if latest is not None and self._late_reason is not None and latest - t > self.max_lateness_ms:
                raise LateEvent(self._late_reason)
        row: list[float] = []
        name = ""
        try:
            for slot, name, step, new_state in self._plan if plan is None else plan:
                if slot >= 0:
                    state = entity_states[slot]
                    family_state = state.get(name)
                    if family_state is None:
                        family_state = state[name] = new_state()
                    row += step(tx, family_state)
                elif slot == _STATELESS:
                    row += step(tx, None)
                else:  # _DERIVED: reads the features computed so far
                    row += step(tx, row)
        except Exception as exc:  # noqa: BLE001 - one event's bug must not stop the others
            raise EventRefused(failure_reason(f"feature family '{name}'", exc), error=exc) from exc
        if card is not None and (latest is None or t > latest):
            card[LATEST_KEY] = t
        return row

    def transform_one(self, tx: Transaction) -> np.ndarray:
        """Features of one event in ``feature_names`` order, then the entity states are updated.

        Raises :class:`LateEvent` for a refused late event, and re-raises what a family raised.
        """
        keys = self._keys(tx)
        states = self.store.load_many(keys)
        try:
            row = self._step(tx, keys, states)
        except EventRefused as exc:
            if exc.error is not None:
                raise exc.error from None
            raise
        self.store.save_many(states, self._ttl_ms)
        return np.array(row, dtype=np.float64)

    def transform_batch(self, txs: Sequence[Transaction]) -> np.ndarray:
        """(len(txs), n_features) features, processed in order with one load and one save round trip.

        Raises :class:`RowsRefused` (after saving the other events' state) when an event is
        refused; :meth:`transform_rows` reports refusals per row instead.
        """
        rows = self.transform_rows(txs)
        if rows.refused:
            raise RowsRefused(rows)
        return rows.values

    def transform_rows(self, txs: Sequence[Transaction]) -> OnlineRows:
        """Features of every event the engine accepts, and a :class:`Refusal` for each other one.

        An event is refused when it is late (``max_lateness_ms``) or when a family raises
        on it; the rest of the batch is processed as if it had not been sent. What a
        refused event leaves in the state:

        * late: nothing (refused before any family runs);
        * a family raised: its entities' states are re-derived from their state before the
          batch plus the batch's earlier accepted events, when that state is known: the
          store hands out copies (Redis), or the entity had no state before the batch.
          With the in-memory store (live objects) an entity that had state keeps what
          the families before the failing one (and the failing one, before it raised)
          folded in; a warning names it.
        """
        keys_of = self._keys
        tx_keys = [keys_of(tx) for tx in txs]
        states = self.store.load_many(list(dict.fromkeys(key for keys in tx_keys for key in keys)))
        step, plan = self._step, self._batch_plan
        rows: list[list[float]] = []
        refused: list[Refusal] = []
        append = rows.append
        for tx, keys in zip(txs, tx_keys, strict=True):
            try:
                append(step(tx, keys, states, plan))
            except EventRefused as exc:
                index = len(rows) + len(refused)
                refused.append(_refusal(index, tx, exc))
                self._forget(index, txs, tx_keys, states, {r.index for r in refused}, failed=exc.error is not None)
        self.store.save_many(states, self._ttl_ms)
        n = len(rows)
        if refused:
            gone = {r.index for r in refused}
            kept = [i for i in range(len(txs)) if i not in gone]
            txs = [txs[i] for i in kept]
        else:
            kept = list(range(n))
        stateful = np.array(rows, dtype=np.float64).reshape(n, len(self.feature_names) - self._batched_width)
        if not self._batched:
            return OnlineRows(stateful, kept, refused)
        if not n:
            return OnlineRows(np.empty((0, len(self.feature_names))), kept, refused)
        values = np.concatenate([stateful, *(fam.values_many(txs) for fam in self._batched)], axis=1)
        return OnlineRows(values, kept, refused)

    def trial(self, txs: Sequence[Transaction]) -> list[Refusal]:
        """The refusals :meth:`transform_rows` would give ``txs``, found on copies of their entity
        states: the store is not written. A synchronous caller (the API) refuses a whole request
        before any of it touches the state; the copies cost what the states weigh (kilobytes)."""
        if not txs:
            return []
        states = self.store.load_many(list(dict.fromkeys(key for tx in txs for key in self._keys(tx))))
        scratch = MemoryStateStore()
        scratch.save_many(copy.deepcopy(states), None)
        trial = OnlineFeatures(self.pipeline, scratch, max_lateness_ms=self.max_lateness_ms)
        return trial.transform_rows(txs).refused

    def _forget(self, index: int, txs: Sequence[Transaction], tx_keys: list[list[str]],
                states: dict[str, Any], refused: set[int], *, failed: bool) -> None:
        """Undo what the refused event at ``index`` did to ``states`` (the failure path only)."""
        keys = tx_keys[index]
        if not failed:  # refused before any family ran: at most empty entity states were added
            for key in keys:
                if not states.get(key, True):
                    del states[key]
            return
        before = self.store.load_many(list(keys))
        live = [key for key in keys if key in before and before[key] is states.get(key)]
        if live:
            log.warning(
                "a refused event's entity states cannot be restored (the store hands out live objects)",
                extra={"entities": live, "transaction_id": txs[index].transaction_id},
            )
        restore = [key for key in keys if key not in live]
        if not restore:
            return
        for key in restore:
            if key in before:
                states[key] = before[key]
            else:
                states.pop(key, None)
        # Re-derive: the batch's earlier accepted events that touched these entities, in order.
        # Their other entities get throwaway copies, so only the restored states move.
        wanted = set(restore)
        for j in range(index):
            other_keys = tx_keys[j]
            if j in refused or wanted.isdisjoint(other_keys):
                continue
            scratch = {key: states[key] if key in wanted else copy.deepcopy(states[key]) for key in other_keys
                       if key in states}
            self._step(txs[j], other_keys, scratch, self._batch_plan)
            for key in wanted.intersection(other_keys):
                states[key] = scratch[key]

    def learn_labels(self, labels: Iterable[LabelEvent]) -> None:
        """Fold newly known labels into the entity states (one load and one save round trip)."""
        labels = list(labels)
        if not labels or not self._label_families:
            return
        plan = [(fam, fam.entity + ":", _ENTITY_FIELD[fam.entity]) for fam in self._label_families]
        keys = list(
            dict.fromkeys(
                prefix + getattr(label, field) for label in labels for _, prefix, field in plan
            )
        )
        states = self.store.load_many(keys)
        for label in labels:
            for fam, prefix, field in plan:
                key = prefix + getattr(label, field)
                state = states.get(key)
                if state is None:
                    state = states[key] = {}
                family_state = state.get(fam.name)
                if family_state is None:
                    family_state = state[fam.name] = fam.new_state()
                fam.learn_label(label, family_state)
        self.store.save_many(states, self._ttl_ms)

    def replay(
        self, frame: pd.DataFrame, *, batch_size: int = 500, labels: bool = True
    ) -> pd.DataFrame:
        """Run a historical frame through the online path (time order, micro-batches).

        Before each micro-batch, every label known by its last transaction is
        learnt. Returns features aligned to ``frame.index`` like
        :meth:`FeaturePipeline.transform_many`, which it must equal.
        """
        ctx = BatchContext(frame)
        txs = list(iter_transactions(frame.iloc[ctx.order]))
        pending = self.pipeline.label_events(frame) if labels else []
        out = np.empty((len(txs), len(self.feature_names)))
        next_label = 0
        for start in range(0, len(txs), batch_size):
            chunk = txs[start : start + batch_size]
            horizon = chunk[-1].timestamp_ms
            stop = next_label
            while stop < len(pending) and pending[stop].known_at_ms <= horizon:
                stop += 1
            self.learn_labels(pending[next_label:stop])
            next_label = stop
            out[start : start + len(chunk)] = self.transform_batch(chunk)
        return pd.DataFrame(ctx.unsort(out), index=frame.index, columns=self.feature_names)
