"""Passwords holding every awkward character work end to end.

The running stack's role passwords are rotated to awkward ones, `.env` is rewritten to
match, Connect is restarted with them and the connectors redeployed; then a listing
flows through the pipeline, the migrations run, and Adminer logs in. Afterwards the
original passwords and `.env` come back, whatever happened.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from psycopg import sql
from security_facts import connect_as

from config.settings import REPO_ROOT, StackSettings
from stack import readiness
from tests.support import FIESTA, insert_listing, prediction, wait_for

AWKWARD = "@:/%#'\" \\&?="
ENV_FILE = REPO_ROOT / ".env"
ROLE_KEYS = {
    "superuser": ("PG_SUPERUSER", "PG_SUPERUSER_PASSWORD"),
    "app": ("APP_DB_USER", "APP_DB_PASSWORD"),
    "cdc": ("CDC_DB_USER", "CDC_DB_PASSWORD"),
    "sink": ("SINK_DB_USER", "SINK_DB_PASSWORD"),
}


def _dotenv_quoted(value: str) -> str:
    """A double-quoted .env value (python-dotenv decodes \\\\ and \\")."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _with_passwords(text: str, new: dict[str, str]) -> str:
    for key, value in new.items():
        text, count = re.subn(
            rf"^{key}=.*$", lambda _: f"{key}={_dotenv_quoted(value)}", text, flags=re.MULTILINE
        )
        assert count == 1, f".env has no single {key}= line"
    return text


def _run(module: str, *args: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, f"stack {args}: {result.stdout}\n{result.stderr}"


def _set_role_passwords(
    settings: StackSettings, superuser_password: str, passwords: dict[str, str]
) -> None:
    """ALTER ROLE every role, logged in as the superuser with `superuser_password`."""
    pg = settings.postgres
    dsn = pg.dsn(user=pg.pg_superuser, password=superuser_password)
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        for user_key, password_key in ROLE_KEYS.values():
            user = getattr(pg, user_key.lower())
            conn.execute(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    sql.Identifier(user), sql.Literal(passwords[password_key])
                )
            )


def _apply() -> None:
    """Connect reads the passwords at start: restart it, redeploy, wait until RUNNING."""
    _run("stack", "restart", "connect")
    readiness.wait_until_ready(StackSettings(), "connect")
    _run("operations.connectors")


@pytest.fixture()
def awkward_stack(stack_ready: StackSettings) -> Iterator[StackSettings]:
    original_text = ENV_FILE.read_text()
    original = {key: getattr(stack_ready.postgres, key.lower()) for _, key in ROLE_KEYS.values()}
    awkward = {key: f"{key[:3].lower()}{uuid.uuid4().hex[:6]}{AWKWARD}" for key in original}
    superuser = "PG_SUPERUSER_PASSWORD"
    try:
        _set_role_passwords(stack_ready, original[superuser], awkward)
        ENV_FILE.write_text(_with_passwords(original_text, awkward))
        _apply()
        yield StackSettings()
    finally:
        ENV_FILE.write_text(original_text)
        try:
            _set_role_passwords(stack_ready, awkward[superuser], original)
        except psycopg.OperationalError:  # the rotation never happened
            _set_role_passwords(stack_ready, original[superuser], original)
        _apply()


def _adminer_login(settings: StackSettings, password: str) -> str:
    """Log into Adminer as the app role; the page Adminer answers with."""
    pg = settings.postgres
    with httpx.Client(
        base_url=settings.services.adminer_url, timeout=30, follow_redirects=True
    ) as client:
        client.get("")
        response = client.post(
            "",
            data={
                "auth[driver]": "pgsql",
                "auth[server]": f"{pg.pg_host}:{pg.pg_port}",
                "auth[username]": pg.app_db_user,
                "auth[password]": password,
                "auth[db]": pg.pg_database,
            },
        )
        listing = client.get(
            "",
            params={
                "pgsql": f"{pg.pg_host}:{pg.pg_port}",
                "username": pg.app_db_user,
                "db": pg.pg_database,
                "ns": "public",
            },
        )
        return response.text + listing.text


def test_awkward_passwords_work_end_to_end(awkward_stack: StackSettings) -> None:
    settings = awkward_stack
    pg = settings.postgres
    assert AWKWARD in pg.pg_superuser_password and AWKWARD in pg.cdc_db_password

    # Python clients (libpq key=value) and readiness, as every role
    assert readiness.postgres_ready(settings) is None
    for role in ("app", "cdc", "sink"):
        with connect_as(settings, role):
            pass

    # the migrations (SQLAlchemy URL), as the superuser
    migrate = subprocess.run(
        [sys.executable, "-m", "alembic", "upgrade", "head"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert migrate.returncode == 0, migrate.stderr

    # the pipeline: Debezium (car_cdc) -> transformer -> JDBC sink (car_sink)
    with connect_as(settings, "app") as app:
        car_id = insert_listing(app, dict(FIESTA, mileage=31_337))
        try:
            started = time.monotonic()
            row = wait_for(lambda: prediction(app, car_id), timeout=60, interval=0.5)
            assert row["predicted_price"] > 0, row
            assert time.monotonic() - started < 60
        finally:
            app.execute("DELETE FROM tbl_car_price WHERE id = %s", (car_id,))

    # Adminer: the awkward password logs in, a wrong one does not
    page = _adminer_login(settings, pg.app_db_password)
    assert "tbl_car_price" in page, page[-2000:]
    wrong = _adminer_login(settings, pg.app_db_password + "x")
    assert "tbl_car_price" not in wrong
