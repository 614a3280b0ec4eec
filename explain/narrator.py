"""Narratives for alert cards: generate in batches, check, retry once, fall back, audit.

For each card: the backend writes from the masked fact sheet; the closed-world
verifier (:class:`~explain.checks.GroundingChecker`) runs; a failing text gets one retry with the strict prompt and greedy decoding; a
text that still fails is replaced by the template narrative, and the card records
the fallback and the failed checks. Every attempt is appended to the audit log.

>>> narrator = Narrator.from_settings(settings.narrative).setup()      # doctest: +SKIP
>>> cards = narrator.narrate(cards)                                    # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from explain.audit import AuditLog
from explain.backends import (
    DecodingParams,
    Generation,
    NarrativeBackend,
    decoding_params,
    make_backend,
)
from explain.card import (
    AlertCard,
    Narrative,
    NarrativeProvenance,
    NarrativeStatus,
    template_narrative,
)
from explain.checks import CheckReport, CheckResult, GroundingChecker, complete_sentences
from explain.facts import FactSheet
from explain.prompt import PROMPT_VERSION, Prompt, build_prompt
from explain.settings import BackendName, NarrativeSettings


@dataclass(frozen=True)
class NarrationResult:
    """One card's narrative outcome, for metrics (explain-eval, bench)."""

    card: AlertCard
    facts: FactSheet
    report: CheckReport
    first_attempt_passed: bool
    first_checks: dict[str, bool]
    attempts: int
    fallback_used: bool
    latency_ms: float
    raw_outputs: tuple[str, ...]


class Narrator:
    """Turns cards with template narratives into cards with checked narratives."""

    def __init__(
        self,
        backend: NarrativeBackend,
        *,
        params: DecodingParams | None = None,
        checker: GroundingChecker | None = None,
        audit: AuditLog | None = None,
        narrative_top_k: int = 3,
        retry: bool = True,
    ) -> None:
        self.backend = backend
        self.params = params or DecodingParams()
        self.checker = checker or GroundingChecker()
        self.audit = audit
        self.narrative_top_k = narrative_top_k
        self.retry = retry

    @classmethod
    def from_settings(cls, settings: NarrativeSettings, *, backend: BackendName | None = None,
                      audit: bool = True) -> Narrator:
        return cls(
            make_backend(settings, backend),
            params=decoding_params(settings),
            checker=GroundingChecker(min_words=settings.min_words, max_words=settings.max_words),
            audit=AuditLog(settings.audit_log) if audit else None,
            narrative_top_k=settings.eval_top_k,
        )

    def setup(self) -> Narrator:
        self.backend.setup()
        return self

    def close(self) -> None:
        self.backend.close()

    def narrate(self, cards: Sequence[AlertCard]) -> list[AlertCard]:
        """The same cards with their narratives written (or the recorded fallback)."""
        return [result.card for result in self.narrate_detailed(cards)]

    def narrate_detailed(self, cards: Sequence[AlertCard]) -> list[NarrationResult]:
        if not cards:
            return []
        facts = [card.facts(narrative_top_k=self.narrative_top_k) for card in cards]
        prompts = [build_prompt(f) for f in facts]
        first = self._attempt(cards, prompts, self.params, attempt=1)
        outcomes: list[list[tuple[Prompt, DecodingParams, Generation, CheckReport]]] = [[o] for o in first]
        retry_idx = [i for i, (_, _, _, report) in enumerate(first) if not report.passed]
        if self.retry and retry_idx and self.backend.name != "template":
            strict = self.params.stricter()
            again = self._attempt([cards[i] for i in retry_idx], [build_prompt(facts[i], strict=True) for i in retry_idx],
                                  strict, attempt=2)
            for i, outcome in zip(retry_idx, again, strict=True):
                outcomes[i].append(outcome)
        return [self._result(card, fact, tries) for card, fact, tries in zip(cards, facts, outcomes, strict=True)]

    def _attempt(self, cards: Sequence[AlertCard], prompts: Sequence[Prompt], params: DecodingParams,
                 *, attempt: int) -> list[tuple[Prompt, DecodingParams, Generation, CheckReport]]:
        raw = self.backend.generate(prompts, params)
        out = []
        for card, prompt, answer in zip(cards, prompts, raw, strict=True):
            # Only whole sentences are used; the audit keeps the raw answer too.
            generation = replace(answer, text=complete_sentences(answer.text))
            if generation.error is not None:
                report = CheckReport((CheckResult("backend", False, generation.error),))
            else:
                report = self.checker.check(generation.text, prompt.facts)
            self._log(card, prompt, params, answer, generation, report, attempt=attempt, batch=len(prompts))
            out.append((prompt, params, generation, report))
        return out

    def _result(self, card: AlertCard, facts: FactSheet,
                tries: list[tuple[Prompt, DecodingParams, Generation, CheckReport]]) -> NarrationResult:
        prompt, params, generation, report = tries[-1]
        latency = sum(t[2].latency_ms for t in tries)
        now = datetime.now(UTC)
        if report.passed:
            # The only place a narrative becomes "generated" (the desk's "LLM-verified"): a pass of the verifier.
            status: NarrativeStatus = "template" if self.backend.name == "template" else "generated"
            narrative = Narrative(text=generation.text, status=status, provenance=NarrativeProvenance(
                backend=self.backend.name, model_id=self.backend.model_id, prompt_hash=prompt.hash,
                params={**params.as_dict(), "prompt_version": PROMPT_VERSION, "strict_prompt": prompt.strict},
                latency_ms=latency, attempts=len(tries), checks=report.as_dict(), failed_checks=[],
                fallback_used=False, verifier=self.checker.version, generated_at=now,
            ))
        else:
            fallback = template_narrative(facts, now=now)
            narrative = Narrative(text=fallback.text, status="fallback", provenance=NarrativeProvenance(
                backend=self.backend.name, model_id=self.backend.model_id, prompt_hash=prompt.hash,
                params={**params.as_dict(), "prompt_version": PROMPT_VERSION, "strict_prompt": prompt.strict},
                latency_ms=latency, attempts=len(tries), checks=report.as_dict(), failed_checks=report.failed,
                fallback_used=True, generated_at=now,
            ))
        return NarrationResult(
            card=card.with_narrative(narrative), facts=facts, report=report,
            first_attempt_passed=tries[0][3].passed, first_checks=tries[0][3].as_dict(), attempts=len(tries), fallback_used=not report.passed,
            latency_ms=latency, raw_outputs=tuple(t[2].text for t in tries),
        )

    def _log(self, card: AlertCard, prompt: Prompt, params: DecodingParams, answer: Generation,
             generation: Generation, report: CheckReport, *, attempt: int, batch: int) -> None:
        if self.audit is None:
            return
        self.audit.append({
            "alert_id": card.alert_id,
            "transaction_id": card.transaction.transaction_id,
            "model_version": card.model_version,
            "attempt": attempt,
            "backend": self.backend.name,
            "model_id": self.backend.model_id,
            "params": params.as_dict(),
            "prompt_version": PROMPT_VERSION,
            "strict_prompt": prompt.strict,
            "prompt_hash": prompt.hash,
            "prompt": prompt.as_messages(),
            "raw_output": answer.text,
            "checked_text": generation.text,
            "error": generation.error,
            "checks": report.as_dict(),
            "check_details": report.details(),
            "passed": report.passed,
            "latency_ms": round(generation.latency_ms, 3),
            "batch_size": batch,
        })
