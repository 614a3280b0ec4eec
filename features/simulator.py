"""Synthetic card traffic with labelled fraud, for testing detectors end to end.

>>> frame = simulate(n_cards=50, days=7, seed=1)
>>> frame.columns[:5].tolist()
['transaction_id', 'timestamp', 'card_id', 'merchant_id', 'amount']

What is simulated (details in :mod:`features.simulation`):

* customers with one or two cards, a home in one of 25 cities of 7 countries (8
  more cities abroad are only visited), a typical amount (log-normal), transactions
  per day, e-commerce and ATM shares, 1-3 habitual devices (sometimes a new one
  mid-period), favourite merchants near home, and trips (domestic or abroad) with
  physically possible journeys;
* merchants with a real MCC, a channel (card_present, ecommerce, atm) and, when
  physical, a location; daily and weekly rhythms per category; local currencies;
* five fraud scenarios (:data:`SCENARIOS`) at ~0.5% of transactions in all, each
  with legit look-alikes (see :mod:`features.simulation.fraud`).

Conventions of the output frame:

* ``country`` is where the payment happens: the merchant's country in person, the
  buyer's IP country online. ``amount`` is in ``currency``: the local currency in
  person, the card's currency online. E-commerce rows have a ``device_id`` and no
  coordinates; card-present and ATM rows have the merchant's coordinates and no device.
* ``timestamp`` is UTC at one-second resolution; the daily rhythms are local, so a
  New York card's evening shows up after midnight UTC.
* ``label_timestamp`` is set for fraud only: the chargeback, 1-30 days later
  (skewed to the first week; it may fall after the simulated period). Legit rows have NaT: no event confirms that a payment
  was genuine, it is only *assumed* once no chargeback came, and how long to wait is
  the bank's policy, i.e. downstream's configured label delay, not the simulator's.
* extra columns: ``fraud_scenario`` ("" for legit, else a scenario id) and
  ``customer_home_country``.
"""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pandas as pd

from features.schema import CANONICAL_FIELDS
from features.simulation.arrays import TxArrays
from features.simulation.config import SCENARIOS, SimulationConfig
from features.simulation.fraud import (
    FraudContext,
    account_takeover,
    card_testing,
    compromised_merchant,
    high_amount,
    skimmed_card,
)
from features.simulation.legit import generate_legit
from features.simulation.population import (
    DAY_S,
    DEVICES_PER_CUSTOMER,
    Merchants,
    Population,
    build_merchants,
    build_population,
)
from features.simulation.world import CHANNEL_NAMES, World

__all__ = ["SCENARIOS", "SimulationConfig", "simulate"]

EXTRA_COLUMNS: tuple[str, ...] = ("fraud_scenario", "customer_home_country")
_NS = 1_000_000_000


def simulate(
    n_cards: int,
    days: int,
    seed: int,
    start: str | datetime = "2026-01-01",
    *,
    fraud_rate_scale: float = 1.0,
    config: SimulationConfig | None = None,
) -> pd.DataFrame:
    """Simulate ``days`` days of traffic of ``n_cards`` cards from ``start`` (naive = UTC).

    Returns a canonical frame sorted by timestamp (stable) with unique transaction ids.
    The same arguments give an identical frame. ``fraud_rate_scale`` multiplies every
    scenario's rate (0 gives legit traffic only).
    """
    if isinstance(n_cards, bool) or not isinstance(n_cards, int | np.integer) or n_cards < 1:
        raise ValueError(f"n_cards must be a positive integer, got {n_cards!r}")
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days < 1:
        raise ValueError(f"days must be a positive integer, got {days!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not np.isfinite(fraud_rate_scale) or fraud_rate_scale < 0:
        raise ValueError(f"fraud_rate_scale must be a finite number >= 0, got {fraud_rate_scale!r}")
    n_cards, days = int(n_cards), int(days)
    origin = _utc(start)
    cfg = config or SimulationConfig()
    world = World()
    # Independent streams per stage: changing one stage leaves the others' draws alone.
    streams = [np.random.default_rng(s) for s in np.random.SeedSequence(int(seed)).spawn(5)]

    pop = build_population(world, cfg, n_cards, days, streams[0])
    merchants = build_merchants(world, cfg, pop, streams[1])
    legit, home_routine = generate_legit(world, cfg, pop, merchants, days, origin.weekday(), streams[2])

    active = np.flatnonzero(np.bincount(legit.card, minlength=n_cards) >= 5)
    pool = active if len(active) else np.arange(n_cards)
    ctx = FraudContext(
        world=world,
        cfg=cfg,
        pop=pop,
        merchants=merchants,
        legit=legit,
        home_routine=home_routine,
        days=days,
        scale=float(fraud_rate_scale),
        rng=streams[3],
        next_device=pop.n_customers * DEVICES_PER_CUSTOMER,
        victims=streams[3].permutation(pool),
    )
    parts = [card_testing(ctx), account_takeover(ctx), skimmed_card(ctx), high_amount(ctx)]
    parts.append(compromised_merchant(ctx))  # last: it edits legit rows in place
    tx = TxArrays.concat([ctx.legit, *parts])
    tx = tx.take(np.argsort(tx.t, kind="stable"))
    return _to_frame(tx, world, pop, merchants, cfg, origin, ctx.next_device, streams[4])


def _utc(start: str | datetime) -> pd.Timestamp:
    try:
        stamp = pd.Timestamp(start)
    except (ValueError, TypeError):
        raise ValueError(f"start must be an ISO-8601 date or time, got {start!r}") from None
    if stamp is pd.NaT:
        raise ValueError(f"start must be an ISO-8601 date or time, got {start!r}")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _names(prefix: str, numbers: np.ndarray, width: int) -> np.ndarray:
    """``prefix`` + zero-padded numbers as an object array of str, built without a Python loop."""
    numbers = np.asarray(numbers, dtype=np.int64)
    if len(numbers):
        width = max(width, len(str(int(numbers.max()))))
    head = np.frombuffer(prefix.encode("ascii"), dtype=np.uint8)
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    digits = ((numbers[:, None] // powers) % 10 + ord("0")).astype(np.uint8)
    chars = np.hstack([np.broadcast_to(head, (len(numbers), len(head))), digits])
    return np.ascontiguousarray(chars).view(f"S{chars.shape[1]}").ravel().astype(str).astype(object)


def _to_frame(
    tx: TxArrays,
    world: World,
    pop: Population,
    merchants: Merchants,
    cfg: SimulationConfig,
    origin: pd.Timestamp,
    n_device_numbers: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    n = len(tx)
    fraud = tx.scenario > 0
    lo, hi = cfg.chargeback_days
    delay_days = np.clip(lo + rng.gamma(*cfg.chargeback_gamma, int(fraud.sum())), lo, hi)
    origin_ns = int(origin.value)
    label_ns = np.zeros(n, dtype=np.int64)
    label_ns[fraud] = origin_ns + (tx.t[fraud] + (delay_days * DAY_S).astype(np.int64)) * _NS
    label_ns[~fraud] = np.iinfo(np.int64).min  # NaT

    cust = pop.card_customer[tx.card]
    # Device numbers are shuffled so that an id reveals nothing (fraud devices are numbered last).
    device_names = _names("dev-", rng.permutation(max(n_device_numbers, 1)), 7)
    device = np.full(n, None, dtype=object)
    has_device = tx.device >= 0
    device[has_device] = device_names[tx.device[has_device]]
    countries = np.array(world.country_codes, dtype=object)

    columns = {
        "transaction_id": _names("tx-", np.arange(n), 9),
        "timestamp": _utc_times(origin_ns + tx.t * _NS),
        "card_id": _names("card-", np.arange(pop.n_cards), 6)[tx.card],
        "merchant_id": _names("mer-", merchants.number, 5)[tx.merchant],
        "amount": tx.amount.astype(np.float64),
        "currency": np.array(world.currency_codes, dtype=object)[tx.currency],
        "customer_id": _names("cust-", np.arange(pop.n_customers), 6)[cust],
        "mcc": world.cat_mcc[tx.category],
        "channel": np.array(CHANNEL_NAMES, dtype=object)[world.cat_channel[tx.category]],
        "country": countries[tx.country],
        "latitude": tx.lat.astype(np.float64),
        "longitude": tx.lon.astype(np.float64),
        "device_id": device,
        "is_fraud": fraud.astype(np.float64),
        "label_timestamp": _utc_times(label_ns),
        "fraud_scenario": np.array(["", *SCENARIOS], dtype=object)[tx.scenario],
        "customer_home_country": countries[pop.home_country[cust]],
    }
    frame = pd.DataFrame(columns)
    assert tuple(frame.columns[: len(CANONICAL_FIELDS)]) == CANONICAL_FIELDS
    return frame


def _utc_times(ns: np.ndarray) -> pd.Series:
    """datetime64[ns, UTC] from epoch nanoseconds (INT64 min = NaT)."""
    return pd.Series(pd.DatetimeIndex(ns.astype("datetime64[ns]")).tz_localize("UTC"))
