"""The ``openai`` backend: any OpenAI-compatible ``/v1/chat/completions`` server.

vLLM, Ollama, TGI and llama.cpp's server all speak this API. Requests in a batch
run concurrently (``max_concurrency``); each has a timeout and is retried with
exponential backoff after a timeout, a connection error, 429 or 5xx. A request that
still fails becomes a :class:`Generation` with ``error`` set, so one bad alert never
sinks its batch; the narrator then falls back to the template.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx

from explain.backends.base import DecodingParams, Generation
from explain.errors import NarrativeBackendError
from explain.prompt import Prompt
from explain.redaction import redact_url
from explain.settings import NarrativeSettings

log = logging.getLogger(__name__)

_RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class OpenAIBackend:
    """Chat completions over HTTP with timeouts and retries."""

    name = "openai"

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str | None = None,
        timeout_s: float = 30.0,
        retries: int = 2,
        max_concurrency: int = 4,
        backoff_s: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.model = model
        self._api_key = api_key
        self.timeout_s = timeout_s
        self.retries = retries
        self.max_concurrency = max_concurrency
        self.backoff_s = backoff_s
        self._client: httpx.Client | None = None

    @classmethod
    def from_settings(cls, settings: NarrativeSettings) -> OpenAIBackend:
        key = settings.openai_api_key.get_secret_value() if settings.openai_api_key else None
        return cls(settings.openai_base_url, settings.openai_model, api_key=key, timeout_s=settings.openai_timeout_s,
                   retries=settings.openai_retries, max_concurrency=settings.openai_max_concurrency)

    @property
    def model_id(self) -> str:
        # Recorded on every card (shown by the API): a password in the base URL stays out of it.
        return f"{self.model}@{redact_url(self.base_url)}"

    def setup(self) -> None:
        if self._client is not None:
            return
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.Client(
            timeout=httpx.Timeout(self.timeout_s), headers=headers,
            limits=httpx.Limits(max_connections=self.max_concurrency),
        )

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def generate(self, prompts: Sequence[Prompt], params: DecodingParams) -> list[Generation]:
        if self._client is None:
            raise NarrativeBackendError("call setup() before generate() on the openai backend")
        if len(prompts) <= 1 or self.max_concurrency == 1:
            return [self._one(p, params) for p in prompts]
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(prompts))) as pool:
            return list(pool.map(lambda p: self._one(p, params), prompts))

    def _payload(self, prompt: Prompt, params: DecodingParams) -> dict[str, Any]:
        payload: dict[str, Any] = {
            "model": self.model,
            "messages": prompt.as_messages(),
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
            "seed": params.seed,
        }
        if params.repetition_penalty != 1.0:
            # Not in OpenAI's own API, but vLLM, TGI and llama.cpp honour it; others ignore unknown fields.
            payload["repetition_penalty"] = params.repetition_penalty
        return payload

    def _one(self, prompt: Prompt, params: DecodingParams) -> Generation:
        assert self._client is not None
        url = f"{self.base_url}/chat/completions"
        start = time.perf_counter()
        error = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff_s * 2 ** (attempt - 1))
            try:
                response = self._client.post(url, json=self._payload(prompt, params))
            except httpx.TimeoutException:
                error = f"timeout after {self.timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                error = f"connection error: {exc}"
                continue
            if response.status_code in _RETRY_STATUS:
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                error = f"HTTP {response.status_code}: {response.text[:200]}"
                break  # a client error will not improve by asking again
            try:
                text = response.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError):
                error = f"malformed response: {response.text[:200]}"
                break
            return Generation(str(text or "").strip(), (time.perf_counter() - start) * 1000)
        log.warning("openai backend: %s (%s)", error, url)
        return Generation("", (time.perf_counter() - start) * 1000, error=error)
