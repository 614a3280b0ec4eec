"""Block-and-retry with exponential backoff: how the service rides out broker and store outages.

Nothing is dropped while a dependency is down; the consumer simply stops pulling
(backpressure) until the step succeeds or the service is asked to stop.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


class Interrupted(RuntimeError):
    """The service was asked to stop while a step was still failing."""


@dataclass(frozen=True, slots=True)
class Backoff:
    initial_s: float = 0.2
    maximum_s: float = 10.0
    factor: float = 2.0

    def delays(self) -> Callable[[], float]:
        current = [self.initial_s]

        def next_delay() -> float:
            delay = current[0]
            current[0] = min(self.maximum_s, current[0] * self.factor)
            # Jitter keeps several consumers from retrying in lockstep against a recovering server.
            return delay * random.uniform(0.8, 1.2)

        return next_delay


def retry(
    fn: Callable[[], T],
    *,
    step: str,
    transient: tuple[type[BaseException], ...],
    backoff: Backoff,
    should_stop: Callable[[], bool] = lambda: False,
    on_retry: Callable[[str], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn`` until it succeeds; transient errors wait and retry, others propagate."""
    next_delay = backoff.delays()
    attempt = 0
    while True:
        try:
            result = fn()
        except transient as exc:
            attempt += 1
            if should_stop():
                raise Interrupted(f"{step} still failing when asked to stop: {type(exc).__name__}") from exc
            delay = next_delay()
            # First failure and then every 10th: an outage of minutes should not flood the log.
            if attempt == 1 or attempt % 10 == 0:
                log.warning(
                    "step failed, retrying",
                    extra={"step": step, "attempt": attempt, "error": type(exc).__name__, "detail": str(exc)[:200],
                           "retry_in_s": round(delay, 2)},
                )
            if on_retry is not None:
                on_retry(step)
            _interruptible_sleep(delay, should_stop, sleep)
            continue
        if attempt:
            log.info("step recovered", extra={"step": step, "attempts": attempt + 1})
        return result


def _interruptible_sleep(delay: float, should_stop: Callable[[], bool], sleep: Callable[[float], None]) -> None:
    deadline = time.monotonic() + delay
    while not should_stop():
        left = deadline - time.monotonic()
        if left <= 0:
            return
        sleep(min(left, 0.1))
