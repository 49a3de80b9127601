"""Migrations on the real Postgres: up/down/up, and the constraints' errors."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from typing import Any

import psycopg
import pytest
from psycopg import sql

from config.settings import REPO_ROOT, StackSettings
from tests.support import FIESTA

VALID: dict[str, Any] = dict(FIESTA)  # one valid listing, shared with the e2e tests


def _alembic(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "alembic", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, f"alembic {' '.join(args)} failed:\n{result.stderr}"
    return result.stdout + result.stderr


@pytest.fixture()
def scratch_database(stack_ready: StackSettings):
    """A throwaway database and role names, so the live pipeline is never downgraded."""
    suffix = uuid.uuid4().hex[:8]
    name = f"migration_test_{suffix}"
    admin_dsn = stack_ready.postgres.dsn(database="postgres")
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    env = dict(
        os.environ,
        PG_DATABASE=name,
        CDC_DB_USER=f"mt_cdc_{suffix}",
        SINK_DB_USER=f"mt_sink_{suffix}",
        APP_DB_USER=f"mt_app_{suffix}",
        MONITORING_DB_USER=f"mt_mon_{suffix}",  # roles are the cluster's: never the live ones
    )
    yield name, env
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        for role in ("cdc", "sink", "app", "mon"):
            conn.execute(
                sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(f"mt_{role}_{suffix}"))
            )
        live = stack_ready.postgres.monitoring_db_user
        kept = conn.execute("SELECT pg_has_role(%s, 'pg_monitor', 'MEMBER')", (live,)).fetchone()
        assert kept == (True,), f"a scratch downgrade took pg_monitor from the live {live}"


def _tables(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def test_upgrade_downgrade_upgrade(stack_ready: StackSettings, scratch_database) -> None:
    name, env = scratch_database
    dsn = stack_ready.postgres.dsn(database=name)

    _alembic(env, "upgrade", "head")
    assert {"tbl_car_price", "tbl_price_prediction", "v_car_price_recommendation"} <= _tables(dsn)

    _alembic(env, "downgrade", "base")
    assert _tables(dsn) == {"alembic_version"}

    _alembic(env, "upgrade", "head")
    with psycopg.connect(dsn) as conn:
        publication = conn.execute(
            "SELECT tablename FROM pg_publication_tables WHERE pubname = 'dbz_car_price' "
            "ORDER BY tablename"
        ).fetchall()
        version = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        hops = conn.execute(
            "SELECT column_name, data_type, is_nullable FROM information_schema.columns "
            "WHERE table_name = 'tbl_price_prediction' AND column_name IN "
            "('consumed_at', 'replied_at') ORDER BY 1"
        ).fetchall()
    # the listings, Debezium's signal table (make rescore) and its heartbeat, nothing else
    assert publication == [("dbz_heartbeat",), ("debezium_signal",), ("tbl_car_price",)]
    assert version is not None
    # per-hop times (migration 0006): nullable, older records and deletions carry none
    assert hops == [
        (name, "timestamp with time zone", "YES") for name in ("consumed_at", "replied_at")
    ]


def test_upgrade_keeps_stored_rows_that_break_a_new_rule_and_names_them(
    stack_ready: StackSettings, scratch_database
) -> None:
    name, env = scratch_database
    dsn = stack_ready.postgres.dsn(database=name)
    _alembic(env, "upgrade", "0002")
    with psycopg.connect(dsn, autocommit=True) as conn:
        car_id = conn.execute(
            "INSERT INTO tbl_car_price (model, year, transmission, mileage, fuel_type, "
            "engine_size) VALUES (E'\\t', 2060, 'Manual', 1, 'Petrol', 1.0) RETURNING id"
        ).fetchone()[0]

    output = _alembic(env, "upgrade", "head")

    broken = {"tbl_car_price_year_1900_to_next_year", "tbl_car_price_model_not_blank"}
    for constraint in broken:
        assert f"{constraint} stays NOT VALID: 1 stored row(s) break it (id [{car_id}])" in output
    with psycopg.connect(dsn, autocommit=True) as conn:
        validated = dict(
            conn.execute(
                "SELECT conname, convalidated FROM pg_constraint "
                "WHERE conrelid = 'tbl_car_price'::regclass AND contype = 'c'"
            ).fetchall()
        )
        assert {name for name, valid in validated.items() if not valid} == broken
        assert conn.execute("SELECT year FROM tbl_car_price").fetchall() == [(2060,)], "kept"
        with pytest.raises(psycopg.errors.CheckViolation, match="model_not_blank"):
            conn.execute("UPDATE tbl_car_price SET mileage = 2")
    _alembic(env, "downgrade", "0002")


def test_live_database_is_at_head(db: psycopg.Connection) -> None:
    heads = subprocess.run(
        [sys.executable, "-m", "alembic", "heads"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert db.execute("SELECT version_num FROM alembic_version").fetchone() == (heads,)


@pytest.mark.parametrize(
    "field", ["model", "year", "transmission", "mileage", "fuel_type", "engine_size"]
)
def test_required_fields_are_not_null(db: psycopg.Connection, field: str) -> None:
    listing = {key: value for key, value in VALID.items() if key != field}
    columns = sql.SQL(", ").join(map(sql.Identifier, listing))
    with (
        pytest.raises(psycopg.errors.NotNullViolation) as error,
        db.transaction(force_rollback=True),
    ):
        db.execute(
            sql.SQL("INSERT INTO tbl_car_price ({}) VALUES ({})").format(
                columns, sql.SQL(", ").join(sql.Placeholder() * len(listing))
            ),
            list(listing.values()),
        )
    assert f'column "{field}"' in str(error.value)


def test_valid_listing_without_asking_price_is_accepted(db: psycopg.Connection) -> None:
    listing = dict(VALID, price=None, tax=None, mpg=None)
    with db.transaction(force_rollback=True):
        row = db.execute(
            "INSERT INTO tbl_car_price (model, year, price, transmission, mileage, fuel_type, "
            "tax, mpg, engine_size) VALUES (%(model)s, %(year)s, %(price)s, %(transmission)s, "
            "%(mileage)s, %(fuel_type)s, %(tax)s, %(mpg)s, %(engine_size)s) "
            "RETURNING id, created_at, updated_at",
            listing,
        ).fetchone()
    assert row[0] > 0 and row[1] is not None and row[2] is not None
