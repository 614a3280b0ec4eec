"""Transactions in, features out: schema, feature families (batch == online), state stores.

Public names are importable from ``features`` directly; they load on first use so
that ``import features.schema`` stays light (the families pull in numba).

>>> from features import FeaturePipeline, MemoryStateStore   # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS: dict[str, str] = {
    # schema
    "Transaction": "features.schema",
    "SchemaError": "features.schema",
    "CANONICAL_FIELDS": "features.schema",
    "REQUIRED_FIELDS": "features.schema",
    "OPTIONAL_FIELDS": "features.schema",
    "normalize_frame": "features.schema",
    "iter_transactions": "features.schema",
    "timestamps_ms": "features.schema",
    # files and simulated traffic
    "ColumnMapping": "features.io",
    "ColumnMappingError": "features.io",
    "read_transactions": "features.io",
    "write_transactions": "features.io",
    "simulate": "features.simulator",
    # family contract
    "FeatureFamily": "features.base",
    "LabelEvent": "features.base",
    # pipeline
    "FeaturePipeline": "features.pipeline",
    "OnlineFeatures": "features.pipeline",
    "default_families": "features.families",
    # state
    "StateStore": "features.state",
    "StateStoreError": "features.state",
    "MemoryStateStore": "features.state",
    "RedisStateStore": "features.state",
    "make_state_store": "features.state",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'features' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
