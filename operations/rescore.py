"""Re-price every listing with the serving model: `python -m operations.rescore`.

It sends Debezium an `execute-snapshot` signal (`type: incremental`) through the signal
table (migration 0004). Debezium then reads `tbl_car_price` in chunks, between live
changes, and emits each row as an `op: "r"` event on the CDC topic, so the normal
pipeline (transformer → BentoML → JDBC sink) re-prices it. Debezium's watermarks drop a
chunk's copy of any row changed while that chunk was read, so a live edit always wins
over the snapshot's older copy.

The table is asked for in slices sized to what live changes leave, so a live change never
queues behind the whole snapshot: the next slice waits while more than `--max-backlog` CDC
events wait for the transformers, and the slice size grows while that backlog stays under
it and halves when it does not (AIMD; `Slicer`; `--slice`, `--max-slice`, `--depth`,
`--max-rate`). It prints progress, its rate and an ETA.

Interrupted (the rescore, the transformer or Connect killed), it is resumed by running it
again: it re-prices what is not yet on the serving version (Debezium finishes or resumes a
slice it was asked for from its offsets; the pipeline re-delivers what was not committed).

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
from dataclasses import dataclass, field
from datetime import datetime

import psycopg

from config.settings import StackSettings
from model.client import serving_version
from operations.lag import GroupLag
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


SLICE = 64  # listings of the first request, and the step a slice grows by
MAX_SLICE = 256  # the most listings one request asks for (a live change's worst wait)
MAX_RATE = float("inf")  # listings/s re-read: no cap; the backlog paces (--max-rate caps it)
MAX_BACKLOG = 256  # CDC events waiting for the transformers that a live change may meet
DEPTH = 2  # requests in flight: the next is read while the last is priced
PACE_S = 0.05  # how often a rescore looks whether the next slice may go
END_CHECK_S = 0.25  # how often, every slice priced, it looks whether every listing is


@dataclass
class Slicer:
    """Live changes first, with the capacity they leave re-pricing. Debezium reads a
    snapshot far faster than the pipeline prices it, and a live change would queue behind
    all of it on the CDC topic. So the table is asked for in slices (`additional-conditions`
    on the id), at most `depth` of them in flight, and none while more than `backlog` CDC
    events wait for the transformers: what a live change written now would queue behind.

    The slice size follows AIMD on that backlog: a slice priced without the backlog having
    gone over `backlog` since it was asked grows the next by `step` listings (up to
    `max_size`); a backlog over it halves the size (down to `step`), once per slice in flight.
    So re-pricing takes what live traffic leaves, and backs off when live changes would wait."""

    db: psycopg.Connection
    backlog_of: Callable[[], int | None]  # the transformers' consumer group lag
    last_id: int  # the newest listing when the rescore began
    rate: float = MAX_RATE
    backlog: int = MAX_BACKLOG
    size: int = SLICE
    next_id: int = -(2**63)
    pending: list[tuple[int, int, datetime]] = field(default_factory=list)  # (first, last, asked)
    not_before: float = 0.0
    slices: int = 0
    depth: int = DEPTH
    step_size: int = SLICE
    max_size: int = MAX_SLICE
    congested: bool = False  # the backlog went over `backlog` since the oldest pending was asked
    cut_after: int = 0  # the slice count when the size was last halved
    waiting: int | None = None  # the backlog last seen

    def may_ask(self, now: float, waiting: int | None) -> bool:
        """Whether the next slice may be asked for."""
        return (
            self.next_id <= self.last_id
            and len(self.pending) < self.depth
            and now >= self.not_before
            and (waiting or 0) <= self.backlog
        )

    def observe(self, waiting: int | None) -> None:
        """AIMD's decrease: a backlog over the bound halves the size, once per slice asked
        since the last cut (the slices in flight were sized before it was seen)."""
        self.waiting = waiting
        if (waiting or 0) > self.backlog:
            self.congested = True
            if self.slices > self.cut_after:
                self.size, self.cut_after = max(self.step_size, self.size // 2), self.slices

    def priced_one(self) -> None:
        """AIMD's increase: the oldest slice is priced; no backlog since: grow."""
        self.pending.pop(0)
        if not self.congested:
            self.size = min(self.max_size, self.size + self.step_size)
        self.congested = False

    def step(self) -> None:
        while self.pending and self._priced(*self.pending[0]):
            self.priced_one()
        waiting = self.backlog_of()
        self.observe(waiting)
        if not self.may_ask(time.monotonic(), waiting):
            return
        first, last, count = self.db.execute(
            "SELECT min(id), max(id), count(*) FROM (SELECT id FROM tbl_car_price "
            "WHERE id BETWEEN %s AND %s ORDER BY id LIMIT %s) slice",
            (self.next_id, self.last_id, self.size),
        ).fetchone()
        if not count:
            self.next_id = self.last_id + 1
            return
        self.pending.append((first, last, request_snapshot(self.db, first, last)))
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
    max_slice: int = MAX_SLICE,
    depth: int = DEPTH,
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
        slicer = Slicer(
            db, lag, last_id, max_rate, max_backlog, slice_size, next_id=first_id,
            depth=depth, step_size=slice_size, max_size=max(max_slice, slice_size),
        )  # fmt: skip
        cap = "" if max_rate == float("inf") else f", at most {max_rate:,.0f} listings/s"
        say(
            f"re-pricing {total - done:,} of {total:,} listings with {version}: Debezium "
            f"incremental snapshots of {LISTINGS_TABLE} in slices of {slice_size}-{max_slice} "
            f"listings sized to a CDC backlog of at most {max_backlog:,}{cap}",
            flush=True,
        )
        started = last_move = last_report = time.monotonic()
        first_done, last_check = done, started
        try:
            while done < total:
                time.sleep(PACE_S)
                slicer.step()
                now = time.monotonic()
                if slicer.next_id > slicer.last_id and not slicer.pending and done < total:
                    if now - last_check >= END_CHECK_S:  # every slice priced: done yet?
                        before, last_check = done, now
                        done, total = scope.progress(db)
                        last_move = now if done != before else last_move
                        if done == total:
                            break
                if now - last_report < report_s:
                    continue
                before, last_report = done, now
                done, total = scope.progress(db)
                last_move = now if done != before else last_move
                speed = (done - first_done) / max(now - started, 1e-9)
                eta = f"{(total - done) / speed:,.0f}s" if speed > 0 else "?"
                say(
                    f"  {done:,} / {total:,} listings on {version} ({done / max(total, 1):.0%}, "
                    f"{now - started:.0f}s, {speed:,.0f}/s, ETA {eta}; {slicer.slices} slices, "
                    f"next {slicer.size}, backlog {slicer.waiting or 0:,})",
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
        help="re-read at most this many listings/s (default: no cap, the backlog paces)",
    )
    parser.add_argument(
        "--max-backlog",
        type=int,
        default=MAX_BACKLOG,
        help="ask for no slice while more CDC events than this wait for the transformers, "
        "and halve the slice size when they do (what a live change may queue behind)",
    )
    parser.add_argument(
        "--slice",
        type=int,
        default=SLICE,
        help="listings of the first snapshot request, and the step a slice grows by",
    )
    parser.add_argument(
        "--max-slice", type=int, default=MAX_SLICE, help="the most listings one request asks for"
    )
    parser.add_argument(
        "--depth", type=int, default=DEPTH, help="snapshot requests in flight at once"
    )
    parser.add_argument(
        "--everything",
        action="store_true",
        help="re-price listings already priced by the serving version too",
    )
    parser.add_argument(
        "--ids", type=int, nargs=2, metavar=("FIRST", "LAST"), help="only listings with these ids"
    )
    args = parser.parse_args(argv)
    return rescore(
        StackSettings(), args.stall_timeout, args.max_rate, args.max_backlog, args.slice,
        max_slice=args.max_slice, depth=args.depth, everything=args.everything,
        ids=tuple(args.ids) if args.ids else None,
    )  # fmt: skip


if __name__ == "__main__":
    sys.exit(main())
