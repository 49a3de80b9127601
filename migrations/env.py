"""Alembic environment: connects as the cluster superuser named in `.env`.

The superuser runs migrations because they also create the roles (REPLICATION
needs it) and the publication Debezium reads.
"""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context
from sqlalchemy import create_engine, pool

from stack.settings import PostgresSettings

if context.config.config_file_name:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def run_migrations_online() -> None:
    engine = create_engine(PostgresSettings().url(), poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, transaction_per_migration=True)
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported: the role passwords come from .env")
run_migrations_online()
