"""The ``template`` backend: the deterministic narrative, no model."""

from __future__ import annotations

import time
from collections.abc import Sequence

from explain.backends.base import DecodingParams, Generation
from explain.prompt import Prompt


class TemplateBackend:
    """Writes each prompt's fact-sheet template narrative; always grounded by construction."""

    name = "template"

    @property
    def model_id(self) -> str:
        return "template-v1"

    def setup(self) -> None:
        return None

    def generate(self, prompts: Sequence[Prompt], params: DecodingParams) -> list[Generation]:
        out = []
        for prompt in prompts:
            start = time.perf_counter()
            text = prompt.facts.template_text()
            out.append(Generation(text, (time.perf_counter() - start) * 1000))
        return out

    def close(self) -> None:
        return None
