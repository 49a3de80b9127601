"""Micro-batching: how many messages go into one /predict call, and which of them count.

Batches trade latency for throughput: one HTTP round trip and one flush+commit per
batch instead of per row. `collect_batch` is written against a `poll` callable and
a clock so the size/time rules can be tested without Kafka.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import TypeVar

T = TypeVar("T")

# poll(max_messages, timeout_seconds) -> up to max_messages items (may be fewer or none)
PollFn = Callable[[int, float], Sequence[T]]


def collect_batch(
    poll: PollFn[T],
    *,
    initial: Sequence[T] = (),
    max_size: int,
    max_wait_s: float,
    idle_poll_s: float = 1.0,
    should_stop: Callable[[], bool] = lambda: False,
    clock: Callable[[], float] = time.monotonic,
) -> list[T]:
    """Collect up to `max_size` items, waiting at most `max_wait_s` after the first one.

    The window opens with the first item, so an idle topic costs one blocking poll
    per `idle_poll_s` (no busy loop) and returns [] to let the caller check for
    shutdown and refresh metrics. A stop request ends collection early; the caller
    decides whether to still process what was collected. `initial` items (carried
    over from a previous wait) open the window immediately.
    """
    batch: list[T] = list(initial)
    deadline: float | None = clock() + max_wait_s if batch else None
    while len(batch) < max_size and not should_stop():
        if deadline is None:
            timeout = idle_poll_s
        else:
            timeout = deadline - clock()
            if timeout <= 0:
                break
        items = poll(max_size - len(batch), timeout)
        if items:
            if deadline is None:
                deadline = clock() + max_wait_s
            batch.extend(items)
        elif deadline is None:
            break  # idle: nothing arrived within idle_poll_s
    return batch


def latest_per_key(
    items: Sequence[T],
    key: Callable[[T], Hashable],
    position: Callable[[T], tuple[Hashable, int]],
) -> list[T]:
    """Keep only the newest item per key, in the order those survivors were consumed.

    Within a batch only the latest state of a listing matters: predicting an older
    version would be wasted work and a superseded upsert must not follow a delete.
    "Newest" is the highest offset within one partition; for the (unexpected) case
    of one key in two partitions, the later-consumed item wins.
    `position(item)` returns (partition, offset).
    """
    winners: dict[Hashable, int] = {}
    for index, item in enumerate(items):
        k = key(item)
        previous = winners.get(k)
        if previous is None:
            winners[k] = index
            continue
        old_partition, old_offset = position(items[previous])
        new_partition, new_offset = position(item)
        if new_partition != old_partition or new_offset >= old_offset:
            winners[k] = index
    return [items[i] for i in sorted(winners.values())]
