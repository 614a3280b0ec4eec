"""The simulated world: countries, cities, merchant categories and their rhythms.

Static tables only (no randomness). :class:`World` turns them into numpy arrays
indexed by small integers, which is what the vectorised generators work with.
Amounts are modelled in EUR and converted with the fixed ``EUR_FX`` rates, so a
London card spends in GBP at home and in EUR in Barcelona.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CARD_PRESENT, ECOMMERCE, ATM = 0, 1, 2
CHANNEL_NAMES: tuple[str, ...] = ("card_present", "ecommerce", "atm")
EARTH_RADIUS_KM = 6371.0088

CURRENCY_BY_COUNTRY: dict[str, str] = {
    "FR": "EUR", "DE": "EUR", "ES": "EUR", "IT": "EUR", "NL": "EUR", "PT": "EUR",
    "GB": "GBP", "US": "USD", "CA": "CAD", "CH": "CHF", "PL": "PLN", "AE": "AED",
    "BR": "BRL", "SG": "SGD", "AU": "AUD",
}
#: Units of each currency per EUR (fixed; the simulator has no FX dynamics).
EUR_FX: dict[str, float] = {
    "EUR": 1.0, "GBP": 0.86, "USD": 1.08, "CAD": 1.47, "CHF": 0.95, "PLN": 4.3,
    "AED": 3.97, "BRL": 5.9, "SGD": 1.45, "AUD": 1.65,
}
#: Where account takeovers and card-testing bots connect from, relative weights.
FRAUD_IP_WEIGHT: dict[str, float] = {"BR": 3.0, "AE": 2.0, "PL": 2.0, "SG": 1.5, "US": 2.0, "GB": 1.5, "NL": 1.5, "CA": 1.0}


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country: str
    lat: float
    lon: float
    utc_offset_h: float  # standard time; the simulator ignores daylight saving
    residents: float  # relative share of simulated cardholders living there
    tourism: float  # relative pull for trips and for fraud far from home


CITIES: tuple[City, ...] = (
    City("Paris", "FR", 48.8566, 2.3522, 1, 10, 10),
    City("Lyon", "FR", 45.7640, 4.8357, 1, 3, 2),
    City("Marseille", "FR", 43.2965, 5.3698, 1, 3, 2),
    City("Toulouse", "FR", 43.6047, 1.4442, 1, 2, 1),
    City("Berlin", "DE", 52.5200, 13.4050, 1, 6, 5),
    City("Munich", "DE", 48.1351, 11.5820, 1, 4, 3),
    City("Hamburg", "DE", 53.5511, 9.9937, 1, 3, 2),
    City("Cologne", "DE", 50.9375, 6.9603, 1, 2, 1),
    City("Madrid", "ES", 40.4168, -3.7038, 1, 5, 5),
    City("Barcelona", "ES", 41.3874, 2.1686, 1, 4, 8),
    City("Valencia", "ES", 39.4699, -0.3763, 1, 2, 2),
    City("Rome", "IT", 41.9028, 12.4964, 1, 4, 8),
    City("Milan", "IT", 45.4642, 9.1900, 1, 4, 4),
    City("Naples", "IT", 40.8518, 14.2681, 1, 2, 2),
    City("Amsterdam", "NL", 52.3676, 4.9041, 1, 3, 5),
    City("Rotterdam", "NL", 51.9244, 4.4777, 1, 2, 1),
    City("London", "GB", 51.5074, -0.1278, 0, 10, 10),
    City("Manchester", "GB", 53.4808, -2.2426, 0, 3, 2),
    City("Birmingham", "GB", 52.4862, -1.8904, 0, 3, 1),
    City("Edinburgh", "GB", 55.9533, -3.1883, 0, 2, 2),
    City("New York", "US", 40.7128, -74.0060, -5, 8, 10),
    City("Chicago", "US", 41.8781, -87.6298, -6, 5, 3),
    City("Los Angeles", "US", 34.0522, -118.2437, -8, 6, 5),
    City("Miami", "US", 25.7617, -80.1918, -5, 3, 4),
    City("Houston", "US", 29.7604, -95.3698, -6, 3, 1),
    City("Lisbon", "PT", 38.7223, -9.1393, 0, 0, 4),
    City("Warsaw", "PL", 52.2297, 21.0122, 1, 0, 2),
    City("Zurich", "CH", 47.3769, 8.5417, 1, 0, 2),
    City("Toronto", "CA", 43.6532, -79.3832, -5, 0, 2),
    City("Dubai", "AE", 25.2048, 55.2708, 4, 0, 3),
    City("Sao Paulo", "BR", -23.5505, -46.6333, -3, 0, 1),
    City("Singapore", "SG", 1.3521, 103.8198, 8, 0, 2),
    City("Sydney", "AU", -33.8688, 151.2093, 10, 0, 1),
)

# Relative activity per local hour 0..23.
HOUR_PROFILES: dict[str, tuple[float, ...]] = {
    "shop": (0.1, 0.05, 0.03, 0.02, 0.02, 0.05, 0.2, 0.5, 1.0, 1.5, 2.0, 2.2, 2.3, 2.1, 2.0, 2.0, 2.2, 2.5, 2.6, 2.0, 1.3, 0.7, 0.3, 0.15),
    "dining": (0.3, 0.15, 0.05, 0.02, 0.02, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 1.5, 3.0, 2.5, 1.0, 0.5, 0.5, 0.8, 1.8, 3.0, 3.0, 2.0, 1.0, 0.6),
    "fastfood": (0.4, 0.25, 0.1, 0.05, 0.05, 0.1, 0.5, 1.5, 1.8, 1.0, 0.8, 1.5, 2.8, 2.2, 1.0, 0.8, 1.0, 1.3, 1.8, 2.0, 1.5, 1.0, 0.8, 0.6),
    "nightlife": (2.0, 1.6, 1.0, 0.5, 0.2, 0.05, 0.02, 0.02, 0.02, 0.02, 0.05, 0.1, 0.3, 0.3, 0.3, 0.4, 0.6, 1.0, 1.6, 2.0, 2.4, 2.6, 2.6, 2.4),
    "fuel": (0.2, 0.1, 0.1, 0.1, 0.2, 0.5, 1.2, 2.0, 2.0, 1.5, 1.3, 1.3, 1.4, 1.3, 1.3, 1.4, 1.8, 2.2, 2.0, 1.4, 1.0, 0.7, 0.4, 0.3),
    "commute": (0.2, 0.05, 0.02, 0.02, 0.1, 0.5, 1.5, 3.5, 3.5, 1.5, 0.8, 0.8, 1.0, 1.0, 0.9, 1.0, 1.5, 3.0, 3.0, 1.5, 0.9, 0.7, 0.5, 0.4),
    "late": (0.6, 0.4, 0.3, 0.2, 0.2, 0.3, 0.6, 1.0, 1.2, 1.0, 1.0, 1.1, 1.3, 1.2, 1.1, 1.1, 1.3, 1.6, 1.8, 1.8, 1.6, 1.4, 1.1, 0.8),
    "atm": (0.2, 0.1, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.2, 1.3, 1.4, 1.5, 1.8, 1.6, 1.4, 1.4, 1.6, 1.9, 2.0, 1.7, 1.2, 0.8, 0.5, 0.3),
    "online": (0.5, 0.3, 0.2, 0.15, 0.1, 0.1, 0.2, 0.5, 0.8, 1.0, 1.1, 1.2, 1.4, 1.3, 1.2, 1.2, 1.3, 1.5, 1.8, 2.2, 2.6, 2.6, 2.0, 1.0),
    # Fraudsters work around the clock, bots a little more while the cardholder sleeps.
    "fraud": (1.6, 1.8, 1.9, 1.8, 1.5, 1.1, 0.8, 0.7, 0.8, 0.9, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.1, 1.2, 1.3, 1.4),
}
# Relative activity per weekday, Monday..Sunday.
WEEK_PROFILES: dict[str, tuple[float, ...]] = {
    "grocery": (1.0, 0.95, 1.0, 1.05, 1.2, 1.4, 0.45),
    "leisure": (0.75, 0.8, 0.9, 1.0, 1.35, 1.5, 1.1),
    "retail": (0.85, 0.85, 0.9, 0.95, 1.1, 1.6, 0.55),
    "fuel": (1.05, 1.0, 1.0, 1.0, 1.1, 1.0, 0.8),
    "commute": (1.25, 1.25, 1.25, 1.25, 1.15, 0.55, 0.4),
    "weekday": (1.1, 1.1, 1.1, 1.1, 1.1, 0.9, 0.4),
    "flat": (1.0, 1.0, 1.0, 1.0, 1.05, 1.1, 1.0),
    "online": (1.1, 1.0, 1.0, 0.95, 0.9, 0.9, 1.2),
    "atm": (1.0, 0.95, 0.95, 1.0, 1.3, 1.25, 0.6),
}


@dataclass(frozen=True, slots=True)
class Category:
    """A kind of merchant: MCC, channel, share of the channel's legit traffic, amount model, rhythm.

    Amount models: ``rel`` = the customer's typical amount times ``exp(loc)``, log-sd
    ``scale`` times the customer's; ``abs`` = median ``loc`` EUR, log-sd ``scale``
    whoever pays (fares, apps); ``atm`` = round withdrawals.
    """

    key: str
    mcc: str
    channel: int
    share: float
    amount: str
    loc: float
    scale: float
    hours: str
    week: str
    big_ok: bool = False  # legit out-of-pattern purchases happen here (TV, ring, flight)
    high_risk: bool = False


CATEGORIES: tuple[Category, ...] = (
    Category("grocery", "5411", CARD_PRESENT, 0.28, "rel", 0.0, 1.0, "shop", "grocery"),
    Category("restaurant", "5812", CARD_PRESENT, 0.13, "rel", 0.35, 0.9, "dining", "leisure"),
    Category("fast_food", "5814", CARD_PRESENT, 0.12, "rel", -0.9, 0.7, "fastfood", "flat"),
    Category("bar", "5813", CARD_PRESENT, 0.05, "rel", -0.1, 0.8, "nightlife", "leisure"),
    Category("convenience", "5499", CARD_PRESENT, 0.06, "rel", -0.8, 0.8, "late", "flat"),
    Category("fuel", "5541", CARD_PRESENT, 0.09, "rel", 0.6, 0.5, "fuel", "fuel"),
    Category("pharmacy", "5912", CARD_PRESENT, 0.05, "rel", -0.2, 0.8, "shop", "weekday"),
    Category("department_store", "5311", CARD_PRESENT, 0.05, "rel", 0.6, 1.0, "shop", "retail", big_ok=True),
    Category("clothing", "5651", CARD_PRESENT, 0.05, "rel", 0.8, 0.9, "shop", "retail"),
    Category("electronics", "5732", CARD_PRESENT, 0.02, "rel", 1.5, 1.0, "shop", "retail", big_ok=True, high_risk=True),
    Category("jewelry", "5944", CARD_PRESENT, 0.005, "rel", 1.9, 1.0, "shop", "retail", big_ok=True, high_risk=True),
    Category("transit", "4111", CARD_PRESENT, 0.08, "abs", 2.6, 0.25, "commute", "commute"),
    Category("parking", "7523", CARD_PRESENT, 0.03, "abs", 4.5, 0.6, "shop", "weekday"),
    Category("atm", "6011", ATM, 1.0, "atm", 0.0, 0.0, "atm", "atm"),
    Category("online_retail", "5999", ECOMMERCE, 0.28, "rel", 0.45, 0.9, "online", "online"),
    Category("online_books", "5942", ECOMMERCE, 0.06, "rel", 0.0, 0.6, "online", "online"),
    Category("online_electronics", "5732", ECOMMERCE, 0.05, "rel", 1.4, 1.0, "online", "online", big_ok=True, high_risk=True),
    Category("digital_goods", "5815", ECOMMERCE, 0.18, "abs", 3.5, 0.8, "online", "online"),
    Category("subscription", "4899", ECOMMERCE, 0.08, "abs", 11.0, 0.35, "online", "flat"),
    Category("online_clothing", "5651", ECOMMERCE, 0.12, "rel", 0.9, 0.8, "online", "online"),
    Category("food_delivery", "5814", ECOMMERCE, 0.12, "rel", 0.1, 0.5, "dining", "leisure"),
    Category("airline", "4511", ECOMMERCE, 0.03, "rel", 2.5, 0.6, "online", "online", big_ok=True),
    Category("hotel", "7011", ECOMMERCE, 0.03, "rel", 2.2, 0.6, "online", "online", big_ok=True),
    Category("charity", "8398", ECOMMERCE, 0.01, "abs", 20.0, 0.8, "online", "flat"),
    Category("online_jewelry", "5944", ECOMMERCE, 0.005, "rel", 1.9, 1.0, "online", "online", big_ok=True, high_risk=True),
)
AMOUNT_KINDS: tuple[str, ...] = ("rel", "abs", "atm")


def haversine_km(lat1: np.ndarray, lon1: np.ndarray, lat2: np.ndarray, lon2: np.ndarray) -> np.ndarray:
    """Great-circle distance in km, elementwise (broadcasting)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi = p2 - p1
    dlmb = np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def cdf_rows(rows: list[tuple[float, ...]] | np.ndarray) -> np.ndarray:
    weights = np.asarray(rows, dtype=np.float64)
    cdf = np.cumsum(weights, axis=1) / weights.sum(axis=1, keepdims=True)
    # Snap rounding residue to 1 so a zero-weight tail bin can never be drawn.
    cdf[cdf >= 1.0 - 1e-12] = 1.0
    return cdf


def sample_rows(cdf: np.ndarray, which: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Draw a bin per element from per-element discrete distributions, in one ``searchsorted``.

    ``cdf`` holds one cumulative distribution per row (last column 1.0); ``which``
    picks the row for each element and ``u`` are uniforms in [0, 1). Shifting row r
    by r makes the flattened table sorted, so one search serves every row.
    """
    n_rows, k = cdf.shape
    flat = (cdf + np.arange(n_rows)[:, None]).ravel()
    which = np.asarray(which, dtype=np.int64)
    pos = np.searchsorted(flat, which + u, side="right") - which * k
    return np.minimum(pos, k - 1)


class World:
    """Array view of the static tables."""

    def __init__(self) -> None:
        self.cities = CITIES
        self.n_cities = len(CITIES)
        self.country_codes: tuple[str, ...] = tuple(dict.fromkeys(c.country for c in CITIES))
        self.currency_codes: tuple[str, ...] = tuple(EUR_FX)
        country_index = {code: i for i, code in enumerate(self.country_codes)}
        self.country_currency = np.array(
            [self.currency_codes.index(CURRENCY_BY_COUNTRY[c]) for c in self.country_codes], dtype=np.int64
        )
        self.currency_fx = np.array([EUR_FX[c] for c in self.currency_codes])
        self.country_fraud_ip_weight = np.array([FRAUD_IP_WEIGHT.get(c, 0.5) for c in self.country_codes])
        self.city_country = np.array([country_index[c.country] for c in CITIES], dtype=np.int64)
        self.city_lat = np.array([c.lat for c in CITIES])
        self.city_lon = np.array([c.lon for c in CITIES])
        self.city_offset_s = np.array([int(c.utc_offset_h * 3600) for c in CITIES], dtype=np.int64)
        self.city_residents = np.array([c.residents for c in CITIES])
        self.city_tourism = np.array([c.tourism for c in CITIES])
        self.city_dist_km = haversine_km(
            self.city_lat[:, None], self.city_lon[:, None], self.city_lat[None, :], self.city_lon[None, :]
        )

        self.categories = CATEGORIES
        self.n_cat = len(CATEGORIES)
        self.category_index = {c.key: i for i, c in enumerate(CATEGORIES)}
        self.cat_mcc = np.array([c.mcc for c in CATEGORIES], dtype=object)
        self.cat_channel = np.array([c.channel for c in CATEGORIES], dtype=np.int64)
        self.cat_share = np.array([c.share for c in CATEGORIES])
        self.cat_amount_kind = np.array([AMOUNT_KINDS.index(c.amount) for c in CATEGORIES], dtype=np.int64)
        self.cat_loc = np.array([c.loc for c in CATEGORIES])
        self.cat_scale = np.array([c.scale for c in CATEGORIES])
        self.cat_big_ok = np.array([c.big_ok for c in CATEGORIES])
        hour_names = list(HOUR_PROFILES)
        week_names = list(WEEK_PROFILES)
        self.hour_profile_index = {name: i for i, name in enumerate(hour_names)}
        self.cat_hours = np.array([hour_names.index(c.hours) for c in CATEGORIES], dtype=np.int64)
        self.cat_week = np.array([week_names.index(c.week) for c in CATEGORIES], dtype=np.int64)
        self.hour_cdf = cdf_rows([HOUR_PROFILES[h] for h in hour_names])
        self.week_weights = np.array([WEEK_PROFILES[w] for w in week_names])

    def cats(self, *keys: str) -> np.ndarray:
        return np.array([self.category_index[k] for k in keys], dtype=np.int64)

    def channel_categories(self, channel: int) -> tuple[np.ndarray, np.ndarray]:
        """Category indices of a channel and their normalised traffic shares."""
        idx = np.flatnonzero(self.cat_channel == channel)
        share = self.cat_share[idx]
        return idx, share / share.sum()

    def day_cdf(self, days: int, start_weekday: int) -> np.ndarray:
        """Per week-profile cumulative distribution over the simulated days."""
        weekday = (start_weekday + np.arange(days)) % 7
        return cdf_rows(self.week_weights[:, weekday])
