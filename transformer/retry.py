"""Bounded retries with capped exponential backoff.

A "round" is at most `max_attempts` calls with backoff sleeps in between. When a
round is exhausted the caller (the pipeline) keeps the batch, pauses its
partitions and starts another round later: nothing is dropped, nothing spins.
The sleep is injected (`wait`) so the pipeline can keep the Kafka consumer alive
and react to SIGTERM while waiting, and tests can run the schedule instantly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")


class RetriesExhausted(Exception):
    """All attempts of one round failed with a retryable error."""

    def __init__(self, attempts: int, last_error: BaseException) -> None:
        super().__init__(f"gave up after {attempts} attempts: {last_error}")
        self.attempts = attempts
        self.last_error = last_error


class RetryAborted(Exception):
    """The wait between attempts was interrupted (shutdown requested)."""


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int
    initial_backoff_s: float
    max_backoff_s: float
    multiplier: float = 2.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.initial_backoff_s < 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("need 0 <= initial_backoff_s <= max_backoff_s")

    def backoff_after(self, failed_attempt: int) -> float:
        """Seconds to wait after attempt number `failed_attempt` (1-based) failed."""
        if failed_attempt < 1:
            raise ValueError("attempts are numbered from 1")
        delay = self.initial_backoff_s * self.multiplier ** (failed_attempt - 1)
        return min(delay, self.max_backoff_s)

    def schedule(self) -> list[float]:
        """The waits of one round: one between each pair of consecutive attempts."""
        return [self.backoff_after(n) for n in range(1, self.max_attempts)]

    @property
    def cooldown_s(self) -> float:
        """Pause between two exhausted rounds: the backoff cap, never zero-length."""
        return max(self.max_backoff_s, 0.1)


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    *,
    is_retryable: Callable[[BaseException], bool],
    wait: Callable[[float], bool],
    on_retry: Callable[[int, BaseException, float], None] = lambda attempt, error, delay: None,
) -> T:
    """Run `call` until it succeeds, a non-retryable error escapes, or the round ends.

    `wait(seconds)` returns False when waiting was interrupted -> RetryAborted.
    `on_retry(attempt, error, delay)` is called before each wait (for logs/metrics).
    """
    for attempt in range(1, policy.max_attempts + 1):
        try:
            return call()
        except Exception as error:
            if not is_retryable(error):
                raise
            if attempt == policy.max_attempts:
                raise RetriesExhausted(attempt, error) from error
            delay = policy.backoff_after(attempt)
            on_retry(attempt, error, delay)
            if not wait(delay):
                raise RetryAborted(f"interrupted after attempt {attempt}") from error
    raise AssertionError("unreachable")  # pragma: no cover
