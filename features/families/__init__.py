"""The built-in feature families, one module each, and the default line-up.

Each family defines its features once in its module docstring and implements them
twice: vectorised over a frame (``transform_many``) and per event against entity
state (``transform_one`` / ``update_one``). ``tests/features/test_parity.py`` proves
the two agree for every family returned by :func:`default_families`.
"""

from __future__ import annotations

from features.base import MS_PER_DAY
from features.families._base import Family
from features.families._context import BatchContext
from features.families.amount_profile import AmountProfile
from features.families.calendar import Calendar
from features.families.card_velocity import CardVelocity
from features.families.channel_mcc import ChannelMcc
from features.families.geo import Geo
from features.families.merchant_risk import MerchantRisk
from features.families.novelty import Novelty
from features.families.recency import Recency
from fraudlens.settings import FeatureSettings

__all__ = [
    "AmountProfile",
    "BatchContext",
    "Calendar",
    "CardVelocity",
    "ChannelMcc",
    "Family",
    "Geo",
    "MerchantRisk",
    "Novelty",
    "Recency",
    "days_to_ms",
    "default_families",
]


def days_to_ms(days: float) -> int:
    """Settings give days as floats; both executions use the same rounded integer."""
    return int(round(days * MS_PER_DAY))


def default_families(settings: FeatureSettings | None = None) -> list[Family]:
    """The families of the default pipeline, in output order."""
    settings = settings or FeatureSettings()
    novelty_ms = days_to_ms(settings.novelty_horizon_days)
    merchant = MerchantRisk(label_delay_ms=days_to_ms(settings.label_delay_days))
    card_velocity, amount_profile, geo = CardVelocity(), AmountProfile(), Geo()
    # Recency forgets as far back as the store keeps any state, so eviction cannot skew it.
    state_horizon = max(
        novelty_ms,
        merchant.horizon_ms,
        card_velocity.horizon_ms,
        amount_profile.horizon_ms,
        geo.horizon_ms,
    )
    return [
        card_velocity,
        amount_profile,
        Recency(horizon_ms=state_horizon),
        geo,
        Novelty(horizon_ms=novelty_ms),
        merchant,
        Calendar(),
        ChannelMcc(),
    ]
