"""Who pays and where: customers with their cards, devices and trips; merchants.

All tables are structs of numpy arrays indexed by integers (card 0..n-1, customer,
merchant, city, category). Ids become strings only when the frame is assembled.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.simulation.config import SimulationConfig
from features.simulation.world import ATM, CARD_PRESENT, ECOMMERCE, World

DAY_S = 86_400
HOUR_S = 3_600
DEVICES_PER_CUSTOMER = 4  # up to 3 habitual devices + 1 that appears during the simulation


def gumbel_choice(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One column per row of a (rows, options) weight matrix, drawn with those weights (0 = never)."""
    with np.errstate(divide="ignore"):
        keys = np.log(weights) + rng.gumbel(size=weights.shape)
    return np.argmax(keys, axis=1)


def hash01(salt: int, *keys: np.ndarray) -> np.ndarray:
    """Deterministic uniform [0, 1) per element from integer keys (splitmix64 mixing)."""
    x = np.full(np.broadcast(*keys).shape, np.uint64(salt & 0xFFFFFFFFFFFFFFFF), dtype=np.uint64)
    for key in keys:
        x = x ^ np.asarray(key).astype(np.uint64)
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass
class Trips:
    """Non-overlapping trips, sorted by (customer, start), after a sentinel of customer -1.
    Times are seconds on the home clock."""

    customer: np.ndarray
    start: np.ndarray  # departure
    end: np.ndarray  # departure back home
    out_s: np.ndarray  # door-to-door travel outbound, plus any clock shift eastwards
    back_s: np.ndarray
    dest: np.ndarray  # city index

    def lookup(self, customer: np.ndarray, t: np.ndarray, span: int) -> tuple[np.ndarray, np.ndarray]:
        """Index of the latest trip of ``customer`` departing at or before ``t`` and whether there is one."""
        keys = self.customer * span + self.start
        pos = np.searchsorted(keys, customer * span + t, side="right") - 1
        found = pos >= 0
        pos = np.maximum(pos, 0)
        found &= self.customer[pos] == customer
        return pos, found


@dataclass
class Population:
    card_customer: np.ndarray
    card_rate: np.ndarray  # expected transactions per day
    home_city: np.ndarray  # per customer
    home_country: np.ndarray
    home_currency: np.ndarray
    home_offset_s: np.ndarray
    home_lat: np.ndarray
    home_lon: np.ndarray
    neighbourhood: np.ndarray  # home position within the city in [0, 1): favourites sit near it
    mu: np.ndarray  # log of the typical amount (EUR)
    sigma: np.ndarray  # log-sd of the customer's amounts
    ecommerce_share: np.ndarray
    atm_share: np.ndarray
    n_devices: np.ndarray
    new_device_t: np.ndarray  # home-clock second from which the extra device is used (beyond horizon: never)
    trips: Trips

    @property
    def n_cards(self) -> int:
        return len(self.card_customer)

    @property
    def n_customers(self) -> int:
        return len(self.home_city)


def build_population(world: World, cfg: SimulationConfig, n_cards: int, days: int, rng: np.random.Generator) -> Population:
    cards_per_customer = 1 + (rng.random(n_cards) < cfg.second_card_share)
    n_customers = int(np.searchsorted(np.cumsum(cards_per_customer), n_cards) + 1)
    cards_per_customer = cards_per_customer[:n_customers]
    cards_per_customer[-1] -= int(cards_per_customer.sum()) - n_cards
    card_customer = np.repeat(np.arange(n_customers), cards_per_customer)
    # The second card (a credit card beside the debit card) sees less use.
    first_card = np.r_[True, card_customer[1:] != card_customer[:-1]]
    card_share = np.where(cards_per_customer[card_customer] == 1, 1.0, np.where(first_card, 0.7, 0.3))

    residents = world.city_residents / world.city_residents.sum()
    home_city = rng.choice(world.n_cities, size=n_customers, p=residents)
    home_country = world.city_country[home_city]
    spread = rng.normal(size=(2, n_customers)) * 0.04
    home_lat = world.city_lat[home_city] + spread[0]
    home_lon = world.city_lon[home_city] + spread[1] / np.cos(np.radians(world.city_lat[home_city]))
    rate = cfg.tx_per_day_median * np.exp(cfg.tx_per_day_sigma * rng.normal(size=n_customers))
    rate = np.clip(rate, 0.05, 25.0)
    new_device_p = min(0.9, cfg.new_device_per_month * days / 30)
    new_device_t = np.where(
        rng.random(n_customers) < new_device_p,
        (rng.random(n_customers) * days * DAY_S).astype(np.int64),
        np.int64((days + 30) * DAY_S),
    )
    return Population(
        card_customer=card_customer,
        card_rate=rate[card_customer] * card_share,
        home_city=home_city,
        home_country=home_country,
        home_currency=world.country_currency[home_country],
        home_offset_s=world.city_offset_s[home_city],
        home_lat=home_lat,
        home_lon=home_lon,
        neighbourhood=1.0 / (1.0 + np.exp(-1.7 * spread[1] / 0.04)),
        mu=np.log(cfg.typical_amount_median_eur) + cfg.typical_amount_sigma * rng.normal(size=n_customers),
        sigma=rng.uniform(0.45, 0.85, n_customers),
        ecommerce_share=rng.beta(*cfg.ecommerce_share_beta, size=n_customers),
        atm_share=rng.beta(*cfg.atm_share_beta, size=n_customers),
        n_devices=rng.choice([1, 2, 3], size=n_customers, p=[0.45, 0.4, 0.15]),
        new_device_t=new_device_t,
        trips=_build_trips(world, cfg, home_city, days, rng),
    )


def _build_trips(world: World, cfg: SimulationConfig, home_city: np.ndarray, days: int, rng: np.random.Generator) -> Trips:
    n_customers = len(home_city)
    slots = max(1, int(np.ceil(days / 20)))
    n_trips = np.minimum(rng.poisson(cfg.trips_per_year * days / 365, n_customers), slots)
    start_day = np.sort(rng.uniform(0, days, (n_customers, slots)), axis=1)
    length_days = 2 + rng.gamma(2.0, 1.5, (n_customers, slots))
    for j in range(1, slots):  # keep trips apart: at least two days at home between them
        start_day[:, j] = np.maximum(start_day[:, j], start_day[:, j - 1] + length_days[:, j - 1] + 2)
    keep = (np.arange(slots)[None, :] < n_trips[:, None]) & (start_day < days)
    customer = np.nonzero(keep)[0]
    start_day, length_days = start_day[keep], length_days[keep]
    home = home_city[customer]
    n = len(customer)

    same_country = world.city_country[None, :] == world.city_country[home][:, None]
    other_city = np.arange(world.n_cities)[None, :] != home[:, None]
    domestic = (rng.random(n) < cfg.domestic_trip_share) & (same_country & other_city).any(axis=1)
    weights = np.where(
        domestic[:, None],
        (same_country & other_city) * 1.0,
        (~same_country) * world.city_tourism[None, :],
    )
    dest = gumbel_choice(rng, weights)

    dist = world.city_dist_km[home, dest]
    travel_h = np.where(dist > 600, dist / 800 + 2.5, dist / 100 + 0.5)
    shift = world.city_offset_s[dest] - world.city_offset_s[home]
    # Local clocks jump by the time-zone difference; adding the eastward jump to the
    # travel time keeps every legit journey physically possible in UTC.
    out_s = (travel_h * HOUR_S).astype(np.int64) + np.maximum(shift, 0)
    back_s = (travel_h * HOUR_S).astype(np.int64) + np.maximum(-shift, 0)
    start = (np.floor(start_day) * DAY_S + rng.uniform(6, 20, n) * HOUR_S).astype(np.int64)
    length = np.maximum((length_days * DAY_S).astype(np.int64), 2 * (out_s + back_s) + DAY_S)
    # A sentinel trip of no customer first, so that lookups always land on a valid index.
    return Trips(
        customer=np.r_[-1, customer],
        start=np.r_[0, start],
        end=np.r_[0, start + length],
        out_s=np.r_[0, out_s],
        back_s=np.r_[0, back_s],
        dest=np.r_[0, dest],
    )


@dataclass
class Merchants:
    """Merchants grouped by (city, category); e-commerce merchants sit in a virtual city ``n_cities``.

    Within a physical group merchants are ordered west to east, so "near a customer's
    home" is a position in the group.
    """

    category: np.ndarray
    city: np.ndarray
    country: np.ndarray
    lat: np.ndarray
    lon: np.ndarray
    number: np.ndarray  # shuffled public number (the id says nothing about city or category)
    group_start: np.ndarray  # per group id = city * n_cat + category
    group_count: np.ndarray
    n_cat: int

    def __len__(self) -> int:
        return len(self.category)

    def pick(self, city: np.ndarray, category: np.ndarray, position: np.ndarray) -> np.ndarray:
        """Merchant at relative ``position`` in [0, 1) of its (city, category) group."""
        group = city * self.n_cat + category
        count = self.group_count[group]
        offset = np.minimum((position * count).astype(np.int64), count - 1)
        return self.group_start[group] + offset


def build_merchants(
    world: World, cfg: SimulationConfig, pop: Population, rng: np.random.Generator
) -> Merchants:
    n_cat, n_cities = world.n_cat, world.n_cities
    # Merchant density follows spending: residents plus visitors.
    residents = np.bincount(pop.home_city, minlength=n_cities).astype(np.float64)
    visitors = 0.1 * pop.n_customers * world.city_tourism / world.city_tourism.sum()
    city_weight = (residents + visitors) / (residents + visitors).sum()
    n_physical = cfg.merchants_per_card * pop.n_cards
    n_online = cfg.ecommerce_merchants_per_card * pop.n_cards
    # Fewer, bigger merchants where each sale is small (groceries, transit).
    merchant_share = world.cat_share**0.7

    counts = np.zeros((n_cities + 1, n_cat), dtype=np.int64)
    for channel in (CARD_PRESENT, ATM, ECOMMERCE):
        cats = np.flatnonzero(world.cat_channel == channel)
        share = merchant_share[cats] / merchant_share[cats].sum()
        if channel == ECOMMERCE:
            counts[n_cities, cats] = np.maximum(20, np.round(n_online * share))
        else:
            scale = 0.06 if channel == ATM else 1.0
            counts[:n_cities, cats] = np.maximum(1, np.round(n_physical * scale * city_weight[:, None] * share[None, :]))
    group_count = counts.ravel()
    group_start = np.cumsum(group_count) - group_count
    group = np.repeat(np.arange(len(group_count)), group_count)
    city, category = group // n_cat, group % n_cat
    n = len(group)

    physical = city < n_cities
    city_of = np.minimum(city, n_cities - 1)
    noise = rng.normal(size=(2, n)) * 0.04
    lat = np.where(physical, world.city_lat[city_of] + noise[0], np.nan)
    lon = np.where(physical, world.city_lon[city_of] + noise[1] / np.cos(np.radians(world.city_lat[city_of])), np.nan)
    order = np.lexsort((noise[1], group))  # west to east inside each group
    lat, lon = lat[order], lon[order]
    online_weight = world.city_residents + world.city_tourism
    online_country = rng.choice(n_cities, size=n, p=online_weight / online_weight.sum())
    country = np.where(physical, world.city_country[city_of], world.city_country[online_country])
    return Merchants(
        category=category,
        city=city,
        country=country,
        lat=lat,
        lon=lon,
        number=rng.permutation(n),
        group_start=group_start,
        group_count=group_count,
        n_cat=n_cat,
    )
