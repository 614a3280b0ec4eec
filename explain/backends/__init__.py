"""Narrative backends behind one protocol, chosen by ``NarrativeSettings.backend``."""

from __future__ import annotations

from explain.backends.base import DecodingParams, Generation, NarrativeBackend
from explain.backends.local import TransformersBackend, default_model_location
from explain.backends.openai_compat import OpenAIBackend
from explain.backends.template import TemplateBackend
from explain.settings import BackendName, NarrativeSettings

__all__ = [
    "DecodingParams",
    "Generation",
    "NarrativeBackend",
    "OpenAIBackend",
    "TemplateBackend",
    "TransformersBackend",
    "decoding_params",
    "default_model_location",
    "make_backend",
]


def make_backend(settings: NarrativeSettings, backend: BackendName | None = None) -> NarrativeBackend:
    """The configured backend (not yet set up: call ``setup()``); ``backend`` overrides the setting."""
    name = backend or settings.backend
    if name == "template":
        return TemplateBackend()
    if name == "openai":
        return OpenAIBackend.from_settings(settings)
    if name == "transformers":
        return TransformersBackend.from_settings(settings)
    raise ValueError(f"unknown narrative backend {name!r}; choose transformers, openai or template")


def decoding_params(settings: NarrativeSettings) -> DecodingParams:
    return DecodingParams(max_new_tokens=settings.max_new_tokens, temperature=settings.temperature,
                          top_p=settings.top_p, repetition_penalty=settings.repetition_penalty, seed=settings.seed)
