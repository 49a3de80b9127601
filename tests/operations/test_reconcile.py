"""operations/reconcile.py on the real database: which listings are unanswered, and that
sending one again gets it priced (the watchdog runs this every minute)."""

from __future__ import annotations

import psycopg

from config.settings import StackSettings
from operations.reconcile import RESEND, unanswered
from tests.support import FIESTA, insert_listing, prediction, wait_for


def test_lost_and_stale_predictions_are_found_and_priced_again(
    stack_ready: StackSettings, db: psycopg.Connection
) -> None:
    lost, stale, fine = (insert_listing(db, dict(FIESTA, mileage=m)) for m in (71, 72, 73))
    ids = {lost, stale, fine}
    try:
        wait_for(lambda: all(prediction(db, i) for i in ids), timeout=60)
        # a fresh answer is not older than its listing (source time in ms, updated_at in µs)
        assert unanswered(db, 0, ids=ids) == []
        db.execute("DELETE FROM tbl_price_prediction WHERE car_id = %s", (lost,))
        db.execute(
            "UPDATE tbl_price_prediction SET source_committed_at = source_committed_at "
            "- interval '1 hour' WHERE car_id = %s",
            (stale,),
        )
        assert unanswered(db, 0, ids=ids) == sorted([lost, stale])
        assert unanswered(db, 3600, ids=ids) == [], "changes within the grace are left alone"

        db.execute(RESEND, {"ids": [lost, stale]})
        wait_for(lambda: unanswered(db, 0, ids=ids) == [], timeout=60)
        assert all(prediction(db, i)["predicted_price"] is not None for i in ids)
    finally:
        db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (sorted(ids),))
