"""Fixtures for the feature tests: edge-case canonical frames and a generic online runner.

``random_frame`` builds a canonical frame that is hard on the families on purpose:
many equal timestamps, long idle gaps (past every horizon), missing optional
fields, one coordinate without the other, unknown or differently-cased channels,
non-numeric and non-ASCII mcc values, zero and repeated amounts, labels known
before, at and long after their transaction, and rows in shuffled order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest

from features.base import MS_PER_DAY, FeatureFamily, LabelEvent
from features.schema import Transaction, iter_transactions, normalize_frame, timestamps_ms
from features.simulator import simulate

#: Early enough that the random frame's long gaps never carry it past the contract's "now + 1 day" bound.
START = pd.Timestamp("2023-01-01", tz="UTC")
CITIES = [
    (48.8566, 2.3522),
    (51.5074, -0.1278),
    (40.7128, -74.0060),
    (35.6762, 139.6503),
    (-33.8688, 151.2093),
]


def make_random_frame(
    n: int = 3000, seed: int = 0, *, n_cards: int = 40, n_merchants: int = 25
) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # Gaps: mostly minutes, some exactly 0 (ties), a few of 20-120 days (expiry).
    gaps = rng.exponential(40 * 60_000, n).astype(np.int64)
    gaps[rng.random(n) < 0.15] = 0
    long_gaps = rng.random(n) < 0.004
    gaps[long_gaps] = rng.integers(20, 120, long_gaps.sum()) * MS_PER_DAY
    ts_ms = START.value // 1_000_000 + np.cumsum(gaps)
    cards = rng.zipf(1.6, n) % n_cards
    burst = rng.random(n) < 0.03  # one card hammered within minutes
    cards[burst] = 0
    cards = np.array([f"c{c}" for c in cards], dtype=object)

    def pick(options: list[Any], p: list[float] | None = None) -> np.ndarray:
        return np.array(options, dtype=object)[rng.choice(len(options), n, p=p)]

    amounts = np.round(rng.lognormal(3.5, 1.2, n), 2)
    amounts[rng.random(n) < 0.03] = 0.0
    amounts[rng.random(n) < 0.05] = 100.0  # ties for the window maximum

    city = rng.integers(0, len(CITIES), n)
    lat = np.array([CITIES[c][0] for c in city]) + rng.normal(0, 0.05, n)
    lon = np.array([CITIES[c][1] for c in city]) + rng.normal(0, 0.05, n)
    no_coords = rng.random(n) < 0.2
    lat[no_coords] = np.nan
    lon[no_coords] = np.nan
    lat[rng.random(n) < 0.05] = np.nan  # longitude without latitude: not a location

    is_fraud = pick([0, 1, None], [0.85, 0.07, 0.08])
    offsets = pick([None, "later", "same", "before"], [0.6, 0.3, 0.05, 0.05])
    label_ms = np.where(
        offsets == "later",
        ts_ms + rng.integers(1, 20 * MS_PER_DAY, n),
        np.where(offsets == "same", ts_ms, ts_ms - rng.integers(1, MS_PER_DAY, n)),
    )
    label_ts = pd.Series(pd.to_datetime(label_ms, unit="ms", utc=True), dtype="datetime64[ns, UTC]")
    label_ts[offsets == None] = pd.NaT  # noqa: E711 - elementwise

    raw = pd.DataFrame(
        {
            "transaction_id": [f"tx{i}" for i in range(n)],
            "timestamp": pd.to_datetime(ts_ms, unit="ms", utc=True),
            "card_id": cards,
            "merchant_id": np.array(
                [f"m{m}" for m in rng.zipf(1.4, n) % n_merchants], dtype=object
            ),
            "amount": amounts,
            "currency": pick(["EUR", "usd", None]),
            "customer_id": pick(["u1", "u2", None]),
            "mcc": pick(
                ["5411", "5999", "6011", "54a1", "０６０１", None], [0.3, 0.2, 0.2, 0.1, 0.05, 0.15]
            ),
            "channel": pick(
                ["card_present", "ecommerce", "atm", "ATM", "moto", None],
                [0.3, 0.3, 0.1, 0.05, 0.1, 0.15],
            ),
            "country": pick(["FR", "GB", "us", "JP", None], [0.3, 0.2, 0.2, 0.1, 0.2]),
            "latitude": lat,
            "longitude": lon,
            "device_id": pick(["d1", "d2", "d3", "d4", None], [0.3, 0.2, 0.2, 0.1, 0.2]),
            "is_fraud": is_fraud,
            "label_timestamp": label_ts,
        }
    )
    frame, rejects = normalize_frame(raw)
    assert len(rejects) == 0, rejects.frame.head()
    # Shuffle rows: every consumer must sort stably by time itself.
    return frame.sample(frac=1.0, random_state=seed)


def label_key(family: FeatureFamily, label: LabelEvent) -> str | None:
    if family.entity == "card":
        return label.card_id
    if family.entity == "merchant":
        return label.merchant_id
    return None


def run_family_online(
    family: FeatureFamily,
    frame: pd.DataFrame,
    labels: list[LabelEvent],
    *,
    check_pure_every: int = 0,
    transactions: list[Transaction] | None = None,
) -> np.ndarray:
    """The family's online execution over ``frame``: plain ``transform_one`` + ``update_one``.

    Labels are learnt at the latest allowed moment (just before the first
    transaction at or after their ``known_at``). With ``check_pure_every=k``, every
    k-th event also checks that ``transform_one`` leaves the state untouched.
    Returns values aligned with ``frame``'s row positions. ``transactions`` may pass
    ``frame``'s events already built, in processing order, to save time on big frames.
    """
    import copy

    order = np.argsort(timestamps_ms(frame["timestamp"]), kind="stable")
    states: dict[str, Any] = {}
    names = family.feature_names
    out = np.empty((len(frame), len(names)))
    pending = sorted(labels, key=lambda label: label.known_at_ms) if family.uses_labels else []
    next_label = 0

    def state_for(key: str | None) -> Any:
        if key is None:
            return None
        if key not in states:
            states[key] = family.new_state()
        return states[key]

    if transactions is None:
        transactions = list(iter_transactions(frame.iloc[order]))
    for i, tx in enumerate(transactions):
        while next_label < len(pending) and pending[next_label].known_at_ms <= tx.timestamp_ms:
            label = pending[next_label]
            family.learn_label(label, state_for(label_key(family, label)))
            next_label += 1
        state = state_for(family.entity_key(tx))
        before = copy.deepcopy(state) if check_pure_every and i % check_pure_every == 0 else None
        values = family.transform_one(tx, state)
        if before is not None:
            assert state == before, f"{family.name}.transform_one modified the state at event {i}"
        assert list(values) == names, f"{family.name}.transform_one keys differ from feature_names"
        out[order[i]] = [values[name] for name in names]
        family.update_one(tx, state)
    return out


def assert_same_features(
    expected: np.ndarray, actual: np.ndarray, names: list[str], *, what: str
) -> None:
    """|diff| <= 1e-6 and identical NaN positions, with the first offending row named."""
    expected = np.asarray(expected, dtype=np.float64)
    actual = np.asarray(actual, dtype=np.float64)
    assert expected.shape == actual.shape, f"{what}: shapes {expected.shape} != {actual.shape}"
    for j, name in enumerate(names):
        e, a = expected[:, j], actual[:, j]
        nan_diff = np.flatnonzero(np.isnan(e) != np.isnan(a))
        assert nan_diff.size == 0, (
            f"{what}: {name} NaN mismatch at row {nan_diff[0]}: {e[nan_diff[0]]} vs {a[nan_diff[0]]}"
        )
        both = ~np.isnan(e)
        diff = np.abs(e[both] - a[both])
        if diff.size and diff.max() > 1e-6:
            row = np.flatnonzero(both)[diff.argmax()]
            raise AssertionError(f"{what}: {name} differs at row {row}: {e[row]!r} vs {a[row]!r}")


# -- fixtures (test modules reach the helpers through these, never by importing conftest) --


@pytest.fixture(scope="session")
def random_frame_factory() -> Callable[..., pd.DataFrame]:
    """``make_random_frame(n, seed, n_cards=..., n_merchants=...)``: an edge-case canonical frame."""
    return make_random_frame


@pytest.fixture(scope="session")
def random_frame() -> pd.DataFrame:
    return make_random_frame(3000, seed=7)


@pytest.fixture(scope="session")
def run_online() -> Callable[..., np.ndarray]:
    """:func:`run_family_online`: a family's plain online execution over a frame."""
    return run_family_online


@pytest.fixture(scope="session")
def assert_same() -> Callable[..., None]:
    """:func:`assert_same_features`: parity within 1e-6 with identical NaN positions."""
    return assert_same_features


@pytest.fixture(scope="session")
def simulated_frame_factory() -> Callable[..., pd.DataFrame]:
    """``(n_rows, seed) -> frame``: at least ``n_rows`` transactions from the shared simulator."""

    def build(n_rows: int, seed: int = 0) -> pd.DataFrame:
        # ~1.7 tx per card-day; 60 days exercise every 30-day window and the label delay.
        n_cards = max(50, n_rows // 90)
        frame = simulate(n_cards=n_cards, days=60, seed=seed)
        while len(frame) < n_rows:
            n_cards = int(n_cards * 1.1 * n_rows / max(len(frame), 1)) + 1
            frame = simulate(n_cards=n_cards, days=60, seed=seed)
        return frame

    return build
