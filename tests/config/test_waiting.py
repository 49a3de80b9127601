"""config/waiting.py: the one poll helper (tenacity) every wait of the project uses."""

from __future__ import annotations

import itertools
import time

import pytest

from config.waiting import WaitTimeout, wait_until


def test_it_returns_the_first_value_that_is_done() -> None:
    values = iter([None, "starting", "ready"])

    assert wait_until(lambda: next(values), lambda v: v == "ready", timeout=5, interval=0.01,
                      message=str) == "ready"  # fmt: skip


def test_a_timeout_says_what_was_waited_for_and_the_last_value() -> None:
    counter = itertools.count()
    started = time.monotonic()

    with pytest.raises(WaitTimeout) as raised:
        wait_until(lambda: next(counter), lambda n: n < 0, timeout=0.3, interval=0.05,
                   message=lambda n: f"still {n} after 0.3s")  # fmt: skip

    assert isinstance(raised.value, TimeoutError)
    assert str(raised.value) == f"still {raised.value.last} after 0.3s"
    assert raised.value.last >= 2 and 0.3 <= time.monotonic() - started < 5


def test_an_exception_from_the_probe_ends_the_wait_at_once() -> None:
    calls = []

    def probe() -> None:
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        wait_until(probe, bool, timeout=5, interval=0.01, message=str)
    assert len(calls) == 1
