"""The fault matrix: a real load in flight, a real fault on a real process, then the
checks every fault must pass.

- `load` writes FAULT_LISTINGS listings (default 5,000) in one COPY and, while the fault
  is on, updates a tenth of them and deletes another tenth: changes in flight everywhere.
- `verdict` waits until every live listing has a prediction of its latest state and no
  deleted one has any, then reports lost / stale counts and the seconds to recover.
- `make chaos` runs the same tests with a larger load and prints the table the tests
  append to test-artifacts/chaos.jsonl.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg
import pytest

from config.settings import REPO_ROOT, StackSettings
from stack.supervisor import Supervisor

LISTINGS = int(os.environ.get("FAULT_LISTINGS", "5000"))
RECOVERY_LIMIT_S = float(os.environ.get("FAULT_RECOVERY_LIMIT_S", "60"))
RESULTS = REPO_ROOT / "test-artifacts" / "chaos.jsonl"
MODELS = ("Fiesta", "Focus", "Kuga", "EcoSport", "Puma")

# latest state = the prediction answers a change committed at or after updated_at
# (Debezium's commit time has millisecond precision)
COUNTS = """
    SELECT count(*) FILTER (WHERE p.car_id IS NULL),
           count(*) FILTER (WHERE p.car_id IS NOT NULL AND (p.source_committed_at IS NULL
                            OR p.source_committed_at < date_trunc('milliseconds', c.updated_at)))
    FROM tbl_car_price c LEFT JOIN tbl_price_prediction p ON p.car_id = c.id
    WHERE c.id = ANY(%(ids)s)
"""


@dataclass
class Load:
    ids: list[int]
    updated: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)

    @property
    def live(self) -> list[int]:
        gone = set(self.deleted)
        return [i for i in self.ids if i not in gone]


@dataclass
class Verdict:
    fault: str
    listings: int
    lost: int
    stale: int
    resurrected: int
    recover_s: float


def copy_listings(conn: psycopg.Connection, count: int) -> list[int]:
    """Insert `count` generated listings in one COPY (one transaction); returns their ids."""
    start = conn.execute("SELECT coalesce(max(id), 0) FROM tbl_car_price").fetchone()[0]
    with conn.transaction():
        with conn.cursor().copy(
            "COPY tbl_car_price (model, year, price, transmission, mileage, fuel_type, tax,"
            " mpg, engine_size) FROM STDIN"
        ) as copy:
            for i in range(count):
                copy.write_row(
                    (
                        MODELS[i % len(MODELS)],
                        2012 + i % 10,
                        5000 + i % 9000,
                        "Manual" if i % 3 else "Automatic",
                        1000 + i * 7,
                        "Petrol" if i % 2 else "Diesel",
                        145,
                        55.4,
                        1.0 + (i % 4) * 0.5,
                    )
                )
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM tbl_car_price WHERE id > %s ORDER BY id LIMIT %s", (start, count)
            )
        ]
    assert len(ids) == count
    return ids


def change_some(settings: StackSettings, load: Load, attempts_s: float = 120) -> None:
    """Update a tenth and delete a tenth of the load; retried while the database is down."""
    updated, deleted = load.ids[::10], load.ids[5::10]
    deadline = time.monotonic() + attempts_s
    while True:
        try:
            with psycopg.connect(
                settings.postgres.dsn(), autocommit=True, connect_timeout=3
            ) as conn:
                conn.execute(
                    "UPDATE tbl_car_price SET mileage = mileage + 1 WHERE id = ANY(%s)", (updated,)
                )
                conn.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (deleted,))
            load.updated, load.deleted = updated, deleted
            return
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)


def judge(
    settings: StackSettings, fault: str, load: Load, fault_ended: float, timeout: float = 240
) -> Verdict:
    """Wait until the load is fully answered (or timeout) and measure what is left."""
    deadline = time.monotonic() + timeout
    lost = stale = resurrected = -1
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(
                settings.postgres.dsn(), autocommit=True, connect_timeout=3
            ) as conn:
                lost, stale = conn.execute(COUNTS, {"ids": load.live}).fetchone()
                resurrected = conn.execute(
                    "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)",
                    (load.deleted,),
                ).fetchone()[0]
        except psycopg.OperationalError:
            pass
        if lost == 0 and stale == 0 and resurrected == 0:
            break
        time.sleep(1)
    verdict = Verdict(
        fault, len(load.ids), lost, stale, resurrected, round(time.monotonic() - fault_ended, 1)
    )
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(asdict(verdict)) + "\n")
    print(f"\n{verdict}")
    return verdict


def assert_healed(settings: StackSettings, verdict: Verdict) -> None:
    from stack import connectors

    assert (verdict.lost, verdict.stale, verdict.resurrected) == (0, 0, 0), verdict
    assert verdict.recover_s <= RECOVERY_LIMIT_S, verdict
    states = connectors.all_states(settings.connect)
    assert states and all(state.running for state in states), [s.line() for s in states]
    supervisor = Supervisor(settings)
    assert all(p.state == "RUNNING" for p in supervisor.processes()), supervisor.processes()


def pid_of(supervisor: Supervisor, name: str) -> int:
    return next(p.pid for p in supervisor.processes() if p.name == name)


def reconcile_count(settings: StackSettings) -> int:
    """How often the watchdog had to re-send listings: a fault test expects it unchanged,
    proving the pipeline itself lost nothing."""
    log = settings.log_dir / "watchdog.log"
    return log.read_text().count("reconcile: re-sent") if log.exists() else 0


@pytest.fixture()
def supervisor(stack_ready: StackSettings) -> Supervisor:
    return Supervisor(stack_ready)


@pytest.fixture()
def load(stack_ready: StackSettings) -> Iterator[Load]:
    """FAULT_LISTINGS listings committed in one COPY; removed afterwards."""
    with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as conn:
        loaded = Load(copy_listings(conn, LISTINGS))
    resent_before = reconcile_count(stack_ready)
    yield loaded
    assert reconcile_count(stack_ready) == resent_before, "the watchdog had to re-send listings"
    with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as conn:
        conn.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (loaded.ids,))


def make(*targets: str) -> None:
    subprocess.run(
        ["make", "--no-print-directory", *targets],
        cwd=REPO_ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def wait_for_program(
    supervisor: Supervisor, name: str, old_pid: int | None = None, timeout: float = 120
) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process = next(p for p in supervisor.processes() if p.name == name)
        if process.state == "RUNNING" and process.pid != old_pid:
            return process.pid
        time.sleep(0.5)
    raise AssertionError(f"{name} not back under supervisor within {timeout}s")


def unanswered_requests(port: int) -> int:
    """Requests sitting unread in the receive queues of connections to `port` (a stopped
    server's backlog): proof that a client is waiting for an answer mid-batch."""
    waiting = 0
    for table in (Path("/proc/net/tcp"), Path("/proc/net/tcp6")):
        for line in table.read_text().splitlines()[1:]:
            parts = line.split()
            local_port = int(parts[1].rsplit(":", 1)[1], 16)
            rx_queue = int(parts[4].split(":")[1], 16)
            # 01 ESTABLISHED: request bytes unread; 0A LISTEN: connections not accepted
            if local_port == port and parts[3] in {"01", "0A"} and rx_queue > 0:
                waiting += 1
    return waiting


def keep_down(supervisor: Supervisor, name: str, settle_s: float = 5.0) -> None:
    """After a SIGKILL, stop supervisor's automatic restart so the program stays down."""
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        supervisor.stop_program_if_running(name)
        time.sleep(0.2)


def parent_of(pid: int) -> int:
    """The parent pid, from /proc (fields after the command name: state, ppid, ...)."""
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
