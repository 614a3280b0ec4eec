"""The closed-world verifier run on every model-written narrative before anyone sees it.

A narrative passes only when every claim in it is licensed by the alert's facts
(:class:`explain.licence.Licence`, built from the fact sheet; a narrative plan adds
its statements to the same licence). Each check names itself and the offending spans:

* ``numbers``     — every number, date and time is a licensed one, in the right unit and currency;
* ``binding``     — each number is said about the fact it belongs to ("the average of 199.10 EUR"
  must be the average, not the amount) and for the right look-back window;
* ``factors``     — every factor said to raise or lower risk is a reason; every factor mentioned is in the facts;
  the factor called the strongest ("the main reason is ...") is the strongest reason;
* ``direction``   — the direction stated for a factor is the sign of its SHAP value (negations read);
* ``coverage``    — the strongest reason is stated with its direction;
* ``values``      — worded facts are right: new vs known merchant/device/country, night vs day,
  weekend vs weekday, the weekday, the channel, "no earlier transactions";
* ``comparisons`` — "above/below the threshold / the average / the largest amount" hold, in what-ifs too;
* ``vocabulary``  — every word is in the fixed domain vocabulary (``explain/data/vocabulary.txt``) or the facts;
* ``verdict``     — no verdict (legitimate, not fraud, safe to approve, close the alert, confirmed fraud...);
* ``instruction`` — no instruction, advice or prompt injection addressed to a reader or a model;
* ``contact``     — no contact advice, phone numbers or e-mail addresses;
* ``url``         — no URL or domain name;
* ``echo``        — no id (transaction, merchant, card, device, customer) or id-shaped text;
* ``length``      — word count within bounds, ending with a complete sentence.

Only a text that passes every check may be shown as model-written ("LLM-verified").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from explain.codes import DATA_DIR
from explain.facts import FactSheet
from explain.licence import (
    ACCEPTED_CUES,
    HYPOTHETICAL_SUBJECTS,
    Licence,
    LicensedNumber,
    licence_from_facts,
)
from explain.reading import (
    HYPOTHETICAL,
    WEEKDAYS,
    Mention,
    Span,
    clauses,
    cues_by_mention,
    in_hypothetical,
    mentions,
    nearest_window,
    sentences,
)
from explain.reasons import CONCEPT_PATTERNS, concepts_in

#: Version of the verifier recorded on every narrative it passed (provenance ``verifier``).
VERIFIER_VERSION = "closed-world-v1"

#: Texts longer than this (or 20 characters a word allowed) are refused on their length without being read.
MAX_CHARS = 5000
CHECK_NAMES: tuple[str, ...] = (
    "numbers", "binding", "factors", "direction", "coverage", "values", "comparisons", "vocabulary", "verdict",
    "instruction", "contact", "url", "echo", "length",
)


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str = ""
    spans: tuple[Span, ...] = ()


@dataclass(frozen=True)
class CheckReport:
    """Results of every check on one text."""

    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.passed for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if not r.passed]

    def as_dict(self) -> dict[str, bool]:
        return {r.name: r.passed for r in self.results}

    def details(self) -> dict[str, str]:
        return {r.name: r.detail for r in self.results if not r.passed}

    def failures(self) -> list[dict[str, Any]]:
        """Failed checks with what was wrong and where (character spans of the text)."""
        return [{"check": r.name, "detail": r.detail, "spans": [s.as_dict() for s in r.spans]}
                for r in self.results if not r.passed]

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)


def _result(name: str, bad: list[tuple[Span, str]]) -> CheckResult:
    if not bad:
        return CheckResult(name, True)
    return CheckResult(name, False, "; ".join(reason for _, reason in bad), tuple(span for span, _ in bad))


def _span(match: re.Match[str]) -> Span:
    return Span(match.start(), match.end(), match.group(0))


# ---------------------------------------------------------------------------
# Risk claims (factors, direction, coverage)
# ---------------------------------------------------------------------------

_RISK_NOUN = r"(?:fraud )?(?:risk|score|suspicion|likelihood|probability)"
# "it"/"this" at the end of a clause stand for the risk: "..., but the new device lowers it".
_PRONOUN = r"\s+(?:it|this|that)(?=\s*(?:[.,;!?]|$))"
_RAISE = re.compile(
    r"\b(?:rais(?:e|es|ed|ing)|increas(?:e|es|ed|ing)|elevat(?:e|es|ed|ing)|add(?:s|ed|ing)? to|"
    r"push(?:es|ed|ing)? up|boost(?:s|ed|ing)?|drive(?:s|n)? up|contribut(?:e|es|ed|ing) to)\b[^.;]{0,30}?\b"
    + _RISK_NOUN + r"\b"
    r"|\b(?:higher|more|increased|elevated|greater) " + _RISK_NOUN + r"\b|\bsuspicious\b|\bred flags?\b"
    r"|\b(?:push|drive|send|move)(?:s|es|ed|ing|n)? (?:the )?" + _RISK_NOUN + r" up\b"
    r"|\bpoint(?:s|ed|ing)? (?:to|towards?) fraud\b|\b(?:rais|increas|elevat|boost)\w*" + _PRONOUN,
    re.IGNORECASE,
)
_LOWER = re.compile(
    r"\b(?:lower(?:s|ed|ing)?|reduc(?:e|es|ed|ing)|decreas(?:e|es|ed|ing)|mitigat(?:e|es|ed|ing)|offset(?:s|ting)?|"
    r"bring(?:s)? down|pull(?:s|ed)? down)\b[^.;]{0,30}?\b" + _RISK_NOUN + r"\b"
    r"|\b(?:lower|less|reduced|decreased) " + _RISK_NOUN + r"\b|\breassuring\b"
    r"|\b(?:bring|pull|push|drive|move)(?:s|es|ed|ing|n)? (?:the )?" + _RISK_NOUN + r" down\b"
    r"|\bbrought (?:the )?" + _RISK_NOUN + r" down\b"
    r"|\bpoint(?:s|ed|ing)? away from\b|\bargu(?:e|es|ed|ing) against\b|\bcount(?:s|ed|ing)? against\b"
    r"|\b(?:lower|reduc|decreas|mitigat|offset)\w*" + _PRONOUN,
    re.IGNORECASE,
)
_NEGATED = re.compile(
    r"\b(?:not|never|no longer|n't)\s+(?:\w+\s+)?(?:rais|increas|elevat|add|push|boost|driv|contribut|lower|reduc|"
    r"decreas|mitigat|offset|bring|pull)\w*", re.IGNORECASE)
_ANAPHOR = re.compile(r"\s*(?:which|this|that|it|these|those|so|thus|both|each|(?:and|but) (?:this|that|it)|"
                      r"rais|lower|add|push|increas|reduc)", re.IGNORECASE)
_CLAUSE = re.compile(r";|,\s+(?:and|but)\s+|\s+(?:but|while|whereas|although|however)\s+", re.IGNORECASE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_COMPLETE = re.compile(r"[.!?][\"')\]]*\s*$")


@dataclass(frozen=True)
class Claim:
    """A clause that says something raises or lowers risk, and the factors it names."""

    text: str
    direction: str | None  # "raises", "lowers", or None when both or neither are said
    concepts: frozenset[str]


def claims(text: str) -> list[Claim]:
    """Risk claims in a text: clauses with a raise/lower wording (a negation turns it), with their factors."""
    found = []
    for sentence in _SENTENCE.split(text):
        before: set[str] = set()
        for clause in _CLAUSE.split(sentence):
            named = concepts_in(clause)
            up, down = bool(_RAISE.search(clause)), bool(_LOWER.search(clause))
            if up or down:
                direction = "raises" if up and not down else "lowers" if down and not up else None
                if direction is not None and _NEGATED.search(clause):
                    direction = "lowers" if direction == "raises" else "raises"
                # "..., and this raises risk": a claim that names no factor is about the clause before it.
                inherited = before if _ANAPHOR.match(clause) else set()
                found.append(Claim(clause.strip(), direction, frozenset(named or inherited)))
            before = named or before
    return found


# "the main reason is ...": a claim about which factor is strongest.
_RANKING = re.compile(r"\b(?:strongest|main|chief|primary|leading|most important|biggest|top|foremost|key)\s+"
                      r"(?:reason|factor|driver|signal|contributor|cause)\b(?!s)", re.IGNORECASE)
_CONCEPT_RE = {name: re.compile("|".join(patterns), re.IGNORECASE) for name, patterns in CONCEPT_PATTERNS.items()}


def _concept_span(text: str, concept: str, within: str | None = None) -> Span:
    base = text.find(within) if within else 0
    base = max(base, 0)
    match = _CONCEPT_RE[concept].search(text, base)
    return _span(match) if match else Span(0, len(text), text)


def check_factors_licence(text: str, licence: Licence) -> CheckResult:
    bad: list[tuple[Span, str]] = []
    given = set(licence.factors)
    for claim in claims(text):
        for concept in sorted(claim.concepts - given):
            bad.append((_concept_span(text, concept, claim.text), f"{concept} is said to move risk but is not a reason"))
    for concept in sorted(concepts_in(text) - licence.mentioned - given):
        bad.append((_concept_span(text, concept), f"{concept} is not in the facts"))
    if licence.strongest is not None:
        top = licence.strongest[0]
        for clause in clauses(text):
            for match in _RANKING.finditer(clause.text):
                named = concepts_in(clause.text)
                if named and top not in named:
                    bad.append((Span(clause.start + match.start(), clause.start + match.end(), match.group(0)),
                                f"called the strongest reason, but the strongest reason is {top}"))
    return _result("factors", _dedupe(bad))


def check_direction_licence(text: str, licence: Licence) -> CheckResult:
    bad: list[tuple[Span, str]] = []
    for claim in claims(text):
        if claim.direction is None:
            continue
        for concept in sorted(claim.concepts):
            signs = licence.factors.get(concept)
            if signs and claim.direction not in signs:
                bad.append((_concept_span(text, concept, claim.text),
                            f"{concept} said to {claim.direction.removesuffix('s')} risk"))
    return _result("direction", bad)


def check_coverage_licence(text: str, licence: Licence) -> CheckResult:
    if licence.strongest is None:
        return CheckResult("coverage", True)
    concept, direction = licence.strongest
    ok = any(c.direction == direction and concept in c.concepts for c in claims(text))
    return CheckResult("coverage", ok, "" if ok else f"the strongest reason ({concept}, {direction} risk) "
                                                     "is not stated with its direction")


# ---------------------------------------------------------------------------
# Numbers and what they are about
# ---------------------------------------------------------------------------

_PLAIN_UNITS = frozenset({"plain", "score", "count"})
_NOUN_SUBJECT = {"tx": "tx_count", "labels": "labels", "fraud_labels": "fraud_labels"}


def _unit_ok(m: Mention, n: LicensedNumber) -> bool:
    if m.unit == "money":
        return n.unit == "money" and m.currency == n.currency
    if m.unit == "percent":
        return n.unit in ("percent", "score")
    if m.unit == "plain":
        return n.unit in _PLAIN_UNITS and (n.unit != "score" or m.tolerance <= 0.05)
    if m.unit == "count":
        return n.unit in ("count", "plain") and n.subject in (_NOUN_SUBJECT[m.noun or "tx"], "any")
    return m.unit == n.unit


def _value_ok(m: Mention, n: LicensedNumber) -> bool:
    return abs(m.value - n.value) <= m.tolerance * 1.0001 + 1e-9


def _number_checks(text: str, licence: Licence) -> tuple[CheckResult, CheckResult]:
    found = mentions(text)
    cues = cues_by_mention(text, found)
    unlicensed: list[tuple[Span, str]] = []
    misbound: list[tuple[Span, str]] = []
    covered = [(m.span.start, m.span.end) for m in found]
    for digits in re.finditer(r"\d+", text):
        if not any(a <= digits.start() < b for a, b in covered):
            unlicensed.append((_span(digits), f"{digits.group(0)!r} is not a number the verifier can read"))
    for i, m in enumerate(found):
        if m.unit in ("date", "time"):
            if not any(n.unit == m.unit and n.text == m.text for n in licence.numbers):
                unlicensed.append((m.span, f"{m.span.text!r} is a date or time not in the fact sheet"))
            continue
        if m.unit == "window" and any(abs(w - m.value) <= m.tolerance + 1e-9 for w in licence.windows):
            continue
        probe = Mention(m.value, m.tolerance, "duration", m.span) if m.unit == "window" else m
        hypothetical = in_hypothetical(text, m.span.start)
        candidates = [n for n in licence.numbers if _unit_ok(probe, n) and _value_ok(probe, n)
                      and (hypothetical or n.subject not in HYPOTHETICAL_SUBJECTS)]
        if not candidates:
            unlicensed.append((m.span, f"{m.span.text!r} is not in the fact sheet with this unit"))
            continue
        if hypothetical:
            continue
        near = sorted(cues[i], key=lambda pair: pair[0])
        if near and m.unit != "count":  # a count's own noun says what it counts
            said = near[0][1].subject
            fitting = [n for n in candidates if n.subject == "any" or said in ACCEPTED_CUES.get(n.subject, ())]
            if not fitting:
                facts = ", ".join(sorted({n.subject for n in candidates}))
                misbound.append((m.span, f"{m.span.text!r} is said about {said} ({near[0][1].span.text!r}) "
                                         f"but the facts give it as: {facts}"))
                continue
            candidates = fitting
        if all(n.window is not None for n in candidates):
            window = nearest_window(text, found, m)
            if window is not None and not any(abs(float(n.window or 0) - window.value) <= window.tolerance + 1e-9
                                              for n in candidates):
                misbound.append((m.span, f"{m.span.text!r} is stated for the window {window.span.text!r}, "
                                         "not the one the facts give it for"))
    return _result("numbers", unlicensed), _result("binding", misbound)


# ---------------------------------------------------------------------------
# Worded facts and comparisons
# ---------------------------------------------------------------------------

_NEW_WORDS = r"(?:new|unfamiliar|unknown|unseen|first[- ]time|never[- ]before[- ]seen|not seen before|previously unseen)"
_KNOWN_WORDS = r"(?:known|familiar|usual|regular|recogni[sz]ed|previously used|previously seen|trusted)"
_CHANNELS: dict[str, re.Pattern[str]] = {
    "ecommerce": re.compile(r"\be-?commerce\b|\bonline\b|\bcard[- ]not[- ]present\b|\binternet\b", re.IGNORECASE),
    "card_present": re.compile(r"(?<!not )\bcard[- ]present\b|\bin[- ]person\b|\bin[- ]store\b|\bpoint[- ]of[- ]sale\b",
                               re.IGNORECASE),
    "atm": re.compile(r"\batms?\b|\bcash machines?\b|\bcash withdrawals?\b", re.IGNORECASE),
}


def _flag_patterns(noun: str) -> dict[str, re.Pattern[str]]:
    return {
        "new": re.compile(rf"\b{_NEW_WORDS}\s+(?:[\w']+\s+)?{noun}s?\b|\b{noun}\s+(?:was|is|had been)\s+(?:\w+\s+)?"
                          rf"(?:new|unfamiliar|unknown|never used)\b|\b{noun}\b[^.;]{{0,30}}\bnever (?:been )?(?:used|seen)",
                          re.IGNORECASE),
        "known": re.compile(rf"\b{_KNOWN_WORDS}\s+(?:[\w']+\s+)?{noun}s?\b|\b{noun}\s+(?:was|is)\s+(?:\w+\s+)?"
                            rf"(?:known|familiar|recogni[sz]ed)\b|\b{noun}\b[^.;]{{0,30}}\b(?:used|seen) before\b",
                            re.IGNORECASE),
    }


_FLAG_PATTERNS = {noun: _flag_patterns(noun) for noun in ("merchant", "device", "country")}
_NIGHT = re.compile(r"\bnight(?:[- ]?time)?\b|\bovernight\b|\bmidnight\b", re.IGNORECASE)
_DAY = re.compile(r"\bday[- ]?time\b|\bduring the day\b", re.IGNORECASE)
_WEEKEND = re.compile(r"\bweekends?\b", re.IGNORECASE)
_WEEKDAY = re.compile(r"\bweekdays?\b|\bworking days?\b", re.IGNORECASE)
_SUSPECTED = re.compile(r"\bsuspected fraud\b|\bsuspicious\b|\bfraud alert\b", re.IGNORECASE)
_DECISION = re.compile(r"\bdecision\b[^.;]{0,25}?\b(?P<said>alert|pass|review|block|approve|decline)\b", re.IGNORECASE)
_NO_HISTORY = re.compile(r"\bno (?:earlier|previous|prior|recent|other) (?:transactions?|payments?|purchases?)\b"
                         r"|\bfirst (?:ever )?(?:transaction|payment|purchase)\b|\bnever (?:been )?used before\b",
                         re.IGNORECASE)
_WEEKDAY_NAMES = re.compile(r"\b(?:" + "|".join(WEEKDAYS) + r")s?\b", re.IGNORECASE)


def _factual(text: str) -> list[Span]:
    """Clauses that state facts (not what-ifs): worded facts and comparisons are checked there."""
    return [c for c in clauses(text) if not HYPOTHETICAL.search(c.text)]


def check_values(text: str, licence: Licence) -> CheckResult:
    bad: list[tuple[Span, str]] = []
    for clause in _factual(text):
        for noun, patterns in _FLAG_PATTERNS.items():
            truth = licence.values.get(noun)
            for said, pattern in patterns.items():
                for match in pattern.finditer(text, clause.start, clause.end):
                    if truth is None:
                        bad.append((_span(match), f"the facts do not say whether the {noun} is new for this card"))
                    elif said != truth:
                        bad.append((_span(match), f"the {noun} is {truth} for this card, not {said}"))
        for key, yes, no in (("night", _NIGHT, _DAY), ("weekend", _WEEKEND, _WEEKDAY)):
            truth = licence.values.get(key)
            wrong = no if truth == "yes" else yes if truth == "no" else None
            found = wrong.search(text, clause.start, clause.end) if wrong is not None else None
            if found is not None:
                bad.append((_span(found), f"{key}: the facts say {truth}"))
        channel = licence.values.get("channel")
        for name, pattern in _CHANNELS.items():
            for match in pattern.finditer(text, clause.start, clause.end):
                if name != channel:
                    bad.append((_span(match), f"the channel is {channel or 'not given'}, not {name}"))
    no_history = licence.values.get("history") == "none" or any(
        n.subject == "tx_count" and n.value == 0 for n in licence.numbers)
    for match in _NO_HISTORY.finditer(text):
        if not no_history:
            bad.append((_span(match), "the facts give this card earlier transactions"))
    if licence.relations.get(("score", "threshold")) == "below":
        for match in _SUSPECTED.finditer(text):
            bad.append((_span(match), "the score is below the alert threshold: not an alert"))
    decision = licence.values.get("decision")
    for match in _DECISION.finditer(text):
        if decision is not None and match.group("said").lower() != decision:
            bad.append((_span(match), f"the decision is {decision}"))
    for match in _WEEKDAY_NAMES.finditer(text):
        if match.group(0).lower().removesuffix("s") not in licence.words:
            bad.append((_span(match), f"{match.group(0)} is not the day in the facts"))
    return _result("values", _dedupe(bad))


_ABOVE = r"above|over|exceed\w*|surpass\w*|higher than|more than|greater than|larger than|bigger than|beyond"
_BELOW = r"below|under|beneath|less than|lower than|smaller than|short of|within"
_COMPARISON = re.compile(
    rf"\b(?P<rel>{_ABOVE}|{_BELOW})\b(?P<gap>(?:\s+[\w'.,×-]+){{0,4}}?)\s+"
    r"(?P<target>threshold|cut-?off|average|mean|typical|usual|normal|largest|maximum|biggest)\b",
    re.IGNORECASE,
)
_TARGETS = {"threshold": ("score", "threshold"), "cutoff": ("score", "threshold"), "cut-off": ("score", "threshold"),
            "average": ("amount", "mean"), "mean": ("amount", "mean"), "typical": ("amount", "mean"),
            "usual": ("amount", "mean"), "normal": ("amount", "mean"), "largest": ("amount", "max"),
            "maximum": ("amount", "max"), "biggest": ("amount", "max")}


def check_comparisons(text: str, licence: Licence) -> CheckResult:
    bad: list[tuple[Span, str]] = []
    thresholds = [n.value for n in licence.numbers if n.subject == "threshold"]
    for clause in clauses(text):
        if not HYPOTHETICAL.search(clause.text) or not thresholds:
            continue
        # A what-if's own comparison: the score it states against the threshold.
        scores = [m.value for m in mentions(clause.text) if m.unit in ("plain", "percent")
                  and not any(abs(m.value - t) <= m.tolerance for t in thresholds)]
        for match in _COMPARISON.finditer(text, clause.start, clause.end):
            if _TARGETS[match.group("target").lower()] != ("score", "threshold") or len(scores) != 1:
                continue
            said = "above" if re.fullmatch(_ABOVE, match.group("rel"), re.IGNORECASE) else "below"
            truth = "above" if scores[0] >= thresholds[0] else "below"
            if said != truth:
                bad.append((_span(match), f"the what-if score is {truth} the threshold, not {said}"))
    for clause in _factual(text):
        for match in _COMPARISON.finditer(text, clause.start, clause.end):
            pair = _TARGETS[match.group("target").lower()]
            said = "above" if re.fullmatch(_ABOVE, match.group("rel"), re.IGNORECASE) else "below"
            holds = licence.relations.get(pair)
            if holds is None:
                bad.append((_span(match), f"no fact compares the {pair[0]} with the {pair[1]}"))
            elif said != holds:
                bad.append((_span(match), f"the {pair[0]} is {holds} the {pair[1]}, not {said}"))
    return _result("comparisons", bad)


# ---------------------------------------------------------------------------
# Closed vocabulary
# ---------------------------------------------------------------------------


@cache
def domain_vocabulary(path: Path | None = None) -> frozenset[str]:
    """The fixed words an investigator narrative may use (``explain/data/vocabulary.txt``)."""
    source = path or DATA_DIR / "vocabulary.txt"
    words: set[str] = set()
    for line in source.read_text(encoding="utf-8").splitlines():
        words.update(line.split("#", 1)[0].lower().split())
    return frozenset(words)


# Zero-width and direction-control characters hide text from a reader.
_INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\ufeff]")
_TOKEN = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)*(?:-[^\W\d_]+(?:['’][^\W\d_]+)*)*")


def _known(word: str, allowed: frozenset[str]) -> bool:
    word = word.lower().replace("’", "'")
    if not word.isascii():
        return False
    candidates = {word, word.removesuffix("'s"), word.removesuffix("s'")}
    for candidate in list(candidates):
        if candidate.endswith("es"):
            candidates.add(candidate[:-2])
        if candidate.endswith("s"):
            candidates.add(candidate[:-1])
    if candidates & allowed:
        return True
    parts = re.split(r"-", word)
    return len(parts) > 1 and all(_known(part, allowed) for part in parts)


def check_vocabulary(text: str, licence: Licence, vocabulary: frozenset[str]) -> CheckResult:
    allowed = vocabulary | licence.words
    bad = [(_span(m), f"{m.group(0)!r} is not in the domain vocabulary or the facts")
           for m in _TOKEN.finditer(text) if not _known(m.group(0), allowed)]
    bad += [(Span(i, i + 1, ch), f"character {ch!r} is not allowed") for i, ch in enumerate(text)
            if not ch.isascii() and (ch.isalnum() or _INVISIBLE.match(ch))]
    return _result("vocabulary", bad[:12])


# ---------------------------------------------------------------------------
# Out of scope: verdicts, instructions, contact, URLs, echoed ids
# ---------------------------------------------------------------------------

_PATTERN_NAMES = (r"(?:card[- ]testing|account[- ]takeover|impossible travel|compromised merchant|"
                  r"out[- ]of[- ]pattern amount|skimm(?:ed|ing)|cloned card)\b")
_VERDICT = re.compile(
    r"\blegitimate(?:ly)?\b|\bgenuine(?:ly)?\b|\bbenign\b|\bauthenti[c]\w*|\bsafe(?:ly)?\b|\bapprov\w*|\bfalse[- ]positives?\b"
    r"|\bclos(?:e|ed|ing)\b[^.;]{0,25}\b(?:alert|case)\b|\b(?:alert|case)\b[^.;]{0,25}\bclos(?:e|ed|ing)\b"
    r"|\bdismiss\w*|\bclear(?:ed)? the (?:alert|case|payment|transaction)\b|\bnot (?:a |an )?(?:\w+ )?fraud\w*"
    r"|\bno (?:sign of )?fraud\b(?![\w-]| (?:labels?|rates?|reports?))|\bnot suspicious\b|\bnothing suspicious\b|\binnocent\b|\bguilty\b"
    r"|\b(?:definite(?:ly)?|certain(?:ly)?|clear(?:ly)?|undoubted(?:ly)?|sure(?:ly)?|obvious(?:ly)?|confirmed|proven|"
    r"real|actual|true|outright)\b[^.;]{0,15}\bfraud\w*"
    r"|\b(?:is|was|are|were|be|being|been)\s+(?:a |an )?(?:case of |act of )?fraud(?:ulent)?(?![\w-])"
    r"|\bconfirm(?:s|ed|ation)?\b|\bdefinite(?:ly)?\b|\bcertain(?:ly|ty)?\b|\bundoubted(?:ly)?\b|\bwithout (?:a |any )?doubt\b"
    r"|\bprov(?:e|es|en|ed)\b|\bproof\b|\bguarantee\w*|\bfraudsters?\b|\bstolen\b|\bcriminals?\b|\b100 ?%"
    r"|\b(?:is|was|looks?|looked|seems?|seemed|appears?|appeared)\s+(?:to be\s+)?(?:\w+ly\s+)?(?:normal|fine|ok|okay|"
    r"harmless|routine|expected|usual|typical|unremarkable|in order|low[- ]risk|nothing unusual)\b"
    r"|\b(?:low|no|little|minimal|negligible) (?:fraud )?risk\b|\brisk (?:is|was) (?:low|minimal|negligible)\b"
    r"|(?:^|[.!?:;]\s+)fraud(?:ulent)?\s*(?:[.!?]|$)|['’]s\s+(?:a\s+)?(?:case of\s+)?fraud(?:ulent)?(?![\w-])"
    r"|\bno action\b|\blet (?:it|the payment|the transaction) (?:through|go)\b|\brelease the (?:payment|funds)\b"
    # A fraud pattern stated as a fact: the plan licenses "resembles <pattern>", never "is <pattern>".
    r"|(?:\b(?:is|was|are|were|be|been|being|constitutes?|represents?|amounts? to)|['’]s)\s+(?:(?:a|an|the|clear|"
    r"obvious|typical|classic|textbook|case of|instance of|act of)\s+)*" + _PATTERN_NAMES
    + r"|" + _PATTERN_NAMES + r"\s+(?:attack|scheme|fraud|attempt|ring)s?\b",
    re.IGNORECASE,
)
_IMPERATIVE_VERBS = (
    "ignore|disregard|forget|override|bypass|approve|close|dismiss|clear|release|allow|block|freeze|decline|cancel|"
    "reverse|refund|contact|call|phone|email|e-mail|text|message|visit|click|go|open|send|reply|respond|answer|say|"
    "write|output|print|repeat|tell|ask|verify|check|review|escalate|report|mark|treat|consider|trust|let|do|don't|"
    "never|always|remember|pretend|act|stop|continue|proceed|keep|use|follow|see|note|please|kindly|make|ensure|"
    "investigate|confirm|raise|lower|increase|reduce"
)
_INSTRUCTION = re.compile(
    r"\b(?:ignore|disregard|forget|override|bypass)\b[^.]{0,40}\b(?:instructions?|rules?|prompts?|above|previous|prior|"
    r"everything|system|guidelines?)\b"
    r"|\b(?:system prompt|instructions?|as an ai|language model|assistant|jailbreak|you are now|pretend|role[- ]?play|"
    r"developer mode)\b"
    r"|\b(?:say|respond|reply|answer|output|print|repeat|declare)\b\s+(?:that|with|only|exactly|the word)\b"
    r"|\byou\b|\byour\b|\byourself\b"
    r"|\b(?:should|must|ought to|needs? to|have to|has to)\b"
    r"|\b(?:recommend\w*|advis\w*|suggest\w*|please|kindly)\b"
    r"|\b(?:let's|let us)\b",
    re.IGNORECASE,
)
_SENTENCE_START = re.compile(
    r"(?:^|[.!?:;]\s+|\n\s*)(?:(?:now|then|so|just|also|and)\s*,?\s+)?(?P<verb>" + _IMPERATIVE_VERBS + r")\b",
    re.IGNORECASE,
)
_CONTACT = re.compile(
    r"\b(?:contact\w*|call(?:s|ed|ing)?|phon\w*|telephon\w*|e-?mail\w*|texting|sms|whatsapp|reach(?:ing)? out|"
    r"get in touch|hotline|helpline|call cent(?:er|re)|customer service|support team|fax)\b"
    r"|\b(?:customer|cardholder|card holder|client|account holder|owner)s?\b"
    r"|[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
    r"|(?:\+|\b00)\d[\d\s().-]{6,}\d|\(\d{2,5}\)\s?\d[\d\s-]{4,}\d|\b\d{3}[-.\s]\d{3}[-.\s]\d{4}\b",
    re.IGNORECASE,
)
_URL = re.compile(
    r"\b(?:https?|ftp)://\S+?(?=[.,;:!?)\]\"']*(?:\s|$))|\bwww\.\S+?(?=[.,;:!?)\]\"']*(?:\s|$))|\b[a-z0-9][\w-]*(?:\.[\w-]+)*\.(?:[a-z]{2,24})(?:/\S*)?\b(?<!\.\d)",
    re.IGNORECASE,
)
_NOT_URL = re.compile(r"\d+(?:\.\d+)?|[a-z]\.[a-z]", re.IGNORECASE)  # 12.3, i.e, e.g
_ID_SHAPED = re.compile(r"(?<![\w*-])(?=[\w*-]*\d)(?=[\w*-]*[A-Za-z*])[\w*]+(?:[-_][\w*]+)*|\*{2,}\w*")
_CARD_NUMBER = re.compile(r"\b\d(?:[ -]?\d){11,}\b")
_NOT_ID = re.compile(r"\d+-(?:day|hour|minute|second|week)s?", re.IGNORECASE)


_PATTERN = re.compile(_PATTERN_NAMES, re.IGNORECASE)
_HEDGED = re.compile(r"\bresembl\w*[^.;!?]*$", re.IGNORECASE)


def check_verdict(text: str) -> CheckResult:
    return _result("verdict", [(_span(m), "a verdict; the narrative states suspected fraud only")
                               for m in _VERDICT.finditer(text) if not _hedged_pattern(text, m)])


def _hedged_pattern(text: str, match: re.Match[str]) -> bool:
    """"resembles a card testing attack": a pattern named after "resembles" in the same clause is the
    plan's hedged hypothesis, not a verdict (a stated "is card testing" has no such hedge)."""
    return bool(_PATTERN.match(match.group(0))) and _HEDGED.search(text, 0, match.start()) is not None


def check_instruction(text: str) -> CheckResult:
    bad = [(_span(m), "an instruction, advice or address to a reader or model") for m in _INSTRUCTION.finditer(text)]
    bad += [(Span(m.start("verb"), m.end("verb"), m.group("verb")), "a sentence that gives an order")
            for m in _SENTENCE_START.finditer(text)]
    return _result("instruction", _dedupe(bad))


def check_contact(text: str) -> CheckResult:
    return _result("contact", [(_span(m), "contact advice, a person to contact or contact details")
                               for m in _CONTACT.finditer(text)])


def check_url(text: str) -> CheckResult:
    bad = [(_span(m), "a URL or domain name") for m in _URL.finditer(text) if not _NOT_URL.fullmatch(m.group(0))]
    return _result("url", bad)


def check_echo(text: str, licence: Licence) -> CheckResult:
    bad: list[tuple[Span, str]] = []
    lowered = text.lower()
    for secret in licence.withheld:
        core = secret.strip("*").lower()
        for needle in {secret.lower(), core} if len(core) >= 4 and not core.isdigit() else {secret.lower()}:
            start = lowered.find(needle)
            if needle and start >= 0:
                bad.append((Span(start, start + len(needle), text[start:start + len(needle)]),
                            "an id from the transaction"))
    bad += [(_span(m), "a card-number-like digit run") for m in _CARD_NUMBER.finditer(text)]
    for match in _ID_SHAPED.finditer(text):
        if not _NOT_ID.fullmatch(match.group(0)) and match.group(0).lower() not in licence.words:
            bad.append((_span(match), "an id-shaped token"))
    return _result("echo", _dedupe(bad))


def check_length(text: str, min_words: int, max_words: int) -> CheckResult:
    """Word count within bounds, and the text ends with a complete sentence."""
    words = len(text.split())
    if not min_words <= words <= max_words:
        return CheckResult("length", False, f"{words} words, allowed {min_words}-{max_words}",
                           (Span(0, len(text), text[:80]),))
    if not _COMPLETE.search(text):
        return CheckResult("length", False, "ends mid-sentence", (Span(max(0, len(text) - 20), len(text),
                                                                       text[-20:]),))
    return CheckResult("length", True)


def complete_sentences(text: str) -> str:
    """The text cut after its last complete sentence (a model stopped by the token limit ends mid-sentence).

    Text without any complete sentence is returned as it is (and fails the length check).
    """
    text = text.strip()
    if _COMPLETE.search(text):
        return text
    ends = [m.end() for m in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].strip() if ends else text


def _dedupe(bad: Iterable[tuple[Span, str]]) -> list[tuple[Span, str]]:
    seen: set[tuple[int, int]] = set()
    out = []
    for span, reason in sorted(bad, key=lambda pair: (pair[0].start, pair[0].end)):
        if (span.start, span.end) not in seen:
            seen.add((span.start, span.end))
            out.append((span, reason))
    return out


# ---------------------------------------------------------------------------
# Fact-sheet entry points (kept for the faithfulness scores) and the verifier
# ---------------------------------------------------------------------------


def check_numbers(text: str, facts: FactSheet) -> CheckResult:
    """Numbers, dates/times and currencies stated must all be licensed by the fact sheet."""
    return _number_checks(text, licence_from_facts(facts))[0]


def check_binding(text: str, facts: FactSheet) -> CheckResult:
    return _number_checks(text, licence_from_facts(facts))[1]


def check_factors(text: str, facts: FactSheet) -> CheckResult:
    return check_factors_licence(text, licence_from_facts(facts))


def check_direction(text: str, facts: FactSheet) -> CheckResult:
    return check_direction_licence(text, licence_from_facts(facts))


def check_coverage(text: str, facts: FactSheet) -> CheckResult:
    """The strongest reason is stated, with its direction: a narrative that does not say why is not used."""
    return check_coverage_licence(text, licence_from_facts(facts))


def check_scope(text: str) -> CheckResult:
    """Verdicts, instructions, contact and URLs together (what needs no facts to refuse)."""
    failed = [r for r in (check_verdict(text), check_instruction(text), check_contact(text), check_url(text))
              if not r.passed]
    return CheckResult("scope", not failed, "; ".join(f"{r.name}: {r.detail}" for r in failed),
                       tuple(s for r in failed for s in r.spans))


class GroundingChecker:
    """The closed-world verifier: ``check(text, facts).passed`` decides whether a narrative may be used.

    ``verify(text, licence)`` checks against an explicit licence (a narrative plan's, say).
    """

    def __init__(self, *, min_words: int = 12, max_words: int = 140, vocabulary: frozenset[str] | None = None) -> None:
        self.min_words = min_words
        self.max_words = max_words
        self.vocabulary = vocabulary if vocabulary is not None else domain_vocabulary()
        self.max_chars = max(MAX_CHARS, 20 * max_words)
        self.version = VERIFIER_VERSION

    def check(self, text: str, facts: FactSheet) -> CheckReport:
        return self.verify(text, licence_from_facts(facts))

    def verify(self, text: str, licence: Licence) -> CheckReport:
        if len(text) > self.max_chars:
            # Far beyond any narrative: refused on its length alone, without reading it.
            return CheckReport((CheckResult("length", False, f"{len(text)} characters, allowed at most {self.max_chars}",
                                            (Span(0, 80, text[:80]),)),))
        numbers, binding = _number_checks(text, licence)
        return CheckReport((
            numbers,
            binding,
            check_factors_licence(text, licence),
            check_direction_licence(text, licence),
            check_coverage_licence(text, licence),
            check_values(text, licence),
            check_comparisons(text, licence),
            check_vocabulary(text, licence, self.vocabulary),
            check_verdict(text),
            check_instruction(text),
            check_contact(text),
            check_url(text),
            check_echo(text, licence),
            check_length(text, self.min_words, self.max_words),
        ))


__all__ = [
    "CHECK_NAMES", "VERIFIER_VERSION", "CheckReport", "CheckResult", "Claim", "GroundingChecker", "Span", "claims",
    "check_binding", "check_comparisons", "check_contact", "check_coverage", "check_direction", "check_echo",
    "check_factors", "check_instruction", "check_length", "check_numbers", "check_scope", "check_url",
    "check_values", "check_verdict", "check_vocabulary", "complete_sentences", "domain_vocabulary",
    "sentences",
]
