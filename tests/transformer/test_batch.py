"""One micro-batch decided before any I/O (transformer/batch.py)."""

from __future__ import annotations

from tests.support import CDC_TOPIC, MessageOf, key_of
from transformer.batch import build
from transformer.events import Reason


def test_only_the_newest_event_per_listing_counts_in_consumed_order(change: MessageOf) -> None:
    messages = [
        change("c", 1, offset=10),
        change("c", 2, offset=11),
        change("u", 1, offset=12, mileage=99),
        change("d", 3, partition=1, offset=4),
    ]

    batch = build(messages)

    assert [(event.car_id, event.kind) for _, event in batch.changes] == [
        (2, "create"),
        (1, "update"),
        (3, "delete"),
    ]
    assert batch.changes[1][0] is messages[2] and batch.changes[1][1].listing["mileage"] == 99
    assert batch.kinds == {"create": 2, "update": 1, "delete": 1}


def test_a_delete_then_its_tombstone_leave_one_removal(change: MessageOf, message: MessageOf):
    batch = build(
        [change("c", 5, offset=0), change("d", 5, offset=1), message(None, key_of(5), offset=2)]
    )

    assert [event.kind for _, event in batch.changes] == ["tombstone"]


def test_garbage_is_a_dead_letter_and_hides_no_valid_event(
    change: MessageOf, message: MessageOf
) -> None:
    garbage = message(b"{not json", key_of(1), offset=1)

    batch = build([change("c", 1, offset=0), garbage])

    assert [(d.message, d.reason) for d in batch.dead] == [(garbage, Reason.INVALID_JSON)]
    assert [event.car_id for _, event in batch.changes] == [1]
    assert batch.kinds == {"create": 1, "invalid": 1}


def test_commit_offsets_are_the_last_consumed_plus_one_per_partition(change: MessageOf) -> None:
    batch = build(
        [
            change("c", 1, offset=10),
            change("c", 2, partition=1, offset=3),
            change("c", 1, offset=11),
        ]
    )

    assert batch.next_offsets() == {(CDC_TOPIC, 0): 12, (CDC_TOPIC, 1): 4}
