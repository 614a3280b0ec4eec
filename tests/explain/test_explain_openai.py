"""The openai backend against a real local HTTP server speaking /v1/chat/completions."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from explain.backends import DecodingParams, OpenAIBackend
from explain.narrator import Narrator
from explain.prompt import build_prompt

Reply = Callable[[dict[str, Any], int], tuple[int, dict[str, Any] | str, float]]


class FakeServer:
    """A tiny OpenAI-compatible server; ``reply(request, n)`` gives (status, body, delay_s) for the n-th call."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        #: Most requests the server held at the same moment (proves client-side concurrency without timing).
        self.max_in_flight = 0
        self._in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    n = len(server.requests)
                    server.requests.append({"path": self.path, **body})
                    server.headers.append(dict(self.headers))
                    server._in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server._in_flight)
                status, payload, delay = server.reply(body, n)
                time.sleep(delay)
                with server._lock:
                    server._in_flight -= 1
                data = (payload if isinstance(payload, str) else json.dumps(payload)).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left

            def log_message(self, *_args: Any) -> None:
                return None

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self) -> FakeServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def completion(text: str) -> dict[str, Any]:
    return {"id": "c1", "object": "chat.completion", "model": "fake",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]}


def echo_template(request: dict[str, Any], _n: int) -> tuple[int, dict[str, Any], float]:
    """Answers with the headline the prompt carries, then a grounded restatement (what a good model does)."""
    facts = request["messages"][1]["content"]
    lines = facts.splitlines()
    first_reason = next(line for line in lines if line.startswith("1. "))[3:]
    return 200, completion(f"Suspected fraud was flagged by the model. Main reason: {first_reason}."), 0.0


@pytest.fixture
def backend_for() -> Iterator[Callable[..., OpenAIBackend]]:
    made: list[OpenAIBackend] = []

    def make(url: str, **kwargs: Any) -> OpenAIBackend:
        backend = OpenAIBackend(url, "fake-model", backoff_s=0.01, **kwargs)
        backend.setup()
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


def test_requests_carry_model_messages_and_decoding(backend_for, card_for, alert_rows, transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory())
    with FakeServer(echo_template) as server:
        backend = backend_for(server.url, api_key="sk-test")
        out = backend.generate([build_prompt(card.facts())], DecodingParams(max_new_tokens=64, temperature=0.2))
    assert out[0].error is None and out[0].text.startswith("Suspected fraud")
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions" and request["model"] == "fake-model"
    assert request["max_tokens"] == 64 and request["temperature"] == 0.2
    assert [m["role"] for m in request["messages"]] == ["system", "user"]
    assert server.headers[0]["Authorization"] == "Bearer sk-test"


def test_a_batch_runs_concurrently_and_keeps_order(backend_for, card_for, alert_rows, transaction_factory) -> None:
    cards = [card_for(alert_rows.iloc[i], transaction_factory()) for i in range(4)]

    def slow(request: dict[str, Any], n: int) -> tuple[int, dict[str, Any], float]:
        status, body, _ = echo_template(request, n)
        return status, body, 0.3

    with FakeServer(slow) as server:
        backend = backend_for(server.url, max_concurrency=4)
        results = Narrator(backend).narrate_detailed(cards)
    # Each request is held 0.3 s: a client sending them one by one would never have two in flight.
    assert server.max_in_flight >= 2
    for card, result in zip(cards, results, strict=True):
        assert result.card.alert_id == card.alert_id
        assert result.card.narrative.status == "generated", result.report.details()
        assert card.reasons[0].text in result.card.narrative.text
        assert result.card.narrative.provenance.model_id.startswith("fake-model@http://127.0.0.1")


def test_server_errors_are_retried(backend_for, card_for, alert_rows, transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory())

    def flaky(request: dict[str, Any], n: int) -> tuple[int, dict[str, Any] | str, float]:
        if n < 2:
            return 503, {"error": "overloaded"}, 0.0
        return echo_template(request, n)

    with FakeServer(flaky) as server:
        out = backend_for(server.url, retries=2).generate([build_prompt(card.facts())], DecodingParams())
    assert out[0].error is None and len(server.requests) == 3


def test_client_errors_are_not_retried(backend_for, card_for, alert_rows, transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory())
    with FakeServer(lambda _r, _n: (400, {"error": "bad model"}, 0.0)) as server:
        out = backend_for(server.url, retries=3).generate([build_prompt(card.facts())], DecodingParams())
    assert out[0].error is not None and "HTTP 400" in out[0].error and len(server.requests) == 1


def test_timeouts_end_in_the_template_fallback(backend_for, card_for, alert_rows, transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory())
    with FakeServer(lambda r, n: (*echo_template(r, n)[:2], 1.0)) as server:
        backend = backend_for(server.url, timeout_s=0.2, retries=1)
        result = Narrator(backend).narrate_detailed([card])[0]
    assert result.card.narrative.status == "fallback"
    assert result.card.narrative.provenance.failed_checks == ["backend"]
    assert len(server.requests) == 4  # two tries for the first attempt, two for the strict retry


def test_unreachable_server_is_an_error_not_a_crash(backend_for, card_for, alert_rows, transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory())
    out = backend_for("http://127.0.0.1:9/v1", retries=0).generate([build_prompt(card.facts())], DecodingParams())
    assert out[0].error is not None and "connection error" in out[0].error


def test_malformed_answers_are_errors(backend_for, card_for, alert_rows, transaction_factory) -> None:
    card = card_for(alert_rows.iloc[0], transaction_factory())
    with FakeServer(lambda _r, _n: (200, "not json", 0.0)) as server:
        out = backend_for(server.url).generate([build_prompt(card.facts())], DecodingParams())
    assert out[0].error is not None and "malformed" in out[0].error and len(server.requests) == 1
