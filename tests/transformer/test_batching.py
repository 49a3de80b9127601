"""Micro-batch collection by size/time and dedupe by listing id (transformer/batching.py)."""

from __future__ import annotations

from collections.abc import Sequence

from transformer_fakes import FakeClock

from transformer.batching import collect_batch, latest_per_key


class ScriptedPoll:
    """poll(n, timeout) that returns scripted chunks and advances a fake clock.

    Each step is (items, seconds_spent); an empty step spends the whole timeout,
    like a real blocking poll that found nothing.
    """

    def __init__(self, clock: FakeClock, steps: list[tuple[list[int], float]]) -> None:
        self.clock = clock
        self.steps = list(steps)
        self.calls: list[tuple[int, float]] = []

    def __call__(self, max_items: int, timeout: float) -> Sequence[int]:
        self.calls.append((max_items, round(timeout, 6)))
        items, spent = self.steps.pop(0) if self.steps else ([], timeout)
        items = items[:max_items]
        self.clock.advance(spent if items else timeout)
        return items


def test_batch_closes_when_full() -> None:
    clock = FakeClock()
    poll = ScriptedPoll(clock, [([1, 2], 0.01), ([3, 4], 0.01), ([5, 6, 7], 0.01)])

    batch = collect_batch(poll, max_size=5, max_wait_s=10, clock=clock)

    assert batch == [1, 2, 3, 4, 5]
    # asks only for what still fits
    assert [n for n, _ in poll.calls] == [5, 3, 1]


def test_batch_closes_when_the_wait_after_the_first_item_is_over() -> None:
    clock = FakeClock()
    poll = ScriptedPoll(clock, [([1], 0.05), ([2], 0.1), ([], 0), ([9], 0)])

    batch = collect_batch(poll, max_size=500, max_wait_s=0.2, idle_poll_s=1.0, clock=clock)

    assert batch == [1, 2]
    # first poll waits idle_poll_s, later ones only the rest of the 200 ms window
    assert poll.calls == [(500, 1.0), (499, 0.2), (498, 0.1)]
    assert clock.now == 1000.0 + 0.05 + 0.2


def test_idle_topic_returns_empty_after_one_blocking_poll() -> None:
    clock = FakeClock()
    poll = ScriptedPoll(clock, [])

    assert collect_batch(poll, max_size=10, max_wait_s=0.2, idle_poll_s=1.0, clock=clock) == []
    assert poll.calls == [(10, 1.0)]


def test_stop_request_ends_collection_with_what_was_collected() -> None:
    clock = FakeClock()
    poll = ScriptedPoll(clock, [([1, 2], 0.01), ([3], 0.01)])
    stop_after_first = iter([False, True])

    batch = collect_batch(
        poll, max_size=10, max_wait_s=5, clock=clock, should_stop=lambda: next(stop_after_first)
    )

    assert batch == [1, 2]
    assert len(poll.calls) == 1


def test_carried_items_open_the_window_immediately() -> None:
    clock = FakeClock()
    poll = ScriptedPoll(clock, [([], 0)])

    batch = collect_batch(poll, initial=[7, 8], max_size=10, max_wait_s=0.2, clock=clock)

    assert batch == [7, 8]
    assert poll.calls == [(8, 0.2)]


def test_carried_items_that_fill_the_batch_need_no_poll() -> None:
    poll = ScriptedPoll(FakeClock(), [])

    assert collect_batch(poll, initial=[1, 2, 3], max_size=3, max_wait_s=1) == [1, 2, 3]
    assert poll.calls == []


def _position(item: tuple[str, int, int]) -> tuple[int, int]:
    _key, partition, offset = item
    return partition, offset


def test_latest_per_key_keeps_the_highest_offset_in_consumption_order() -> None:
    items = [("a", 0, 10), ("b", 0, 11), ("a", 0, 12), ("c", 1, 3), ("b", 0, 13)]

    kept = latest_per_key(items, key=lambda item: item[0], position=_position)

    assert kept == [("a", 0, 12), ("c", 1, 3), ("b", 0, 13)]


def test_latest_per_key_ignores_an_older_offset_seen_later() -> None:
    items = [("a", 0, 12), ("a", 0, 10)]

    assert latest_per_key(items, key=lambda item: item[0], position=_position) == [("a", 0, 12)]


def test_latest_per_key_across_partitions_prefers_the_later_consumed() -> None:
    items = [("a", 0, 50), ("a", 1, 2)]

    assert latest_per_key(items, key=lambda item: item[0], position=_position) == [("a", 1, 2)]


def test_latest_per_key_of_nothing_is_nothing() -> None:
    assert latest_per_key([], key=lambda item: item, position=lambda item: (0, 0)) == []
