"""The fact sheet: the only thing a language model is shown, and what its output is checked against.

Built from the masked card parts (no PII). Its text lists the transaction, the
score, the top reasons with their numbers and directions, the card's history and
the what-if facts; every number a narrative may state must appear here. The coded
fields (MCC, country, currency) are reduced to their vocabularies again here, so
that no free text reaches a prompt whatever the card was built from. The structured
parts (transaction, score, threshold) and the id strings a narrative must never
echo travel with the sheet for the verifier (:mod:`explain.licence`), never into a prompt.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from explain.codes import NO_CURRENCY, normal_country, normal_currency, normal_mcc
from explain.formatting import StatedNumber, extract_numbers, money, score_pair
from explain.plan import NarrativePlan, mcc_label

if TYPE_CHECKING:
    from explain.card import MaskedTransaction
    from explain.reasons import ReasonCode
    from explain.whatif import WhatIf

_CHANNEL_WORDS = {"card_present": "card-present", "ecommerce": "ecommerce", "atm": "ATM"}


@dataclass(frozen=True)
class FactSheet:
    """Masked facts of one alert, as text lines plus the structured reasons behind them."""

    transaction_line: str
    score_line: str
    reasons: tuple[ReasonCode, ...]
    history_line: str
    what_if_lines: tuple[str, ...]
    narrative_top_k: int = 3
    headline: str = field(default="")
    transaction: MaskedTransaction | None = None
    score: float | None = None
    threshold: float | None = None
    score_text: str = ""
    threshold_text: str = ""
    withheld: tuple[str, ...] = ()
    plan: NarrativePlan | None = None

    @classmethod
    def build(
        cls,
        *,
        transaction: MaskedTransaction,
        score: float,
        threshold: float,
        decision: str,
        reasons: Sequence[ReasonCode],
        what_if: Sequence[WhatIf],
        history_summary: str,
        narrative_top_k: int = 3,
        plan: NarrativePlan | None = None,
    ) -> FactSheet:
        """The fact sheet of one alert; with a ``plan``, its lines join the sheet, the reasons it leaves out
        (nonsense such as a speed of 0 km/h said to raise risk) leave it, and only its what-ifs are kept."""
        channel = _CHANNEL_WORDS.get(transaction.channel or "", "")
        kind = f"{channel} transaction" if channel else "transaction"
        mcc, country = normal_mcc(transaction.mcc), normal_country(transaction.country)
        currency = normal_currency(transaction.currency) or NO_CURRENCY
        transaction = transaction.model_copy(update={"mcc": mcc, "country": country, "currency": currency})
        where = []
        if mcc:
            where.append(f"merchant category {mcc_label(mcc)}")
        if country:
            where.append(f"country {country}")
        when = transaction.timestamp.strftime("%Y-%m-%d %H:%M UTC")
        amount = money(transaction.amount, currency)
        details = ", ".join([amount, *where, when])
        score_text, threshold_text = score_pair(score, threshold)
        what_if_lines = tuple(w.text for w in what_if)
        if plan is not None:
            reasons = [r for r in reasons if r.feature not in plan.left_out]
            what_if_lines = tuple(plan.what_if)
        return cls(
            transaction_line=f"{kind[0].upper()}{kind[1:]}: {details}.",
            score_line=f"Model score {score_text}; alert threshold {threshold_text}; decision: {decision}.",
            reasons=tuple(reasons),
            history_line=f"Card history: {history_summary}.",
            what_if_lines=what_if_lines,
            narrative_top_k=narrative_top_k,
            headline=f"{'Suspected fraud' if score >= threshold else 'Below the alert threshold'}: {kind} of {amount} scored {score_text} against the alert threshold {threshold_text}.",
            transaction=transaction,
            score=float(score),
            threshold=float(threshold),
            score_text=score_text,
            threshold_text=threshold_text,
            withheld=tuple(v for v in (transaction.transaction_id, transaction.merchant_id, transaction.card,
                                       transaction.device, transaction.customer_ref) if v),
            plan=plan,
        )

    @property
    def narrative_reasons(self) -> tuple[ReasonCode, ...]:
        """The reasons a narrative must cover (the strongest ``narrative_top_k``)."""
        return self.reasons[: self.narrative_top_k]

    @cached_property
    def text(self) -> str:
        lines = [self.transaction_line, self.score_line, "Reasons, strongest first:"]
        lines += [f"{i}. {r.text}" for i, r in enumerate(self.reasons, start=1)]
        lines.append(self.history_line)
        if self.plan is not None:
            lines += self.plan.lines()
        if self.what_if_lines:
            lines.append("Model re-scored with one change:")
            lines += [f"- {line}" for line in self.what_if_lines]
        return "\n".join(lines)

    @cached_property
    def numbers(self) -> tuple[StatedNumber, ...]:
        """Every number a narrative may state (those written in the fact sheet and the headline)."""
        return tuple(extract_numbers(self.text + "\n" + self.headline))

    def template_text(self) -> str:
        """The deterministic narrative: from the plan when there is one (pattern hypothesis first), else
        the headline, the strongest reasons and the first what-if fact (cards stored before plans)."""
        if self.plan is not None:
            # A reason whose number the plan already states is named, not repeated (its direction still said),
            # and left out when a reason before it already says its factor moves the risk the same way.
            main: list[str] = []
            said: set[tuple[str, str]] = set()
            for i, r in enumerate(self.narrative_reasons):
                if r.direction != "raises":
                    continue
                if i and self.plan.states(r.feature):
                    if (r.concept, r.direction) in said:
                        continue
                    main.append(f"the {r.concept} stated above — {r.direction} risk")
                else:
                    main.append(r.text)
                said.add((r.concept, r.direction))
            return self.plan.narrative(self.headline, main)
        parts = [self.headline]
        if self.narrative_reasons:
            parts.append("Main reasons: " + "; ".join(r.text for r in self.narrative_reasons) + ".")
        if self.what_if_lines:
            parts.append(f"Model check: {self.what_if_lines[0]}.")
        return " ".join(parts)
