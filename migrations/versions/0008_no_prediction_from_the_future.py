"""No prediction from the future: a record whose position the database has not reached is
never stored, and what such a record left behind can be repaired.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07

A prediction's `source_lsn` is Debezium's `source.lsn` of the listing change it answers:
a WAL position this database has already written. A record with a larger one cannot
answer any real state; written, it would win against every real later state of its
listing forever (revision 0003's newest-wins rule). So the BEFORE trigger
`prediction_newest_wins()` now refuses a record (any status, 'deleted' included) whose
`source_lsn` is ahead of `pg_current_wal_lsn()` (as a number, `- '0/0'::pg_lsn`; every
role may call it).

Refusing skips the write (RETURN NULL), as for an older state: raising would fail the
JDBC sink's whole batch and, after its retries, stop the sink for every listing; a forged
record must not be able to do that. The refusal is visible: the trigger records the
record in `tbl_price_prediction_refused_future` (car id, claimed position, the database's
position then, status, price, model version, when) and logs a WARNING in the Postgres log.

The AFTER DELETE trace (0003) records a deleted row's position only when it is one the
database has reached, so removing a forged row leaves no trace that blocks real states.

Repair: `discard_unreal_predictions()` (SECURITY DEFINER, EXECUTE for the app role only,
as `make reconcile` and the watchdog run) deletes every stored prediction that belongs to
no real state of its listing: a `source_lsn` ahead of the WAL position, or a
`source_committed_at` after the database's clock (a commit cannot be later than now), and
every deletion trace ahead of the WAL position; it returns the car ids. Reconcile then
re-sends those listings like any other unanswered one.
"""

from __future__ import annotations

from alembic import context, op
from psycopg import sql

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

PREDICTIONS = "tbl_price_prediction"
DELETED = "tbl_price_prediction_deleted"
REFUSED = "tbl_price_prediction_refused_future"

WAL_POSITION = "(pg_current_wal_lsn() - '0/0'::pg_lsn)"

NEWEST_WINS_0003 = f"""
CREATE OR REPLACE FUNCTION prediction_newest_wins() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deleted_at bigint;
BEGIN
    IF NEW.source_lsn IS NULL THEN
        -- no position (records from before issue 9): applied as they come
        IF TG_OP = 'INSERT' AND NEW.status = 'deleted' THEN
            DELETE FROM {PREDICTIONS} WHERE car_id = NEW.car_id;
            RETURN NULL;
        END IF;
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.source_lsn > NEW.source_lsn THEN
        RETURN NULL;  -- the stored prediction answers a newer state
    END IF;
    SELECT d.source_lsn INTO deleted_at FROM {DELETED} d WHERE d.car_id = NEW.car_id;
    IF deleted_at >= NEW.source_lsn THEN
        RETURN NULL;  -- the listing was deleted at or after this position
    END IF;
    IF TG_OP = 'INSERT' AND NEW.status = 'deleted' THEN
        INSERT INTO {DELETED} AS d (car_id, source_lsn) VALUES (NEW.car_id, NEW.source_lsn)
            ON CONFLICT (car_id) DO UPDATE
            SET source_lsn = greatest(d.source_lsn, EXCLUDED.source_lsn),
                deleted_at = clock_timestamp();
        DELETE FROM {PREDICTIONS} p WHERE p.car_id = NEW.car_id
            AND (p.source_lsn IS NULL OR p.source_lsn <= NEW.source_lsn);
        RETURN NULL;  -- a deletion is a trace, never a row
    END IF;
    RETURN NEW;
END $$;
"""

# The only change to 0003's function: the future check before anything else is looked at.
NEWEST_WINS = NEWEST_WINS_0003.replace(
    """    IF TG_OP = 'UPDATE' AND OLD.source_lsn > NEW.source_lsn THEN""",
    f"""    wal_at := {WAL_POSITION};
    IF NEW.source_lsn > wal_at THEN
        -- a position the database has not written: no real state; kept aside, not stored
        INSERT INTO {REFUSED} (car_id, source_lsn, wal_lsn, status, predicted_price,
                               model_version)
            VALUES (NEW.car_id, NEW.source_lsn, wal_at, NEW.status, NEW.predicted_price,
                    NEW.model_version);
        RAISE WARNING 'prediction for listing % refused: source_lsn % is ahead of the WAL '
            'position % (see {REFUSED})', NEW.car_id, NEW.source_lsn, wal_at;
        RETURN NULL;
    END IF;
    IF TG_OP = 'UPDATE' AND OLD.source_lsn > NEW.source_lsn THEN""",
).replace("    deleted_at bigint;\n", "    deleted_at bigint;\n    wal_at numeric;\n")

DELETED_TRACE_0003 = f"""
CREATE OR REPLACE FUNCTION prediction_deleted_trace() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.source_lsn IS NOT NULL THEN
        INSERT INTO {DELETED} AS d (car_id, source_lsn) VALUES (OLD.car_id, OLD.source_lsn)
            ON CONFLICT (car_id) DO UPDATE
            SET source_lsn = greatest(d.source_lsn, EXCLUDED.source_lsn);
    END IF;
    RETURN NULL;
END $$;
"""
DELETED_TRACE = DELETED_TRACE_0003.replace(
    "IF OLD.source_lsn IS NOT NULL THEN",
    f"IF OLD.source_lsn IS NOT NULL AND OLD.source_lsn <= {WAL_POSITION} THEN",
)

DISCARD = f"""
CREATE FUNCTION discard_unreal_predictions() RETURNS SETOF bigint
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    wal_at numeric := {WAL_POSITION};
BEGIN
    DELETE FROM {DELETED} WHERE source_lsn > wal_at;
    RETURN QUERY DELETE FROM {PREDICTIONS}
        WHERE source_lsn > wal_at OR source_committed_at > clock_timestamp()
        RETURNING car_id;
END $$;
REVOKE ALL ON FUNCTION discard_unreal_predictions() FROM PUBLIC;
COMMENT ON FUNCTION discard_unreal_predictions() IS
    'Deletes predictions (and deletion traces) that answer no real state: a source_lsn '
    'ahead of the WAL, or a commit time after now; returns their car ids (reconcile)';
"""


def _role(attribute: str) -> str:
    name = context.config.attributes["roles"][attribute][0]
    return sql.Identifier(name).as_string(op.get_bind().connection.dbapi_connection)


def upgrade() -> None:
    op.execute(f"""
        CREATE TABLE {REFUSED} (
            id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            car_id bigint NOT NULL,
            source_lsn numeric NOT NULL,
            wal_lsn numeric NOT NULL,
            status text,
            predicted_price double precision,
            model_version text,
            refused_at timestamptz NOT NULL DEFAULT clock_timestamp()
        );
        COMMENT ON TABLE {REFUSED} IS
            'Prediction records refused because their source_lsn is ahead of the WAL '
            'position: they answer no real state (forged, or from another database)';
    """)
    op.execute(NEWEST_WINS)
    op.execute(DELETED_TRACE)
    op.execute(DISCARD)
    op.execute(f"GRANT INSERT ON {REFUSED} TO {_role('sink')}")
    op.execute(f"GRANT SELECT ON {REFUSED} TO {_role('app')}")
    op.execute(f"GRANT EXECUTE ON FUNCTION discard_unreal_predictions() TO {_role('app')}")


def downgrade() -> None:
    op.execute("DROP FUNCTION discard_unreal_predictions()")
    op.execute(DELETED_TRACE_0003)
    op.execute(NEWEST_WINS_0003)
    op.execute(f"DROP TABLE {REFUSED}")
