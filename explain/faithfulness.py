"""Faithfulness of a narrative to its attribution, scored automatically on 0–4 scales.

* **accuracy**: 0 if any stated value or direction is wrong (a number not in the fact
  sheet, a factor said to raise risk that lowers it); otherwise 4, minus one point
  for each other grounding failure (a factor that is not among the reasons,
  out-of-scope content), never below 1.
* **completeness** over the top-k reasons: 0 if any of them is not named at all; 4 if
  each is named with its value and its direction; in between, 1 + ⌊3 × share of the
  values and directions present⌋ (at most 3). Reasons whose value is a word (flags,
  channel, weekday) count their value as present when named.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from explain.checks import check_direction, check_factors, check_numbers, check_scope, claims
from explain.facts import FactSheet
from explain.formatting import extract_dates, extract_numbers, matches
from explain.reasons import concepts_in


@dataclass(frozen=True)
class Faithfulness:
    accuracy: int
    completeness: int
    wrong: list[str] = field(default_factory=list)
    missing_reasons: list[str] = field(default_factory=list)
    without_value: list[str] = field(default_factory=list)
    without_direction: list[str] = field(default_factory=list)


def score_faithfulness(text: str, facts: FactSheet) -> Faithfulness:
    numbers, direction = check_numbers(text, facts), check_direction(text, facts)
    others = [check_factors(text, facts), check_scope(text)]  # coverage and length are completeness/format
    wrong = [r.detail for r in (numbers, direction) if not r.passed]
    accuracy = 0 if wrong else max(1, 4 - sum(not r.passed for r in others))

    named = concepts_in(text)
    stated, dates = extract_numbers(text), extract_dates(text)
    said = claims(text)
    missing, no_value, no_direction = [], [], []
    for reason in facts.narrative_reasons:
        if reason.concept not in named:
            missing.append(reason.feature)
            continue
        if reason.value_text is not None:
            wanted, wanted_times = extract_numbers(reason.value_text), extract_dates(reason.value_text)
            found = any(matches(s, w) for s in stated for w in wanted) or bool(set(wanted_times) & set(dates))
            if (wanted or wanted_times) and not found:
                no_value.append(reason.feature)
        if not any(c.direction == reason.direction and reason.concept in c.concepts for c in said):
            no_direction.append(reason.feature)
    if missing:
        completeness = 0
    elif not (no_value or no_direction):
        completeness = 4
    else:
        elements = 2 * len(facts.narrative_reasons)
        present = elements - len(no_value) - len(no_direction)
        completeness = min(3, 1 + math.floor(3 * present / elements))
    return Faithfulness(accuracy, completeness, wrong, missing, no_value, no_direction)
