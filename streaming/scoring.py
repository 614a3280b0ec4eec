"""Scorers: what turns a micro-batch of transactions into scores and decisions.

The pipeline only knows the :class:`Scorer` protocol, so the Kafka plumbing is
tested and benchmarked with :class:`RuleScorer` (no model) and served with
:class:`ModelScorer` (online features + model bundle + threshold policy).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from features.schema import Transaction
from features.state import StateStore

log = logging.getLogger(__name__)


class ModelLoadError(RuntimeError):
    """The model bundle is missing or does not fit this service; the message says what to do."""


@dataclass(slots=True)
class ShadowScores:
    """A challenger's scores and the decisions it would have made, row-aligned with the batch."""

    scores: np.ndarray
    alerts: np.ndarray
    threshold: float
    model_version: str


@dataclass(slots=True)
class ScoredBatch:
    """Scores of one micro-batch, row-aligned with its transactions."""

    scores: np.ndarray
    alerts: np.ndarray
    threshold: float
    model_version: str
    #: Feature matrix and names, kept so alert cards can attribute alerted rows.
    features: np.ndarray | None = None
    feature_names: list[str] = field(default_factory=list)
    #: What produced the scores (the bundle for ModelScorer), for the alert card builder.
    model: Any = None
    #: The challenger's verdicts when a shadow model runs (streaming.shadow.ShadowScorer).
    shadow: ShadowScores | None = None
    #: A drift snapshot (streaming.records.DriftSnapshot) when the drift monitor took one on this batch.
    drift: Any = None
    #: Transactions the scorer refused (features.pipeline.Refusal: index, reason); the arrays above
    #: then hold only the other rows, in order (their indexes in ``kept``).
    refused: list[Any] = field(default_factory=list)
    kept: list[int] | None = None


class Scorer(Protocol):
    """Scores a batch. Implementations keep per-entity state themselves (feature state store).

    A scorer may also offer ``cards`` (a :class:`~streaming.alerts.CardBuilder`) to
    explain its alerts; the service uses minimal masked cards otherwise.
    """

    @property
    def model_version(self) -> str: ...

    def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch: ...


@runtime_checkable
class StatefulScorer(Protocol):
    """A scorer whose scores depend on per-entity feature state; the service checkpoints that state
    with the offsets it covers and rebuilds it after a restart (:mod:`streaming.state_sync`)."""

    @property
    def feature_state(self) -> StateStore: ...

    @property
    def label_state_prefixes(self) -> tuple[str, ...]:
        """Keys whose state comes from the labels topic only: left out of checkpoints and learnt again."""
        ...

    def update_state(self, txs: Sequence[Transaction]) -> None:
        """Apply transactions to the state exactly as scoring them would, without scoring them."""
        ...


class RuleScorer:
    """A transparent stand-in model: score = amount / (amount + scale).

    Used to test and benchmark the streaming plumbing without a trained model; it is
    deterministic, so tests know which transactions must alert.
    """

    def __init__(self, *, scale: float = 100.0, threshold: float = 0.9, version: str = "rule-amount-v1") -> None:
        self.scale = scale
        self.threshold = threshold
        self._version = version

    @property
    def model_version(self) -> str:
        return self._version

    def score_one(self, amount: float) -> float:
        return amount / (amount + self.scale)

    def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch:
        amounts = np.fromiter((tx.amount for tx in txs), dtype=np.float64, count=len(txs))
        scores = amounts / (amounts + self.scale)
        return ScoredBatch(scores=scores, alerts=scores >= self.threshold, threshold=self.threshold,
                           model_version=self._version)


class ModelScorer:
    """Online features (per-entity state) → calibrated model score → threshold policy."""

    def __init__(self, bundle: Any, online: Any, cards: Any | None = None, drift: Any | None = None) -> None:
        self.bundle = bundle
        self.online = online
        #: Alert-card builder (SHAP + reasons + template narrative) for this bundle.
        self.cards = cards
        #: Live drift monitor (streaming.drift.DriftMonitor); it sees every batch's features and scores.
        self.drift = drift

    @property
    def model_version(self) -> str:
        return str(self.bundle.version)

    @classmethod
    def load(cls, model_path: Path, state_settings: Any, narrative_settings: Any | None = None,
             *, explain: bool = True, local_merchant_state: bool = False) -> ModelScorer:
        """Load the bundle, check it against the feature pipeline, connect the state store.

        Raises :class:`ModelLoadError` with an actionable message; the service calls
        this before it joins the consumer group, so a bad model fails fast.
        """
        from detection.bundle import BundleError, ModelBundle
        from features.pipeline import FeaturePipeline
        from features.state import make_state_store

        try:
            bundle = ModelBundle.from_path(Path(model_path))
        except BundleError as exc:
            raise ModelLoadError(str(exc)) from None
        # The bundle records the feature settings it was trained with; online features
        # must use the same ones or the model sees different inputs than in training.
        pipeline = FeaturePipeline.from_settings(bundle.feature_settings)
        try:
            bundle.check_features(list(pipeline.feature_names))
        except BundleError as exc:
            raise ModelLoadError(str(exc)) from None
        bundle.set_threads(1)
        store = make_state_store(state_settings)
        if local_merchant_state:
            from features.state import MemoryStateStore, RoutedStateStore

            # Labels online: merchant state is rebuilt from the labels topic by every process
            # (see streaming.labels); a shared copy would count each label once per process.
            store = RoutedStateStore(store, {"merchant:": MemoryStateStore()})
        setup = getattr(store, "setup", None)
        if setup is not None:
            setup()  # Redis: connect now, so an unreachable state store also fails at startup
        cards = None
        if explain:
            from streaming.alerts import ExplainedCards

            cards = ExplainedCards.from_bundle(bundle, narrative_settings)
        return cls(bundle, pipeline.online(store, refuse_late=True), cards)

    def label_event(self, tx: Transaction) -> Any:
        """The label a labels-topic record carries, with the bundle's label delay rule."""
        return self.online.pipeline.label_event(tx)

    def learn_labels(self, events: Sequence[Any]) -> None:
        """Fold labels into the feature state (the stream calls this before scoring a batch)."""
        self.online.learn_labels(events)

    @property
    def feature_state(self) -> StateStore:
        return self.online.store

    @property
    def label_state_prefixes(self) -> tuple[str, ...]:
        families = self.online.pipeline.families
        entities = {fam.entity for fam in families} - {"none"}
        return tuple(sorted(entity + ":" for entity in entities
                            if all(fam.uses_labels for fam in families if fam.entity == entity)))

    def update_state(self, txs: Sequence[Transaction]) -> None:
        # The features' own state update; the drift monitor and the model never see replays.
        self.online.transform_rows(list(txs))  # a refused event (late) leaves no trace, as when scored

    def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch:
        # Refused rows (late, or a feature family raised on them) leave the batch here; the
        # pipeline dead-letters them (streaming.pipeline.score_decoded).
        rows = self.online.transform_rows(list(txs))
        X = rows.values
        scores = self.bundle.score(X)
        alerts = self.bundle.threshold.decide(scores)
        return ScoredBatch(
            refused=rows.refused,
            kept=rows.kept if rows.refused else None,
            scores=scores,
            alerts=np.asarray(alerts, dtype=bool),
            threshold=float(self.bundle.threshold.threshold),
            model_version=self.model_version,
            features=X,
            feature_names=list(self.bundle.feature_names),
            model=self.bundle,
            drift=self.drift.observe(scores, X) if self.drift is not None else None,
        )
