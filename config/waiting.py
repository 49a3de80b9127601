"""Waiting for a condition: the one poll helper of the project, built on tenacity.

(stack/reap.py runs as a script before the project is importable; it uses tenacity alone.)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import tenacity

T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """A wait ran out of time; `last` is what the probe returned last."""

    def __init__(self, message: str, last: object) -> None:
        super().__init__(message)
        self.last = last


def wait_until(
    probe: Callable[[], T],
    done: Callable[[T], object] = bool,
    *,
    timeout: float,
    interval: float,
    message: Callable[[T], str],
) -> T:
    """Call `probe` every `interval` s until `done` holds for its value (by default: until
    the value is truthy), and return that value. After `timeout` s raise
    WaitTimeout(`message(last value)`); an exception from `probe` ends the wait at once."""

    def give_up(state: tenacity.RetryCallState) -> T:
        last = state.outcome.result()
        raise WaitTimeout(message(last), last)

    return tenacity.Retrying(
        stop=tenacity.stop_after_delay(timeout),
        wait=tenacity.wait_fixed(interval),
        retry=tenacity.retry_if_result(lambda value: not done(value)),
        retry_error_callback=give_up,
    )(probe)
