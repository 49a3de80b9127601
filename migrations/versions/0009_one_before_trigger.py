"""One BEFORE trigger per prediction write: the newest-wins function also sets written_at.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07

Every prediction write ran two row-level BEFORE triggers: `prediction_newest_wins()`
(revisions 0003 and 0008: refuse an older state, a deleted listing's state, a position
from the future) and then `set_written_at()` (0001). Each is a PL/pgSQL call per row, and
the JDBC sink writes every prediction through both. `prediction_newest_wins()` now sets
`written_at := clock_timestamp()` on every row it lets through, and the written_at trigger
is dropped. Behaviour is unchanged: a refused record (RETURN NULL) was never stamped
before either (the written_at trigger did not run after it), and every stored row is
stamped by the database on every write.

`set_written_at()` stays (revision 0001 owns it); downgrade restores its trigger and
revision 0008's function.
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

PREDICTIONS = "tbl_price_prediction"
DELETED = "tbl_price_prediction_deleted"
REFUSED = "tbl_price_prediction_refused_future"
WAL_POSITION = "(pg_current_wal_lsn() - '0/0'::pg_lsn)"

# revision 0008's function; STAMP marks the two places a row is let through
FUNCTION = f"""
CREATE OR REPLACE FUNCTION prediction_newest_wins() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    deleted_at bigint;
    wal_at numeric;
BEGIN
    IF NEW.source_lsn IS NULL THEN
        -- no position (records from before issue 9): applied as they come
        IF TG_OP = 'INSERT' AND NEW.status = 'deleted' THEN
            DELETE FROM {PREDICTIONS} WHERE car_id = NEW.car_id;
            RETURN NULL;
        END IF;
STAMP        RETURN NEW;
    END IF;
    wal_at := {WAL_POSITION};
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
STAMP    RETURN NEW;
END $$;
"""
STAMPING = FUNCTION.replace(
    "STAMP        ", "        NEW.written_at := clock_timestamp();\n        "
)
STAMPING = STAMPING.replace("STAMP    ", "    NEW.written_at := clock_timestamp();\n    ")
WITHOUT_STAMP = FUNCTION.replace("STAMP", "")

WRITTEN_AT_TRIGGER = f"""
CREATE TRIGGER tbl_price_prediction_written_at BEFORE INSERT OR UPDATE ON {PREDICTIONS}
    FOR EACH ROW EXECUTE FUNCTION set_written_at();
"""


def upgrade() -> None:
    op.execute(STAMPING)
    op.execute(f"DROP TRIGGER tbl_price_prediction_written_at ON {PREDICTIONS}")


def downgrade() -> None:
    op.execute(WRITTEN_AT_TRIGGER)
    op.execute(WITHOUT_STAMP)
