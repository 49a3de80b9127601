"""Retry/backoff schedule and the bounded retry loop (transformer/retry.py)."""

from __future__ import annotations

import pytest

from transformer.retry import RetriesExhausted, RetryAborted, RetryPolicy, call_with_retries


class Flaky:
    def __init__(self, failures: int, error: Exception | None = None) -> None:
        self.failures = failures
        self.error = error or ConnectionError("service down")
        self.calls = 0

    def __call__(self) -> str:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return "ok"


def test_default_schedule_doubles_from_the_initial_backoff() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff_s=0.2, max_backoff_s=5.0)

    assert policy.schedule() == pytest.approx([0.2, 0.4, 0.8, 1.6])


def test_schedule_is_capped_at_the_max_backoff() -> None:
    policy = RetryPolicy(max_attempts=8, initial_backoff_s=1.0, max_backoff_s=5.0)

    assert policy.schedule() == [1.0, 2.0, 4.0, 5.0, 5.0, 5.0, 5.0]
    assert policy.backoff_after(50) == 5.0


def test_single_attempt_has_no_waits_and_cooldown_is_never_zero() -> None:
    policy = RetryPolicy(max_attempts=1, initial_backoff_s=0.0, max_backoff_s=0.0)

    assert policy.schedule() == []
    assert policy.cooldown_s > 0


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0, "initial_backoff_s": 0.1, "max_backoff_s": 1},
        {"max_attempts": 3, "initial_backoff_s": -1, "max_backoff_s": 1},
        {"max_attempts": 3, "initial_backoff_s": 2, "max_backoff_s": 1},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_attempts_are_numbered_from_one() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_attempts=3, initial_backoff_s=0.1, max_backoff_s=1).backoff_after(0)


def test_success_after_failures_waits_the_schedule_in_between() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff_s=0.2, max_backoff_s=5.0)
    waits: list[float] = []
    retries: list[tuple[int, float]] = []
    call = Flaky(failures=2)

    result = call_with_retries(
        call,
        policy,
        is_retryable=lambda e: isinstance(e, ConnectionError),
        wait=lambda s: waits.append(s) or True,
        on_retry=lambda attempt, error, delay: retries.append((attempt, delay)),
    )

    assert result == "ok"
    assert call.calls == 3
    assert waits == pytest.approx([0.2, 0.4])
    assert retries == [(1, pytest.approx(0.2)), (2, pytest.approx(0.4))]


def test_exhausted_round_reports_attempts_and_last_error_without_a_final_wait() -> None:
    policy = RetryPolicy(max_attempts=3, initial_backoff_s=0.1, max_backoff_s=1.0)
    waits: list[float] = []
    call = Flaky(failures=10)

    with pytest.raises(RetriesExhausted) as caught:
        call_with_retries(
            call, policy, is_retryable=lambda e: True, wait=lambda s: waits.append(s) or True
        )

    assert call.calls == 3
    assert caught.value.attempts == 3
    assert caught.value.last_error is call.error
    assert waits == pytest.approx([0.1, 0.2])


def test_non_retryable_error_escapes_immediately() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff_s=0.1, max_backoff_s=1.0)
    call = Flaky(failures=1, error=KeyError("bad input"))
    waits: list[float] = []

    with pytest.raises(KeyError):
        call_with_retries(
            call,
            policy,
            is_retryable=lambda e: isinstance(e, ConnectionError),
            wait=lambda s: waits.append(s) or True,
        )

    assert call.calls == 1
    assert waits == []


def test_interrupted_wait_aborts_the_round() -> None:
    policy = RetryPolicy(max_attempts=5, initial_backoff_s=0.1, max_backoff_s=1.0)
    call = Flaky(failures=10)

    with pytest.raises(RetryAborted):
        call_with_retries(call, policy, is_retryable=lambda e: True, wait=lambda s: False)

    assert call.calls == 1
