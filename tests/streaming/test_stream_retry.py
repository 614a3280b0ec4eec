"""Block-and-retry: transient failures wait and retry; a stop request interrupts."""

from __future__ import annotations

import pytest

from streaming.retry import Backoff, Interrupted, retry


def test_transient_errors_are_retried_until_success() -> None:
    calls: list[int] = []
    retried: list[str] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 4:
            raise ConnectionError("down")
        return "ok"

    result = retry(flaky, step="store write", transient=(ConnectionError,), backoff=Backoff(0.001, 0.002),
                   on_retry=retried.append)
    assert result == "ok" and len(calls) == 4 and retried == ["store write"] * 3


def test_other_errors_propagate_at_once() -> None:
    def broken() -> None:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        retry(broken, step="x", transient=(ConnectionError,), backoff=Backoff(0.001, 0.002))


def test_stop_request_interrupts_a_failing_step() -> None:
    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(Interrupted, match="store write still failing"):
        retry(down, step="store write", transient=(ConnectionError,), backoff=Backoff(0.001, 0.002),
              should_stop=lambda: True)


def test_backoff_grows_to_its_maximum() -> None:
    next_delay = Backoff(1.0, 4.0).delays()
    delays = [next_delay() for _ in range(5)]
    assert 0.8 <= delays[0] <= 1.2
    assert all(d <= 4.0 * 1.2 for d in delays) and delays[-1] >= 4.0 * 0.8
