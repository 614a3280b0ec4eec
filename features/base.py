"""The feature-family contract: one definition, two executions.

A :class:`FeatureFamily` computes a fixed list of named features for a transaction
from the history *strictly before* it (earlier in processing order; ties in time
keep file/stream order). It runs two ways that must agree to 1e-6:

* ``transform_many(frame)`` — vectorised over a canonical frame sorted by time
  (training, batch scoring);
* ``transform_one(tx, state)`` then ``update_one(tx, state)`` — one event at a
  time against per-entity state (streaming, API).

Families that use labels (merchant risk) also take :class:`LabelEvent` objects
through ``learn_label``: a label counts only from the moment it became known
(``label_timestamp``, or the transaction time plus the label delay).

Missing optional fields give missing (NaN) features, never an exception.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import pandas as pd

from features.schema import Transaction

Entity = Literal["card", "merchant", "none"]

MS_PER_HOUR = 3_600_000
MS_PER_DAY = 24 * MS_PER_HOUR


@dataclass(frozen=True, slots=True)
class LabelEvent:
    """A fraud label that became known at ``known_at_ms`` for one past transaction."""

    transaction_id: str
    card_id: str
    merchant_id: str
    transaction_ms: int
    known_at_ms: int
    is_fraud: int


class FeatureFamily(ABC):
    """Base class of every feature family. Subclasses set ``name`` and ``entity``."""

    name: ClassVar[str]
    #: Which entity's state the online execution reads and writes ("none": stateless).
    entity: ClassVar[Entity]
    #: True when the family consumes labels through ``learn_label``.
    uses_labels: ClassVar[bool] = False

    @property
    @abstractmethod
    def feature_names(self) -> list[str]:
        """Output column names, in a fixed order."""

    @abstractmethod
    def transform_many(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Features for every row of a canonical frame sorted by timestamp (stable).

        Returns a frame with ``feature_names`` as columns, aligned with ``frame.index``.
        Must not modify ``frame``.
        """

    def new_state(self) -> Any:
        """Empty per-entity state for the online execution (stateless families: None)."""
        return None

    @abstractmethod
    def transform_one(self, tx: Transaction, state: Any) -> dict[str, float]:
        """Features for one event from the entity's state; must not modify the state."""

    def update_one(self, tx: Transaction, state: Any) -> None:  # noqa: B027 - stateless families need nothing
        """Fold the event into the entity's state after it was transformed."""

    def learn_label(self, label: LabelEvent, state: Any) -> None:  # noqa: B027 - only label families override
        """Fold a newly known label into the entity's state."""

    def expire(self, state: Any, now_ms: int) -> bool:
        """Drop window data older than the family's horizon. Return True when the state is empty."""
        return state is None

    def entity_key(self, tx: Transaction) -> str | None:
        if self.entity == "card":
            return tx.card_id
        if self.entity == "merchant":
            return tx.merchant_id
        return None
