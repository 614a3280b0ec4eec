"""Legit card traffic: who pays what, where, when and with which device.

One pass of numpy over all transactions (no per-transaction Python):

1. a Poisson count per card, a channel from the customer's e-commerce/ATM shares
   and a merchant category from the channel's mix;
2. day and local hour from the category's weekly and daily rhythm; some
   transactions follow the previous one within minutes (shopping sprees);
3. trips move the customer to another city for a few days; transactions during
   the journey are pushed to arrival, so legit travel is always physically possible;
4. a merchant: usually one of the customer's favourites near home, otherwise any
   merchant of that category in the current city (or online);
5. amount from the customer's typical spend, the category and now and then a
   legit big-ticket purchase; currency and clock of the place.
"""

from __future__ import annotations

import numpy as np

from features.simulation.arrays import NO_DEVICE, TxArrays
from features.simulation.config import SimulationConfig
from features.simulation.population import (
    DAY_S,
    DEVICES_PER_CUSTOMER,
    HOUR_S,
    Merchants,
    Population,
    hash01,
)
from features.simulation.world import (
    AMOUNT_KINDS,
    ATM,
    CARD_PRESENT,
    ECOMMERCE,
    World,
    cdf_rows,
    sample_rows,
)

REL, ABS, CASH = (AMOUNT_KINDS.index(k) for k in ("rel", "abs", "atm"))


def round_amounts(amount: np.ndarray, cash: np.ndarray, fx: np.ndarray) -> np.ndarray:
    """Cents for payments; notes for cash (multiples of 10, or 50 in weak currencies)."""
    step = np.where(fx < 2.0, 10.0, 50.0)
    notes = np.maximum(2 * step, np.round(amount / step) * step)
    return np.where(cash, notes, np.maximum(0.3, np.round(amount, 2)))


def generate_legit(
    world: World,
    cfg: SimulationConfig,
    pop: Population,
    merchants: Merchants,
    days: int,
    start_weekday: int,
    rng: np.random.Generator,
) -> tuple[TxArrays, np.ndarray]:
    """Legit transactions (unsorted) and, per row, whether the customer was on a normal day at
    home: no trip within a day either side (where skimming fraud takes its reference)."""
    card = np.repeat(np.arange(pop.n_cards), rng.poisson(pop.card_rate * days))
    cust = pop.card_customer[card]
    n = len(card)

    u = rng.random(n)
    ecommerce, atm = pop.ecommerce_share[cust], pop.atm_share[cust]
    channel = np.where(u < ecommerce, ECOMMERCE, np.where(u < ecommerce + atm, ATM, CARD_PRESENT))
    channel_mix = np.where(world.cat_channel[None, :] == np.arange(3)[:, None], world.cat_share[None, :], 0.0)
    category = sample_rows(cdf_rows(channel_mix), channel, rng.random(n))

    day = sample_rows(world.day_cdf(days, start_weekday), world.cat_week[category], rng.random(n))
    hour = sample_rows(world.hour_cdf, world.cat_hours[category], rng.random(n))
    t = day * DAY_S + hour * HOUR_S + rng.integers(0, HOUR_S, n)

    order = np.lexsort((t, card))
    card, cust, category, t = card[order], cust[order], category[order], t[order]
    spree = np.r_[False, (card[1:] == card[:-1]) & (rng.random(max(n - 1, 0)) < cfg.session_share)][:n]
    t = np.where(spree, np.r_[0, t[:-1]][:n] + rng.integers(120, 2700, n), t)

    # Trips. Times so far are on the clock of wherever the customer is.
    trips = pop.trips
    span = (days + 90) * DAY_S
    pos, found = trips.lookup(cust, t, span)
    start, end, out_s, back_s = trips.start[pos], trips.end[pos], trips.out_s[pos], trips.back_s[pos]
    outbound = found & (t >= start) & (t < start + out_s)
    inbound = found & (t >= end) & (t < end + back_s)
    t = t + np.where(outbound, out_s, 0) + np.where(inbound, back_s, 0)
    away = found & (t >= start + out_s) & (t < end)
    city = np.where(away, trips.dest[pos], pop.home_city[cust])
    pos, found = trips.lookup(cust, t + DAY_S, span)
    home_routine = ~(found & (t - DAY_S < trips.end[pos] + trips.back_s[pos]))

    # Merchants: favourites (by customer and category) unless travelling; online ones anywhere.
    chan = world.cat_channel[category]
    online = chan == ECOMMERCE
    favourite = (rng.random(n) < np.asarray(cfg.favourite_share)[chan]) & (online | ~away)
    slot = (cfg.favourite_merchants * rng.random(n) ** 2).astype(np.int64)
    h = hash01(int(rng.integers(0, 2**63)), cust, category, slot)
    near_home = np.mod(pop.neighbourhood[cust] + 0.3 * (h - 0.5), 1.0)
    fresh = rng.random(n)
    position = np.where(favourite, np.where(online, h**1.5, near_home), np.where(online, fresh**1.5, fresh))
    merchant = merchants.pick(np.where(online, world.n_cities, city), category, position)

    # Country is where the payment happens: the shop's, or the buyer's IP for e-commerce.
    country = world.city_country[city]
    currency = np.where(online, pop.home_currency[cust], world.country_currency[country])

    n_dev = pop.n_devices[cust]
    slot = np.minimum((n_dev * rng.random(n) ** 2).astype(np.int64), n_dev - 1)
    slot = np.where((t >= pop.new_device_t[cust]) & (rng.random(n) < 0.85), DEVICES_PER_CUSTOMER - 1, slot)
    device = np.where(online, cust * DEVICES_PER_CUSTOMER + slot, NO_DEVICE)

    kind = world.cat_amount_kind[category]
    z = rng.normal(size=n)
    rel = pop.mu[cust] + world.cat_loc[category] + pop.sigma[cust] * world.cat_scale[category] * z
    fixed = np.log(np.maximum(world.cat_loc[category], 1e-9)) + world.cat_scale[category] * z
    cash = pop.mu[cust] + np.log(rng.uniform(1.5, 4.0, n))  # cash for a few days
    log_eur = np.select([kind == REL, kind == ABS], [rel, fixed], cash)
    big = world.cat_big_ok[category] & (rng.random(n) < cfg.legit_big_purchase_rate)
    log_eur = log_eur + np.where(big, rng.uniform(np.log(4.0), np.log(30.0), n), 0.0)
    fx = world.currency_fx[currency]
    amount = round_amounts(np.exp(log_eur) * fx, kind == CASH, fx)

    t_utc = t - world.city_offset_s[city]
    keep = (t_utc >= 0) & (t_utc < days * DAY_S)
    tx = TxArrays(
        card=card,
        t=t_utc,
        merchant=merchant,
        category=category,
        amount=amount,
        country=country,
        currency=currency,
        lat=merchants.lat[merchant],
        lon=merchants.lon[merchant],
        device=device,
        scenario=np.zeros(n, dtype=np.int8),
    )
    return tx.take(np.flatnonzero(keep)), home_routine[keep]
