"""Fixtures of the fault matrix; its load, faults and verdict are in matrix.py."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest

from config.settings import StackSettings
from stack.supervisor import Supervisor
from tests.faults.matrix import LISTINGS, ConnectConfigs, Load, reconcile_count
from tests.support import copy_listings

# copy_listings: re-exported for tests/operations/test_rescore.py until it imports it
# from tests.support
__all__ = ["copy_listings", "load", "supervisor"]


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
