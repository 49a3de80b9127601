"""Safety net for at-least-once: find listings whose latest state has no prediction and
send them through the pipeline again.

A listing is *unanswered* when it has no row in `tbl_price_prediction`, or the row answers
an older state (its source commit is before the listing's `updated_at`), and the change is
older than a grace period (so what is merely in flight is left alone). "Sending again" is a
no-op UPDATE: the `updated_at` trigger stamps the row, Debezium captures a new change, and
the normal pipeline prices it; the newest state wins as for any edit.

Debezium's `source.ts_ms` is in milliseconds, `updated_at` in microseconds: compare at
millisecond precision, or a fresh prediction would look older than its own listing.

A stored prediction that belongs to no real state (a `source_lsn` ahead of the database's
WAL position, or a commit time after now: a forged record, stored before migration 0008
refused them) would win against every real state of its listing. Reconcile first has the
database delete such rows (`discard_unreal_predictions()`, migration 0008, the app role may
call it), so those listings are unanswered and re-sent like the others.
"""

from __future__ import annotations

import psycopg

from config.settings import StackSettings

UNANSWERED = """
    SELECT c.id FROM tbl_car_price c
    LEFT JOIN tbl_price_prediction p ON p.car_id = c.id
    WHERE c.updated_at < now() - make_interval(secs => %(grace_s)s)
      AND (%(ids)s::bigint[] IS NULL OR c.id = ANY(%(ids)s))
      AND (p.car_id IS NULL OR p.source_committed_at IS NULL
           OR p.source_committed_at < date_trunc('milliseconds', c.updated_at))
    ORDER BY c.id LIMIT %(limit)s
"""
DISCARD = "SELECT discard_unreal_predictions()"
RESEND = "UPDATE tbl_car_price SET updated_at = now() WHERE id = ANY(%(ids)s)"


def unanswered(
    conn: psycopg.Connection, grace_s: float, limit: int = 50_000, ids: set[int] | None = None
) -> list[int]:
    params = {"grace_s": grace_s, "limit": limit, "ids": sorted(ids) if ids is not None else None}
    return [row[0] for row in conn.execute(UNANSWERED, params)]


def discard_unreal(conn: psycopg.Connection) -> list[int]:
    """Delete the stored predictions that answer no real state; their car ids."""
    return [row[0] for row in conn.execute(DISCARD)]


def reconcile(settings: StackSettings, grace_s: float = 60.0) -> list[int]:
    """Discard predictions of no real state, then re-send every unanswered listing (as the
    app role: it edits listings, reads predictions, nothing more); returns their ids."""
    pg = settings.postgres
    with psycopg.connect(pg.dsn(pg.app_db_user, pg.app_db_password), connect_timeout=5) as conn:
        discarded = set(discard_unreal(conn))
        ids = unanswered(conn, grace_s)
        if discarded:  # answered by nothing real, whatever their age
            ids = sorted(set(ids) | set(unanswered(conn, 0, ids=discarded)))
        if ids:
            conn.execute(RESEND, {"ids": ids})
    return ids


def main() -> int:
    """`make reconcile`: re-send every unanswered listing now (no grace period)."""
    ids = reconcile(StackSettings(), grace_s=0)
    shown = f": {ids[:20]}{' …' if len(ids) > 20 else ''}" if ids else ""
    print(f"re-sent {len(ids)} listings without a prediction of their latest state{shown}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
