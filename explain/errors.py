"""Narrow error types of the explain package. Each is a :class:`ValueError` a caller can act on."""

from __future__ import annotations


class ExplainError(ValueError):
    """Root of every error raised by :mod:`explain`."""


class AdditivityError(ExplainError):
    """SHAP values do not add up to the model margin: the explainer and the model disagree.

    Raised when ``base_value + sum(values)`` differs from the bundle's margin by more
    than the tolerance. Usually means the attribution was computed for another model
    version or another feature order than the one that scored.
    """

    def __init__(self, max_error: float, tolerance: float, row: int) -> None:
        self.max_error = max_error
        self.tolerance = tolerance
        self.row = row
        super().__init__(
            f"SHAP additivity violated: base + sum(values) differs from the model margin by {max_error:.3g} "
            f"(tolerance {tolerance:g}) at row {row}; check that the attribution and the score use the same "
            "model bundle and feature order"
        )


class FeatureMismatchError(ExplainError):
    """Feature names given to the explainer differ from those the model was trained on."""


class UnknownFeatureError(ExplainError):
    """A feature has no entry in the reason catalogue (add a template in ``explain/reasons.py``)."""


class NarrativeBackendError(ExplainError):
    """A narrative backend could not be set up or could not answer (model not found, server down)."""
