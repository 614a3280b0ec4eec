"""Knobs of the transaction simulator. Defaults give ~1.7 transactions per card per
day and a fraud rate of roughly 0.5% of transactions."""

from __future__ import annotations

from dataclasses import dataclass, field

#: Scenario ids, as written to the ``fraud_scenario`` column ("" = legit).
SCENARIOS: tuple[str, ...] = (
    "card_testing",
    "account_takeover",
    "compromised_merchant",
    "skimmed_card",
    "high_amount",
)

#: Expected fraud rows per scenario as a share of legit transactions (scaled by ``fraud_rate_scale``).
DEFAULT_SCENARIO_RATES: dict[str, float] = {
    "card_testing": 0.0012,
    "account_takeover": 0.0008,
    "compromised_merchant": 0.0012,
    "skimmed_card": 0.0010,
    "high_amount": 0.0006,
}


@dataclass(frozen=True)
class SimulationConfig:
    """Behavioural parameters. Every field has a realistic default; override a few with
    ``dataclasses.replace(SimulationConfig(), trips_per_year=8)``."""

    # cardholders
    second_card_share: float = 0.25
    tx_per_day_median: float = 1.75  # per customer, split across their cards
    tx_per_day_sigma: float = 0.6  # log-sd across customers
    typical_amount_median_eur: float = 28.0
    typical_amount_sigma: float = 0.45  # log-sd of the typical amount across customers
    ecommerce_share_beta: tuple[float, float] = (2.0, 5.0)  # mean ~0.29
    atm_share_beta: tuple[float, float] = (1.2, 14.0)  # mean ~0.08
    new_device_per_month: float = 0.12  # chance a customer starts using a new phone/laptop
    # habits
    favourite_merchants: int = 6
    favourite_share: tuple[float, float, float] = (0.7, 0.55, 0.85)  # card_present, ecommerce, atm
    session_share: float = 0.12  # transactions minutes after the previous one (shopping sprees)
    legit_big_purchase_rate: float = 0.04  # at big-ticket categories: 4-30x the usual amount
    trips_per_year: float = 4.0
    domestic_trip_share: float = 0.5
    # merchants
    merchants_per_card: float = 0.4
    ecommerce_merchants_per_card: float = 0.1
    # fraud
    scenario_rates: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_SCENARIO_RATES))
    compromised_share: tuple[float, float] = (0.15, 0.4)  # share of a compromised merchant's later tx
    skim_min_distance_km: float = 2000.0
    chargeback_days: tuple[float, float] = (1.0, 30.0)
    chargeback_gamma: tuple[float, float] = (1.3, 5.5)  # shape, scale (days) of the delay beyond the minimum

    def __post_init__(self) -> None:
        unknown = sorted(set(self.scenario_rates) - set(SCENARIOS))
        if unknown:
            raise ValueError(f"scenario_rates: unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
        negative = [k for k, v in self.scenario_rates.items() if not v >= 0]
        if negative:
            raise ValueError(f"scenario_rates: rates must be >= 0, got {negative}")
        if not 0 <= self.second_card_share <= 1:
            raise ValueError("second_card_share must lie in [0, 1]")
