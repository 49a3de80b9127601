"""Delivery report bookkeeping (transformer/delivery.py)."""

from __future__ import annotations

from transformer_fakes import FakeKafkaError

from transformer.delivery import DeliveryTracker
from transformer.records import OutputRecord


def record(n: int) -> OutputRecord:
    return OutputRecord(topic="t", key=str(n).encode(), value=b"v")


def test_all_acknowledged_means_delivered() -> None:
    tracker = DeliveryTracker()
    callbacks = [tracker.track(record(n))[1] for n in range(3)]
    assert tracker.in_flight == 3 and not tracker.all_delivered

    for callback in callbacks:
        callback(None, object())

    assert tracker.in_flight == 0
    assert tracker.delivered == 3
    assert tracker.all_delivered


def test_failed_records_are_returned_once_for_producing_again() -> None:
    tracker = DeliveryTracker()
    _, ok = tracker.track(record(1))
    _, bad = tracker.track(record(2))

    ok(None, None)
    bad(FakeKafkaError("Local: Message timed out"), None)

    assert tracker.in_flight == 0
    assert not tracker.all_delivered
    assert tracker.take_failed() == [(record(2), "Local: Message timed out")]
    assert tracker.take_failed() == []
    assert tracker.all_delivered


def test_fatal_error_is_remembered() -> None:
    tracker = DeliveryTracker()
    _, callback = tracker.track(record(1))

    callback(FakeKafkaError("fenced", fatal=True), None)

    assert tracker.fatal_error == "fenced"
    assert not tracker.all_delivered


def test_duplicate_reports_are_ignored_and_forgotten_records_do_not_wait() -> None:
    tracker = DeliveryTracker()
    _, callback = tracker.track(record(1))
    token, _ = tracker.track(record(2))

    callback(None, None)
    callback(FakeKafkaError(), None)
    tracker.forget(token)

    assert tracker.delivered == 1
    assert tracker.in_flight == 0
    assert tracker.take_failed() == []
