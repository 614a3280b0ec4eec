"""Reading a narrative the way the verifier needs it: sentences, number mentions with units, cue words.

A *mention* is a number as written with its unit (``2,450.00 EUR`` is money in EUR,
``12.3×`` a ratio, ``3.2 hours`` a duration, ``4.2%`` a percentage, ``3 earlier
transactions`` a count of transactions, ``30-day`` a window). A *cue* is a word that
says what a number is about (``average``, ``threshold``, ``spent``...): each cue is
given to the nearest mention in its sentence, so that "scored 0.87 against a
threshold of 0.62" binds 0.87 to the score and 0.62 to the threshold.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from explain.formatting import DAY_NAMES


@dataclass(frozen=True)
class Span:
    """Where something stands in a text (character offsets) and what it says there."""

    start: int
    end: int
    text: str

    def as_dict(self) -> dict[str, int | str]:
        return {"start": self.start, "end": self.end, "text": self.text}


@dataclass(frozen=True)
class Mention:
    """A number as written. ``value`` and ``tolerance`` are in the unit's base (seconds, fractions for %).

    ``unit``: money | ratio | percent | km | kmh | duration | window | count | plain | date | time.
    ``noun`` says what a count counts (``tx``, ``labels``, ``fraud_labels``); ``text`` holds dates
    and clock times as written (``2026-03-14``, ``02:17``).
    """

    value: float
    tolerance: float
    unit: str
    span: Span
    currency: str | None = None
    noun: str | None = None
    text: str = ""


_DATE = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})(?:\s?UTC\b)?")
_NUMBER = re.compile(
    r"(?P<pre>[€$£¥]\s?)?(?<![\w.,])(?P<int>\d{1,3}(?:,\d{3})+|\d+)(?:\.(?P<frac>\d+))?(?![\w])"
    r"(?P<scale>\s?(?i:thousand|million|billion|bn)\b)?"
    r"(?:(?P<pct>\s?(?:%|(?i:percent|per\s?cent)\b))"
    r"|(?P<ratio>\s?(?:×|(?i:x|times)\b))"
    r"|(?P<kmh>\s?(?i:km/h|kph\b|kmh\b|kilomet(?:re|er)s?\s+(?:per|an)\s+hour\b))"
    r"|(?P<km>\s?(?i:km\b|kilomet(?:re|er)s?\b))"
    r"|(?P<adj>-(?i:day|hour|minute|second|week)s?\b)"
    r"|(?P<dur>\s?(?i:seconds?|secs?|minutes?|mins?|hours?|hrs?|days?|weeks?)\b)"
    r"|(?P<cur>\s?(?:[A-Z]{3}\b|(?i:euros?|dollars?|pounds?)\b|[€$£¥])))?"
)
_SCALES = {"thousand": 1e3, "million": 1e6, "billion": 1e9, "bn": 1e9}
_SECONDS = {"sec": 1.0, "second": 1.0, "min": 60.0, "minute": 60.0, "hr": 3600.0, "hour": 3600.0,
            "day": 86400.0, "week": 604800.0}
_SYMBOLS = {"€": "EUR", "$": "USD", "£": "GBP", "¥": "JPY", "euro": "EUR", "euros": "EUR", "dollar": "USD",
            "dollars": "USD", "pound": "GBP", "pounds": "GBP"}
# What a bare count counts, read from the words after it ("3 earlier transactions").
_COUNT_NOUNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("fraud_labels", re.compile(r"\s+(?:(?:known|reported|confirmed|labelled|labeled)\s+)?(?:fraud labels|frauds|"
                                r"fraud reports|fraudulent transactions)\b", re.IGNORECASE)),
    ("labels", re.compile(r"\s+(?:label(?:l)?ed (?:transactions|payments)|labels)\b", re.IGNORECASE)),
    ("tx", re.compile(r"\s+(?:(?:earlier|previous|prior|recent|other|more|past|card)\s+){0,2}"
                      r"(?:transactions|payments|purchases)\b", re.IGNORECASE)),
)
# A duration right after one of these words is a look-back window ("in the last 7 days").
_WINDOW_BEFORE = re.compile(r"\b(?:last|past|over|within|in|during|across|per|trailing|previous|prior|the|of)\s*$",
                            re.IGNORECASE)
#: The look-back windows features are computed over (1 hour ... 90 days), in seconds.
_WINDOWS = frozenset({3600.0, 86400.0, 604800.0, 2592000.0, 7776000.0})
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|\n+")
_CLAUSE_END = re.compile(r"[;:]|\s[—–-]\s")
_WORD = re.compile(r"\S+")

#: Subject cues: words that say what a nearby number is about. Longer phrases win over their parts.
CUES: dict[str, tuple[str, ...]] = {
    "mean": ("average amount", "average spend", "average", "averages", "averaged", "mean", "typical amount",
             "typical", "usual amount", "usual", "normally", "normal"),
    "max": ("largest amount", "largest", "biggest", "maximum", "highest amount", "max", "peak"),
    "sum": ("amount spent", "spent", "spending", "total", "in total", "sum", "cumulative"),
    "amount": ("amount", "payment of", "payment", "purchase of", "purchase", "charge", "transaction of",
               "transaction for", "worth", "paid", "valued at"),
    "score": ("risk score", "score", "scored", "scores", "scoring", "probability", "rated", "model gave"),
    "threshold": ("alert threshold", "threshold", "cut-off", "cutoff"),
    "since": ("since the previous", "since the last", "since", "after the previous", "after", "before", "earlier",
              "later", "gap", "apart", "elapsed", "ago"),
    "distance": ("distance", "away"),
    "location": ("from the previous", "from the last", "location"),
    "previous": ("previous transaction", "previous payment", "last transaction", "prior transaction",
                 "previous one"),
    "speed": ("travel speed", "speed", "travelling at", "traveling at"),
    "fraud_rate": ("fraud rate", "rate"),
    "mcc": ("category code", "merchant category", "category", "mcc", "code"),
    "hour": ("time of day", "o'clock"),
    "whatif": ("score would be", "would score", "would have scored", "would be", "would", "instead of", "instead",
               "had the", "had it been", "if the"),
}
_CUE_RE = re.compile(
    r"(?<![\w-])(?:" + "|".join(re.escape(p) for p in sorted({p for ps in CUES.values() for p in ps}, key=len,
                                                              reverse=True)) + r")(?![\w-])",
    re.IGNORECASE,
)
_CUE_OF = {phrase: subject for subject, phrases in CUES.items() for phrase in phrases}
_MAX_LEFT, _MAX_RIGHT = 6, 4

HYPOTHETICAL = re.compile(r"\b(?:would|instead of|had (?:the|it|this)|if (?:the|it|this)|were (?:it|the))\b",
                          re.IGNORECASE)
WEEKDAYS = tuple(day.lower() for day in DAY_NAMES)


@lru_cache(maxsize=64)
def sentences(text: str) -> tuple[Span, ...]:
    """Sentences of a text (a decimal point is not a sentence end)."""
    out, start = [], 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
        if text[start:end].strip():
            out.append(_strip(text, start, end))
        start = end
    if text[start:].strip():
        out.append(_strip(text, start, len(text)))
    return tuple(out)


@lru_cache(maxsize=64)
def clauses(text: str) -> tuple[Span, ...]:
    """Sentences cut at ``;``, ``:`` and dashes: the unit within which cues and windows are looked for."""
    out = []
    for sentence in sentences(text):
        start = sentence.start
        for match in _CLAUSE_END.finditer(text, sentence.start, sentence.end):
            if text[start:match.start()].strip():
                out.append(_strip(text, start, match.start()))
            start = match.end()
        if text[start:sentence.end].strip():
            out.append(_strip(text, start, sentence.end))
    return tuple(out)


def _strip(text: str, start: int, end: int) -> Span:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return Span(start, end, text[start:end])


def mentions(text: str) -> list[Mention]:
    """Every number in a text with its unit; dates and clock times as their own mentions."""
    found: list[Mention] = []
    blocked: list[tuple[int, int]] = []
    for match in _DATE.finditer(text):
        found.append(Mention(0.0, 0.0, "date", Span(match.start(), match.end(), match.group(0)), text=match.group(0)))
        blocked.append(match.span())
    for match in _TIME.finditer(text):
        if any(a <= match.start() < b for a, b in blocked):
            continue
        clock = f"{int(match.group(1)):02d}:{match.group(2)}"
        found.append(Mention(0.0, 0.0, "time", Span(match.start(), match.end(), match.group(0)), text=clock))
        blocked.append(match.span())
    for match in _NUMBER.finditer(text):
        if any(a <= match.start("int") < b for a, b in blocked):
            continue
        found.append(_mention(text, match))
    return sorted(found, key=lambda m: m.span.start)


def _mention(text: str, match: re.Match[str]) -> Mention:
    whole, frac = match.group("int").replace(",", ""), match.group("frac") or ""
    value = float(whole + (f".{frac}" if frac else ""))
    tolerance = 0.5 * 10 ** (-len(frac))
    if match.group("scale"):
        factor = _SCALES[match.group("scale").strip().lower()]
        value, tolerance = value * factor, tolerance * factor
    span = Span(match.start(), match.end(), match.group(0))
    pre = (match.group("pre") or "").strip()
    if match.group("pct"):
        return Mention(value / 100, tolerance / 100, "percent", span)
    if match.group("ratio"):
        return Mention(value, tolerance, "ratio", span)
    if match.group("kmh"):
        return Mention(value, tolerance, "kmh", span)
    if match.group("km"):
        return Mention(value, tolerance, "km", span)
    if match.group("adj"):
        unit = _SECONDS[match.group("adj").strip("-").lower().removesuffix("s")]
        return Mention(value * unit, tolerance * unit, "window", span)
    if match.group("dur"):
        word = match.group("dur").strip().lower()
        unit = next(seconds for stem, seconds in _SECONDS.items() if word.startswith(stem))
        window = (value * unit in _WINDOWS
                  and bool(_WINDOW_BEFORE.search(text[max(0, match.start() - 12):match.start()])))
        return Mention(value * unit, tolerance * unit, "window" if window else "duration", span)
    currency = match.group("cur")
    if currency or pre:
        token = (currency or pre).strip()
        code = _SYMBOLS.get(token.lower(), _SYMBOLS.get(token, token.upper()))
        return Mention(value, tolerance, "money", span, currency=code)
    after = text[match.end():match.end() + 60]
    for noun, pattern in _COUNT_NOUNS:
        if pattern.match(after):
            return Mention(value, tolerance, "count", span, noun=noun)
    return Mention(value, tolerance, "plain", span)


@dataclass(frozen=True)
class Cue:
    subject: str
    span: Span


def cues_by_mention(text: str, found: list[Mention]) -> dict[int, list[tuple[int, Cue]]]:
    """For each mention (by index), the cues nearest to it in its clause, with their word distance.

    A cue goes to the closest mention of its clause (within 6 words before or 4 after); on a tie
    it goes to the mention after it ("scored 0.87").
    """
    out: dict[int, list[tuple[int, Cue]]] = {i: [] for i in range(len(found))}
    numbers = [(i, m) for i, m in enumerate(found) if m.unit not in ("date", "window")]
    for clause in clauses(text):
        inside = [(i, m) for i, m in numbers if clause.start <= m.span.start < clause.end]
        if not inside:
            continue
        for match in _CUE_RE.finditer(text, clause.start, clause.end):
            if any(m.span.start <= match.start() < m.span.end for m in found):
                continue  # the unit words of a mention ("1 hour", "30-day") are not cues
            cue = Cue(_CUE_OF[match.group(0).lower()], Span(match.start(), match.end(), match.group(0)))
            best: tuple[int, int, int] | None = None  # (distance, side: 0 = cue before the number, index)
            for i, m in inside:
                if match.end() <= m.span.start:
                    distance, side, limit = _words(text, match.end(), m.span.start), 0, _MAX_LEFT
                elif match.start() >= m.span.end:
                    distance, side, limit = _words(text, m.span.end, match.start()), 1, _MAX_RIGHT
                else:
                    continue
                if distance <= limit and (best is None or (distance, side) < best[:2]):
                    best = (distance, side, i)
            if best is not None:
                out[best[2]].append((best[0], cue))
    return out


def _words(text: str, start: int, end: int) -> int:
    return len(_WORD.findall(text, start, end))


def in_hypothetical(text: str, position: int) -> bool:
    """Whether ``position`` stands in a clause that states a what-if (``would``, ``instead of``, ``had the``)."""
    for clause in clauses(text):
        if clause.start <= position < clause.end:
            return bool(HYPOTHETICAL.search(clause.text))
    return False


def nearest_window(text: str, found: list[Mention], mention: Mention) -> Mention | None:
    """The look-back window a number is stated for, in its clause.

    In order: a window after it joined by a preposition ("3 in the last 24 hours"); the nearest
    window before it ("the 30-day average of 46.51 EUR"); a window shortly after it ("12.2× this
    card's 7-day average"). A window with another number between belongs to that number.
    """
    for clause in clauses(text):
        if not clause.start <= mention.span.start < clause.end:
            continue
        inside = [m for m in found if clause.start <= m.span.start < clause.end]
        windows = [m for m in inside if m.unit == "window"]

        others = [m.span.start for m in inside if m.unit != "window" and m is not mention]
        after = [w for w in windows if w.span.start >= mention.span.end and _alone(others, mention.span.end, w.span.start)
                 and _words(text, mention.span.end, w.span.start) <= 9]
        joined = [w for w in after if _JOINED.search(text, mention.span.end, w.span.start)]
        if joined:
            return joined[0]
        before = [w for w in windows if w.span.end <= mention.span.start and _alone(others, w.span.end, mention.span.start)
                  and _words(text, w.span.end, mention.span.start) <= 6]
        if before:
            return before[-1]
        return after[0] if after else None
    return None


def _alone(starts: list[int], a: int, b: int) -> bool:
    """No other number stands between ``a`` and ``b``."""
    return not any(a <= start < b for start in starts)


_JOINED = re.compile(r"\b(?:in|over|within|during|for|across|from)\b", re.IGNORECASE)
