"""The roles the migrations create hold only the privileges their job needs."""

from __future__ import annotations

import psycopg
import pytest

from config.settings import StackSettings


def _connect_as(settings: StackSettings, user: str, password: str) -> psycopg.Connection:
    return psycopg.connect(settings.postgres.dsn(user=user, password=password), autocommit=True)


def test_cdc_role_can_read_listings_but_not_write_them(stack_ready: StackSettings) -> None:
    pg = stack_ready.postgres
    with _connect_as(stack_ready, pg.cdc_db_user, pg.cdc_db_password) as conn:
        conn.execute("SELECT count(*) FROM tbl_car_price").fetchone()
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="tbl_car_price"):
            conn.execute(
                "INSERT INTO tbl_car_price (model, year, transmission, mileage, "
                "fuel_type, engine_size) VALUES ('Ka', 2015, 'Manual', 1, 'Petrol', 1.2)"
            )
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("DELETE FROM tbl_car_price")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="tbl_price_prediction"):
            conn.execute("SELECT * FROM tbl_price_prediction")


def test_cdc_role_has_replication(db: psycopg.Connection, settings: StackSettings) -> None:
    row = db.execute(
        "SELECT rolreplication, rolsuper FROM pg_roles WHERE rolname = %s",
        (settings.postgres.cdc_db_user,),
    ).fetchone()
    assert row == (True, False)


def test_sink_role_writes_predictions_only(stack_ready: StackSettings) -> None:
    pg = stack_ready.postgres
    with _connect_as(stack_ready, pg.sink_db_user, pg.sink_db_password) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="tbl_car_price"):
            conn.execute("SELECT * FROM tbl_car_price")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="tbl_car_price"):
            conn.execute("UPDATE tbl_car_price SET price = 1")
        with conn.transaction(force_rollback=True):
            conn.execute(
                "INSERT INTO tbl_price_prediction (car_id, predicted_price, price_low, "
                "price_high, model_version) VALUES (-1, 1000, 900, 1100, 'test')"
            )
            assert conn.execute(
                "SELECT predicted_price FROM tbl_price_prediction WHERE car_id = -1"
            ).fetchone() == (1000.0,)


def test_app_role_edits_listings_and_reads_predictions(stack_ready: StackSettings) -> None:
    pg = stack_ready.postgres
    with _connect_as(stack_ready, pg.app_db_user, pg.app_db_password) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "INSERT INTO tbl_car_price (model, year, transmission, mileage, "
                "fuel_type, engine_size) VALUES ('Ka', 2015, 'Manual', 1, 'Petrol', 1.2)"
            )
        conn.execute("SELECT * FROM v_car_price_recommendation LIMIT 1")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="tbl_price_prediction"):
            conn.execute("DELETE FROM tbl_price_prediction")


def test_signal_table_cdc_writes_watermarks_app_sends_nothing(stack_ready: StackSettings) -> None:
    """car_cdc writes incremental snapshot watermarks; car_app cannot send signals."""
    pg = stack_ready.postgres
    with _connect_as(stack_ready, pg.cdc_db_user, pg.cdc_db_password) as conn:
        with conn.transaction(force_rollback=True):
            conn.execute(
                "INSERT INTO debezium_signal (id, type) VALUES ('t-wm', 'snapshot-window-open')"
            )
            conn.execute("DELETE FROM debezium_signal WHERE id = 't-wm'")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="debezium_signal"):
            conn.execute("UPDATE debezium_signal SET data = '{}'")
    with _connect_as(stack_ready, pg.app_db_user, pg.app_db_password) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="debezium_signal"):
            conn.execute(
                "INSERT INTO debezium_signal (id, type) VALUES ('t-app', 'execute-snapshot')"
            )


def test_signal_table_is_published(db: psycopg.Connection) -> None:
    tables = {
        row[0]
        for row in db.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = 'dbz_car_price'"
        )
    }
    assert tables == {"tbl_car_price", "debezium_signal", "dbz_heartbeat"}
