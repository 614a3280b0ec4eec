"""Real-time screening: the Kafka consumer/producer, the pure pipeline, dead-lettering,
the score/alert store and the embedded broker launcher.

Names are exported lazily: ``fraudlens.settings`` imports ``streaming.settings``
(pydantic only), and that must not drag in pandas, features or kafka-python, nor
import ``fraudlens.settings`` back while it is being built.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "AlertOut": "streaming.records",
    "BatchOutputs": "streaming.records",
    "DeadLetter": "streaming.records",
    "ScoreOut": "streaming.records",
    "SourceRecord": "streaming.records",
    "Decoded": "streaming.pipeline",
    "decode_batch": "streaming.pipeline",
    "decode_record": "streaming.pipeline",
    "score_decoded": "streaming.pipeline",
    "ModelLoadError": "streaming.scoring",
    "ModelScorer": "streaming.scoring",
    "RuleScorer": "streaming.scoring",
    "ScoredBatch": "streaming.scoring",
    "Scorer": "streaming.scoring",
    "BrokerSettings": "streaming.settings",
    "KafkaSettings": "streaming.settings",
    "StoreSettings": "streaming.settings",
    "EmbeddedBroker": "streaming.broker",
    "StreamService": "streaming.consumer",
    "SqlAlertStore": "streaming.store",
    "AlertStore": "streaming.store",
    "serve": "streaming.service",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'streaming' has no attribute {name!r}")
    return getattr(import_module(module), name)
