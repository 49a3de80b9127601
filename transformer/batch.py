"""One micro-batch: what its messages ask for, decided before any I/O. A message that
cannot be parsed is a dead letter at once (`internal_error` if parsing raised something
unexpected), so it can neither hide a valid event nor fail its batch. Of the rest only the
newest event per listing counts (offsets come in order per partition): an older version
is wasted work and must not follow a delete. A tombstone right after its delete keeps the
delete's position, so the table still records the deletion (records.py)."""

import time
from collections import Counter
from dataclasses import dataclass, field, replace

from confluent_kafka import Message

from transformer.events import Event, EventKind, Invalid, Reason, parse

Partition = tuple[str, int]


def partition_of(message: Message) -> Partition:
    return (str(message.topic()), int(message.partition() or 0))


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A message for the DLQ: `reason` and `error` become its dlq.* headers."""

    message: Message
    reason: Reason
    error: str


@dataclass(slots=True)
class Batch:
    messages: list[Message]
    changes: list[tuple[Message, Event]] = field(default_factory=list)  # newest per listing
    dead: list[DeadLetter] = field(default_factory=list)
    kinds: Counter[EventKind] = field(default_factory=Counter)  # messages by kind, for metrics
    consumed_ms: int = field(default_factory=lambda: time.time_ns() // 1_000_000)  # per-hop

    def next_offsets(self) -> dict[Partition, int]:
        """What to commit: the last consumed offset + 1 per partition (Kafka's convention)."""
        return {partition_of(m): int(m.offset() or 0) + 1 for m in self.messages}


def build(messages: list[Message]) -> Batch:
    batch = Batch(messages)
    newest: dict[int, tuple[Message, Event]] = {}
    for message in messages:
        try:
            event = parse(message.key(), message.value())
        except Exception as exc:  # Invalid says why; anything else is a bug, costing one message
            invalid = exc if isinstance(exc, Invalid) else Invalid(Reason.INTERNAL_ERROR, repr(exc))
            batch.dead.append(DeadLetter(message, invalid.reason, invalid.error))
            batch.kinds[EventKind.INVALID] += 1
            continue
        batch.kinds[event.kind] += 1
        _, older = newest.pop(event.car_id, (None, None))  # re-inserted: keeps consumed order
        if event.kind == EventKind.TOMBSTONE and older and older.kind == EventKind.DELETE:
            event = replace(event, source_lsn=older.source_lsn)
        newest[event.car_id] = (message, event)
    batch.changes = list(newest.values())
    return batch
