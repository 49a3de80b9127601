"""Commit offsets and rebalance generations (transformer/consumed.py)."""

from __future__ import annotations

from transformer_fakes import CDC_TOPIC, FakeMessage

from transformer.consumed import Assignment, Consumed, next_offsets


def consumed(partition: int, offset: int, generation: int = 1) -> Consumed:
    return Consumed(FakeMessage(b"{}", partition=partition, offset=offset), generation)


def test_next_offsets_are_last_plus_one_per_partition() -> None:
    batch = [consumed(0, 10), consumed(1, 3), consumed(0, 12), consumed(0, 11), consumed(1, 4)]

    assert next_offsets(batch) == {(CDC_TOPIC, 0): 13, (CDC_TOPIC, 1): 5}


def test_next_offsets_of_nothing_is_nothing() -> None:
    assert next_offsets([]) == {}


def test_messages_are_current_only_in_the_generation_they_were_consumed_in() -> None:
    assignment = Assignment()
    assignment.assigned([(CDC_TOPIC, 0), (CDC_TOPIC, 1)])
    old = Consumed(FakeMessage(b"{}", partition=0, offset=5), assignment.generation((CDC_TOPIC, 0)))
    other = Consumed(
        FakeMessage(b"{}", partition=1, offset=5), assignment.generation((CDC_TOPIC, 1))
    )

    assert assignment.is_current(old) and assignment.is_current(other)

    assignment.revoked([(CDC_TOPIC, 0)])
    assert not assignment.is_current(old)
    assert assignment.owned() == {(CDC_TOPIC, 1)}

    assignment.assigned([(CDC_TOPIC, 0)])  # same partition comes back: restarts from the commit
    assert not assignment.is_current(old)
    fresh = Consumed(
        FakeMessage(b"{}", partition=0, offset=5), assignment.generation((CDC_TOPIC, 0))
    )
    assert assignment.is_current(fresh)
    assert assignment.is_current(other)


def test_unassigned_partition_has_generation_zero_and_nothing_is_current() -> None:
    assignment = Assignment()

    assert assignment.generation((CDC_TOPIC, 0)) == 0
    assert not assignment.is_current(consumed(0, 1, generation=0))
