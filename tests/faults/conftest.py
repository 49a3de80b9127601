"""Fixtures of the fault matrix; its load, faults and verdict are in matrix.py. The
cluster faults (marker `cluster`, test_cluster.py) need a KAFKA_BROKERS=3 stack: on one
broker they are deselected at collection, never counted as passed, and one line says so."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from config.settings import StackSettings
from stack.supervisor import Supervisor
from tests.faults.matrix import LISTINGS, ConnectConfigs, Load, reconcile_count
from tests.support import copy_listings

NOTICE = pytest.StashKey[str]()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the cluster faults when the stack (`.env`, which `make up` holds `.state`
    to) has one broker: a second, 3-broker stack inside `make test` would cost minutes."""
    cluster = [item for item in items if item.get_closest_marker("cluster")]
    brokers = StackSettings().kafka.kafka_brokers if cluster else 3
    if brokers >= 3:
        return
    items[:] = [item for item in items if item not in cluster]
    config.hook.pytest_deselected(items=cluster)
    config.stash[NOTICE] = (
        f"{len(cluster)} cluster fault tests deselected (not run, not passed): they need "
        f"KAFKA_BROKERS=3, this stack has {brokers} broker; run `make chaos` on a 3-broker "
        "stack (docs/cluster.md)"
    )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    notice = terminalreporter.config.stash.get(NOTICE, None)
    if notice:
        terminalreporter.write_line(notice, yellow=True, bold=True)


@pytest.fixture()
def supervisor(stack_ready: StackSettings) -> Supervisor:
    return Supervisor(stack_ready)


@pytest.fixture()
def load(stack_ready: StackSettings, request: pytest.FixtureRequest) -> Iterator[Load]:
    """FAULT_LISTINGS listings (or the test's indirect parameter) committed in one COPY,
    with Connect's configs as they were before; the listings are removed afterwards."""
    connect_before = ConnectConfigs.now(stack_ready)
    with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as conn:
        loaded = Load(copy_listings(conn, getattr(request, "param", LISTINGS)), connect_before)
    resent_before = reconcile_count(stack_ready)
    yield loaded
    assert reconcile_count(stack_ready) == resent_before, "the watchdog had to re-send listings"
    with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as conn:
        conn.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (loaded.ids,))
