"""Shadow (challenger) scoring: a second model scores live traffic beside the champion, silently.

:class:`ShadowScorer` wraps the champion's :class:`~streaming.scoring.ModelScorer`:
the champion computes the online features once (its state store is the only one
updated) and the challenger scores that same matrix. So the challenger must have been
trained with the champion's feature settings; one that was not is refused at startup,
because it cannot share the online state. The challenger's verdicts go to the
``scores.shadow`` topic and the ``shadow_scores`` table, never to alerts.

:func:`compare` turns stored shadow rows (and labels, where there are some) into the
live comparison ``fraudlens shadow-report`` prints.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from features.schema import Transaction
from streaming.scoring import ModelLoadError, ModelScorer, ScoredBatch, ShadowScores


class ShadowScorer:
    """The champion's scores and decisions, plus what the challenger would have decided.

    Implements the :class:`~streaming.scoring.Scorer` protocol as the champion: model
    version, alert cards and the drift monitor are the champion's.
    """

    def __init__(self, champion: ModelScorer, challenger: Any) -> None:
        check_compatible(champion.bundle, challenger)
        self.champion = champion
        self.challenger = challenger

    @classmethod
    def load(cls, champion: ModelScorer, challenger_path: Path) -> ShadowScorer:
        """Load the challenger bundle and check it can share the champion's online features."""
        from detection.bundle import BundleError, ModelBundle

        try:
            challenger = ModelBundle.from_path(Path(challenger_path))
        except BundleError as exc:
            raise ModelLoadError(f"shadow model: {exc}") from None
        challenger.set_threads(1)
        return cls(champion, challenger)

    @property
    def model_version(self) -> str:
        return self.champion.model_version

    @property
    def challenger_version(self) -> str:
        return str(self.challenger.version)

    @property
    def cards(self) -> Any:
        return self.champion.cards

    @property
    def drift(self) -> Any:
        return self.champion.drift

    def label_event(self, tx: Transaction) -> Any:
        return self.champion.label_event(tx)

    def learn_labels(self, events: Sequence[Any]) -> None:
        """The online features are the champion's (the challenger reads the same rows)."""
        self.champion.learn_labels(events)

    # Feature state (checkpoints, replays) is the champion's too: see streaming.state_sync.
    @property
    def feature_state(self) -> Any:
        return self.champion.feature_state

    @property
    def label_state_prefixes(self) -> tuple[str, ...]:
        return self.champion.label_state_prefixes

    def update_state(self, txs: Sequence[Transaction]) -> None:
        self.champion.update_state(txs)

    def score_batch(self, txs: Sequence[Transaction]) -> ScoredBatch:
        scored = self.champion.score_batch(txs)
        if scored.features is None:  # a ModelScorer always returns them; guard the protocol anyway
            raise RuntimeError("the champion scorer returned no feature matrix for the challenger to score")
        scores = self.challenger.score(scored.features)
        scored.shadow = ShadowScores(
            scores=scores,
            alerts=np.asarray(self.challenger.threshold.decide(scores), dtype=bool),
            threshold=float(self.challenger.threshold.threshold),
            model_version=self.challenger_version,
        )
        return scored


def check_compatible(champion: Any, challenger: Any) -> None:
    """Raise :class:`ModelLoadError` unless ``challenger`` reads the champion's feature matrix as trained."""
    if str(challenger.version) == str(champion.version):
        raise ModelLoadError(f"shadow model {challenger.version} is the champion itself; pick another version")
    ours = champion.feature_settings.model_dump(mode="json")
    theirs = challenger.feature_settings.model_dump(mode="json")
    if ours != theirs:
        differ = sorted(k for k in ours.keys() | theirs.keys() if ours.get(k) != theirs.get(k))
        shown = "; ".join(f"{k}: challenger {theirs.get(k)!r} vs champion {ours.get(k)!r}" for k in differ[:5])
        raise ModelLoadError(
            f"shadow model {challenger.version} was trained with other feature settings than champion "
            f"{champion.version} ({shown}); a challenger shares the champion's online feature state, so retrain "
            "it with the champion's feature settings, or run it in a stream of its own"
        )
    if list(challenger.feature_names) != list(champion.feature_names):
        raise ModelLoadError(
            f"shadow model {challenger.version} expects features {list(challenger.feature_names)[:5]}… but champion "
            f"{champion.version} computes {list(champion.feature_names)[:5]}… (same settings, other code revision?); "
            "retrain the challenger with the current feature pipeline"
        )


def resolve_challenger(spec: str, registry_dir: Path) -> Path:
    """``--shadow`` names a bundle directory or a version in the registry."""
    path = Path(spec).expanduser()
    if path.is_dir():
        return path
    from detection.registry import ModelRegistry

    registry = ModelRegistry(registry_dir)
    versions = registry.list_versions() if registry.root.is_dir() else []
    if spec in versions:
        return registry.root / spec
    raise ModelLoadError(
        f"shadow model {spec!r} is neither a bundle directory nor a version in the registry {registry_dir} "
        f"(versions: {', '.join(versions[-5:]) or 'none'})"
    )


# -- the live comparison (fraudlens shadow-report) ------------------------------------------
@dataclass(frozen=True)
class ModelSide:
    """One model's view of the compared rows."""

    version: str
    alerts: int
    alert_rate: float
    #: With labels only (None otherwise): of its alerts, the share that were fraud / of frauds, the share it alerted.
    precision: float | None = None
    recall: float | None = None
    average_precision: float | None = None


@dataclass(frozen=True)
class ShadowReport:
    champion: ModelSide
    challenger: ModelSide
    rows: int
    #: Share of transactions on which both models made the same decision.
    agreement: float | None
    both_alert: int
    champion_only: int
    challenger_only: int
    pearson: float | None
    spearman: float | None
    labelled: int = 0
    frauds: int = 0
    first_event_ms: int | None = None
    last_event_ms: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def compare(rows: Sequence[dict[str, Any]], labels: dict[str, int] | None = None) -> ShadowReport:
    """Compare champion and challenger over shadow rows of ONE (champion, challenger) pair.

    ``labels`` maps transaction id → 0/1; precision, recall and AP are computed on the
    rows that have a label (none without labels).
    """
    versions = {(r["champion_version"], r["model_version"]) for r in rows}
    if len(versions) > 1:
        raise ValueError(f"shadow rows of several model pairs: {sorted(versions)}; pick --champion and --challenger")
    champion_version, challenger_version = next(iter(versions)) if versions else ("", "")
    champ_score = np.array([r["champion_score"] for r in rows], dtype=np.float64)
    chall_score = np.array([r["score"] for r in rows], dtype=np.float64)
    champ_alert = np.array([r["champion_decision"] == "alert" for r in rows], dtype=bool)
    chall_alert = np.array([r["decision"] == "alert" for r in rows], dtype=bool)
    n = len(rows)
    events = [int(r["event_time_ms"]) for r in rows]

    sides: list[dict[str, Any]] = [
        {"version": champion_version, "alerts": int(champ_alert.sum()), "alert_rate": _share(champ_alert.sum(), n)},
        {"version": challenger_version, "alerts": int(chall_alert.sum()), "alert_rate": _share(chall_alert.sum(), n)},
    ]
    labelled = frauds = 0
    if labels is not None:
        from detection.metrics import average_precision

        known = np.array([r["transaction_id"] in labels for r in rows], dtype=bool)
        y = np.array([labels.get(r["transaction_id"], 0) for r in rows], dtype=np.float64)[known]
        labelled, frauds = int(known.sum()), int(y.sum())
        for side, alert, score in zip(sides, (champ_alert, chall_alert), (champ_score, chall_score), strict=True):
            caught = float(y[alert[known]].sum())
            side["precision"] = _share(caught, int(alert[known].sum()))
            side["recall"] = _share(caught, frauds)
            side["average_precision"] = _finite(average_precision(y, score[known])) if labelled else None
    return ShadowReport(
        champion=ModelSide(**sides[0]),
        challenger=ModelSide(**sides[1]),
        rows=n,
        agreement=_share((champ_alert == chall_alert).sum(), n),
        both_alert=int((champ_alert & chall_alert).sum()),
        champion_only=int((champ_alert & ~chall_alert).sum()),
        challenger_only=int((~champ_alert & chall_alert).sum()),
        pearson=_correlation(champ_score, chall_score),
        spearman=_correlation(_ranks(champ_score), _ranks(chall_score)),
        labelled=labelled,
        frauds=frauds,
        first_event_ms=min(events) if events else None,
        last_event_ms=max(events) if events else None,
    )


def read_labels(path: Path) -> dict[str, int]:
    """A labels file (``transaction_id, is_fraud``; csv/parquet/jsonl) → id → 0/1, validated like training labels."""
    from features.io import read_labels_file

    checked = read_labels_file(Path(path))
    return dict(zip(checked["transaction_id"].astype(str), checked["is_fraud"].astype(int), strict=True))


def _share(part: float, whole: float) -> float | None:
    return float(part) / float(whole) if whole else None


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def _ranks(values: np.ndarray) -> np.ndarray:
    from scipy.stats import rankdata

    return rankdata(values) if values.size else values


def _correlation(a: np.ndarray, b: np.ndarray) -> float | None:
    """Pearson correlation; None with fewer than two rows or a constant side."""
    if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return None
    return _finite(float(np.corrcoef(a, b)[0, 1]))
