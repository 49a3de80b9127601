"""Every listing priced or refused, and the newest state wins: SQL as the JDBC sink sends it.

Each test runs as the sink role inside a transaction that is rolled back, so the live
pipeline never sees these rows (and the role's privileges are part of what is tested).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from config.settings import StackSettings

COLUMNS = (
    "car_id",
    "status",
    "predicted_price",
    "price_low",
    "price_high",
    "model_version",
    "reason",
    "refused_field",
    "source_lsn",
)
# What the Debezium JDBC sink (PostgreSQL dialect, insert.mode=upsert) executes.
UPSERT = (
    f"INSERT INTO tbl_price_prediction ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(f'%({c})s' for c in COLUMNS)}) ON CONFLICT (car_id) DO UPDATE SET "
    + ", ".join(f"{c} = EXCLUDED.{c}" for c in COLUMNS[1:])
)


@pytest.fixture()
def sink(stack_ready: StackSettings) -> Iterator[psycopg.Connection]:
    pg = stack_ready.postgres
    with psycopg.connect(pg.dsn(user=pg.sink_db_user, password=pg.sink_db_password)) as conn:
        yield conn
        conn.rollback()


@pytest.fixture()
def car_id() -> int:
    return random.randint(10**12, 10**13)


def priced(car_id: int, price: float, lsn: int | None) -> dict[str, Any]:
    return dict(
        car_id=car_id,
        status="priced",
        predicted_price=price,
        price_low=price * 0.9,
        price_high=price * 1.1,
        model_version="car_price_xgb:test",
        reason=None,
        refused_field=None,
        source_lsn=lsn,
    )


def refused(car_id: int, reason: str, field: str | None, lsn: int) -> dict[str, Any]:
    return dict(
        car_id=car_id,
        status="refused",
        predicted_price=None,
        price_low=None,
        price_high=None,
        model_version=None,
        reason=reason,
        refused_field=field,
        source_lsn=lsn,
    )


def deleted(car_id: int, lsn: int) -> dict[str, Any]:
    return dict(refused(car_id, "", None, lsn), status="deleted", reason=None)


def upsert(conn: psycopg.Connection, record: dict[str, Any]) -> int:
    """Rows written: 0 when the trigger skipped the write."""
    return conn.execute(UPSERT, record).rowcount


def state(conn: psycopg.Connection, car_id: int) -> tuple | None:
    return conn.execute(
        "SELECT status, predicted_price, reason, source_lsn "
        "FROM tbl_price_prediction WHERE car_id = %s",
        (car_id,),
    ).fetchone()


def test_newer_position_applies_older_is_ignored(sink: psycopg.Connection, car_id: int) -> None:
    assert upsert(sink, priced(car_id, 10_000, lsn=200)) == 1
    assert upsert(sink, priced(car_id, 9_000, lsn=100)) == 0, "older: skipped, no error"
    assert state(sink, car_id) == ("priced", 10_000, None, 200)
    assert upsert(sink, priced(car_id, 11_000, lsn=300)) == 1
    assert state(sink, car_id) == ("priced", 11_000, None, 300)
    assert upsert(sink, priced(car_id, 11_500, lsn=300)) == 1, "a replay of the same position"
    assert state(sink, car_id) == ("priced", 11_500, None, 300)


def test_a_refused_update_replaces_the_price_and_a_later_valid_one_prices_again(
    sink: psycopg.Connection, car_id: int
) -> None:
    upsert(sink, priced(car_id, 10_000, lsn=100))
    upsert(sink, refused(car_id, "year 2060 is after next year", "year", lsn=200))
    assert state(sink, car_id) == ("refused", None, "year 2060 is after next year", 200)
    assert upsert(sink, priced(car_id, 10_000, lsn=150)) == 0, "the old price does not return"
    upsert(sink, priced(car_id, 9_500, lsn=300))
    assert state(sink, car_id) == ("priced", 9_500, None, 300)


def test_a_tombstone_delete_keeps_older_events_from_bringing_the_row_back(
    sink: psycopg.Connection, car_id: int
) -> None:
    upsert(sink, priced(car_id, 10_000, lsn=100))
    sink.execute("DELETE FROM tbl_price_prediction WHERE car_id = %s", (car_id,))  # tombstone
    assert upsert(sink, priced(car_id, 10_000, lsn=100)) == 0, "re-delivered: stays deleted"
    assert upsert(sink, priced(car_id, 9_000, lsn=50)) == 0
    assert state(sink, car_id) is None


def test_a_deleted_record_leaves_no_row_and_blocks_older_states(
    sink: psycopg.Connection, car_id: int
) -> None:
    upsert(sink, priced(car_id, 10_000, lsn=100))
    assert upsert(sink, deleted(car_id, lsn=300)) == 0, "a deletion is never stored"
    assert state(sink, car_id) is None
    assert sink.execute(
        "SELECT source_lsn FROM tbl_price_prediction_deleted WHERE car_id = %s", (car_id,)
    ).fetchone() == (300,)
    for lsn in (100, 200, 300):  # in flight before the delete, then re-delivered
        assert upsert(sink, priced(car_id, 9_000, lsn=lsn)) == 0
        assert upsert(sink, refused(car_id, "late", "year", lsn=lsn)) == 0
    assert state(sink, car_id) is None
    assert upsert(sink, priced(car_id, 8_000, lsn=400)) == 1, "a later state is a new listing"


def test_a_deletion_older_than_the_stored_state_leaves_it(
    sink: psycopg.Connection, car_id: int
) -> None:
    upsert(sink, priced(car_id, 10_000, lsn=200))
    upsert(sink, deleted(car_id, lsn=100))
    assert state(sink, car_id) == ("priced", 10_000, None, 200)


def test_records_without_a_position_apply_as_before(sink: psycopg.Connection, car_id: int) -> None:
    """The transformer before issue 9: no status, no source_lsn."""
    legacy = (
        "INSERT INTO tbl_price_prediction (car_id, predicted_price, price_low, price_high, "
        "model_version) VALUES (%s, %s, %s, %s, 'v1') ON CONFLICT (car_id) DO UPDATE SET "
        "predicted_price = EXCLUDED.predicted_price"
    )
    sink.execute(legacy, (car_id, 10_000, 9_000, 11_000))
    sink.execute(legacy, (car_id, 12_000, 9_000, 11_000))
    assert state(sink, car_id) == ("priced", 12_000, None, None)


@pytest.mark.parametrize(
    ("record", "constraint"),
    [
        (dict(status="refused", reason=None), "tbl_price_prediction_refused_has_reason_no_price"),
        (dict(status="refused", reason="why"), "tbl_price_prediction_refused_has_reason_no_price"),
        (dict(predicted_price=None), "tbl_price_prediction_priced_has_prices"),
        (dict(model_version=None), "tbl_price_prediction_priced_has_prices"),
        (dict(status="pending"), "tbl_price_prediction_status_known"),
    ],
)
def test_each_state_rule_refuses_with_its_name(
    sink: psycopg.Connection, car_id: int, record: dict, constraint: str
) -> None:
    with pytest.raises(psycopg.errors.CheckViolation) as error:
        upsert(sink, dict(priced(car_id, 10_000, lsn=1), **record))
    assert error.value.diag.constraint_name == constraint


def test_the_view_says_refused_with_the_reason(db: psycopg.Connection) -> None:
    with db.transaction(force_rollback=True):
        car_id = db.execute(
            "INSERT INTO tbl_car_price (model, year, price, transmission, mileage, fuel_type, "
            "engine_size) VALUES ('Fiesta', 2019, 9000, 'Manual', 1000, 'Petrol', 1.0) "
            "RETURNING id"
        ).fetchone()[0]
        assert db.execute(
            "SELECT verdict FROM v_car_price_recommendation WHERE id = %s", (car_id,)
        ).fetchone() == ("pending",)
        upsert(db, refused(car_id, "mileage is above 1000000", "mileage", lsn=10))
        row = db.execute(
            "SELECT verdict, predicted_price, status, reason, refused_field "
            "FROM v_car_price_recommendation WHERE id = %s",
            (car_id,),
        ).fetchone()
        assert row == (
            "refused: mileage is above 1000000",
            None,
            "refused",
            "mileage is above 1000000",
            "mileage",
        )
        upsert(db, priced(car_id, 9_500, lsn=20))
        assert db.execute(
            "SELECT verdict FROM v_car_price_recommendation WHERE id = %s", (car_id,)
        ).fetchone() == ("fair",)


def written_at(conn: psycopg.Connection, car_id: int) -> Any:
    row = conn.execute(
        "SELECT written_at FROM tbl_price_prediction WHERE car_id = %s", (car_id,)
    ).fetchone()
    return row[0] if row else None


def test_the_database_stamps_every_write_it_lets_through(
    sink: psycopg.Connection, car_id: int
) -> None:
    """written_at is the database's clock at each applied write (clock_timestamp(), so it
    moves inside one transaction too); a skipped older state leaves it alone."""
    upsert(sink, priced(car_id, 10_000, lsn=100))
    first = written_at(sink, car_id)
    assert first is not None
    upsert(sink, priced(car_id, 10_500, lsn=200))
    second = written_at(sink, car_id)
    assert second > first, "a newer state is stamped again"
    assert upsert(sink, priced(car_id, 9_000, lsn=150)) == 0
    assert written_at(sink, car_id) == second, "a skipped older state stamps nothing"
    upsert(sink, priced(car_id, 11_000, lsn=None))
    assert written_at(sink, car_id) > second, "a record without a position is stamped too"


def test_one_before_trigger_per_prediction_write(sink: psycopg.Connection) -> None:
    """Revision 0009: the newest-wins function stamps written_at itself, so the sink's every
    row runs one PL/pgSQL BEFORE trigger, not two."""
    before_row = sink.execute(
        "SELECT tgname FROM pg_trigger WHERE tgrelid = 'tbl_price_prediction'::regclass "
        "AND NOT tgisinternal AND tgtype & 1 = 1 AND tgtype & 2 = 2"  # ROW, BEFORE
    ).fetchall()
    assert before_row == [("tbl_price_prediction_newest_wins",)]
