"""Debezium heartbeat table, so an idle listings table does not pin WAL.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-28

The replication slot only advances when Debezium confirms an event. When nobody edits
listings, other write activity on the cluster still produces WAL that the slot keeps.
Debezium's `heartbeat.action.query` (connectors/car-price-source.json) updates this one
row every `heartbeat.interval.ms`; the table is in the publication, so the change flows
through the slot and its confirmed position moves forward. The CDC role may update this
table only (it still reads no other table).
"""

from __future__ import annotations

from alembic import context, op
from psycopg import sql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PUBLICATION = "dbz_car_price"
HEARTBEAT = "dbz_heartbeat"


def _execute(statement: sql.Composable) -> None:
    connection = op.get_bind().connection.dbapi_connection
    op.execute(statement.as_string(connection).replace("%", "%%"))


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE {HEARTBEAT} (
            id smallint PRIMARY KEY CHECK (id = 1),
            beat_at timestamptz NOT NULL DEFAULT now()
        );
        COMMENT ON TABLE {HEARTBEAT} IS
            'Debezium heartbeat: one row, updated by the source connector to move its slot';
        INSERT INTO {HEARTBEAT} (id) VALUES (1);
    """)
    cdc = sql.Identifier(context.config.attributes["roles"]["cdc"][0])
    _execute(sql.SQL("GRANT SELECT, UPDATE ON {} TO {}").format(sql.Identifier(HEARTBEAT), cdc))
    _execute(
        sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(
            sql.Identifier(PUBLICATION), sql.Identifier(HEARTBEAT)
        )
    )


def downgrade() -> None:
    _execute(
        sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(
            sql.Identifier(PUBLICATION), sql.Identifier(HEARTBEAT)
        )
    )
    op.execute(f"DROP TABLE {HEARTBEAT}")
