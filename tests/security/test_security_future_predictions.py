"""No prediction from the future (migration 0008): a record claiming a WAL position the
database has not reached never takes a listing's row, the sink keeps running, the refusal
is kept in `tbl_price_prediction_refused_future`, and reconcile repairs a row such a
record left behind before the migration."""

from __future__ import annotations

import time

import psycopg
from confluent_kafka import Producer

from config.settings import StackSettings
from operations.connectors import all_states
from operations.reconcile import reconcile
from tests.connectors import contract
from tests.security.security_facts import connect_as
from tests.support import FIESTA, insert_listing, wait_for

FUTURE_LSN = 2**62


def _row(db: psycopg.Connection, car_id: int) -> tuple | None:
    return db.execute(
        "SELECT status, predicted_price, source_lsn FROM tbl_price_prediction WHERE car_id = %s",
        (car_id,),
    ).fetchone()


def _priced(db: psycopg.Connection, car_id: int, after_lsn: int = 0) -> tuple:
    def found() -> tuple | None:
        row = _row(db, car_id)
        return row if row and row[0] == "priced" and row[2] > after_lsn else None

    return wait_for(found, timeout=60)  # type: ignore[return-value]


def test_a_forged_future_prediction_does_not_take_the_listing(
    stack_ready: StackSettings, producer: Producer, db: psycopg.Connection
) -> None:
    car_id = insert_listing(db, dict(FIESTA, mileage=4_242))
    try:
        _, real_price, real_lsn = _priced(db, car_id)
        topic = stack_ready.kafka.predictions_topic
        producer.produce(
            topic,
            key=contract.key(car_id),
            value=contract.value(
                car_id, status="priced", lsn=FUTURE_LSN, price=1.0,
                committed_ms=int(time.time() * 1000),
            ),
        )  # fmt: skip
        producer.flush(10)
        refused = wait_for(
            lambda: db.execute(
                "SELECT source_lsn, wal_lsn FROM tbl_price_prediction_refused_future "
                "WHERE car_id = %s",
                (car_id,),
            ).fetchone(),
            timeout=60,
        )
        assert refused[0] == FUTURE_LSN and refused[1] < FUTURE_LSN, refused
        assert _row(db, car_id) == ("priced", real_price, real_lsn), "the real price stays"
        states = all_states(stack_ready.connect)
        assert all(s.running for s in states), [s.line() for s in states]

        db.execute("UPDATE tbl_car_price SET mileage = 4343 WHERE id = %s", (car_id,))
        _, price, lsn = _priced(db, car_id, after_lsn=real_lsn)
        assert price > 1 and real_lsn < lsn < FUTURE_LSN, "the next real edit is priced"
    finally:
        db.execute("DELETE FROM tbl_car_price WHERE id = %s", (car_id,))


def test_reconcile_repairs_a_row_from_the_future(
    stack_ready: StackSettings, db: psycopg.Connection
) -> None:
    """A row stored before migration 0008 (written here with the triggers off, as only the
    superuser can) is discarded by reconcile and its listing priced again."""
    car_id = insert_listing(db, dict(FIESTA, mileage=4_646))
    try:
        _, real_price, real_lsn = _priced(db, car_id)
        with connect_as(stack_ready, "superuser") as su:
            with su.transaction():
                su.execute("SET LOCAL session_replication_role = replica")  # no triggers
                su.execute(
                    "UPDATE tbl_price_prediction SET predicted_price = 1, price_low = 1, "
                    "price_high = 1, source_lsn = %s WHERE car_id = %s",
                    (FUTURE_LSN, car_id),
                )
        assert _row(db, car_id) == ("priced", 1.0, FUTURE_LSN)

        assert car_id in reconcile(stack_ready, grace_s=3600)
        _, price, lsn = _priced(db, car_id, after_lsn=real_lsn)
        assert price > 1 and lsn < FUTURE_LSN
        trace = db.execute(
            "SELECT source_lsn FROM tbl_price_prediction_deleted WHERE car_id = %s", (car_id,)
        ).fetchone()
        assert trace is None or trace[0] < FUTURE_LSN, "no trace from the future"
    finally:
        db.execute("DELETE FROM tbl_car_price WHERE id = %s", (car_id,))
