"""The licence: the explicit set of statements a narrative about one alert may make.

Built from the fact sheet (:func:`licence_from_facts`); a narrative plan (pattern
hypotheses, comparisons with the card's normal) adds its own statements with
:meth:`Licence.extend`. The verifier (:mod:`explain.checks`) passes a text only when
every claim in it is one of these statements:

* ``numbers``: each number with its value, unit and *subject* (what it is about:
  the amount, the 30-day average, the score...) and look-back window;
* ``factors``: the factors given as reasons, with their directions;
* ``mentioned``: factors the facts describe without making them reasons;
* ``values``: the worded facts (channel, flags such as new/known merchant, weekdays);
* ``relations``: comparisons that hold (score above the threshold, amount above the average);
* ``words``: the words of the facts, beside the fixed domain vocabulary;
* ``withheld``: id strings that must never appear (transaction, merchant, card, device, customer).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from string import Formatter

from explain.facts import FactSheet
from explain.plan import NarrativePlan
from explain.reading import Mention, mentions
from explain.reasons import CATALOGUE, ReasonCode, concepts_in

#: Subjects a number is about, and the cue subjects (explain.reading.CUES) that may name it.
ACCEPTED_CUES: dict[str, frozenset[str]] = {
    "amount": frozenset({"amount", "whatif"}),
    "mean": frozenset({"mean"}),
    "max": frozenset({"max"}),
    "sum": frozenset({"sum"}),
    "ratio_mean": frozenset({"amount", "mean"}),
    "ratio_max": frozenset({"amount", "max"}),
    "score": frozenset({"score"}),
    "threshold": frozenset({"threshold"}),
    "tx_count": frozenset(),
    "labels": frozenset(),
    "fraud_labels": frozenset(),
    "since": frozenset({"since", "previous"}),
    "distance": frozenset({"distance", "location", "previous"}),
    "speed": frozenset({"speed", "location", "previous"}),
    "fraud_rate": frozenset({"fraud_rate"}),
    "mcc": frozenset({"mcc"}),
    "hour": frozenset({"hour"}),
    "timestamp": frozenset({"hour"}),
    "whatif_amount": frozenset({"whatif", "amount"}),
    "whatif_score": frozenset({"whatif", "score"}),
}
#: Subjects stated only in a what-if: never licensed outside a hypothetical clause.
HYPOTHETICAL_SUBJECTS = frozenset({"whatif_amount", "whatif_score"})

_SUBJECT_OF_FIELD: tuple[tuple[str, str], ...] = (
    (r"card_amount_mean_", "mean"), (r"card_amount_max_", "max"), (r"card_amount_sum_", "sum"),
    (r"card_tx_count_", "tx_count"), (r"amount_to_mean_", "ratio_mean"), (r"amount_to_max_", "ratio_max"),
    (r"merchant_fraud_rate_", "fraud_rate"), (r"merchant_known_labels_", "labels"),
    (r"merchant_known_frauds_", "fraud_labels"), (r"seconds_since_prev_tx", "since"), (r"km_from_prev_tx", "distance"),
    (r"kmh_from_prev_tx", "speed"), (r"hour_of_day", "hour"), (r"mcc_code", "mcc"), (r"amount", "amount"),
)
_WINDOW_SECONDS = {"1h": 3600.0, "24h": 86400.0, "7d": 604800.0, "30d": 2592000.0, "90d": 7776000.0}
_CHANNEL_KEYS = {0: "card_present", 1: "ecommerce", 2: "atm"}  # explain.formatting.CHANNEL_NAMES' codes
_FLAG_NOUNS = {"is_new_merchant": "merchant", "is_new_device": "device", "is_new_country": "country"}


@dataclass(frozen=True)
class LicensedNumber:
    """A number a narrative may state: value (as formatted in the facts), unit, subject and window."""

    value: float
    unit: str
    subject: str
    window: float | None = None  # look-back window in seconds, for per-window facts
    currency: str | None = None
    text: str = ""  # dates and clock times, as written


@dataclass(frozen=True)
class Licence:
    numbers: tuple[LicensedNumber, ...] = ()
    factors: Mapping[str, frozenset[str]] = field(default_factory=dict)  # concept -> {"raises", "lowers"}
    strongest: tuple[str, str] | None = None  # (concept, direction) a narrative must state
    mentioned: frozenset[str] = frozenset()
    values: Mapping[str, str] = field(default_factory=dict)  # e.g. "merchant" -> "new", "channel" -> "ecommerce"
    relations: Mapping[tuple[str, str], str] = field(default_factory=dict)  # (a, b) -> "above" | "below"
    windows: frozenset[float] = frozenset()
    words: frozenset[str] = frozenset()
    withheld: tuple[str, ...] = ()

    def extend(
        self,
        *,
        numbers: Iterable[LicensedNumber] = (),
        factors: Mapping[str, Iterable[str]] | None = None,
        mentioned: Iterable[str] = (),
        values: Mapping[str, str] | None = None,
        relations: Mapping[tuple[str, str], str] | None = None,
        words: Iterable[str] = (),
    ) -> Licence:
        """This licence with more licensed statements (what a narrative plan adds)."""
        merged = {k: set(v) for k, v in self.factors.items()}
        for concept, directions in (factors or {}).items():
            merged.setdefault(concept, set()).update(directions)
        return replace(
            self,
            numbers=self.numbers + tuple(numbers),
            factors={k: frozenset(v) for k, v in merged.items()},
            mentioned=self.mentioned | frozenset(mentioned),
            values={**self.values, **(values or {})},
            relations={**self.relations, **(relations or {})},
            words=self.words | frozenset(w.lower() for w in words),
        )


_WORDS = re.compile(r"[A-Za-z]+(?:[-'][A-Za-z]+)*")


def words_of(text: str) -> set[str]:
    """Lower-case words of a text, hyphenated words both whole and in parts."""
    out: set[str] = set()
    for match in _WORDS.finditer(text):
        word = match.group(0).lower()
        out.add(word)
        out.update(part for part in re.split(r"[-']", word) if part)
    return out


def licence_from_facts(facts: FactSheet) -> Licence:
    """Every statement the fact sheet licenses."""
    numbers: list[LicensedNumber] = []
    tx = facts.transaction
    currency = tx.currency if tx is not None else None
    if tx is not None:
        numbers.append(LicensedNumber(round(tx.amount, 2), "money", "amount", currency=currency))
        numbers.append(LicensedNumber(0.0, "date", "timestamp", text=tx.timestamp.strftime("%Y-%m-%d")))
        numbers.append(LicensedNumber(0.0, "time", "timestamp", text=tx.timestamp.strftime("%H:%M")))
        if tx.mcc:
            numbers.append(LicensedNumber(float(tx.mcc), "plain", "mcc"))
    if facts.score_text:
        numbers.append(LicensedNumber(float(facts.score_text), "score", "score"))
    if facts.threshold_text:
        numbers.append(LicensedNumber(float(facts.threshold_text), "score", "threshold"))
    for reason in facts.reasons:
        numbers += _reason_numbers(reason)
    numbers += _history_numbers(facts.history_line, currency)
    numbers += _what_if_numbers(facts.what_if_lines)

    factors: dict[str, set[str]] = {}
    for reason in facts.reasons:
        factors.setdefault(reason.concept, set()).add(reason.direction)
    sheet = "\n".join((facts.text, facts.headline))
    values: dict[str, str] = {}
    for reason in facts.reasons:
        noun = _FLAG_NOUNS.get(reason.feature)
        if noun is not None and reason.feature_value is not None:
            values[noun] = "new" if reason.feature_value >= 0.5 else "known"
        if reason.feature == "is_night" and reason.feature_value is not None:
            values["night"] = "yes" if reason.feature_value >= 0.5 else "no"
        if reason.feature == "is_weekend" and reason.feature_value is not None:
            values["weekend"] = "yes" if reason.feature_value >= 0.5 else "no"
        if reason.feature == "channel_code" and reason.feature_value is not None:
            values["channel"] = _CHANNEL_KEYS.get(int(reason.feature_value), "unknown")
    if tx is not None and tx.channel:
        values["channel"] = tx.channel
    if tx is not None:
        # The calendar features' own definitions (features.families.calendar), unless a reason says otherwise.
        values.setdefault("night", "yes" if tx.timestamp.hour < 6 else "no")
        values.setdefault("weekend", "yes" if tx.timestamp.weekday() >= 5 else "no")
    decision = re.search(r"decision: (\w+)", facts.score_line)
    if decision:
        values["decision"] = decision.group(1).lower()
    if "no previous transaction on record" in sheet or "first transaction seen" in sheet:
        values["history"] = "none"
    relations: dict[tuple[str, str], str] = {}
    if facts.score is not None and facts.threshold is not None:
        relations[("score", "threshold")] = "above" if facts.score >= facts.threshold else "below"
    amount = round(tx.amount, 2) if tx is not None else None
    for number in numbers:
        if amount is not None and number.subject in ("mean", "max") and number.unit == "money" and number.value > 0:
            relations[("amount", number.subject)] = "above" if amount > number.value else "below"
    strongest = (facts.reasons[0].concept, facts.reasons[0].direction) if facts.reasons else None
    licence = Licence(
        numbers=tuple(numbers),
        factors={k: frozenset(v) for k, v in factors.items()},
        strongest=strongest,
        mentioned=frozenset(concepts_in(sheet)) | frozenset(factors),
        values=values,
        relations=relations,
        windows=frozenset(m.value for m in mentions(sheet) if m.unit == "window"),
        words=frozenset(words_of(sheet + "\n" + facts.template_text())),
        withheld=facts.withheld,
    )
    return licence if facts.plan is None else plan_licence(licence, facts.plan)


def plan_licence(licence: Licence, plan: NarrativePlan) -> Licence:
    """``licence`` with the plan's statements: the pattern named with "resembles", the comparisons' numbers
    bound to their facts (subject and window) and the worded facts the plan states (new device...).

    The plan's lines are part of the fact sheet, so their words and factor names are licensed with it.
    """
    return licence.extend(
        numbers=[LicensedNumber(n.value, n.unit, n.subject, window=n.window, currency=n.currency)
                 for n in plan.numbers()],
        values=plan.values,
        words=words_of(plan.pattern.text),
    )


def _subject(field_name: str) -> str:
    return next((subject for prefix, subject in _SUBJECT_OF_FIELD if field_name.startswith(prefix)), "any")


def _window(field_name: str) -> float | None:
    suffix = field_name.rsplit("_", 1)[-1]
    return _WINDOW_SECONDS.get(suffix)


def _template_regex(template: str) -> tuple[re.Pattern[str], list[str]]:
    parts: list[str] = []
    names: list[str] = []
    for literal, name, _spec, _conv in Formatter().parse(template):
        parts.append(re.escape(literal))
        if name:
            parts.append(f"(?P<f{len(names)}>.+?)")
            names.append(name)
    return re.compile("".join(parts)), names


def _reason_numbers(reason: ReasonCode) -> list[LicensedNumber]:
    """The numbers of one reason sentence, each bound to the feature field its template put there."""
    template = CATALOGUE.get(reason.feature)
    body = reason.text.rsplit(" — ", 1)[0]
    if template is None:
        return [_loose(m) for m in mentions(body)]
    for variant in (template.text, template.text_false, template.missing):
        if variant is None:
            continue
        pattern, names = _template_regex(variant)
        match = pattern.fullmatch(body)
        if match is None:
            continue
        out = []
        for i, name in enumerate(names):
            for m in mentions(match.group(f"f{i}")):
                out.append(_licensed(m, _subject(name), _window(name)))
        return out
    return [_loose(m) for m in mentions(body)]


def _licensed(m: Mention, subject: str, window: float | None) -> LicensedNumber:
    unit = m.unit
    if subject == "mcc" or (unit in ("plain", "count") and subject in ("tx_count", "labels", "fraud_labels")):
        unit = "plain" if subject == "mcc" else "count"
    if subject in ("score", "threshold", "whatif_score"):
        unit = "score"
    return LicensedNumber(m.value, unit, subject, window=window, currency=m.currency, text=m.text)


def _loose(m: Mention) -> LicensedNumber:
    """A number licensed by value and unit only (a fact the structured readers do not know)."""
    return LicensedNumber(m.value, m.unit, "any", currency=m.currency, text=m.text)


_HISTORY_PARTS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(\d[\d,]*) in (\d+ (?:hours?|days?))"), "tx_count"),
    (re.compile(r"(\d+)-day average (.+)"), "mean"),
    (re.compile(r"(\d+)-day largest (.+)"), "max"),
    (re.compile(r"previous transaction (.+) earlier"), "since"),
    (re.compile(r"(.+ km) away"), "distance"),
)


def _history_numbers(line: str, currency: str | None) -> list[LicensedNumber]:
    out: list[LicensedNumber] = []
    body = line.removeprefix("Card history: ").rstrip(".")
    for part in body.split("; "):
        part = part.removeprefix("earlier transactions: ")
        for piece in part.split(", "):
            known = False
            for pattern, subject in _HISTORY_PARTS:
                match = pattern.fullmatch(piece.strip())
                if match is None:
                    continue
                known = True
                found = mentions(piece)
                windows = [m for m in found if m.unit == "window"]
                window = windows[0].value if windows else None
                for m in found:
                    if m.unit != "window":
                        out.append(_licensed(m, subject, window if subject in ("tx_count", "mean", "max") else None))
                break
            if not known:
                out += [_loose(m) for m in mentions(piece) if m.unit != "window"]
    return out


_WHAT_IF_AMOUNT = re.compile(r"(?:even )?at (?P<new>.+?) instead of (?P<old>.+?) the score would be (?P<score>[\d.]+), "
                             r".*?the threshold (?P<thr>[\d.]+)")
_WHAT_IF_FLAG = re.compile(r".*?, the score would be (?P<score>[\d.]+), .*?the threshold (?P<thr>[\d.]+)")


def _what_if_numbers(lines: Iterable[str]) -> list[LicensedNumber]:
    out: list[LicensedNumber] = []
    for line in lines:
        match = _WHAT_IF_AMOUNT.fullmatch(line) or _WHAT_IF_FLAG.fullmatch(line)
        if match is None:
            out += [_loose(m) for m in mentions(line)]
            continue
        groups = match.groupdict()
        for name, subject in (("new", "whatif_amount"), ("old", "amount"), ("score", "whatif_score"),
                              ("thr", "threshold")):
            if groups.get(name):
                out += [_licensed(m, subject, None) for m in mentions(groups[name])]
    return out
