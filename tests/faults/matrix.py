"""The fault matrix's load, faults and verdict (the fixtures are in conftest.py).

- The `load` fixture writes FAULT_LISTINGS listings (default 5,000; `make down` 50,000) in
  one COPY.
- `change_some` updates a tenth of them and deletes another tenth: while the fault is on
  where the fault lets a client write (its `fault_on` check proves the fault was still on
  when the changes were committed), else just before the fault (Postgres stopped,
  `make down`), where `verdict.changes_in_flight` proves they were still in flight.
- `fault_began` stamps the moment (database clock) the fault began and notes which live
  listings had no answer of their latest state then (`Load.pending`; for a Postgres
  restart: when the server came back; for `make down`, taken just before it); `judge` waits
  until every live listing has a prediction of its latest state and no deleted one has
  any, and reports lost / stale counts, the seconds to recover and `in_flight`: how many
  untouched listings were pending at the fault and answered after it began. (Not "written
  since the fault": a redelivery stamps `written_at` again on a listing answered before.)
  `assert_healed` fails unless that is more than zero: a fault that hit no work in flight
  proves nothing.
- Connect must heal without a redeploy: `ConnectConfigs` keeps each connector's config and
  the end of the worker's config topic, where every PUT of a config writes a record.
- `make chaos` runs the same tests with a larger load and prints the table the tests
  append to test-artifacts/chaos.jsonl.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path

import httpx
import psycopg
from confluent_kafka import TopicPartition

from config.settings import REPO_ROOT, StackSettings
from operations import connectors, reconcile
from stack.supervisor import Supervisor
from tests.support import end_offsets, read_to_end, wait_for

LISTINGS = int(os.environ.get("FAULT_LISTINGS", "5000"))
RECOVERY_LIMIT_S = float(os.environ.get("FAULT_RECOVERY_LIMIT_S", "60"))
RESULTS = REPO_ROOT / "test-artifacts" / "chaos.jsonl"
WORKER_PROPERTIES = REPO_ROOT / "stack" / "templates" / "connect-distributed.properties"

# latest state = the prediction answers a change committed at or after updated_at
# (Debezium's commit time has millisecond precision)
COUNTS = """
    SELECT count(*) FILTER (WHERE p.car_id IS NULL),
           count(*) FILTER (WHERE p.car_id IS NOT NULL AND (p.source_committed_at IS NULL
                            OR p.source_committed_at < date_trunc('milliseconds', c.updated_at)))
    FROM tbl_car_price c LEFT JOIN tbl_price_prediction p ON p.car_id = c.id
    WHERE c.id = ANY(%(ids)s)
"""
ANSWERED_SINCE = """
    SELECT car_id FROM tbl_price_prediction WHERE car_id = ANY(%s) AND written_at >= %s
"""


@dataclass(frozen=True)
class ConnectConfigs:
    """Each connector's config and the end of Connect's config topic, at one moment."""

    configs: dict[str, dict]
    topic_end: TopicPartition

    @staticmethod
    def topic() -> str:
        for line in WORKER_PROPERTIES.read_text().splitlines():
            if line.startswith("config.storage.topic="):
                return line.split("=", 1)[1].strip()
        raise AssertionError(f"no config.storage.topic in {WORKER_PROPERTIES}")

    @classmethod
    def now(cls, settings: StackSettings) -> ConnectConfigs:
        with httpx.Client(
            base_url=settings.connect.url, auth=settings.connect.rest_auth, timeout=10
        ) as client:
            names = client.get("/connectors").raise_for_status().json()
            configs = {
                name: client.get(f"/connectors/{name}/config").raise_for_status().json()
                for name in sorted(names)
            }
        [end] = end_offsets(settings, cls.topic())
        return cls(configs, end)

    def written_since(self, settings: StackSettings) -> list[str]:
        """Keys of the records the workers wrote to the config topic since then: a PUT is
        `connector-<name>`, a REST restart `restart-connector-<name>`."""
        return [m.key().decode() for m in read_to_end(settings, [self.topic_end]) if m.key()]


@dataclass
class Load:
    ids: list[int]
    connect: ConnectConfigs
    updated: list[int] = field(default_factory=list)
    deleted: list[int] = field(default_factory=list)
    changed_at: datetime | None = None  # database clock, when change_some committed
    fault_at: datetime | None = None  # database clock, when the fault began
    pending: set[int] | None = None  # live listings unanswered (latest state) at the fault

    @property
    def live(self) -> list[int]:
        gone = set(self.deleted)
        return [i for i in self.ids if i not in gone]

    @property
    def untouched(self) -> list[int]:
        changed = set(self.updated) | set(self.deleted)
        return [i for i in self.ids if i not in changed]


@dataclass
class Verdict:
    fault: str
    listings: int
    in_flight: int  # untouched listings pending at the fault, answered after it began
    changes_in_flight: int | None  # same for the updated ones, when changed before the fault
    lost: int
    stale: int
    resurrected: int
    recover_s: float
    # the slowest of the listings written one by one during a cluster fault: commit -> priced
    max_wait_s: float | None = None


def connect(settings: StackSettings) -> psycopg.Connection:
    return psycopg.connect(settings.postgres.dsn(), autocommit=True, connect_timeout=3)


def answered(settings: StackSettings, ids: list[int]) -> int:
    with connect(settings) as conn:
        return conn.execute(
            "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
        ).fetchone()[0]


def wait_streaming(settings: StackSettings, load: Load) -> int:
    """Until the first listings of the load are priced: the COPY is streaming through."""
    return wait_for(lambda: answered(settings, load.ids), timeout=60, interval=0.05)  # type: ignore[return-value]


def fault_began(settings: StackSettings, load: Load, since_server_start: bool = False) -> None:
    """Stamp the fault's start on the database clock, right after it was applied; with
    `since_server_start`, Postgres' own (re)start time (it was down during the fault)."""
    clock = "pg_postmaster_start_time()" if since_server_start else "clock_timestamp()"
    with connect(settings) as conn:
        load.fault_at = conn.execute(f"SELECT {clock}").fetchone()[0]
    if load.pending is None:  # else noted before a fault that took the database down too
        load.pending = unanswered(settings, load)


def unanswered(settings: StackSettings, load: Load) -> set[int]:
    """The live listings of the load whose latest state has no answer yet (reconcile's
    query, with no grace period)."""
    live = load.live
    with connect(settings) as conn:
        return set(reconcile.unanswered(conn, 0, limit=len(live), ids=set(live)))


def change_some(
    settings: StackSettings,
    load: Load,
    fault_on: Callable[[], object] | None = None,
    attempts_s: float = 120,
) -> None:
    """Update a tenth and delete a tenth of the load (retried while the database is down);
    `fault_on()` must still hold once the changes are committed."""
    updated, deleted = load.ids[::10], load.ids[5::10]
    deadline = time.monotonic() + attempts_s
    while True:
        try:
            with connect(settings) as conn:
                conn.execute(
                    "UPDATE tbl_car_price SET mileage = mileage + 1 WHERE id = ANY(%s)", (updated,)
                )
                conn.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (deleted,))
                load.changed_at = conn.execute("SELECT clock_timestamp()").fetchone()[0]
            load.updated, load.deleted = updated, deleted
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1)
    if fault_on is not None:
        assert fault_on(), "the fault was over before the changes were committed"


def judge(
    settings: StackSettings,
    fault: str,
    load: Load,
    fault_ended: float,
    timeout: float = 240,
    keep: bool = True,
) -> Verdict:
    """Wait until the load is fully answered (or timeout) and measure what is left; `keep`
    it in test-artifacts/chaos.jsonl (else the test calls `keep_verdict` once it is done)."""
    assert load.fault_at is not None, "fault_began() was not called"
    deadline = time.monotonic() + timeout
    lost = stale = resurrected = -1
    while time.monotonic() < deadline:
        try:
            with connect(settings) as conn:
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
    recover_s = round(time.monotonic() - fault_ended, 1)
    changed_before = load.changed_at is not None and load.changed_at <= load.fault_at
    assert load.pending is not None
    with connect(settings) as conn:
        since = {row[0] for row in conn.execute(ANSWERED_SINCE, (load.ids, load.fault_at))}
    in_flight = len(load.pending & since & set(load.untouched))
    changes = len(load.pending & since & set(load.updated))
    verdict = Verdict(
        fault,
        len(load.ids),
        in_flight,
        changes if changed_before else None,
        lost,
        stale,
        resurrected,
        recover_s,
    )
    if keep:
        keep_verdict(verdict)
    return verdict


def keep_verdict(verdict: Verdict) -> None:
    """Append it to the results `make chaos` prints, and show it with the test's output."""
    RESULTS.parent.mkdir(exist_ok=True)
    with RESULTS.open("a") as out:
        out.write(json.dumps(asdict(verdict)) + "\n")
    print(f"\n{verdict}")


def assert_healed(
    settings: StackSettings, verdict: Verdict, load: Load, deploys_by_make_up: bool = False
) -> None:
    """Nothing lost, stale or back; work was in flight at the fault (and the changes made
    just before it, if so); recovered in time; every connector RUNNING with the config it
    had, and no PUT of a config meanwhile (`make up` PUTs each once: `deploys_by_make_up`);
    every program RUNNING under supervisor."""
    assert (verdict.lost, verdict.stale, verdict.resurrected) == (0, 0, 0), verdict
    assert verdict.in_flight > 0, f"nothing was in flight when the fault began: {verdict}"
    assert verdict.changes_in_flight != 0, f"the changes were answered before the fault: {verdict}"
    assert verdict.recover_s <= RECOVERY_LIMIT_S, verdict
    states = connectors.all_states(settings.connect)
    assert states and all(state.running for state in states), [s.line() for s in states]
    after = ConnectConfigs.now(settings)
    assert after.configs == load.connect.configs, "a connector's config changed"
    written = load.connect.written_since(settings)
    puts = sorted(key for key in written if key.removeprefix("connector-") in after.configs)
    expected = sorted(f"connector-{name}" for name in after.configs) if deploys_by_make_up else []
    assert puts == expected, f"connectors redeployed (config topic records since: {written})"
    supervisor = Supervisor(settings)
    assert all(p.state == "RUNNING" for p in supervisor.processes()), supervisor.processes()


def pid_of(supervisor: Supervisor, name: str) -> int:
    return next(p.pid for p in supervisor.processes() if p.name == name)


def state_of(supervisor: Supervisor, name: str) -> str:
    return next(p.state for p in supervisor.processes() if p.name == name)


def reconcile_count(settings: StackSettings) -> int:
    """How often the watchdog had to re-send listings: a fault test expects it unchanged,
    proving the pipeline itself lost nothing."""
    log = settings.log_dir / "watchdog.log"
    return log.read_text().count("reconcile: re-sent") if log.exists() else 0


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
