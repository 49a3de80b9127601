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


# every privilege each role holds on a table, view or sequence of the schema, and why
PRIVILEGES = {
    "cdc": {  # Debezium: reads listings, writes its heartbeat and snapshot watermarks
        "tbl_car_price": {"SELECT"},
        "dbz_heartbeat": {"SELECT", "UPDATE"},
        "debezium_signal": {"SELECT", "INSERT", "DELETE"},
    },
    "sink": {  # the JDBC sink: upserts and deletes predictions, keeps deletions' positions
        "tbl_price_prediction": {"SELECT", "INSERT", "UPDATE", "DELETE"},
        "tbl_price_prediction_deleted": {"SELECT", "INSERT", "UPDATE"},
        "tbl_price_prediction_refused_future": {"INSERT"},
    },
    "app": {  # people and Adminer: edit listings, read every outcome
        "tbl_car_price": {"SELECT", "INSERT", "UPDATE", "DELETE"},
        "tbl_price_prediction": {"SELECT"},
        "tbl_price_prediction_deleted": {"SELECT"},
        "tbl_price_prediction_refused_future": {"SELECT"},
        "v_car_price_recommendation": {"SELECT"},
    },
    "monitoring": {},  # columns only (tests/monitoring/test_live.py)
}
HELD = """
    SELECT c.relname, p.privilege FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
    CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES',
                            'TRIGGER', 'USAGE']) AS p(privilege)
    WHERE CASE WHEN c.relkind = 'S' THEN p.privilege IN ('SELECT', 'UPDATE', 'USAGE')
               AND has_sequence_privilege(%(role)s, c.oid, p.privilege)
          WHEN c.relkind IN ('r', 'p', 'v', 'm') THEN p.privilege <> 'USAGE'
               AND has_table_privilege(%(role)s, c.oid, p.privilege)
          ELSE false END
"""


@pytest.mark.parametrize("role", sorted(PRIVILEGES))
def test_each_role_holds_exactly_the_privileges_its_job_needs(
    db: psycopg.Connection, settings: StackSettings, role: str
) -> None:
    """Checked from the catalog, so a privilege no other test tries (a TRUNCATE, an UPDATE
    of listings by the CDC role) is caught too."""
    name = getattr(settings.postgres, f"{role}_db_user")
    held: dict[str, set[str]] = {}
    for table, privilege in db.execute(HELD, {"role": name}):
        held.setdefault(table, set()).add(privilege)
    assert held == PRIVILEGES[role]


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
