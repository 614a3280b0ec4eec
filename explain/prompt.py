"""Prompts: the masked fact sheet and the rules, as chat messages with a stable hash.

The normal prompt gives the whole masked fact sheet and asks for a short summary;
the strict prompt (the one retry after a failed check, decoded greedily) gives only
the headline and the reasons to restate, so that even a small model can stay within
the facts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import cached_property

from explain.facts import FactSheet

PROMPT_VERSION = "narrative-prompt-v3"

# The rules the closed-world verifier (explain.checks) enforces, said up front so that a model can keep them.
SYSTEM = (
    "You write short summaries of suspected card-fraud alerts for bank investigators. "
    "Use only the facts given and the words they use. Copy every number exactly as written in the facts, "
    "about the same thing the facts say it is about. "
    "For each reason say whether it raises or lowers risk, as the facts say. "
    "Call it suspected fraud: never say it is legitimate, safe, confirmed or certain fraud. "
    "Name no person, company, place, device or authority that is not in the facts. "
    "Give no advice, no instructions, no links and no contact details, and never mention contacting anyone."
)

_ASK = (
    "Write 2 or 3 sentences for the investigator: what happened, then the strongest reasons with their "
    "numbers and whether each raises or lowers risk. Do not add anything else."
)

_STRICT_ASK = (
    "Rewrite these facts as two or three short sentences. Keep every number and every 'raises risk' or "
    "'lowers risk' exactly as written. Add nothing.\n\n{headline} Reasons: {reasons}."
)


@dataclass(frozen=True)
class Prompt:
    """Chat messages for one alert, plus the facts the answer will be checked against."""

    messages: tuple[tuple[str, str], ...]
    facts: FactSheet
    strict: bool = False

    def as_messages(self) -> list[dict[str, str]]:
        return [{"role": role, "content": content} for role, content in self.messages]

    @cached_property
    def hash(self) -> str:
        """sha256 of the exact messages and prompt version (what a validator replays)."""
        payload = json.dumps({"version": PROMPT_VERSION, "messages": self.messages}, ensure_ascii=False)
        return "sha256:" + hashlib.sha256(payload.encode("utf-8")).hexdigest()


def build_prompt(facts: FactSheet, *, strict: bool = False) -> Prompt:
    """The chat prompt for one alert: system rules, then the fact sheet and the request."""
    if strict:
        # The retry: only the headline and the reasons to cover, nothing else to get wrong.
        user = _STRICT_ASK.format(headline=facts.headline, reasons="; ".join(r.text for r in facts.narrative_reasons))
    else:
        user = f"Facts:\n{facts.text}\n\n{_ASK}"
    return Prompt(messages=(("system", SYSTEM), ("user", user)), facts=facts, strict=strict)
