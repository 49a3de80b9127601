"""Initialise and bootstrap the project's own Postgres cluster.

The cluster lives in `.state/postgres/data` (see prepare_pg_dir for the one exception),
is owned by an unprivileged OS user
(Postgres refuses to run as root, and CI runs as root) and only accepts
password (scram) logins over TCP.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import psycopg

from config.settings import REPO_ROOT, StackSettings

DEBIAN_BINDIRS = Path("/usr/lib/postgresql")
# where the cluster goes when the clone's own folder is closed to the server user
FALLBACK_ROOT = Path("/var/lib/car-price-pipeline")


class PostgresMissing(RuntimeError):
    """The server binaries are not installed."""


def find_bindir() -> Path:
    """Newest Debian server install, else whatever `postgres` is on PATH."""

    def major(postgres: Path) -> int:
        version = postgres.parent.parent.name
        return int(version) if version.isdigit() else 0

    candidates = sorted(DEBIAN_BINDIRS.glob("*/bin/postgres"), key=major)
    if candidates:
        return candidates[-1].parent
    on_path = shutil.which("postgres")
    if on_path:
        return Path(on_path).resolve().parent
    raise PostgresMissing(
        "PostgreSQL server binaries not found. Install them with "
        "`sudo apt-get install postgresql` (make up does this when run as root)."
    )


def _as_server_user(settings: StackSettings, argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", settings.server_os_user, "--", *argv]
    return argv


def _chown_to_server_user(settings: StackSettings, *paths: Path) -> None:
    if os.geteuid() == 0:
        for path in paths:
            shutil.chown(path, user=settings.server_os_user, group=None)


def _server_user_can_enter(settings: StackSettings, folder: Path) -> bool:
    return (
        subprocess.run(
            _as_server_user(settings, ["test", "-x", str(folder)]), check=False
        ).returncode
        == 0
    )


def prepare_pg_dir(settings: StackSettings) -> None:
    """Create `.state/postgres` once. As root, when the clone sits in a folder the
    unprivileged server user cannot enter (say /root/...), make it a link to a folder
    under FALLBACK_ROOT that the user can reach, named after the clone's path."""
    link = settings.state_dir / "postgres"
    if link.exists():
        return
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or _server_user_can_enter(settings, settings.state_dir):
        link.mkdir()
        return
    digest = hashlib.sha256(str(REPO_ROOT).encode()).hexdigest()[:12]
    target = FALLBACK_ROOT / digest / "postgres"
    shutil.rmtree(target, ignore_errors=True)  # a new link means the state was reset
    target.mkdir(parents=True)
    for folder in (FALLBACK_ROOT, target.parent):  # made under umask 077: let the user pass
        folder.chmod(0o711)
    link.symlink_to(target, target_is_directory=True)


def init_cluster(settings: StackSettings) -> bool:
    """Create the cluster once (idempotent). Returns True when it was created now."""
    prepare_pg_dir(settings)
    data, run = settings.pg_data_dir, settings.pg_run_dir
    if (data / "PG_VERSION").exists():
        run.mkdir(parents=True, exist_ok=True)
        _chown_to_server_user(settings, run)
        return False
    for path in (data.parent, data, run):
        path.mkdir(parents=True, exist_ok=True)
        path.chmod(0o700)
    _chown_to_server_user(settings, data.parent, data, run)
    probe = subprocess.run(_as_server_user(settings, ["test", "-w", str(data)]), check=False)
    if probe.returncode != 0:
        raise PermissionError(
            f"OS user {settings.server_os_user!r} cannot write {data}: every parent folder "
            "must be traversable (chmod o+x) by that user."
        )
    pwfile = data.parent / "initdb.pw"
    pwfile.write_text(settings.postgres.pg_superuser_password + "\n")
    pwfile.chmod(0o600)
    _chown_to_server_user(settings, pwfile)
    try:
        subprocess.run(
            _as_server_user(
                settings,
                [
                    str(find_bindir() / "initdb"),
                    "-D",
                    str(data),
                    f"--username={settings.postgres.pg_superuser}",
                    f"--pwfile={pwfile}",
                    "--auth-host=scram-sha-256",
                    "--auth-local=scram-sha-256",
                    "--encoding=UTF8",
                    "--no-locale",
                ],
            ),
            check=True,
            stdout=subprocess.DEVNULL,
        )
    finally:
        pwfile.unlink(missing_ok=True)
    return True


def hba_rules(settings: StackSettings) -> str:
    """pg_hba.conf: scram over loopback only; no physical replication for anyone.

    Postgres' `replication` keyword matches physical replication (pg_basebackup) only, so
    no line has it. A logical replication connection is matched by its database name: the
    CDC role may connect to car_database alone, where its REPLICATION attribute (given to
    no other role) lets it stream through the publication.
    """
    pg = settings.postgres
    cdc, database = _hba_quote(pg.cdc_db_user), _hba_quote(pg.pg_database)
    superuser = _hba_quote(pg.pg_superuser)
    lines = [
        "# Written by `python -m stack up` (stack/postgres.py): edits are overwritten.",
        "# TYPE  DATABASE  USER  ADDRESS  METHOD",
        f"local   all  {superuser}  scram-sha-256",
        *(f"host    {database}  {cdc}  {address}  scram-sha-256" for address in LOOPBACK),
        f"host    all  {cdc}  all  reject",
        *(f"host    all  all  {address}  scram-sha-256" for address in LOOPBACK),
    ]
    return "\n".join(lines) + "\n"


LOOPBACK = ("127.0.0.1/32", "::1/128")


def _hba_quote(name: str) -> str:
    """A name as pg_hba.conf reads it: double-quoted, so no keyword or `+group` meaning."""
    return '"' + name.replace('"', '""') + '"'


def write_hba(settings: StackSettings) -> bool:
    """Write pg_hba.conf; True when it changed (a running server must then reload)."""
    hba = settings.pg_data_dir / "pg_hba.conf"
    text = hba_rules(settings)
    if hba.exists() and hba.read_text() == text:
        return False
    hba.write_text(text)
    hba.chmod(0o600)
    _chown_to_server_user(settings, hba)
    return True


def reload_config(settings: StackSettings) -> None:
    with superuser_connect(settings) as conn:
        conn.execute("SELECT pg_reload_conf()")


def superuser_connect(settings: StackSettings, database: str = "postgres") -> psycopg.Connection:
    pg = settings.postgres
    return psycopg.connect(pg.dsn(database=database), autocommit=True, connect_timeout=3)


def ensure_database(settings: StackSettings) -> bool:
    """Create `car_database` when missing. Roles and tables belong to the migrations."""
    name = settings.postgres.pg_database
    with superuser_connect(settings) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists:
            return False
        conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return True
