"""What the pipeline knows about a consumed Kafka message, independent of the client.

`SourceMessage` is the slice of `confluent_kafka.Message` we use, so pure logic
(DLQ headers, commit offsets) can be tested with plain fakes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeAlias

TopicPartitionKey: TypeAlias = tuple[str, int]


class SourceMessage(Protocol):
    def topic(self) -> str | None: ...
    def partition(self) -> int | None: ...
    def offset(self) -> int | None: ...
    def key(self) -> bytes | None: ...
    def value(self) -> bytes | None: ...
    def headers(self) -> list[tuple[str, bytes | None]] | None: ...
    def timestamp(self) -> tuple[int, int]: ...


@dataclass(frozen=True, slots=True)
class Consumed:
    """A message plus the assignment generation of its partition when it was consumed.

    After a rebalance the same partition may come back with a new generation and
    restart from the committed offset; messages from the old generation must then
    be dropped (they will be re-delivered) or they would be processed twice.
    """

    message: SourceMessage
    generation: int

    @property
    def partition_key(self) -> TopicPartitionKey:
        return partition_key(self.message)

    @property
    def offset(self) -> int:
        return int(self.message.offset() or 0)


def partition_key(message: SourceMessage) -> TopicPartitionKey:
    return (str(message.topic()), int(message.partition() or 0))


def next_offsets(consumed: Iterable[Consumed]) -> dict[TopicPartitionKey, int]:
    """Offsets to commit: last consumed offset + 1 per partition (Kafka's convention)."""
    result: dict[TopicPartitionKey, int] = {}
    for item in consumed:
        tp = item.partition_key
        result[tp] = max(result.get(tp, 0), item.offset + 1)
    return result


class Assignment:
    """Which partitions we own right now, and in which generation.

    Updated from the consumer's rebalance callbacks; a partition that is revoked
    and assigned again gets a new generation, which invalidates messages held from
    before the rebalance (see `Consumed`).
    """

    def __init__(self) -> None:
        self._generation: dict[TopicPartitionKey, int] = {}
        self._owned: set[TopicPartitionKey] = set()
        self._counter = 0

    def assigned(self, partitions: Iterable[TopicPartitionKey]) -> None:
        for tp in partitions:
            self._counter += 1
            self._generation[tp] = self._counter
            self._owned.add(tp)

    def revoked(self, partitions: Iterable[TopicPartitionKey]) -> None:
        for tp in partitions:
            self._owned.discard(tp)

    def generation(self, tp: TopicPartitionKey) -> int:
        return self._generation.get(tp, 0)

    def owned(self) -> set[TopicPartitionKey]:
        return set(self._owned)

    def is_current(self, item: Consumed) -> bool:
        tp = item.partition_key
        return tp in self._owned and self._generation.get(tp) == item.generation
