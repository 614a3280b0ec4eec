"""Fraud scenarios, each a vectorised generator of fraudulent transactions.

Every scenario leaves traces that the features a bank uses can pick up, and the
legit traffic holds look-alikes for each trace, so no single feature separates:

``card_testing``
    bots try a stolen number with 2-12 tiny amounts (0.50-3.00) minutes apart at
    merchants the card never used (mostly online, sometimes unattended terminals),
    often followed by one larger purchase. Look-alikes: app stores, fares, parking.
``account_takeover``
    1-3 high-value online purchases from a device never seen for the card and an IP
    country that is not the customer's. Look-alikes: travellers shopping online,
    new phones, legit big online purchases.
``compromised_merchant``
    from a compromise day a share of the merchant's later transactions are inflated
    or charged twice; a merchant fraud rate learnt from earlier labels finds them.
``skimmed_card``
    a cloned card is used at shops and ATMs thousands of km from where the genuine
    card paid under two hours earlier. Look-alike: legit long-haul travel.
``high_amount``
    1-2 purchases 10-50x the customer's typical amount at electronics or jewellery
    shops (a lost or stolen card). Look-alike: legit big-ticket purchases.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.simulation.arrays import NO_DEVICE, TxArrays
from features.simulation.config import SCENARIOS, SimulationConfig
from features.simulation.legit import round_amounts
from features.simulation.population import DAY_S, HOUR_S, Merchants, Population, gumbel_choice
from features.simulation.world import ATM, ECOMMERCE, World, sample_rows


def scenario_code(name: str) -> int:
    return 1 + SCENARIOS.index(name)


@dataclass
class FraudContext:
    world: World
    cfg: SimulationConfig
    pop: Population
    merchants: Merchants
    legit: TxArrays
    home_routine: np.ndarray
    days: int
    scale: float
    rng: np.random.Generator
    next_device: int
    victims: np.ndarray  # shuffled active cards; each scenario takes the next ones
    victim_pos: int = 0

    def n_incidents(self, scenario: str, rows_per_incident: float) -> int:
        """Poisson number of incidents for the configured rate; at least one when a quarter of one
        or more is expected, so that small simulations still exercise every scenario."""
        rate = self.cfg.scenario_rates.get(scenario, 0.0) * self.scale
        expected = rate * len(self.legit) / rows_per_incident
        if expected <= 0 or len(self.victims) == 0:
            return 0
        drawn = int(self.rng.poisson(expected))
        return max(1, drawn) if expected >= 0.25 else drawn

    def take_victims(self, k: int) -> np.ndarray:
        idx = (self.victim_pos + np.arange(k)) % len(self.victims)
        self.victim_pos += k
        return self.victims[idx]

    def new_devices(self, k: int) -> np.ndarray:
        first, self.next_device = self.next_device, self.next_device + k
        return np.arange(first, first + k, dtype=np.int64)

    def foreign_country(self, home_country: np.ndarray) -> np.ndarray:
        w = self.world.country_fraud_ip_weight
        weights = np.where(np.arange(len(w))[None, :] == home_country[:, None], 0.0, w[None, :])
        return gumbel_choice(self.rng, weights)

    def event_times(self, cust: np.ndarray, profile: str) -> np.ndarray:
        """UTC seconds: a day after the first tenth of the period, an hour from ``profile`` at home."""
        rng, k = self.rng, len(cust)
        first_day = min(self.days - 1, max(1, self.days // 10))
        day = rng.integers(first_day, self.days, k)
        which = np.full(k, self.world.hour_profile_index[profile])
        hour = sample_rows(self.world.hour_cdf, which, rng.random(k))
        local = day * DAY_S + hour * HOUR_S + rng.integers(0, HOUR_S, k)
        return local - self.pop.home_offset_s[cust]

    def choose(self, keys: tuple[str, ...], n: int, p: list[float] | None = None) -> np.ndarray:
        return self.world.cats(*keys)[self.rng.choice(len(keys), size=n, p=p)]


def expand(rows_per_incident: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Row -> incident index, and row rank inside its incident."""
    inc = np.repeat(np.arange(len(rows_per_incident)), rows_per_incident)
    first = np.cumsum(rows_per_incident) - rows_per_incident
    return inc, np.arange(len(inc)) - first[inc]


def offsets(inc: np.ndarray, rank: np.ndarray, gaps: np.ndarray) -> np.ndarray:
    """Seconds since the incident's first row, from the gap before each row."""
    gaps = np.where(rank == 0, 0.0, gaps)
    total = np.cumsum(gaps)
    first = np.flatnonzero(rank == 0)
    return (total - total[first][inc]).astype(np.int64)


def _rows(
    ctx: FraudContext,
    scenario: str,
    *,
    card: np.ndarray,
    t: np.ndarray,
    merchant: np.ndarray,
    amount: np.ndarray,
    country: np.ndarray,
    currency: np.ndarray,
    device: np.ndarray,
) -> TxArrays:
    m = ctx.merchants
    tx = TxArrays(
        card=card,
        t=t.astype(np.int64),
        merchant=merchant,
        category=m.category[merchant],
        amount=amount,
        country=country,
        currency=currency,
        lat=m.lat[merchant],
        lon=m.lon[merchant],
        device=device,
        scenario=np.full(len(t), scenario_code(scenario), dtype=np.int8),
    )
    return tx.take(np.flatnonzero((tx.t >= 0) & (tx.t < ctx.days * DAY_S)))


def card_testing(ctx: FraudContext) -> TxArrays:
    rng, world, pop = ctx.rng, ctx.world, ctx.pop
    k = ctx.n_incidents("card_testing", 4.8)
    card = ctx.take_victims(k)
    cust = pop.card_customer[card]
    t0 = ctx.event_times(cust, "fraud")
    probes = np.clip(1 + rng.geometric(0.3, k), 2, 12)
    follow = rng.random(k) < 0.45  # the number works: cash it in
    inc, rank = expand(probes + follow)
    n = len(inc)
    is_follow = follow[inc] & (rank == probes[inc])
    gaps = np.where(is_follow, rng.uniform(300, 3600, n), 20 + rng.exponential(180, n))
    t = t0[inc] + offsets(inc, rank, gaps)

    physical = (rng.random(k) < 0.1)[inc]  # a cloned stripe tried at unattended terminals
    city = rng.choice(world.n_cities, size=k, p=world.city_tourism / world.city_tourism.sum())[inc]
    cat = np.where(
        physical,
        np.where(is_follow, ctx.choose(("electronics", "jewelry"), n), ctx.choose(("fuel", "parking", "convenience"), n)),
        np.where(
            is_follow,
            ctx.choose(("online_electronics", "online_retail", "online_jewelry"), n, [0.5, 0.35, 0.15]),
            ctx.choose(("digital_goods", "charity", "online_retail", "subscription"), n, [0.4, 0.2, 0.25, 0.15]),
        ),
    )
    # Testers hop between merchants (golden-ratio steps give distinct ones within a burst)
    # of the long tail: the big platforms, at the low positions, check harder.
    position = 0.3 + 0.7 * np.mod(rng.random(k)[inc] + rank * 0.6180339887, 1.0)
    merchant = ctx.merchants.pick(np.where(physical, city, world.n_cities), cat, position)
    ip_country = np.where(rng.random(k) < 0.55, pop.home_country[cust], ctx.foreign_country(pop.home_country[cust]))
    country = np.where(physical, world.city_country[city], ip_country[inc])
    currency = np.where(physical, world.country_currency[country], pop.home_currency[cust][inc])
    fx = world.currency_fx[currency]
    tiny = np.round(rng.uniform(0.5, 3.0, n), 2)
    tiny = np.where(rng.random(n) < 0.25, np.maximum(1.0, np.round(tiny)), tiny)
    big = np.round(np.exp(np.log(350.0) + 0.6 * rng.normal(size=n)) * fx, 2)
    device = np.where(physical, NO_DEVICE, ctx.new_devices(k)[inc])
    return _rows(ctx, "card_testing", card=card[inc], t=t, merchant=merchant, amount=np.where(is_follow, big, tiny),
                 country=country, currency=currency, device=device)


def account_takeover(ctx: FraudContext) -> TxArrays:
    rng, world, pop = ctx.rng, ctx.world, ctx.pop
    k = ctx.n_incidents("account_takeover", 1.7)
    card = ctx.take_victims(k)
    cust = pop.card_customer[card]
    t0 = ctx.event_times(cust, "fraud")
    inc, rank = expand(1 + rng.binomial(2, 0.35, k))
    n = len(inc)
    t = t0[inc] + offsets(inc, rank, 60 + rng.exponential(2400, n))
    cat = ctx.choose(("online_electronics", "online_retail", "airline", "hotel", "online_jewelry"), n, [0.35, 0.3, 0.15, 0.1, 0.1])
    merchant = ctx.merchants.pick(np.full(n, world.n_cities), cat, rng.random(n))
    currency = pop.home_currency[cust][inc]
    floor = np.maximum(250.0, 8.0 * np.exp(pop.mu[cust]))[inc]
    spread = 0.5 * np.clip(rng.normal(size=n), -1.5, 3.0)
    amount = np.round(floor * np.exp(spread) * world.currency_fx[currency], 2)
    return _rows(ctx, "account_takeover", card=card[inc], t=t, merchant=merchant, amount=amount,
                 country=ctx.foreign_country(pop.home_country[cust])[inc], currency=currency,
                 device=ctx.new_devices(k)[inc])


def skimmed_card(ctx: FraudContext) -> TxArrays:
    rng, world, legit, m = ctx.rng, ctx.world, ctx.legit, ctx.merchants
    k = ctx.n_incidents("skimmed_card", 2.2)
    # Reference: a genuine in-person payment on an ordinary day at home.
    eligible = np.flatnonzero(ctx.home_routine & (world.cat_channel[legit.category] != ECOMMERCE))
    eligible = eligible[np.argsort(legit.card[eligible], kind="stable")]
    if k == 0 or len(eligible) == 0:
        return TxArrays.empty()
    card = ctx.take_victims(k)
    lo = np.searchsorted(legit.card[eligible], card, side="left")
    hi = np.searchsorted(legit.card[eligible], card, side="right")
    ref = eligible[np.minimum(lo + (rng.random(k) * (hi - lo)).astype(np.int64), len(eligible) - 1)]
    ref_city = m.city[legit.merchant[ref]]
    far = world.city_dist_km[ref_city] >= ctx.cfg.skim_min_distance_km
    ok = (hi > lo) & far.any(axis=1)
    card, ref, far = card[ok], ref[ok], far[ok]
    k = len(card)
    city = gumbel_choice(rng, far * world.city_tourism[None, :])
    t0 = legit.t[ref] + rng.uniform(15 * 60, 110 * 60, k).astype(np.int64)
    inc, rank = expand(np.clip(rng.geometric(0.45, k), 1, 6))
    n = len(inc)
    t = t0[inc] + offsets(inc, rank, rng.uniform(300, 3000, n))
    cash = rng.random(n) < 0.5
    shop = ctx.choose(("electronics", "jewelry", "department_store", "clothing", "grocery"), n, [0.3, 0.15, 0.25, 0.15, 0.15])
    cat = np.where(cash, world.category_index["atm"], shop)
    merchant = m.pick(city[inc], cat, rng.random(n))
    country = world.city_country[city[inc]]
    currency = world.country_currency[country]
    fx = world.currency_fx[currency]
    eur = np.where(cash, rng.choice([200.0, 300.0, 400.0, 500.0], n), np.exp(np.log(300.0) + 0.7 * rng.normal(size=n)))
    amount = round_amounts(eur * fx, world.cat_channel[cat] == ATM, fx)
    return _rows(ctx, "skimmed_card", card=card[inc], t=t, merchant=merchant, amount=amount,
                 country=country, currency=currency, device=np.full(n, NO_DEVICE))


def high_amount(ctx: FraudContext) -> TxArrays:
    rng, world, pop = ctx.rng, ctx.world, ctx.pop
    k = ctx.n_incidents("high_amount", 1.3)
    card = ctx.take_victims(k)
    cust = pop.card_customer[card]
    t0 = ctx.event_times(cust, "shop")
    inc, rank = expand(1 + (rng.random(k) < 0.3))
    n = len(inc)
    t = t0[inc] + offsets(inc, rank, rng.uniform(600, 3 * 3600, n))
    online = (rng.random(k) < 0.25)[inc]
    cat = np.where(
        online,
        ctx.choose(("online_electronics", "online_jewelry"), n, [0.65, 0.35]),
        ctx.choose(("electronics", "jewelry"), n, [0.65, 0.35]),
    )
    merchant = ctx.merchants.pick(np.where(online, world.n_cities, pop.home_city[cust][inc]), cat, rng.random(n))
    currency = pop.home_currency[cust][inc]
    # 10-50x what this card usually spends (its legit median; the customer's typical if it has none).
    typical = np.exp(pop.mu[cust]) * world.currency_fx[pop.home_currency[cust]]
    mine = np.isin(ctx.legit.card, card)
    medians = pd.Series(ctx.legit.amount[mine]).groupby(ctx.legit.card[mine]).median()
    observed = medians.reindex(card).to_numpy()
    typical = np.where(np.isnan(observed), typical, observed)
    amount = np.round(typical[inc] * rng.uniform(10, 50, n), 2)
    return _rows(ctx, "high_amount", card=card[inc], t=t, merchant=merchant, amount=amount,
                 country=pop.home_country[cust][inc], currency=currency,
                 device=np.where(online, ctx.new_devices(k)[inc], NO_DEVICE))


def compromised_merchant(ctx: FraudContext) -> TxArrays:
    """Mark inflated charges in place in ``ctx.legit``; return the duplicated charges."""
    rng, world, legit, cfg = ctx.rng, ctx.world, ctx.legit, ctx.cfg
    budget = cfg.scenario_rates.get("compromised_merchant", 0.0) * ctx.scale * len(legit)
    if budget < 1:  # not even one fraud expected: tiny simulation
        return TxArrays.empty()
    n_merchants = len(ctx.merchants)
    traffic = np.bincount(legit.merchant, minlength=n_merchants)
    physical_or_online = world.cat_channel[ctx.merchants.category] != ATM
    candidates = np.flatnonzero(physical_or_online & (traffic >= 5))
    if len(candidates) == 0:
        return TxArrays.empty()
    # Busier merchants are likelier targets (weighted shuffle: sort by u ** (1 / w)).
    keys = rng.random(len(candidates)) ** (1.0 / np.sqrt(traffic[candidates]))
    candidates = candidates[np.argsort(-keys, kind="stable")]
    day0 = (rng.uniform(0.15, 0.6, len(candidates)) * ctx.days * DAY_S).astype(np.int64)
    share = rng.uniform(*cfg.compromised_share, len(candidates))

    span = (ctx.days + 1) * DAY_S
    by_merchant = np.lexsort((legit.t, legit.merchant))
    key = legit.merchant[by_merchant] * span + legit.t[by_merchant]
    first_after = np.searchsorted(key, candidates * span + day0)
    stop = np.searchsorted(key, (candidates + 1) * span)
    expected = (stop - first_after) * share

    # Compromised terminals and breached web shops share the budget, a few merchants each.
    online = world.cat_channel[ctx.merchants.category[candidates]] == ECOMMERCE
    chosen = _fill(expected, ~online, 0.6 * budget) + _fill(expected, online, 0.4 * budget)
    if not chosen:
        chosen = [int(np.argmax(expected))]
    rows = np.concatenate([by_merchant[first_after[j]:stop[j]] for j in chosen])
    row_share = np.concatenate([np.full(stop[j] - first_after[j], share[j]) for j in chosen])
    hit = rows[rng.random(len(rows)) < row_share]
    twice = rng.random(len(hit)) < 0.5
    code = scenario_code("compromised_merchant")

    inflated = hit[~twice]
    legit.amount[inflated] = np.round(legit.amount[inflated] * rng.uniform(1.3, 4.0, len(inflated)), 2)
    legit.scenario[inflated] = code

    dup = legit.take(hit[twice])
    dup.t = dup.t + 60 + np.minimum(rng.exponential(4 * 3600, len(dup)), 12 * 3600).astype(np.int64)
    dup.amount = np.where(rng.random(len(dup)) < 0.6, dup.amount, np.round(dup.amount * rng.uniform(1.05, 1.6, len(dup)), 2))
    dup.scenario = np.full(len(dup), code, dtype=np.int8)
    return dup.take(np.flatnonzero(dup.t < ctx.days * DAY_S))


def _fill(expected: np.ndarray, allowed: np.ndarray, budget: float) -> list[int]:
    """Walk the (shuffled) candidates and take merchants until their expected frauds reach the
    budget: first ones that carry a good part of it alone (at most ~25 frauds each, so that big
    simulations spread over more merchants), then smaller ones."""
    chosen: list[int] = []
    remaining = budget
    wanted = min(budget / 2, 25.0)
    floor = min(4.0, budget)  # a compromise shows as several frauds at the merchant
    for least in (wanted, wanted / 2.5, 0.0):
        fits = allowed & (expected >= max(floor, least))
        for j in np.flatnonzero(fits):
            if remaining <= 0:
                return chosen
            if j not in chosen and expected[j] <= max(2 * remaining, 4.0):
                chosen.append(int(j))
                remaining -= expected[j]
    return chosen
