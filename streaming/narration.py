"""The narrative worker's loop over the alert store: template cards in, checked narratives out.

Scoring never waits for this. The stream stores each alert with its template
narrative (``status == "template"``); this worker takes the highest-scoring of
those in batches, has the configured backend write a narrative that must pass the
grounding checks (else the template stays, recorded as a fallback) and replaces
the card. Pending means "no narration attempt recorded yet" (provenance.attempts
== 0); a card leaves that set once narrated or fallen back, so a restart never
narrates an alert twice, whatever the backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from explain.card import AlertCard
from explain.narrator import Narrator
from explain.settings import NarrativeSettings
from streaming.store import AlertStore

log = logging.getLogger(__name__)

#: How many of the newest open alerts one pass looks through for pending narratives.
SCAN_LIMIT = 5000


@dataclass(slots=True)
class NarrationOutcome:
    narrated: int = 0
    passed: int = 0
    fallbacks: int = 0

    def add(self, other: NarrationOutcome) -> None:
        self.narrated += other.narrated
        self.passed += other.passed
        self.fallbacks += other.fallbacks


def pending_cards(store: AlertStore, limit: int) -> list[AlertCard]:
    """Open alerts still carrying their template narrative, highest score first."""
    rows = [row for row in store.list_alerts(status="new", limit=SCAN_LIMIT) if _pending(row["card"])]
    rows.sort(key=lambda row: (-float(row["score"]), row["transaction_id"]))
    return [AlertCard.model_validate(row["card"]) for row in rows[:limit]]


def _pending(card: dict[str, Any]) -> bool:
    narrative = card.get("narrative") or {}
    return narrative.get("status") == "template" and not (narrative.get("provenance") or {}).get("attempts")


def narrate_batch(store: AlertStore, narrator: Narrator, cards: list[AlertCard]) -> NarrationOutcome:
    outcome = NarrationOutcome()
    for card in narrator.narrate(cards):
        store.update_card(card.transaction.transaction_id, card.model_dump(mode="json"))
        outcome.narrated += 1
        if card.narrative.provenance.fallback_used:
            outcome.fallbacks += 1
        else:
            outcome.passed += 1
    return outcome


def narrate_pending(store: AlertStore, settings: NarrativeSettings, *, limit: int,
                    narrator: Narrator | None = None) -> NarrationOutcome:
    """One pass: narrate up to ``limit`` pending alerts in batches of ``settings.batch_size``."""
    owned = narrator is None
    narrator = narrator or Narrator.from_settings(settings).setup()
    total = NarrationOutcome()
    try:
        cards = pending_cards(store, limit)
        for start in range(0, len(cards), settings.batch_size):
            total.add(narrate_batch(store, narrator, cards[start : start + settings.batch_size]))
    finally:
        if owned:
            narrator.close()
    return total


def run_worker(store: AlertStore, settings: NarrativeSettings, *, poll_s: float,
               should_stop: Callable[[], bool], narrator: Any | None = None) -> NarrationOutcome:
    """Poll the store until ``should_stop``; the model is loaded once for the whole run."""
    narrator = narrator or Narrator.from_settings(settings).setup()
    total = NarrationOutcome()
    try:
        while not should_stop():
            cards = pending_cards(store, settings.batch_size)
            if not cards:
                time.sleep(poll_s)
                continue
            batch = narrate_batch(store, narrator, cards)
            total.add(batch)
            log.info("narrated", extra={"cards": batch.narrated, "fallbacks": batch.fallbacks})
    finally:
        narrator.close()
    return total
