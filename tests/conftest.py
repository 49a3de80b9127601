"""Fixtures shared by the tests that use the real local stack.

`make test` runs `make up` first; these fixtures fail (never skip) with a clear
message when the stack is not there.
"""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from confluent_kafka import Producer

from config.settings import StackSettings
from stack import readiness

#: fixtures that train a model or serve one of their own
SLOW_FIXTURES = {"synthetic_model", "server"}
#: the live monitoring tests run first: "nothing fires at rest" is only quick on a stack that
#: no test has yet fed bad input (dead-letter alerts look back 5 minutes)
FIRST = "tests/monitoring/test_live.py"
#: the destructive tests, which run last and in this order (the others keep theirs)
DESTRUCTIVE = ("tests/stack/test_lifecycle.py", "tests/faults/")


def _rank(item: pytest.Item) -> int:
    """-1 for FIRST, 0 for a test that leaves the stack alone, else 1 + its place in
    DESTRUCTIVE."""
    if item.nodeid.startswith(FIRST):
        return -1
    return next((n for n, path in enumerate(DESTRUCTIVE, 1) if item.nodeid.startswith(path)), 0)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark what `make test-unit` leaves out: `stack` for every test that uses the running
    stack (through `stack_ready`, also behind `db`, `producer`, ...), `slow` for the
    training and serving fixtures; a test can also carry the mark itself. The live
    monitoring tests run first (FIRST); the destructive tests run last, `make down` /
    `make up` and then the fault matrix: they stop, kill and scale the stack, and every
    other test should see it undisturbed (each heals it, so the order is for clarity, not
    correctness)."""
    items.sort(key=_rank)
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


@pytest.fixture()
def producer(stack_ready: StackSettings) -> Iterator[Producer]:
    producer = Producer(
        {
            **stack_ready.kafka_admin(),
            "acks": "all",
            "enable.idempotence": True,
        }
    )
    yield producer
    assert producer.flush(10) == 0, "records still undelivered after 10 s"
