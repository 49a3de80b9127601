"""`make bench-pipeline`: end-to-end latency and throughput of the running pipeline, and
the memory each component holds. A benchmark, not a test: it prints tables.

Latency is measured by the database itself: `written_at - source_committed_at` on
`tbl_price_prediction` (commit of the listing → prediction row written by the sink).
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import psycopg

from stack.settings import StackSettings
from stack.supervisor import Supervisor

COLUMNS = "model, year, price, transmission, mileage, fuel_type, tax, mpg, engine_size"


def _rss_kib(pid: int) -> int:
    """Resident memory of a process and all its descendants, in KiB."""
    total, todo = 0, [pid]
    while todo:
        current = todo.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        total += next(
            (int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), 0
        )
        todo.extend(int(child) for child in children)
    return total


def memory_table(settings: StackSettings) -> None:
    supervisor = Supervisor(settings)
    rows = [(p.name, _rss_kib(p.pid)) for p in supervisor.processes() if p.pid]
    print(f"\n{'component':<12} {'RSS MiB':>8}")
    print("-" * 21)
    for name, kib in rows:
        print(f"{name:<12} {kib / 1024:>8.0f}")
    print(f"{'total':<12} {sum(kib for _, kib in rows) / 1024:>8.0f}")


def _listing(i: int) -> tuple:
    models = ("Fiesta", "Focus", "Kuga", "EcoSport", "Puma")
    return (
        models[i % 5],
        2012 + i % 9,
        6000 + i % 9000,
        ("Manual", "Automatic")[i % 2],
        1000 + (i * 7919) % 90000,
        ("Petrol", "Diesel")[i % 2],
        145,
        45.0 + i % 20,
        (1.0, 1.5, 2.0)[i % 3],
    )


def _measure(conn: psycopg.Connection, ids: list[int], timeout: float) -> tuple[list[float], float]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        rows = conn.execute(
            "SELECT extract(epoch FROM written_at - source_committed_at), "
            "extract(epoch FROM written_at) FROM tbl_price_prediction WHERE car_id = ANY(%s)",
            (ids,),
        ).fetchall()
        if len(rows) == len(ids):
            latencies = [float(row[0]) for row in rows]
            return latencies, max(float(row[1]) for row in rows)
        time.sleep(0.2)
    raise TimeoutError(f"only {len(rows)}/{len(ids)} predictions after {timeout}s")


def pipeline_table(settings: StackSettings) -> None:
    pg = settings.postgres
    print(f"\n{'scenario':<34} {'rows':>5} {'p50 s':>7} {'p99 s':>7} {'max s':>7} {'rows/s':>8}")
    print("-" * 73)
    with psycopg.connect(pg.dsn(), autocommit=True) as conn:
        for label, count, per_tx in (
            ("1 listing per transaction, x20", 20, 1),
            ("500 listings in one transaction", 500, 500),
            ("2,000 listings in one transaction", 2000, 2000),
        ):
            ids: list[int] = []
            started = time.time()
            for first in range(0, count, per_tx):
                with conn.transaction():
                    for i in range(first, first + per_tx):
                        ids.append(
                            conn.execute(
                                f"INSERT INTO tbl_car_price ({COLUMNS}) VALUES "
                                "(%s,%s,%s,%s,%s,%s,%s,%s,%s) RETURNING id",
                                _listing(i),
                            ).fetchone()[0]
                        )
                if per_tx == 1:
                    time.sleep(0.25)  # arrivals spread out, as sellers do
            try:
                latencies, last_written = _measure(conn, ids, timeout=180)
            finally:
                conn.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (ids,))
            latencies.sort()
            p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
            # throughput only means something when the rows arrive together
            rate = (
                f"{count / max(last_written - started, 1e-6):>8.0f}" if per_tx > 1 else f"{'-':>8}"
            )
            print(
                f"{label:<34} {count:>5} {statistics.median(latencies):>7.2f} {p99:>7.2f} "
                f"{latencies[-1]:>7.2f} {rate}"
            )


def main() -> int:
    settings = StackSettings()
    print("Pipeline benchmark: insert → prediction row (written_at - source_committed_at)")
    pipeline_table(settings)
    memory_table(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
