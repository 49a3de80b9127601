"""Helpers for the security checks: the live programs' pids, environments, role logins."""

from __future__ import annotations

from pathlib import Path

import psycopg

from config.settings import StackSettings
from stack.supervisor import Supervisor


def program_pids(settings: StackSettings) -> dict[str, int]:
    """supervisord's and every RUNNING program's pid."""
    supervisor = Supervisor(settings)
    pids = {"supervisord": supervisor.daemon_pid() or 0}
    pids.update({p.name: p.pid for p in supervisor.processes() if p.state == "RUNNING"})
    missing = [name for name, pid in pids.items() if not pid]
    assert not missing, f"not running: {missing}"
    return pids


def process_environment(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    pairs = (item.decode(errors="replace").partition("=") for item in raw.split(b"\0") if item)
    return {key: value for key, _, value in pairs}


def process_uid(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])  # the real uid
    raise AssertionError(f"/proc/{pid}/status has no Uid line")


def connect_as(
    settings: StackSettings, role: str, database: str | None = None
) -> psycopg.Connection:
    """Autocommit connection as `cdc`, `sink`, `app` or `superuser`, password from .env."""
    pg = settings.postgres
    user, password = {
        "cdc": (pg.cdc_db_user, pg.cdc_db_password),
        "sink": (pg.sink_db_user, pg.sink_db_password),
        "app": (pg.app_db_user, pg.app_db_password),
        "superuser": (pg.pg_superuser, pg.pg_superuser_password),
    }[role]
    return psycopg.connect(
        pg.dsn(user=user, password=password, database=database), autocommit=True, connect_timeout=5
    )


def passwords(settings: StackSettings) -> dict[str, str]:
    """Every role's password, by its .env name."""
    pg = settings.postgres
    return {
        "PG_SUPERUSER_PASSWORD": pg.pg_superuser_password,
        "APP_DB_PASSWORD": pg.app_db_password,
        "CDC_DB_PASSWORD": pg.cdc_db_password,
        "SINK_DB_PASSWORD": pg.sink_db_password,
        "MONITORING_DB_PASSWORD": pg.monitoring_db_password,
    }
