"""Re-price every listing with the serving model: `python -m operations.rescore`.

It sends Debezium an `execute-snapshot` signal (`type: incremental`) through the signal
table (migration 0004). Debezium then reads `tbl_car_price` in chunks, between live
changes, and emits each row as an `op: "r"` event on the CDC topic, so the normal
pipeline (transformer → BentoML → JDBC sink) re-prices it. Debezium's watermarks drop a
chunk's copy of any row changed while that chunk was read, so a live edit always wins
over the snapshot's older copy.

The table is asked for in paced slices, so live changes never queue behind the whole
snapshot (`Slicer`; `--slice`, `--max-rate`, `--max-backlog`).

Progress is read from the tables: the listings whose prediction carries the serving
version, out of those there when it began (newer ones are priced by the live path). It
ends when every one has it, or fails when nothing moved for `--stall-timeout` seconds
(usually listings the model refuses: see the DLQ)."""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from config.settings import StackSettings
from model.client import serving_version
from stack.kafka import GroupLag
from transformer.settings import Settings as TransformerSettings

SIGNAL_TABLE = "public.debezium_signal"
LISTINGS_TABLE = "public.tbl_car_price"


@dataclass(frozen=True)
class Scope:
    """The listings a rescore owes a new price: those with ids first_id..last_id when it
    began (a listing written since is priced by the live path), priced by `version` since
    `since`."""

    version: str
    first_id: int
    last_id: int
    since: str = "-infinity"

    def progress(self, db: psycopg.Connection) -> tuple[int, int]:
        """(listings priced, listings in scope)."""
        done, total = db.execute(
            "SELECT count(*) FILTER (WHERE p.model_version = %s AND p.written_at >= %s), "
            "count(*) FROM tbl_car_price c LEFT JOIN tbl_price_prediction p ON p.car_id = c.id "
            "WHERE c.id BETWEEN %s AND %s",
            (self.version, self.since, self.first_id, self.last_id),
        ).fetchone()
        return done, total

    def stragglers(self, db: psycopg.Connection, limit: int = 20) -> list[int]:
        rows = db.execute(
            "SELECT c.id FROM tbl_car_price c LEFT JOIN tbl_price_prediction p "
            "ON p.car_id = c.id WHERE c.id BETWEEN %s AND %s AND (p.model_version IS DISTINCT "
            "FROM %s OR p.written_at < %s) ORDER BY c.id LIMIT %s",
            (self.first_id, self.last_id, self.version, self.since, limit),
        ).fetchall()
        return [row[0] for row in rows]


def send_signal(db: psycopg.Connection, kind: str, data: dict) -> datetime:
    """Send Debezium a signal; returns the database's time of it. Debezium reads signals from
    the WAL, so the row is deleted in the same transaction (as Debezium does its watermarks)
    and the signal table stays empty."""
    signal_id = f"{kind}-{uuid.uuid4().hex[:24]}"  # id is varchar(42)
    with db.transaction():
        sent_at = db.execute(
            f"INSERT INTO {SIGNAL_TABLE} (id, type, data) VALUES (%s, %s, %s) RETURNING now()",
            (signal_id, kind, json.dumps(data)),
        ).fetchone()[0]
        db.execute(f"DELETE FROM {SIGNAL_TABLE} WHERE id = %s", (signal_id,))
    return sent_at


def request_snapshot(db: psycopg.Connection, first_id: int, last_id: int) -> datetime:
    """Ask for an incremental snapshot of the listings with ids first_id..last_id."""
    where = {"data-collection": LISTINGS_TABLE, "filter": f"id BETWEEN {first_id} AND {last_id}"}
    data = {"data-collections": [LISTINGS_TABLE], "type": "incremental"}
    return send_signal(db, "execute-snapshot", data | {"additional-conditions": [where]})


SLICE = 64  # listings per request (a Debezium chunk): the most ahead of a live change
MAX_RATE = 200  # listings/s re-read: CPU left for live changes on a small machine
MAX_BACKLOG = 500  # CDC events waiting for the transformers (a surge, or one is down)
PACE_S = 0.05  # how often a rescore looks whether the next slice may go


@dataclass
class Slicer:
    """Live changes first. Debezium reads a snapshot far faster than the pipeline prices it,
    and a live change would queue behind all of it on the CDC topic. So the table is asked
    for in slices of `size` listings (`additional-conditions` on the id), the next one once
    the last is priced, no faster than `rate` listings/s, and not while more than `backlog`
    CDC events wait for the transformers."""

    db: psycopg.Connection
    backlog_of: Callable[[], int | None]  # the transformers' consumer group lag
    last_id: int  # the newest listing when the rescore began
    rate: float = MAX_RATE
    backlog: int = MAX_BACKLOG
    size: int = SLICE
    next_id: int = -(2**63)
    pending: tuple[int, int, datetime] | None = None  # (first id, last id, asked at)
    not_before: float = 0.0
    slices: int = 0

    def may_ask(self, now: float, waiting: int | None) -> bool:
        """Whether the next slice may be asked for, the last one being priced."""
        return (
            self.next_id <= self.last_id
            and now >= self.not_before
            and (waiting or 0) <= self.backlog
        )

    def step(self) -> None:
        if self.pending is not None and not self._priced(*self.pending):
            return
        self.pending = None
        if not self.may_ask(time.monotonic(), self.backlog_of()):
            return
        first, last, count = self.db.execute(
            "SELECT min(id), max(id), count(*) FROM (SELECT id FROM tbl_car_price "
            "WHERE id BETWEEN %s AND %s ORDER BY id LIMIT %s) slice",
            (self.next_id, self.last_id, self.size),
        ).fetchone()
        if not count:
            self.next_id = self.last_id + 1
            return
        self.pending = (first, last, request_snapshot(self.db, first, last))
        self.next_id, self.slices = last + 1, self.slices + 1
        self.not_before = time.monotonic() + count / self.rate

    def _priced(self, first: int, last: int, asked_at: datetime) -> bool:
        """Every listing of the slice has its row written since (priced or refused), or is gone."""
        return not self.db.execute(
            "SELECT EXISTS (SELECT FROM tbl_car_price c LEFT JOIN tbl_price_prediction p "
            "ON p.car_id = c.id WHERE c.id BETWEEN %s AND %s "
            "AND (p.written_at IS NULL OR p.written_at < %s))",
            (first, last, asked_at),
        ).fetchone()[0]


def rescore(
    settings: StackSettings,
    stall_timeout: float,
    max_rate: float = MAX_RATE,
    max_backlog: int = MAX_BACKLOG,
    slice_size: int = SLICE,
    *,
    everything: bool = False,
    ids: tuple[int, int] | None = None,
    say: Callable[..., None] = print,
    report_s: float = 2.0,
) -> int:
    """Snapshot, pace and report until every listing is priced by the serving version;
    `everything`: re-price listings already on it too; `ids` (first, last): only the
    listings in that id range (a bench or a test re-pricing its own)."""
    version = serving_version(settings.services.bentoml_url)
    group, topic = TransformerSettings().transformer_group_id, settings.kafka.cdc_topic
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as db:
        since, last_id = db.execute("SELECT now()::text, max(id) FROM tbl_car_price").fetchone()
        first_id, last_id = ids or (-(2**63), last_id or 0)
        scope = Scope(version, first_id, last_id, since if everything else "-infinity")
        done, total = scope.progress(db)
        if done == total:
            say(f"every listing ({total:,}) is already priced by {version}")
            return 0
        lag = GroupLag(settings, group, topic)  # closed in the finally below
        slicer = Slicer(db, lag, last_id, max_rate, max_backlog, slice_size, next_id=first_id)
        say(
            f"re-pricing {total - done:,} of {total:,} listings with {version}: Debezium "
            f"incremental snapshots of {LISTINGS_TABLE}, {slice_size} listings at a time, at most "
            f"{max_rate:,.0f} listings/s",
            flush=True,
        )
        started = last_move = last_report = time.monotonic()
        try:
            while done < total:
                time.sleep(PACE_S)
                slicer.step()
                if (now := time.monotonic()) - last_report < report_s:
                    continue
                before, last_report = done, now
                done, total = scope.progress(db)
                last_move = now if done != before else last_move
                say(
                    f"  {done:,} / {total:,} listings on {version} ({done / max(total, 1):.0%}, "
                    f"{now - started:.0f}s, {slicer.slices} slices)",
                    flush=True,
                )
                if now - last_move > stall_timeout:
                    say(
                        f"no progress for {stall_timeout:.0f}s; listings not on {version} "
                        f"(first ids): {scope.stragglers(db)} - the model may refuse them, "
                        "see `make watch-dlq`",
                        file=sys.stderr,
                    )
                    return 1
        finally:
            lag.close()
    say(f"done: every listing is priced by {version} ({time.monotonic() - started:.0f}s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m operations.rescore", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=120.0,
        help="give up after this many seconds without progress",
    )
    parser.add_argument(
        "--max-rate",
        type=float,
        default=MAX_RATE,
        help="re-read at most this many listings/s (live changes keep the rest of the box)",
    )
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=MAX_BACKLOG,
        help="ask for no slice while more CDC events than this wait for the transformers",
    )
    parser.add_argument(
        "--slice",
        type=int,
        default=SLICE,
        help="listings per snapshot request: the most a live change can wait behind",
    )
    args = parser.parse_args(argv)
    return rescore(StackSettings(), args.stall_timeout, args.max_rate, args.max_backlog, args.slice)


if __name__ == "__main__":
    sys.exit(main())
