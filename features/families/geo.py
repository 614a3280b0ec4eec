"""``geo``: distance and implied speed from the card's previous located transaction.

``km_from_prev_tx`` is the haversine distance (Earth radius 6371.0088 km, the mean
radius) from the most recent *prior* transaction of the card that had both
latitude and longitude; ``kmh_from_prev_tx`` divides it by the time between the
two, floored at 60 s so that near-simultaneous events do not explode to infinity.

Both are NaN when the current transaction lacks coordinates or when the card has
no located transaction in the last ``expiry_ms`` (default 30 days, ``t - t_prev <
expiry``). The expiry bounds the state and is applied identically in batch and
online: a location from two months ago says little about travel speed.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from features.base import MS_PER_DAY, MS_PER_HOUR
from features.families._base import NAN, Family
from features.families._context import BatchContext
from features.schema import Transaction

EARTH_RADIUS_KM = 6371.0088
MIN_DT_MS = 60_000


def haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance in km.

    >>> round(haversine_km(48.8566, 2.3522, 51.5074, -0.1278), 1)   # Paris - London
    343.6
    """
    p1, p2 = math.radians(lat1), math.radians(lat2)
    half_dlat = math.sin((p2 - p1) / 2)
    half_dlon = math.sin(math.radians(lon2 - lon1) / 2)
    a = half_dlat * half_dlat + math.cos(p1) * math.cos(p2) * half_dlon * half_dlon
    return 2 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(1.0, a)))


def _haversine_km_many(
    lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray
) -> np.ndarray:
    # Same formula, same operation order as haversine_km.
    p1, p2 = np.radians(lat1), np.radians(lat2)
    half_dlat = np.sin((p2 - p1) / 2)
    half_dlon = np.sin(np.radians(lon2 - lon1) / 2)
    a = half_dlat * half_dlat + np.cos(p1) * np.cos(p2) * half_dlon * half_dlon
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.minimum(1.0, a)))


class Geo(Family):
    name = "geo"
    entity = "card"
    _names = ("km_from_prev_tx", "kmh_from_prev_tx")

    def __init__(self, expiry_ms: int = 30 * MS_PER_DAY) -> None:
        self.horizon_ms = expiry_ms

    def new_state(self) -> dict[str, Any]:
        return {}

    def values_one(self, tx: Transaction, state: Any) -> list[float]:
        prev_t = state.get("t")
        if tx.latitude is None or tx.longitude is None or prev_t is None:
            return [NAN, NAN]
        dt = tx.timestamp_ms - prev_t
        if dt >= self.horizon_ms:
            return [NAN, NAN]
        km = haversine_km(state["la"], state["lo"], tx.latitude, tx.longitude)
        return [km, km / (max(dt, MIN_DT_MS) / MS_PER_HOUR)]

    def update_one(self, tx: Transaction, state: Any) -> None:
        if tx.latitude is not None and tx.longitude is not None:
            state["t"], state["la"], state["lo"] = (
                tx.timestamp_ms,
                float(tx.latitude),
                float(tx.longitude),
            )

    def expire(self, state: Any, now_ms: int) -> bool:
        if "t" in state and now_ms - state["t"] >= self.horizon_ms:
            state.clear()
        return not state

    def transform_context(self, ctx: BatchContext) -> np.ndarray:
        groups = ctx.groups("card_id")
        perm = groups.perm
        ts, lat, lon = ctx.ts[perm], ctx.floats("latitude")[perm], ctx.floats("longitude")[perm]
        located = ~np.isnan(lat) & ~np.isnan(lon)
        position = np.arange(ctx.n)
        # Last located position at or before each row, then shifted by one: strictly prior.
        last = np.maximum.accumulate(np.where(located, position, -1)) if ctx.n else position
        prev = np.full(ctx.n, -1)
        prev[1:] = last[:-1]
        group_start = (
            np.maximum.accumulate(np.where(groups.starts, position, 0)) if ctx.n else position
        )
        ok = located & (prev >= group_start)
        idx = np.where(ok, prev, 0)
        dt = ts - ts[idx]
        ok &= dt < self.horizon_ms
        km = np.full(ctx.n, np.nan)
        kmh = np.full(ctx.n, np.nan)
        km[ok] = _haversine_km_many(lat[idx[ok]], lon[idx[ok]], lat[ok], lon[ok])
        kmh[ok] = km[ok] / (np.maximum(dt[ok], MIN_DT_MS) / MS_PER_HOUR)
        out = np.empty((ctx.n, 2))
        out[perm] = np.column_stack([km, kmh])
        return out
