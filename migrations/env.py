"""Alembic environment: connects as the cluster superuser named in `.env`.

The superuser runs migrations because they also create the roles (REPLICATION
needs it) and the publication Debezium reads. The roles' names and passwords come from
`.env` too; this file hands them to the migrations as `config.attributes["roles"]`
(key -> (name, password)), so a migration imports nothing from the project: it is frozen
history, and a later change to the code cannot rewrite what it did.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from config.settings import PostgresSettings

if context.config.config_file_name:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def run_migrations_online() -> None:
    pg = PostgresSettings()
    context.config.attributes["roles"] = {
        "cdc": (pg.cdc_db_user, pg.cdc_db_password),
        "sink": (pg.sink_db_user, pg.sink_db_password),
        "app": (pg.app_db_user, pg.app_db_password),
        "monitoring": (pg.monitoring_db_user, pg.monitoring_db_password),
    }
    engine = create_engine(pg.url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: the role passwords come from .env")
run_migrations_online()
