"""How numbers are written on cards and in narratives, and read back out of free text.

The same formatting is used for the fact sheet a model sees and the template
narrative, so that the grounding check can compare a narrative's numbers with the
facts after parsing both with :func:`extract_numbers`.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from functools import cache
from string import Formatter
from typing import Any

from explain.codes import DATA_DIR, normal_mcc

CHANNEL_NAMES: dict[int, str] = {0: "card-present", 1: "ecommerce", 2: "ATM"}
DAY_NAMES: tuple[str, ...] = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def money(value: float, currency: str) -> str:
    return f"{value:,.2f} {currency}"


def ratio(value: float) -> str:
    return f"{value:,.1f}×"


def count(value: float) -> str:
    return f"{int(round(value)):,}"


def km(value: float) -> str:
    return f"{value:,.1f} km" if value < 100 else f"{value:,.0f} km"


def kmh(value: float) -> str:
    return f"{value:,.0f} km/h"


def percent(value: float) -> str:
    """A rate in [0, 1] as a percentage with one decimal."""
    return f"{100 * value:.1f}%"


def duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:,.0f} seconds"
    if seconds < 2 * 3600:
        return f"{seconds / 60:,.0f} minutes"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:,.1f} hours"
    return f"{seconds / 86400:,.1f} days"


def hour(value: float) -> str:
    return f"{int(value):02d}:00 UTC"


def weekday(value: float) -> str:
    index = int(value)
    return DAY_NAMES[index] if 0 <= index < len(DAY_NAMES) else f"day {index}"


def channel(value: float) -> str:
    return CHANNEL_NAMES.get(int(value), "unknown channel")


def score(value: float) -> str:
    return f"{value:.2f}"


def score_pair(value: float, threshold: float) -> tuple[str, str]:
    """A score and the threshold, with enough decimals to tell them apart and never a false 1.00 or 0.00.

    >>> score_pair(0.87, 0.62)
    ('0.87', '0.62')
    >>> score_pair(0.9984, 0.62)
    ('0.998', '0.620')
    """
    for decimals in (2, 3, 4, 6):
        a, b = f"{value:.{decimals}f}", f"{threshold:.{decimals}f}"
        extreme = float(a) in (0.0, 1.0) and value not in (0.0, 1.0)
        if a != b and not extreme:
            return a, b
    return f"{value:.6f}", f"{threshold:.6f}"


@cache
def mcc_names() -> dict[str, str]:
    """ISO 18245 merchant category code -> name (``explain/data/mcc_names.tsv``)."""
    out = {}
    for line in (DATA_DIR / "mcc_names.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            code, name = line.split("\t", 1)
            out[code.strip()] = name.strip()
    return out


def mcc_label(mcc: object) -> str | None:
    """'5732 (Electronics stores)'; the bare code when its name is not listed; None for no code."""
    code = normal_mcc(f"{int(mcc):04d}" if isinstance(mcc, float) and mcc.is_integer() else mcc)
    if code is None:
        return None
    name = mcc_names().get(code)
    return f"{code} ({name})" if name else code


def shap_value(value: float) -> str:
    return f"{value:+.2f}"


class FactFormatter(Formatter):
    """``str.format`` with number kinds: ``"{amount:money} is {amount_to_mean_30d:ratio}"``.

    Fields are looked up in the mapping given to :meth:`format`; ``currency`` must be one of them
    for ``money``. Kinds: money, ratio, count, km, kmh, percent, duration, hour, weekday,
    channel, score, int, mcc (code and name), or any ordinary format spec.
    """

    _KINDS: dict[str, Any] = {
        "ratio": ratio, "count": count, "km": km, "kmh": kmh, "percent": percent, "duration": duration,
        "hour": hour, "weekday": weekday, "channel": channel, "score": score,
        "int": lambda v: f"{int(v)}", "mcc": lambda v: mcc_label(v) or f"{int(v)}",
    }

    def __init__(self, currency: str) -> None:
        self.currency = currency

    def format_field(self, value: Any, format_spec: str) -> str:
        if format_spec == "money":
            return money(float(value), self.currency)
        kind = self._KINDS.get(format_spec)
        if kind is not None:
            return str(kind(float(value)))
        return super().format_field(value, format_spec)


def fields_of(template: str) -> list[str]:
    """Field names a format template reads."""
    return [name for _, name, _, _ in Formatter().parse(template) if name]


# ---------------------------------------------------------------------------
# Reading numbers back out of text
# ---------------------------------------------------------------------------

# A number not glued to a preceding letter/digit (skips "SmolLM2", "T10"): 2,450.00 | 12.3 | 0.87 | 30,
# optionally scaled by a word ("13 million") and marked as a percentage.
_NUMBER = re.compile(
    r"(?<![A-Za-z0-9_.,])(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?(\s?%)?"
    r"(?:\s?(thousand|million|billion|bn|k|m)\b)?",
    re.IGNORECASE,
)
# Dates and clock times are compared as written, not digit by digit.
_DATE_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}\b|\b\d{1,2}:\d{2}\b")
_SCALE = {"thousand": 1e3, "k": 1e3, "million": 1e6, "m": 1e6, "billion": 1e9, "bn": 1e9}
_CURRENCY = re.compile(r"[€$£¥]|\b(?:EUR|USD|GBP|CHF|JPY|SEK|NOK|DKK|PLN|CZK|CAD|AUD|euros?|dollars?|pounds?)\b",
                       re.IGNORECASE)
_CURRENCY_CODES = {"€": "EUR", "euro": "EUR", "euros": "EUR", "$": "USD", "dollar": "USD", "dollars": "USD",
                   "£": "GBP", "pound": "GBP", "pounds": "GBP", "¥": "JPY"}


@dataclass(frozen=True)
class StatedNumber:
    """A number as written: its value, how many decimals it was written with, where it stands."""

    value: float
    decimals: int
    is_percent: bool
    start: int
    end: int
    text: str


def extract_numbers(text: str) -> list[StatedNumber]:
    """Numbers in free text, thousands separators removed and scale words applied; dates and clock
    times are left out (see :func:`extract_dates`); signs are ignored (direction is checked apart)."""
    blocked = [m.span() for m in _DATE_TIME.finditer(text)]
    found = []
    for match in _NUMBER.finditer(text):
        if any(a <= match.start() < b for a, b in blocked):
            continue
        whole, frac, pct, scale = match.group(1), match.group(2), match.group(3), match.group(4)
        value = float(whole.replace(",", "") + (f".{frac}" if frac else ""))
        if scale:
            value *= _SCALE[scale.lower()]
        found.append(StatedNumber(value, 0 if scale else len(frac or ""), bool(pct), match.start(), match.end(),
                                  match.group(0)))
    return found


def extract_dates(text: str) -> list[str]:
    """Dates (YYYY-MM-DD) and clock times (HH:MM) as written."""
    return [m.group(0) for m in _DATE_TIME.finditer(text)]


def extract_currencies(text: str) -> set[str]:
    """Currencies named or symbolised in a text, as ISO codes where known (€ -> EUR)."""
    out = set()
    for match in _CURRENCY.finditer(text):
        token = match.group(0)
        out.add(_CURRENCY_CODES.get(token.lower(), _CURRENCY_CODES.get(token, token.upper())))
    return out


def matches(stated: StatedNumber, fact: StatedNumber | float) -> bool:
    """True when ``stated`` is ``fact`` written with fewer or equal decimals (rounding), in the same units.

    A fact of 12.34 is matched by "12.34", "12.3" and "12". Percentages are compared as fractions:
    a fact of 0.87 is matched by "87%", a fact of "4.2%" by "4.2%" and "0.042", but "0.87%" is not 0.87.
    """
    tolerance = 0.5 * 10 ** (-stated.decimals) * 1.0001 + 1e-9
    value = stated.value / 100 if stated.is_percent else stated.value
    if stated.is_percent:
        tolerance /= 100
    if isinstance(fact, StatedNumber):
        target = fact.value / 100 if fact.is_percent else fact.value
    else:
        target = float(fact)
    return abs(value - target) <= tolerance
