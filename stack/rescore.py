"""Re-price every listing with the serving model: `python -m stack.rescore`.

It sends Debezium an `execute-snapshot` signal (`type: incremental`) through the signal
table (migration 0004). Debezium then reads `tbl_car_price` in chunks, between live
changes, and emits each row as an `op: "r"` event on the CDC topic, so the normal
pipeline (transformer → BentoML → JDBC sink) re-prices it. Debezium's watermarks drop a
chunk's copy of any row changed while that chunk was read, so a live edit always wins
over the snapshot's older copy; chunks are small (`incremental.snapshot.chunk.size` in
connectors/car-price-source.json) so live events never queue long behind them.

Progress is read from the tables: the listings whose prediction carries the serving
version, out of all listings. It ends when every listing has it, or fails when nothing
moved for `--stall-timeout` seconds (usually listings the model refuses: see the DLQ).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid

import httpx
import psycopg

from stack.settings import StackSettings

SIGNAL_TABLE = "public.debezium_signal"
LISTINGS_TABLE = "public.tbl_car_price"


def serving_version(settings: StackSettings) -> str:
    response = httpx.post(f"{settings.services.bentoml_url}/model", json={}, timeout=30)
    response.raise_for_status()
    return response.json()["model_version"]


def progress(db: psycopg.Connection, version: str) -> tuple[int, int]:
    """(listings priced by `version`, all listings)."""
    done, total = db.execute(
        "SELECT count(*) FILTER (WHERE p.model_version = %s), count(*) "
        "FROM tbl_car_price c LEFT JOIN tbl_price_prediction p ON p.car_id = c.id",
        (version,),
    ).fetchone()
    return done, total


def stragglers(db: psycopg.Connection, version: str, limit: int = 20) -> list[int]:
    rows = db.execute(
        "SELECT c.id FROM tbl_car_price c LEFT JOIN tbl_price_prediction p ON p.car_id = c.id "
        "WHERE p.model_version IS DISTINCT FROM %s ORDER BY c.id LIMIT %s",
        (version, limit),
    ).fetchall()
    return [row[0] for row in rows]


def request_snapshot(db: psycopg.Connection) -> str:
    """Insert the incremental snapshot signal; returns its id."""
    signal_id = f"rescore-{uuid.uuid4().hex}"  # id is varchar(42)
    data = {"data-collections": [LISTINGS_TABLE], "type": "incremental"}
    db.execute(
        f"INSERT INTO {SIGNAL_TABLE} (id, type, data) VALUES (%s, 'execute-snapshot', %s)",
        (signal_id, json.dumps(data)),
    )
    return signal_id


def rescore(settings: StackSettings, stall_timeout: float, interval: float = 2.0) -> int:
    version = serving_version(settings)
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as db:
        done, total = progress(db, version)
        if done == total:
            print(f"every listing ({total:,}) is already priced by {version}")
            return 0
        signal_id = request_snapshot(db)
        print(
            f"asked Debezium for an incremental snapshot of {LISTINGS_TABLE} "
            f"(signal {signal_id}); re-pricing {total - done:,} of {total:,} listings "
            f"with {version}",
            flush=True,
        )
        started = last_move = time.monotonic()
        while done < total:
            time.sleep(interval)
            before = done
            done, total = progress(db, version)
            now = time.monotonic()
            if done != before:
                last_move = now
            print(
                f"  {done:,} / {total:,} listings on {version} "
                f"({done / max(total, 1):.0%}, {now - started:.0f}s)",
                flush=True,
            )
            if now - last_move > stall_timeout:
                print(
                    f"no progress for {stall_timeout:.0f}s; listings not on {version} "
                    f"(first ids): {stragglers(db, version)} - the model may refuse them, "
                    "see `make watch TOPIC=car_price_predictions.dlq`",
                    file=sys.stderr,
                )
                return 1
    print(f"done: every listing is priced by {version} ({time.monotonic() - started:.0f}s)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m stack.rescore", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--stall-timeout",
        type=float,
        default=120.0,
        help="give up after this many seconds without progress",
    )
    args = parser.parse_args(argv)
    return rescore(StackSettings(), args.stall_timeout)


if __name__ == "__main__":
    sys.exit(main())
