"""The contract every feature family keeps: batch and online give the same features.

Like river's estimator checks, the suite discovers the families of the default
pipeline and runs the same checks on each: batch == online (|diff| <= 1e-6, NaN
positions identical) on an edge-case frame and on 100k simulated transactions,
with labels reaching the online side exactly when they become known;
determinism; no mutation of the input; tolerance of missing optional columns; and
the same numbers through the memory and the Redis state stores.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import pytest

from features.base import FeatureFamily, LabelEvent
from features.pipeline import FeaturePipeline, OnlineFeatures
from features.schema import REQUIRED_FIELDS, Transaction, iter_transactions, timestamps_ms
from features.state import MemoryStateStore, RedisStateStore
from fraudlens.settings import FeatureSettings

PIPELINE = FeaturePipeline.from_settings(FeatureSettings())
FAMILIES = PIPELINE.families
FAMILY_IDS = [family.name for family in FAMILIES]
#: Features that can only be missing once every optional column is gone.
NEEDS_OPTIONAL = {
    "km_from_prev_tx",
    "kmh_from_prev_tx",
    "is_new_device",
    "is_new_country",
    "merchant_fraud_rate_30d",
    "merchant_fraud_rate_90d",
    "channel_code",
    "mcc_code",
}

RunOnline = Callable[..., np.ndarray]
AssertSame = Callable[..., None]


def in_time_order(frame: pd.DataFrame) -> tuple[np.ndarray, list[Transaction]]:
    order = np.argsort(timestamps_ms(frame["timestamp"]), kind="stable")
    return order, list(iter_transactions(frame.iloc[order]))


def stream(
    online: OnlineFeatures,
    txs: Sequence[Transaction],
    labels: Sequence[LabelEvent],
    *,
    batch_size: int = 1,
    first_label: int = 0,
) -> tuple[np.ndarray, int]:
    """Events through the online engine; each label is learnt just before the first event at or after its known time.

    A micro-batch is cut wherever a label becomes known, so labels are never
    learnt early here (``replay`` checks the early case). Returns the features in
    ``txs`` order and the index of the next unlearnt label.
    """
    rows: list[np.ndarray] = []
    i, next_label = 0, first_label
    while i < len(txs):
        due = next_label
        while due < len(labels) and labels[due].known_at_ms <= txs[i].timestamp_ms:
            due += 1
        online.learn_labels(labels[next_label:due])
        next_label = due
        stop = i + 1
        limit = labels[next_label].known_at_ms if next_label < len(labels) else None
        while stop < min(i + batch_size, len(txs)) and (
            limit is None or txs[stop].timestamp_ms < limit
        ):
            stop += 1
        if batch_size == 1:
            rows.append(online.transform_one(txs[i])[None, :])
        else:
            rows.append(online.transform_batch(txs[i:stop]))
        i = stop
    width = len(online.feature_names)
    return (np.vstack(rows) if rows else np.empty((0, width))), next_label


def unsort(order: np.ndarray, values: np.ndarray) -> np.ndarray:
    out = np.empty_like(values)
    out[order] = values
    return out


@pytest.fixture
def redis_store(redis_url: str) -> Iterator[RedisStateStore]:
    store = RedisStateStore(redis_url, key_prefix=f"fraudlens:test:{uuid.uuid4().hex}:").setup()
    yield store
    store.clear()
    store.close()


@pytest.fixture(scope="module")
def simulated(simulated_frame_factory: Callable[..., pd.DataFrame]) -> pd.DataFrame:
    frame = simulated_frame_factory(100_000, seed=3)
    assert len(frame) >= 100_000
    return frame


# -- per family ----------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
def test_family_batch_equals_online_on_edge_cases(
    family, random_frame, run_online: RunOnline, assert_same: AssertSame
) -> None:
    batch = family.transform_many(random_frame)
    assert list(batch.columns) == family.feature_names
    assert (batch.dtypes == np.float64).all()
    assert batch.index.equals(random_frame.index)
    online = run_online(
        family, random_frame, PIPELINE.label_events(random_frame), check_pure_every=3
    )
    assert_same(batch.to_numpy(), online, family.feature_names, what=f"{family.name} (edge cases)")


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
def test_family_tolerates_missing_optional_columns(
    family, random_frame, run_online: RunOnline, assert_same: AssertSame
) -> None:
    bare = random_frame[list(REQUIRED_FIELDS)]
    batch = family.transform_many(bare)
    online = run_online(family, bare, PIPELINE.label_events(bare))
    assert_same(
        batch.to_numpy(),
        online,
        family.feature_names,
        what=f"{family.name} (required columns only)",
    )
    for name in set(family.feature_names) & NEEDS_OPTIONAL:
        assert batch[name].isna().all(), f"{name} should be missing without optional columns"


@pytest.mark.parametrize("family", FAMILIES, ids=FAMILY_IDS)
def test_family_is_deterministic_and_leaves_input_alone(family, random_frame) -> None:
    before = random_frame.copy(deep=True)
    first = family.transform_many(random_frame).to_numpy()
    second = family.transform_many(random_frame).to_numpy()
    np.testing.assert_array_equal(first, second)
    pd.testing.assert_frame_equal(random_frame, before)


@pytest.mark.slow
def test_every_family_on_100k_simulated_transactions(
    simulated, run_online: RunOnline, assert_same: AssertSame
) -> None:
    order, txs = in_time_order(simulated)
    labels = PIPELINE.label_events(simulated)
    assert sum(label.is_fraud for label in labels) > 100, (
        "the simulation should contain fraud labels"
    )
    expected = []
    for family in FAMILIES:
        batch = family.transform_many(simulated).to_numpy()
        online = run_online(
            family, simulated.iloc[order], labels, transactions=txs, check_pure_every=997
        )
        assert_same(
            batch, unsort(order, online), family.feature_names, what=f"{family.name} (simulated)"
        )
        expected.append(batch)
    # The engine (fused steps, micro-batches of 500, labels learnt per batch) on the same stream.
    replayed = PIPELINE.online().replay(simulated, batch_size=500)
    assert_same(
        np.hstack(expected),
        replayed.to_numpy(),
        PIPELINE.feature_names,
        what="pipeline replay (simulated)",
    )


# -- the whole pipeline ----------------------------------------------------------------


def test_pipeline_transform_one_and_batches_equal_transform_many(
    random_frame, assert_same: AssertSame
) -> None:
    expected = PIPELINE.transform_many(random_frame)
    assert list(expected.columns) == PIPELINE.feature_names
    order, txs = in_time_order(random_frame)
    labels = PIPELINE.label_events(random_frame)
    one_by_one, _ = stream(PIPELINE.online(MemoryStateStore()), txs, labels)
    assert_same(
        expected.to_numpy(), unsort(order, one_by_one), PIPELINE.feature_names, what="transform_one"
    )
    batched, _ = stream(PIPELINE.online(MemoryStateStore()), txs, labels, batch_size=500)
    assert_same(
        expected.to_numpy(), unsort(order, batched), PIPELINE.feature_names, what="transform_batch"
    )


def test_engine_shortcuts_equal_each_family_on_its_own_bit_for_bit(
    random_frame, run_online: RunOnline
) -> None:
    # The engine takes shortcuts a family alone cannot: card_velocity's fused step, and
    # amount_profile computed from card_velocity's windows instead of a state of its own.
    # They promise the same floats, not merely values within 1e-6.
    order, txs = in_time_order(random_frame)
    labels = PIPELINE.label_events(random_frame)
    alone = np.hstack([
        run_online(family, random_frame.iloc[order], labels, transactions=txs) for family in FAMILIES
    ])
    through_engine, _ = stream(PIPELINE.online(MemoryStateStore()), txs, labels, batch_size=500)
    np.testing.assert_array_equal(through_engine, alone)
    # The derived path was the one taken: no card keeps an amount_profile window.
    assert not any("amount_profile" in state for state in _card_states(txs))


def test_stateless_families_batched_per_micro_batch_equal_their_per_event_values(random_frame) -> None:
    # The engine computes trailing stateless families once per micro-batch (values_many);
    # random_frame holds unknown and oddly cased channels and non-numeric mccs.
    _, txs = in_time_order(random_frame)
    batched = [fam for fam in FAMILIES if getattr(fam, "values_many", None) is not None]
    assert [fam.name for fam in batched] == ["calendar", "channel_mcc"]
    for fam in batched:
        per_event = np.array([fam.values_one(tx, None) for tx in txs], dtype=np.float64)
        np.testing.assert_array_equal(fam.values_many(txs), per_event)


def _card_states(txs: Sequence[Transaction]) -> list[dict]:
    online = PIPELINE.online(MemoryStateStore())
    online.transform_batch(txs)
    return list(online.store.load_many([f"card:{tx.card_id}" for tx in txs]).values())


@pytest.mark.parametrize("batch_size", [1, 500, 10_000])
def test_replay_learning_labels_early_changes_nothing(
    random_frame, batch_size: int, assert_same: AssertSame
) -> None:
    expected = PIPELINE.transform_many(random_frame)
    replayed = PIPELINE.online().replay(random_frame, batch_size=batch_size)
    assert replayed.index.equals(random_frame.index)
    assert_same(
        expected.to_numpy(),
        replayed.to_numpy(),
        PIPELINE.feature_names,
        what=f"replay({batch_size})",
    )


def test_pipeline_input_order_only_matters_through_ties(random_frame) -> None:
    # Sorting stably by time is what transform_many does itself; equal timestamps keep row order.
    shuffled = PIPELINE.transform_many(random_frame)
    ordered = PIPELINE.transform_many(random_frame.sort_values("timestamp", kind="stable"))
    pd.testing.assert_frame_equal(shuffled, ordered.loc[random_frame.index])


def test_pipeline_is_deterministic_and_leaves_input_alone(random_frame) -> None:
    before = random_frame.copy(deep=True)
    runs = [PIPELINE.transform_many(random_frame) for _ in range(2)]
    pd.testing.assert_frame_equal(runs[0], runs[1])
    replays = [PIPELINE.online().replay(random_frame) for _ in range(2)]
    pd.testing.assert_frame_equal(replays[0], replays[1])
    assert PIPELINE.label_events(random_frame) == PIPELINE.label_events(random_frame)
    pd.testing.assert_frame_equal(random_frame, before)


def test_pipeline_without_optional_columns(random_frame, assert_same: AssertSame) -> None:
    bare = random_frame[list(REQUIRED_FIELDS)]
    batch = PIPELINE.transform_many(bare)
    replayed = PIPELINE.online().replay(bare)
    assert_same(
        batch.to_numpy(), replayed.to_numpy(), PIPELINE.feature_names, what="required columns only"
    )
    assert batch[sorted(NEEDS_OPTIONAL)].isna().all().all()
    assert (batch["merchant_known_labels_30d"] == 0).all()


def test_snapshot_and_restore_mid_stream(random_frame, assert_same: AssertSame) -> None:
    order, txs = in_time_order(random_frame)
    labels = PIPELINE.label_events(random_frame)
    expected = PIPELINE.transform_many(random_frame).to_numpy()
    half = len(txs) // 2
    first_store = MemoryStateStore()
    first, next_label = stream(PIPELINE.online(first_store), txs[:half], labels, batch_size=64)
    second_store = MemoryStateStore()
    second_store.restore(first_store.snapshot())  # states go through JSON: what Redis would hold
    second, _ = stream(
        PIPELINE.online(second_store), txs[half:], labels, batch_size=64, first_label=next_label
    )
    assert_same(
        expected,
        unsort(order, np.vstack([first, second])),
        PIPELINE.feature_names,
        what="snapshot/restore",
    )


@pytest.mark.integration
def test_redis_and_memory_stores_give_the_same_features(
    random_frame, redis_store: RedisStateStore, assert_same: AssertSame
) -> None:
    expected = PIPELINE.transform_many(random_frame)
    through_redis = PIPELINE.online(redis_store).replay(random_frame, batch_size=200)
    assert_same(
        expected.to_numpy(), through_redis.to_numpy(), PIPELINE.feature_names, what="Redis replay"
    )
    through_memory = PIPELINE.online(MemoryStateStore()).replay(random_frame, batch_size=200)
    np.testing.assert_array_equal(through_redis.to_numpy(), through_memory.to_numpy())


@pytest.mark.integration
def test_redis_transform_one_on_a_slice(
    simulated_frame_factory, redis_store: RedisStateStore, assert_same: AssertSame
) -> None:
    frame = simulated_frame_factory(3000, seed=5).iloc[:600]
    order, txs = in_time_order(frame)
    labels = PIPELINE.label_events(frame)
    one_by_one, _ = stream(PIPELINE.online(redis_store), txs, labels)
    expected = PIPELINE.transform_many(frame).to_numpy()
    assert_same(
        expected, unsort(order, one_by_one), PIPELINE.feature_names, what="Redis transform_one"
    )


def test_empty_and_single_row_frames(random_frame) -> None:
    for frame in (random_frame.iloc[:0], random_frame.iloc[:1]):
        batch = PIPELINE.transform_many(frame)
        assert batch.shape == (len(frame), len(PIPELINE.feature_names))
        pd.testing.assert_frame_equal(batch, PIPELINE.online().replay(frame))
    assert PIPELINE.online().transform_batch([]).shape == (0, len(PIPELINE.feature_names))


class CardAmountTotal(FeatureFamily):
    """A family written against the bare contract only (no shared helpers)."""

    name = "card_amount_total"
    entity = "card"

    @property
    def feature_names(self) -> list[str]:
        return ["card_amount_total"]

    def transform_many(self, frame: pd.DataFrame) -> pd.DataFrame:
        prior = frame.groupby("card_id", sort=False)["amount"].cumsum() - frame["amount"]
        return pd.DataFrame({"card_amount_total": prior.astype(float)}, index=frame.index)

    def new_state(self) -> dict[str, float]:
        return {"total": 0.0}

    def transform_one(self, tx: Transaction, state: dict[str, float]) -> dict[str, float]:
        return {"card_amount_total": state["total"]}

    def update_one(self, tx: Transaction, state: dict[str, float]) -> None:
        state["total"] += tx.amount


def test_pipeline_runs_families_written_against_the_bare_contract(
    random_frame, assert_same: AssertSame
) -> None:
    pipeline = FeaturePipeline([*FAMILIES[:1], CardAmountTotal()])
    batch = pipeline.transform_many(random_frame)
    replayed = pipeline.online().replay(random_frame)
    assert_same(
        batch.to_numpy(), replayed.to_numpy(), pipeline.feature_names, what="bare-contract family"
    )
    assert pipeline.family_of["card_amount_total"] == "card_amount_total"


def test_online_engine_survives_late_events(random_frame) -> None:
    # Streams are not perfectly ordered: an event older than the entity's state must not break it.
    _, txs = in_time_order(random_frame)
    online = PIPELINE.online()
    online.transform_batch(txs[:2000])
    late = online.transform_batch(list(reversed(txs[:300])))
    assert late.shape == (300, len(PIPELINE.feature_names))
    assert not np.isinf(late[:, PIPELINE.feature_names.index("kmh_from_prev_tx")]).any()
