"""The narrative backend protocol: a batch of prompts in, one generation per prompt out."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, Protocol, runtime_checkable

from explain.prompt import Prompt


@dataclass(frozen=True)
class DecodingParams:
    """How text is decoded. ``temperature == 0`` means greedy decoding."""

    max_new_tokens: int = 120
    temperature: float = 0.3
    top_p: float = 0.9
    repetition_penalty: float = 1.1
    seed: int = 0

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0.0

    def stricter(self) -> DecodingParams:
        """The retry's decoding: greedy, a firmer repetition penalty, no nucleus sampling."""
        return replace(self, temperature=0.0, top_p=1.0, repetition_penalty=max(self.repetition_penalty, 1.2))

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Generation:
    """One backend answer. ``latency_ms`` is the wall time of the call that produced it
    (for a batch: the whole batch, which is what each alert in it waited)."""

    text: str
    latency_ms: float
    error: str | None = None


@runtime_checkable
class NarrativeBackend(Protocol):
    """Writes narratives. ``setup()`` does the loading (model weights, HTTP client); constructors do no I/O."""

    name: str

    @property
    def model_id(self) -> str: ...

    def setup(self) -> None: ...

    def generate(self, prompts: Sequence[Prompt], params: DecodingParams) -> list[Generation]: ...

    def close(self) -> None: ...
