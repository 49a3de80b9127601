"""Debezium signal table: `make rescore` asks for an incremental snapshot through it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-28

- `debezium_signal(id, type, data)` in the structure Debezium requires; the source
  connector names it in `signal.data.collection`.
- It joins the publication `dbz_car_price`: Debezium reads signals from the WAL.
- The CDC role writes the incremental snapshot's watermarks into it (insert and, with
  `incremental.snapshot.watermarking.strategy=insert_delete`, delete them again) and
  reads nothing else new. Signals are sent by the operator (`make rescore`, as the
  superuser that runs migrations); `car_app` cannot send any.
"""

from __future__ import annotations

from alembic import context, op
from psycopg import sql

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SIGNAL_TABLE = "debezium_signal"
PUBLICATION = "dbz_car_price"


def _execute(statement: sql.Composable) -> None:
    connection = op.get_bind().connection.dbapi_connection
    op.execute(statement.as_string(connection).replace("%", "%%"))


def upgrade() -> None:
    table, cdc = (
        sql.Identifier(SIGNAL_TABLE),
        sql.Identifier(context.config.attributes["roles"]["cdc"][0]),
    )
    _execute(
        sql.SQL(
            "CREATE TABLE {} (id varchar(42) PRIMARY KEY, type varchar(32) NOT NULL, "
            "data varchar(2048) NULL)"
        ).format(table)
    )
    _execute(
        sql.SQL("COMMENT ON TABLE {} IS {}").format(
            table,
            sql.Literal("Debezium signals (make rescore) and incremental snapshot watermarks"),
        )
    )
    _execute(sql.SQL("GRANT SELECT, INSERT, DELETE ON {} TO {}").format(table, cdc))
    _execute(
        sql.SQL("ALTER PUBLICATION {} ADD TABLE {}").format(sql.Identifier(PUBLICATION), table)
    )


def downgrade() -> None:
    table = sql.Identifier(SIGNAL_TABLE)
    _execute(
        sql.SQL("ALTER PUBLICATION {} DROP TABLE {}").format(sql.Identifier(PUBLICATION), table)
    )
    _execute(sql.SQL("DROP TABLE {}").format(table))
