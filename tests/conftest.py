"""Fixtures shared by the tests that use the real local stack.

`make test` runs `make up` first; these fixtures fail (never skip) with a clear
message when the stack is not there.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator

import psycopg
import pytest
from confluent_kafka import Consumer, Message, Producer, TopicPartition

from config.settings import StackSettings
from stack import readiness

#: fixtures that train a model or serve one of their own
SLOW_FIXTURES = {"synthetic_model", "server"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what `make test-unit` leaves out: `stack` for every test that uses the running
    stack (through `stack_ready`, also behind `db`, `producer`, ...), `slow` for the
    training and serving fixtures; a test can also carry the mark itself. The fault matrix
    runs last: it stops, kills and scales the stack, and every other test should see it
    undisturbed (each fault heals it, so the order is for clarity, not correctness)."""
    items.sort(key=lambda item: item.nodeid.startswith("tests/faults/"))
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if "stack_ready" in names:
            item.add_marker(pytest.mark.stack)
        if names & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def settings() -> StackSettings:
    return StackSettings()


@pytest.fixture(scope="session")
def stack_ready(settings: StackSettings) -> StackSettings:
    for name, check in readiness.CHECKS.items():
        reason = check(settings)
        if reason is not None:
            pytest.fail(f"{name} is not ready ({reason}); start the stack with `make up`")
    return settings


@pytest.fixture()
def db(stack_ready: StackSettings) -> Iterator[psycopg.Connection]:
    """Superuser connection to car_database, autocommit (the CDC tests need commits)."""
    with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as conn:
        yield conn


def end_offsets(settings: StackSettings, topic: str) -> list[TopicPartition]:
    """The current end of every partition: where a reader of 'what happens next' starts."""
    consumer = Consumer(
        {"bootstrap.servers": settings.kafka.bootstrap_servers, "group.id": "tests-offsets"}
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = []
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends.append(TopicPartition(topic, partition, high))
        return ends
    finally:
        consumer.close()


def read_until(
    settings: StackSettings,
    start: list[TopicPartition],
    done: Callable[[list[Message]], bool],
    timeout: float = 30,
) -> list[Message]:
    """Read from `start` (no consumer group commits) until `done(messages)` or timeout."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": "tests-reader",
            "enable.auto.commit": False,
        }
    )
    consumer.assign(start)
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            messages.append(message)
            if done(messages):
                return messages
    finally:
        consumer.close()
    return messages


def json_or_none(raw: bytes | None) -> dict | None:
    return None if raw is None else json.loads(raw)


@pytest.fixture()
def producer(stack_ready: StackSettings) -> Iterator[Producer]:
    producer = Producer(
        {
            "bootstrap.servers": stack_ready.kafka.bootstrap_servers,
            "acks": "all",
            "enable.idempotence": True,
        }
    )
    yield producer
    assert producer.flush(10) == 0, "records still undelivered after 10 s"


def wait_for(condition: Callable[[], object], timeout: float = 30, interval: float = 0.5) -> object:
    """Poll until condition() is truthy; returns its value or fails with the last value."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
        value = condition()
    return value
