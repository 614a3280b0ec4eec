"""Grounding checks run on every model-written narrative before anyone sees it.

* ``numbers``   — every number, date, time and currency stated appears in the fact sheet (formatting
  and rounding tolerated);
* ``factors``   — every factor the text presents as raising/lowering risk is among the given reasons;
* ``direction`` — the direction stated for a factor matches the sign of its SHAP value;
* ``coverage``  — the strongest reason is stated with its direction (a text that never says why
  the model alerted is of no use to an investigator);
* ``scope``     — no contacting the customer, no advice or instructions, no certainty beyond
  "suspected" (nor legal conclusions), no fraud typologies or stories the facts do not hold,
  no PII (e-mail addresses, card-number-like digit runs);
* ``length``    — word count within bounds.

A *claim* is a clause that says something raises or lowers risk; factors and
directions are read from claims only, so that describing the transaction ("an
ecommerce transaction of 120.00 EUR") is never mistaken for a reason.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from explain.facts import FactSheet
from explain.formatting import extract_currencies, extract_dates, extract_numbers, matches
from explain.reasons import concepts_in

CHECK_NAMES: tuple[str, ...] = ("numbers", "factors", "direction", "coverage", "scope", "length")

_RISK_NOUN = r"(?:fraud )?(?:risk|score|suspicion|likelihood|probability)"
_RAISE = re.compile(
    r"\b(?:rais(?:e|es|ed|ing)|increas(?:e|es|ed|ing)|elevat(?:e|es|ed|ing)|add(?:s|ed|ing)? to|"
    r"push(?:es|ed|ing)? up|boost(?:s|ed|ing)?|drive(?:s|n)? up)\b[^.;]{0,30}?\b" + _RISK_NOUN + r"\b"
    r"|\b(?:higher|more|increased|elevated|greater) " + _RISK_NOUN + r"\b|\bsuspicious\b|\bred flags?\b",
    re.IGNORECASE,
)
_LOWER = re.compile(
    r"\b(?:lower(?:s|ed|ing)?|reduc(?:e|es|ed|ing)|decreas(?:e|es|ed|ing)|mitigat(?:e|es|ed|ing)|offset(?:s|ting)?|"
    r"bring(?:s)? down|pull(?:s|ed)? down)\b[^.;]{0,30}?\b" + _RISK_NOUN + r"\b"
    r"|\b(?:lower|less|reduced|decreased) " + _RISK_NOUN + r"\b|\breassuring\b",
    re.IGNORECASE,
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*(?=\s|$)")
_COMPLETE = re.compile(r"[.!?][\"')\]]*\s*$")
_CLAUSE = re.compile(r";|,\s+(?:and|but)\s+|\s+(?:but|while|whereas|although|however)\s+", re.IGNORECASE)

_SCOPE: dict[str, re.Pattern[str]] = {
    "contact": re.compile(
        r"\b(?:contact(?:s|ing|ed)?|call(?:s|ing|ed)?|phon(?:e|es|ing|ed)|e-?mail(?:s|ing|ed)?|text(?:ing)?|"
        r"reach(?:ing)? out to|notif(?:y|ying|ied)|speak(?:ing)? (?:to|with)|ask(?:ing)?|verify with|"
        r"warn(?:s|ed|ing)?|inform(?:s|ed|ing)?|tell(?:s|ing)?|told|send(?:s|ing)?|sent|messag(?:e|es|ed|ing)|"
        r"writ(?:e|es|ing) to)\b"
        r"[^.]{0,40}?\b(?:customers?|cardholders?|card holders?|clients?|account holders?|owners?|victims?)\b"
        r"|\b(?:customer|cardholder|card holder|client)s? (?:should|must|can|could) be (?:contacted|called|asked)\b",
        re.IGNORECASE),
    "advice": re.compile(
        r"\b(?:you|we|investigators?|the bank|analysts?|they) (?:should|must|need to|have to|ought to)\b"
        r"|\b(?:recommend\w*|advis\w*|suggest\w*|please)\b"
        r"|\bshould (?:be )?(?:block|freez|frozen|declin|cancel|contact|investigat|review|report|refund|escalat)\w*"
        r"|\b(?:block|freeze|cancel|decline|reverse)(?:s|d|ing)? (?:the|this) (?:card|transaction|account|payment)\b",
        re.IGNORECASE),
    "certainty": re.compile(
        r"\b(?:is|was|are|were|be) (?:definitely |certainly |clearly |surely )?(?:a |an )?fraud(?:ulent)?\b"
        r"|\bconfirmed (?:as )?fraud\b|\bdefinite(?:ly)?\b|\bcertain(?:ly|ty)?\b|\bclearly\b|\bundoubtedly\b"
        r"|\bwithout (?:a |any )?doubt\b|\bprov(?:e|es|en|ed)\b|\bproof\b|\bguarantee\w*|\bfraudsters?\b"
        r"|\bstolen\b|\bcriminals?\b|\bsurely\b|\bobviously\b|\b100 ?%"
        r"|\bguilty\b|\bconvicted\b|\bsentenced\b|\barrest\w*|\bprison\b|\bjail\b|\bpolice\b"
        r"|\blaw enforcement\b|\bprosecut\w*|\bcharged with\b",
        re.IGNORECASE),
    # Fraud typologies and stories the facts never contain.
    "speculation": re.compile(
        r"\bmoney laundering\b|\bscam\w*|\bphishing\b|\bidentity theft\b|\bskimm\w*|\bclon(?:ed|ing)\b"
        r"|\bhack\w*|\bcrypto\w*|\bterroris\w*|\bmastermind\w*|\bgangs?\b|\bfraud rings?\b"
        r"|\baccount takeover\b|\bmalware\b",
        re.IGNORECASE),
    "pii": re.compile(r"[\w.+-]+@[\w-]+\.[\w.]+|\b\d(?:[ -]?\d){11,}\b"),
}


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class CheckReport:
    """Results of every check on one text."""

    results: tuple[CheckResult, ...]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failed(self) -> list[str]:
        return [r.name for r in self.results if not r.passed]

    def as_dict(self) -> dict[str, bool]:
        return {r.name: r.passed for r in self.results}

    def details(self) -> dict[str, str]:
        return {r.name: r.detail for r in self.results if not r.passed}

    def __getitem__(self, name: str) -> CheckResult:
        for result in self.results:
            if result.name == name:
                return result
        raise KeyError(name)


@dataclass(frozen=True)
class Claim:
    """A clause that says something raises or lowers risk, and the factors it names."""

    text: str
    direction: str | None  # "raises", "lowers", or None when both or neither are said
    concepts: frozenset[str]


def claims(text: str) -> list[Claim]:
    """Risk claims in a text: clauses with a raise/lower wording, with the factors they name."""
    found = []
    for sentence in _SENTENCE.split(text):
        for clause in _CLAUSE.split(sentence):
            up, down = bool(_RAISE.search(clause)), bool(_LOWER.search(clause))
            if not (up or down):
                continue
            direction = "raises" if up and not down else "lowers" if down and not up else None
            found.append(Claim(clause.strip(), direction, frozenset(concepts_in(clause))))
    return found


def check_numbers(text: str, facts: FactSheet) -> CheckResult:
    """Numbers, dates/times and currencies stated must all come from the fact sheet."""
    bad = [n.text.strip() for n in extract_numbers(text) if not any(matches(n, fact) for fact in facts.numbers)]
    sheet = facts.text + "\n" + facts.headline
    known_dates = set(extract_dates(sheet))
    bad += [d for d in extract_dates(text) if d not in known_dates]
    bad += sorted(extract_currencies(text) - extract_currencies(sheet))
    return CheckResult("numbers", not bad, f"numbers not in the fact sheet: {', '.join(bad)}" if bad else "")


def check_factors(text: str, facts: FactSheet) -> CheckResult:
    given = {r.concept for r in facts.reasons}
    named = set().union(*(c.concepts for c in claims(text))) if text else set()
    extra = sorted(named - given)
    return CheckResult("factors", not extra, f"factors not among the reasons: {', '.join(extra)}" if extra else "")


def check_direction(text: str, facts: FactSheet) -> CheckResult:
    signs: dict[str, set[str]] = {}
    for reason in facts.reasons:
        signs.setdefault(reason.concept, set()).add(reason.direction)
    wrong = []
    for claim in claims(text):
        if claim.direction is None:
            continue
        for concept in claim.concepts:
            if concept in signs and claim.direction not in signs[concept]:
                wrong.append(f"{concept} said to {claim.direction.removesuffix('s')} risk")
    return CheckResult("direction", not wrong, "; ".join(wrong))


def check_coverage(text: str, facts: FactSheet) -> CheckResult:
    """The strongest reason is stated, with its direction: a narrative that does not say why is not used."""
    if not facts.reasons:
        return CheckResult("coverage", True)
    top = facts.reasons[0]
    ok = any(c.direction == top.direction and top.concept in c.concepts for c in claims(text))
    return CheckResult("coverage", ok, "" if ok else f"the strongest reason ({top.concept}, {top.direction} risk) "
                                                     "is not stated with its direction")


def check_scope(text: str) -> CheckResult:
    hits = [f"{name}: {m.group(0)!r}" for name, pattern in _SCOPE.items() if (m := pattern.search(text))]
    return CheckResult("scope", not hits, "; ".join(hits))


def check_length(text: str, min_words: int, max_words: int) -> CheckResult:
    """Word count within bounds, and the text ends with a complete sentence."""
    words = len(text.split())
    if not min_words <= words <= max_words:
        return CheckResult("length", False, f"{words} words, allowed {min_words}-{max_words}")
    if not _COMPLETE.search(text):
        return CheckResult("length", False, "ends mid-sentence")
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


class GroundingChecker:
    """Runs every check; ``check(text, facts).passed`` decides whether a narrative may be used."""

    def __init__(self, *, min_words: int = 12, max_words: int = 140) -> None:
        self.min_words = min_words
        self.max_words = max_words

    def check(self, text: str, facts: FactSheet) -> CheckReport:
        return CheckReport((
            check_numbers(text, facts),
            check_factors(text, facts),
            check_direction(text, facts),
            check_coverage(text, facts),
            check_scope(text),
            check_length(text, self.min_words, self.max_words),
        ))
