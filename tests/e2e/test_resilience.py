"""The pipeline under failure, on the real stack: BentoML down, transformer killed.

Nothing is lost and nothing is duplicated: after recovery every live listing has exactly
one prediction, and it reflects the listing's latest change.
"""

from __future__ import annotations

import os
import signal

import psycopg
import pytest

from config.settings import StackSettings
from stack.readiness import bentoml_ready, transformer_ready
from stack.supervisor import Supervisor
from tests.conftest import wait_for
from tests.e2e.conftest import FIESTA, insert_listing, prediction, served_prediction


@pytest.fixture()
def supervisor(stack_ready: StackSettings) -> Supervisor:
    return Supervisor(stack_ready)


def _state(supervisor: Supervisor, name: str) -> str:
    return next(p.state for p in supervisor.processes() if p.name == name)


def test_bentoml_down_holds_the_listing_and_resumes_by_itself(
    stack_ready: StackSettings, supervisor: Supervisor, db: psycopg.Connection, cleanup: list[int]
) -> None:
    supervisor.stop_program("bentoml")
    try:
        car_id = insert_listing(db, dict(FIESTA, mileage=42424))
        cleanup.append(car_id)
        wait_for(lambda: transformer_ready(stack_ready) is None, timeout=5)
        # the transformer waits and retries: no prediction, no crash, no DLQ
        with pytest.raises(pytest.fail.Exception):
            wait_for(lambda: prediction(db, car_id), timeout=6, interval=0.5)
        assert _state(supervisor, "transformer") == "RUNNING"
    finally:
        supervisor.start_program("bentoml")
    wait_for(lambda: bentoml_ready(stack_ready) is None, timeout=60)
    row = wait_for(lambda: prediction(db, car_id), timeout=60, interval=0.5)
    served = served_prediction(stack_ready, dict(FIESTA, mileage=42424))
    assert row["predicted_price"] == pytest.approx(served["predicted_price"], abs=0.01)


def test_a_killed_transformer_loses_nothing_and_duplicates_nothing(
    stack_ready: StackSettings, supervisor: Supervisor, db: psycopg.Connection, cleanup: list[int]
) -> None:
    ids = [insert_listing(db, dict(FIESTA, mileage=1000 + i)) for i in range(300)]
    cleanup.extend(ids)
    transformer_pid = next(p.pid for p in supervisor.processes() if p.name == "transformer")
    os.kill(transformer_pid, signal.SIGKILL)  # mid-stream, no chance to commit
    updated = ids[::6]
    db.execute("UPDATE tbl_car_price SET mileage = mileage + 50000 WHERE id = ANY(%s)", (updated,))
    deleted = ids[1::6]
    db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (deleted,))
    live = sorted(set(ids) - set(deleted))

    # supervisor restarts it; the group hands it the partitions; it replays from the commit
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) FROM tbl_price_prediction p "
                "JOIN tbl_car_price c ON c.id = p.car_id "
                # the commit time (ms) of the listing's latest change is at or after its updated_at
                "WHERE c.id = ANY(%s) AND p.source_committed_at >= date_trunc('milliseconds', "
                "c.updated_at)",
                (live,),
            ).fetchone()[0]
            == len(live)
        ),
        timeout=120,
        interval=1,
    )
    wait_for(
        lambda: (
            db.execute(
                "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (deleted,)
            ).fetchone()[0]
            == 0
        ),
        timeout=30,
    )
    rows = db.execute(
        "SELECT car_id FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
    ).fetchall()
    assert sorted(car_id for (car_id,) in rows) == live, "exactly one prediction per live listing"
    assert _state(supervisor, "transformer") == "RUNNING"
