"""Each role reaches only what its job needs; nobody gets physical replication."""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import psycopg
import pytest
from security_facts import connect_as

from config.settings import StackSettings
from stack.postgres import find_bindir


def _libpq_env(settings: StackSettings, user: str, password: str) -> dict[str, str]:
    pg = settings.postgres
    return {
        **os.environ,
        "PGHOST": pg.pg_host,
        "PGPORT": str(pg.pg_port),
        "PGUSER": user,
        "PGPASSWORD": password,
        "PGCONNECT_TIMEOUT": "5",
    }


def _psql_replication(settings: StackSettings, command: str) -> subprocess.CompletedProcess[str]:
    """A logical replication connection as the CDC role (what Debezium opens)."""
    pg = settings.postgres
    return subprocess.run(
        [
            str(find_bindir() / "psql"),
            "-X",
            "-w",
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            command,
            f"dbname={pg.pg_database} replication=database",
        ],
        env=_libpq_env(settings, pg.cdc_db_user, pg.cdc_db_password),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@pytest.mark.parametrize("role", ["cdc", "superuser"])
def test_nobody_can_take_a_base_backup(
    stack_ready: StackSettings, tmp_path: Path, role: str
) -> None:
    pg = stack_ready.postgres
    user, password = {
        "cdc": (pg.cdc_db_user, pg.cdc_db_password),
        "superuser": (pg.pg_superuser, pg.pg_superuser_password),
    }[role]
    result = subprocess.run(
        [str(find_bindir() / "pg_basebackup"), "-w", "-D", str(tmp_path / "backup"), "-X", "none"],
        env=_libpq_env(stack_ready, user, password),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0, "pg_basebackup succeeded"
    assert "no pg_hba.conf entry for replication connection" in result.stderr, result.stderr
    assert not (tmp_path / "backup" / "PG_VERSION").exists()


def test_cdc_role_streams_logically_from_car_database(stack_ready: StackSettings) -> None:
    result = _psql_replication(stack_ready, "IDENTIFY_SYSTEM")
    assert result.returncode == 0, result.stderr
    assert stack_ready.postgres.pg_database in result.stdout


def test_cdc_role_cannot_open_a_second_slot(stack_ready: StackSettings) -> None:
    """A slot with test_decoding (loadable by path whatever the library path) would hand
    the CDC role every table's rows; max_replication_slots=1 leaves room for Debezium's only."""
    with connect_as(stack_ready, "superuser") as conn:
        slots = conn.execute(
            "SELECT slot_name, plugin, active FROM pg_replication_slots"
        ).fetchall()
    assert slots == [("dbz_car_price", "pgoutput", True)], slots
    name = f"probe_{uuid.uuid4().hex[:8]}"
    for plugin in ("test_decoding", "$libdir/test_decoding", "pgoutput"):
        refused = _psql_replication(
            stack_ready, f'CREATE_REPLICATION_SLOT {name} TEMPORARY LOGICAL "{plugin}"'
        )
        assert refused.returncode != 0, f"{plugin} slot created"
        assert "all replication slots are in use" in refused.stderr, refused.stderr
    with (
        connect_as(stack_ready, "cdc") as conn,
        pytest.raises(psycopg.errors.ConfigurationLimitExceeded),
    ):
        conn.execute(
            "SELECT pg_create_logical_replication_slot(%s, '$libdir/test_decoding')", (name,)
        )


def test_cdc_role_reaches_car_database_only(stack_ready: StackSettings) -> None:
    with pytest.raises(psycopg.OperationalError, match="pg_hba.conf rejects"):
        connect_as(stack_ready, "cdc", database="postgres")


def test_cdc_role_cannot_read_another_table(stack_ready: StackSettings) -> None:
    with connect_as(stack_ready, "cdc") as conn:
        conn.execute("SELECT count(*) FROM tbl_car_price")
        for relation in ("tbl_price_prediction", "v_car_price_recommendation", "alembic_version"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {relation} LIMIT 1")


def test_app_role_cannot_write_predictions(stack_ready: StackSettings) -> None:
    with connect_as(stack_ready, "app") as conn:
        conn.execute("SELECT count(*) FROM tbl_price_prediction")
        for statement in (
            "INSERT INTO tbl_price_prediction (car_id, predicted_price, model_version) "
            "VALUES (-7, 1, 'forged')",
            "UPDATE tbl_price_prediction SET predicted_price = 1",
            "DELETE FROM tbl_price_prediction",
            "TRUNCATE tbl_price_prediction",
        ):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_sink_role_cannot_read_listings(stack_ready: StackSettings) -> None:
    with connect_as(stack_ready, "sink") as conn:
        for relation in ("tbl_car_price", "v_car_price_recommendation"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(f"SELECT * FROM {relation} LIMIT 1")


def test_hba_is_scram_over_loopback_and_has_no_replication_line(
    stack_ready: StackSettings,
) -> None:
    rules = [
        line.split()
        for line in (stack_ready.pg_data_dir / "pg_hba.conf").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert rules and not [rule for rule in rules if "replication" in rule[1].lower()]
    assert {rule[0] for rule in rules} <= {"local", "host"}, "no hostssl/hostnossl line"
    assert {rule[-1] for rule in rules} <= {"scram-sha-256", "reject"}, "a password, always"
    assert {rule[3] for rule in rules if rule[0] == "host" and rule[-1] != "reject"} <= {
        "127.0.0.1/32",
        "::1/128",
    }


@pytest.mark.parametrize("role", ["pg_superuser", "app_db_user", "cdc_db_user", "sink_db_user",
                                  "monitoring_db_user"])  # fmt: skip
def test_every_role_needs_its_password(stack_ready: StackSettings, role: str) -> None:
    """What the server does, whatever pg_hba.conf says: a wrong password gets nobody in."""
    pg = stack_ready.postgres
    dsn = pg.dsn(user=getattr(pg, role), password=f"not-the-password-{uuid.uuid4().hex}")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(dsn, connect_timeout=10).close()
