"""Least-privilege roles and the publication Debezium reads.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27

- CDC role (Debezium source): LOGIN REPLICATION, SELECT on tbl_car_price only.
- sink role (Debezium JDBC sink): writes tbl_price_prediction only.
- app role (people, Adminer): edits listings, reads predictions and the view.
Names and passwords come from `.env`; none is in VCS.
"""

from __future__ import annotations

from alembic import context, op
from psycopg import sql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

PUBLICATION = "dbz_car_price"


def _roles() -> dict[str, tuple[str, str]]:
    """key -> (name, password), from `.env` through migrations/env.py."""
    return context.config.attributes["roles"]


def _execute(statement: sql.Composable) -> None:
    connection = op.get_bind().connection.dbapi_connection
    op.execute(statement.as_string(connection).replace("%", "%%"))


def _ensure_role(name: str, password: str, options: str) -> None:
    """Create or update a login role; roles are cluster-wide, so tolerate existing ones."""
    role = sql.Identifier(name)
    exists = (
        op.get_bind()
        .exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = %(name)s", {"name": name})
        .first()
    )
    verb = sql.SQL("ALTER ROLE" if exists else "CREATE ROLE")
    _execute(
        sql.SQL("{} {} WITH LOGIN {} PASSWORD {}").format(
            verb, role, sql.SQL(options), sql.Literal(password)
        )
    )


def upgrade() -> None:
    roles = _roles()
    database = sql.Identifier(op.get_bind().engine.url.database)
    _ensure_role(*roles["cdc"], "REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE")
    _ensure_role(*roles["sink"], "NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE")
    _ensure_role(*roles["app"], "NOREPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE")
    cdc, sink, app = (sql.Identifier(roles[key][0]) for key in ("cdc", "sink", "app"))
    for role in (cdc, sink, app):
        _execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, role))
        _execute(sql.SQL("GRANT USAGE ON SCHEMA public TO {}").format(role))
    _execute(sql.SQL("GRANT SELECT ON tbl_car_price TO {}").format(cdc))
    _execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON tbl_price_prediction TO {}").format(sink)
    )
    _execute(sql.SQL("GRANT SELECT, INSERT, UPDATE, DELETE ON tbl_car_price TO {}").format(app))
    _execute(
        sql.SQL("GRANT SELECT ON tbl_price_prediction, v_car_price_recommendation TO {}").format(
            app
        )
    )
    _execute(
        sql.SQL("CREATE PUBLICATION {} FOR TABLE tbl_car_price").format(sql.Identifier(PUBLICATION))
    )


def downgrade() -> None:
    roles = _roles()
    database = sql.Identifier(op.get_bind().engine.url.database)
    _execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(PUBLICATION)))
    for name, _ in roles.values():
        role = sql.Identifier(name)
        _execute(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA public FROM {}").format(role))
        _execute(sql.SQL("REVOKE ALL ON SCHEMA public FROM {}").format(role))
        _execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(database, role))
    # The roles themselves are cluster-wide and may hold grants in other databases
    # (or run the live connectors); dropping them is left to whoever drops the cluster.
