"""The monitoring role of postgres_exporter, and an index for its freshness query.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07

- monitoring role: LOGIN, member of pg_monitor (statistics and replication slots), SELECT
  on the columns monitoring/postgres-queries.yaml reads and nothing else; it cannot see a
  listing's data or a price.
- index on tbl_price_prediction.written_at: the exporter reads the last minutes' rows on
  every scrape.
Name and password come from `.env` (MONITORING_DB_USER, MONITORING_DB_PASSWORD).
"""

from __future__ import annotations

from alembic import context, op
from psycopg import sql

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

READS = {
    "tbl_car_price": ("id", "updated_at"),
    "tbl_price_prediction": ("car_id", "status", "source_committed_at", "written_at"),
}


def _execute(statement: sql.Composable) -> None:
    connection = op.get_bind().connection.dbapi_connection
    op.execute(statement.as_string(connection).replace("%", "%%"))


def upgrade() -> None:
    name, password = context.config.attributes["roles"]["monitoring"]
    role = sql.Identifier(name)
    exists = (
        op.get_bind()
        .exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(name)s", {"name": name})
        .first()
    )
    _execute(
        sql.SQL(
            "{} {} WITH LOGIN NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}"
        ).format(sql.SQL("ALTER ROLE" if exists else "CREATE ROLE"), role, sql.Literal(password))
    )
    database = sql.Identifier(op.get_bind().engine.url.database)
    _execute(sql.SQL("GRANT pg_monitor TO {}").format(role))
    _execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))
    _execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
    for table, columns in READS.items():
        _execute(
            sql.SQL("GRANT SELECT ({}) ON {} TO {}").format(
                sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table), role
            )
        )
    op.execute("CREATE INDEX tbl_price_prediction_written_at ON tbl_price_prediction (written_at)")


def downgrade() -> None:
    name, _ = context.config.attributes["roles"]["monitoring"]
    role = sql.Identifier(name)
    op.execute("DROP INDEX tbl_price_prediction_written_at")
    database = sql.Identifier(op.get_bind().engine.url.database)
    for table in READS:
        _execute(sql.SQL("REVOKE ALL ON {} FROM {}").format(sql.Identifier(table), role))
    _execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(role))
    _execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(database, role))
    _execute(sql.SQL("REVOKE pg_monitor FROM {}").format(role))
    # the role itself is cluster-wide: left to whoever drops the cluster (as in 0002)
