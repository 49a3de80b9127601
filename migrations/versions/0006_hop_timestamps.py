"""Per-hop timestamps on each prediction, so `make bench` shows where the time goes.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-28

Beside `source_committed_at` (Debezium's `source.ts_ms`) and `written_at` (set by the
database), the transformer stamps when it consumed the change and when BentoML answered.
Both are nullable: records from before this revision, and deletions, carry none.
"""

from __future__ import annotations

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

PREDICTIONS = "tbl_price_prediction"


def upgrade() -> None:
    op.execute(f"""
        ALTER TABLE {PREDICTIONS}
            ADD COLUMN consumed_at timestamptz,
            ADD COLUMN replied_at timestamptz;
        COMMENT ON COLUMN {PREDICTIONS}.consumed_at IS
            'when the transformer consumed the listing change (its clock)';
        COMMENT ON COLUMN {PREDICTIONS}.replied_at IS
            'when BentoML answered the transformer''s /predict call (its clock)';
    """)


def downgrade() -> None:
    op.execute(f"ALTER TABLE {PREDICTIONS} DROP COLUMN consumed_at, DROP COLUMN replied_at")
