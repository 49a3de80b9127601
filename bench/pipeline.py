"""`make bench`: how fast the running pipeline prices listings, where the time goes, and
how it compares with the seed project's per-message bridge. A benchmark, not a test: it
says what it does as it goes (a line per phase, and every few seconds while it waits),
then prints one table and writes the raw numbers (bench.json) and a latency CDF per run
(latency_cdf.png) under reports/bench/.

- bulk N: N listings in one `COPY`, one transaction; rate = N / (commit → last prediction
  row written); the CPU each component spent per listing; memory (PSS) at the peak and
  after each run: the last three runs show whether a component grows;
- steady R/s: one listing per transaction at R listings/s for `--steady-seconds`;
- latency = written_at − created_at, both from the database's clock; per hop: commit
  (Debezium source.ts_ms) → consumed by the transformer → BentoML's reply → written_at;
- rescore N idle: `make rescore` (operations/rescore.py) re-pricing --rescore-listings
  listings of the bench's own on an otherwise idle pipeline: its rate and CPU per listing;
- steady R/s + rescore: each of --rescore-rates while a rescore re-prices --rescore-listings
  listings of the bench's own (only those, whatever else the table holds), counting only
  listings written while it runs, next to the same rate without one;
- bridge: the seed's style on the same stack, measured in the same run: poll one CDC event,
  POST one listing, produce one record, flush (listings written for it, scratch topic).

Listings are rows of FORD_CSV read at run time. Their ids are reserved from the table's
sequence first, so the bench knows exactly which rows are its own; it deletes them at the
end of each run, waits until the pipeline has removed their predictions, then removes
their deletion traces (tbl_price_prediction_deleted).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import math
import os
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import httpx
import numpy as np
import psutil
import psycopg
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from pydantic import ValidationError

from config.settings import StackSettings
from config.waiting import WaitTimeout, wait_until
from model.api_schema import Listing
from model.data import CSV_COLUMNS
from operations import rescore
from stack import readiness
from stack.supervisor import Supervisor
from transformer.events import Invalid, parse

COLUMNS = "id, model, year, price, transmission, mileage, fuel_type, tax, mpg, engine_size"
PER_WRITER = 125  # listings/s per steady-rate connection
HOPS = ("source→consume", "consume→reply", "reply→written")
ROW_TIMES = """
    SELECT extract(epoch FROM p.written_at - c.created_at),
           extract(epoch FROM p.consumed_at - p.source_committed_at),
           extract(epoch FROM p.replied_at - p.consumed_at),
           extract(epoch FROM p.written_at - p.replied_at),
           extract(epoch FROM p.source_committed_at), extract(epoch FROM p.written_at),
           p.status
    FROM tbl_price_prediction p JOIN tbl_car_price c ON c.id = p.car_id
    WHERE p.car_id = ANY(%s)"""


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100): always a measured value; NaN for none."""
    return float(np.percentile(values, q, method="inverted_cdf")) if len(values) else math.nan


class Progress:
    """What the bench prints as it goes (stdout, flushed, time since it began): a line as
    each phase starts and ends, and while it waits a line every `every` seconds."""

    def __init__(self, every: float = 5.0) -> None:
        self.every = every
        self.started = self.last = time.monotonic()

    def __call__(self, line: str) -> None:
        self.last = time.monotonic()
        sys.stdout.write(f"[bench {self.last - self.started:5.0f} s] {line}\n")
        sys.stdout.flush()

    def tick(self, line: Callable[[], str]) -> None:
        """Say `line()` when nothing was said for `every` seconds."""
        if time.monotonic() - self.last >= self.every:
            self(line())


@dataclass
class Run:
    """One measured scenario; times in ms, rate in listings/s."""

    name: str
    listings: int
    rate: float
    latency_ms: list[float] = field(default_factory=list)
    hops_ms: dict[str, list[float]] = field(default_factory=dict)
    first_ms: float | None = None  # bulk: commit → first prediction row
    cpu_ms: dict[str, float] = field(default_factory=dict)  # bulk: CPU per listing, by component

    def line(self) -> str:
        """The run's numbers, for the progress lines."""
        line = f"{self.name}: {self.listings:,} listings, {self.rate:,.0f} listings/s"
        if not self.latency_ms:  # the bridge
            return line
        s = self.summary()
        return f"{line}, p50 {_ms(s['p50_ms'])} ms, p99 {_ms(s['p99_ms'])} ms"

    def summary(self) -> dict[str, float]:
        out = {f"{k}_ms": percentile(self.latency_ms, q) for k, q in (("p50", 50), ("p99", 99))}
        out["max_ms"] = max(self.latency_ms, default=math.nan)
        for hop, values in self.hops_ms.items():
            out |= {
                f"{hop} p50_ms": percentile(values, 50),
                f"{hop} p99_ms": percentile(values, 99),
            }
        return out


def _ms(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:,.0f}"


def format_table(runs: list[Run], notes: Iterable[str] = ()) -> str:
    """The one table `make bench` prints: a line per run, then the notes."""
    hops = "".join(f" {hop + ' p50/p99':>25}" for hop in HOPS)
    header = f"{'run':<20} {'listings':>9} {'listings/s':>10} {'p50 ms':>8} {'p99 ms':>8} "
    header += f"{'max ms':>8}{hops}"
    lines = [header, "-" * len(header)]
    for run in runs:
        s = run.summary()
        hops = [_ms(s.get(f"{hop} p{q}_ms", math.nan)) for hop in HOPS for q in (50, 99)]
        cells = "".join(f" {p50:>12}/{p99:<12}" for p50, p99 in zip(hops[::2], hops[1::2]))
        lines.append(
            f"{run.name:<20} {run.listings:>9,} {run.rate:>10,.0f} {_ms(s['p50_ms']):>8} "
            f"{_ms(s['p99_ms']):>8} {_ms(s['max_ms']):>8}{cells}"
        )
    return "\n".join(lines + ["-" * len(header), *notes])


def ford_listings(path: Path) -> list[tuple]:
    """The CSV's rows as table rows (COLUMNS but id), only those the table accepts."""
    rows = []
    with path.open(newline="") as handle:
        for raw in csv.DictReader(handle):
            model, year, price, transmission, mileage, fuel, tax, mpg, engine = map(
                raw.get, CSV_COLUMNS
            )
            listing = dict(model=model.strip(), year=int(year), transmission=transmission,
                           mileage=int(float(mileage)), fuel_type=fuel, tax=int(float(tax)),
                           mpg=float(mpg), engine_size=float(engine))  # fmt: skip
            try:
                Listing.model_validate(listing)
            except ValidationError:
                continue  # e.g. the file's year 2060
            listing["price"] = int(float(price))
            rows.append(tuple(listing[name] for name in COLUMNS.split(", ")[1:]))
    if not rows:
        raise SystemExit(f"no usable listing in {path}")
    return rows


def _reserve_ids(db: psycopg.Connection, count: int) -> list[int]:
    """Ids only this bench will use: taken from the table's own sequence."""
    return [
        row[0]
        for row in db.execute(
            "SELECT nextval(pg_get_serial_sequence('tbl_car_price', 'id')) "
            "FROM generate_series(1, %s)",
            (count,),
        ).fetchall()
    ]


def _priced(db: psycopg.Connection, ids: list[int]) -> int:
    """How many of `ids` have a prediction row. Polled while the pipeline works, so the
    cheap count over their id range comes first; the exact one only once it can be done."""
    in_range = db.execute(
        "SELECT count(*) FROM tbl_price_prediction WHERE car_id BETWEEN %s AND %s",
        (min(ids), max(ids)),
    ).fetchone()[0]
    if in_range < len(ids):
        return in_range
    return db.execute(
        "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
    ).fetchone()[0]


def _wait_priced(
    db: psycopg.Connection,
    ids: list[int],
    timeout: float,
    say: Progress,
    each: Callable[[], None] = lambda: None,
) -> None:
    """Until every listing has its prediction row; `each` runs between polls."""
    started = time.monotonic()

    def priced() -> int:
        each()
        done = _priced(db, ids)
        say.tick(lambda: f"  {done:,} / {len(ids):,} priced ({time.monotonic() - started:.0f} s)")
        return done

    wait_until(
        priced,
        lambda done: done == len(ids),
        timeout=timeout,
        interval=0.5,
        message=lambda done: (
            f"only {done:,}/{len(ids):,} listings priced after {timeout:.0f}s: "
            "is the pipeline running? (`make status`, .state/logs/)"
        ),
    )


def _measure(db: psycopg.Connection, name: str, ids: list[int], rate: float | None) -> Run:
    """The run's numbers from the tables; rate None: bulk, N / (commit → last row)."""
    rows = db.execute(ROW_TIMES, (ids,)).fetchall()
    refused = sum(1 for row in rows if row[6] != "priced")
    if refused:
        print(f"warning: {refused} of {name}'s listings were refused", file=sys.stderr)
    commit = min(float(row[4]) for row in rows)
    written = [float(row[5]) for row in rows]
    ms = [
        [math.nan if v is None else float(v) * 1000 for v in column]
        for column in zip(*(row[:4] for row in rows))
    ]
    hops = {hop: [v for v in column if not math.isnan(v)] for hop, column in zip(HOPS, ms[1:])}
    if rate is None:
        return Run(
            name,
            len(ids),
            len(ids) / max(max(written) - commit, 1e-3),
            ms[0],
            hops,
            first_ms=(min(written) - commit) * 1000,
        )
    return Run(name, len(ids), rate, ms[0], hops)


def _cleanup(db: psycopg.Connection, ids: list[int], timeout: float, say: Progress) -> None:
    """Delete the listings; once the pipeline has removed their predictions, their traces."""
    db.execute("DELETE FROM tbl_car_price WHERE id = ANY(%s)", (ids,))

    def left() -> int:
        count = db.execute(
            "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
        ).fetchone()[0]
        if count:
            say.tick(lambda: f"  cleanup: {count:,} predictions of deleted listings left")
        return count

    wait_until(
        left,
        lambda count: count == 0,
        timeout=timeout,
        interval=0.5,
        message=lambda count: (
            f"predictions of deleted bench listings still there after {timeout}s ({count:,} left)"
        ),
    )
    db.execute("DELETE FROM tbl_price_prediction_deleted WHERE car_id = ANY(%s)", (ids,))


def _copy(db: psycopg.Connection, rows: list[tuple], count: int) -> list[int]:
    """`count` listings in one COPY, one transaction; returns their ids."""
    ids = _reserve_ids(db, count)
    with (
        db.transaction(),
        db.cursor().copy(f"COPY tbl_car_price ({COLUMNS}) FROM STDIN") as copy,
    ):
        for car_id, row in zip(ids, itertools.cycle(rows)):
            copy.write_row((car_id, *row))
    return ids


def bulk(
    db: psycopg.Connection,
    settings: StackSettings,
    rows: list[tuple],
    count: int,
    sample: Callable,
    say: Progress,
) -> Run:
    """`count` listings in one COPY; the run also says what CPU each component spent per
    listing from the COPY to the last prediction row: on a saturated box, where the rate goes."""
    before = cpu_seconds(settings)
    ids = _copy(db, rows, count)
    try:
        _wait_priced(db, ids, 60 + count / 500, say, each=sample)
        after = cpu_seconds(settings)
        run = _measure(db, f"bulk {count:,}", ids, None)
        run.cpu_ms = {name: (after[name] - before.get(name, 0.0)) * 1e3 / count for name in after}
        return run
    finally:
        _cleanup(db, ids, 60 + count / 500, say)


def steady(
    db: psycopg.Connection,
    rows: list[tuple],
    rate: float,
    seconds: float,
    say: Progress,
    until: threading.Event | None = None,
) -> Run:
    """One listing per transaction at `rate`/s for `seconds` (or `until` is set), from a
    few connections (a commit waits for its WAL flush: one connection tops out at a few
    hundred/s)."""
    ids = _reserve_ids(db, math.ceil(rate * seconds))
    insert = f"INSERT INTO tbl_car_price ({COLUMNS}) VALUES ({', '.join(['%s'] * 10)})"
    writers, started = math.ceil(rate / PER_WRITER), time.monotonic() + 0.1
    sent_by: list[list[int]] = [[] for _ in range(writers)]

    def write(first: int) -> list[int]:  # listings first, first + writers, ... on schedule
        sent = sent_by[first]
        with psycopg.connect(db.info.dsn, password=db.info.password, autocommit=True) as conn:
            for i in range(first, len(ids), writers):
                time.sleep(max(0.0, started + i / rate - time.monotonic()))
                if time.monotonic() - started >= seconds or (until and until.is_set()):
                    break
                conn.execute(insert, (ids[i], *rows[i % len(rows)]), prepare=True)
                sent.append(ids[i])
        return sent

    with ThreadPoolExecutor(writers) as pool:
        futures = [pool.submit(write, first) for first in range(writers)]
        while wait(futures, timeout=1).not_done:
            say.tick(lambda: f"  {sum(map(len, sent_by)):,} written "
                             f"({time.monotonic() - started:.0f} s of {seconds:.0f})")  # fmt: skip
        done = [f.result() for f in futures if f.exception() is None]
    sent = [car_id for part in done for car_id in part]
    if not sent and len(done) == writers:  # `until` came before the first write
        return Run(f"steady {rate:,.0f}/s", 0, 0.0)
    try:
        if len(done) < writers:
            raise next(f.exception() for f in futures if f.exception() is not None)
        achieved = len(sent) / (time.monotonic() - started)
        _wait_priced(db, sent, 120, say)
        return _measure(db, f"steady {rate:,.0f}/s", sent, achieved)
    finally:
        _cleanup(db, sent, 120, say)


def rescore_idle(
    db: psycopg.Connection,
    settings: StackSettings,
    rows: list[tuple],
    listings: int,
    say: Progress,
) -> Run:
    """`make rescore` on an otherwise idle pipeline: `listings` listings of the bench's own are
    priced, then re-priced (only those); rate = listings / the rescore's time, and the CPU each
    component spent per re-priced listing."""
    ids = _copy(db, rows, listings)
    try:
        _wait_priced(db, ids, 60 + listings / 500, say)
        before, started = cpu_seconds(settings), time.monotonic()
        outcome = _rescore_own(settings, ids, say)
        took, after = time.monotonic() - started, cpu_seconds(settings)
        if outcome != 0:
            raise RuntimeError(f"the rescore of {listings:,} listings did not finish")
        run = Run(f"rescore {listings:,} idle", listings, listings / took)
        run.cpu_ms = {
            name: (after[name] - before.get(name, 0.0)) * 1e3 / listings for name in after
        }
        return run
    finally:
        _cleanup(db, ids, 60 + listings / 500, say)


def _rescore_own(settings: StackSettings, ids: list[int], say: Progress) -> int:
    """Re-price the bench's own listings (their id range, whatever else the table holds),
    its progress lines passed through; 0 once every one is re-priced."""
    return rescore.rescore(
        settings,
        120,
        everything=True,
        ids=(min(ids), max(ids)),
        say=lambda line, **_: say(f"  rescore: {line.strip()}"),
        report_s=say.every,
    )


def during_rescore(
    db: psycopg.Connection,
    settings: StackSettings,
    rows: list[tuple],
    listings: int,
    rate: float,
    seconds: float,
    say: Progress,
) -> tuple[Run, str]:
    """Live latency while `make rescore` re-prices listings (issue 13 asks for at most
    twice the latency without it): `listings` listings are priced first, then the rescore
    (operations/rescore.py, its pacing included) re-prices them, and only them, whatever
    else the table holds, while `steady(rate)` writes. The writes start once the first of
    them is re-priced, so they meet a running rescore. Returns the run and what the
    rescore did."""
    ids = _copy(db, rows, listings)
    try:
        _wait_priced(db, ids, 60 + listings / 500, say)
        since, finished = db.execute("SELECT now()").fetchone()[0], threading.Event()

        def rescore_own() -> tuple[int, float]:
            started = time.monotonic()
            try:
                outcome = _rescore_own(settings, ids, say)
                return outcome, time.monotonic() - started
            finally:
                finished.set()

        with ThreadPoolExecutor(1) as pool:
            done = pool.submit(rescore_own)
            with contextlib.suppress(WaitTimeout):  # not begun after a minute: write anyway
                wait_until(
                    lambda: (
                        finished.is_set()
                        or db.execute(
                            "SELECT EXISTS (SELECT FROM tbl_price_prediction "
                            "WHERE car_id = ANY(%s) AND written_at >= %s)",
                            (ids, since),
                        ).fetchone()[0]
                    ),
                    timeout=60,
                    interval=0.05,
                    message=lambda _: "the rescore re-priced nothing in 60 s",
                )
            run = steady(db, rows, rate, seconds, say, until=finished)
            outcome, took = done.result()
        run.name = f"{run.name} + rescore"
        verdict = "done" if outcome == 0 else "did not finish"
        return run, f"rescore of {len(ids):,} listings {verdict} in {took:,.0f} s"
    finally:
        _cleanup(db, ids, 60 + listings / 500, say)


def bridge(
    db: psycopg.Connection,
    settings: StackSettings,
    rows: list[tuple],
    seconds: float,
    say: Progress,
) -> Run:
    """The seed's loop on the same stack: one event → one POST → one produce + flush. It
    reads the CDC events of listings written for it (from the topic's end, no group)."""
    kafka = settings.kafka
    topic = f"bench.bridge.{uuid.uuid4().hex[:8]}"
    admin = AdminClient(settings.kafka_admin(log_level=4))
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    consumer = Consumer(settings.kafka_admin(**{"group.id": topic}))
    producer = Producer(settings.kafka_admin())
    cdc = kafka.cdc_topic
    ends = [
        TopicPartition(cdc, p) for p in consumer.list_topics(cdc, timeout=10).topics[cdc].partitions
    ]
    consumer.assign(
        [
            TopicPartition(cdc, tp.partition, consumer.get_watermark_offsets(tp, timeout=10)[1])
            for tp in ends
        ]
    )
    ids = _copy(db, rows, max(100, math.ceil(seconds * 300)))  # more than it can get through
    priced, started = 0, None
    try:
        with httpx.Client(base_url=settings.services.bentoml_url, timeout=10) as client:
            while priced < len(ids) and (started is None or time.monotonic() - started < seconds):
                message = consumer.poll(10)
                if message is None:
                    raise TimeoutError(f"no CDC event on {cdc} for 10 s")
                started = started or time.monotonic()
                try:
                    event = parse(message.key(), message.value())
                except Invalid:
                    continue
                if event.listing is None:
                    continue  # a delete, a tombstone or a listing the model refuses
                answer = client.post("/predict", json={"listings": [event.listing]})
                answer.raise_for_status()
                producer.produce(topic, answer.content, message.key())
                producer.flush(10)
                priced += 1
                say.tick(lambda: f"  {priced:,} priced ({time.monotonic() - started:.0f} s)")
        return Run(f"seed bridge {seconds:.0f} s", priced, priced / (time.monotonic() - started))
    finally:
        consumer.close()
        admin.delete_topics([topic])[topic].result(timeout=30)
        _cleanup(db, ids, 120, say)


def _tree(pid: int) -> list[psutil.Process]:
    """A process and all its descendants (none when it is gone)."""
    try:
        process = psutil.Process(pid)
        return [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _memory_kib(pid: int) -> int:
    """Memory of a process and all its descendants, in KiB: their proportional set sizes
    (PSS), so pages they share (Postgres' shared buffers, a parent's libraries) count once
    and the components add up to the whole stack's resident memory."""
    total = 0
    for process in _tree(pid):
        with contextlib.suppress(psutil.Error):  # gone meanwhile
            total += process.memory_full_info().pss
    return total // 1024


def cpu_seconds(settings: StackSettings) -> dict[str, float]:
    """CPU time (user + system) used so far per supervised component: that of its
    processes, and of their children which have ended (Postgres' backends of closed
    connections)."""
    spent = {}
    for program in Supervisor(settings).processes():
        total = 0.0
        for process in _tree(program.pid) if program.pid else []:
            with contextlib.suppress(psutil.Error):
                times = process.cpu_times()
                total += times.user + times.system + times.children_user + times.children_system
        spent[program.name] = total
    return spent


def rss_mib(settings: StackSettings) -> dict[str, float]:
    """Resident memory (PSS) per supervised component with its children, in MiB."""
    return {p.name: _memory_kib(p.pid) / 1024 for p in Supervisor(settings).processes() if p.pid}


def growth(after: list[dict[str, float]], slack_mib: float = 16.0) -> str:
    """Memory per component after each of the last bulk runs (at rest, rows cleaned up), and
    which ones grew by more than `slack_mib` after every run: a leak grows run after run, a
    warm-up (JIT, caches) once."""
    parts, growing = [], []
    for name in after[0]:
        mib = [run.get(name, 0.0) for run in after]
        parts.append(f"{name} " + "→".join(f"{v:,.0f}" for v in mib))
        if all(b - a > slack_mib for a, b in itertools.pairwise(mib)):
            growing.append(name)
    verdict = f"growing: {', '.join(growing)}" if growing else "no component grows"
    return f"RSS MiB after the last {len(after)} bulk runs: {'; '.join(parts)} ({verdict})"


def plot_cdf(runs: list[Run], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 5))
    for run in runs:
        ordered = sorted(run.latency_ms)
        axes.plot(ordered, [(i + 1) / len(ordered) for i in range(len(ordered))], label=run.name)
    axes.set(
        xscale="log",
        xlabel="commit → prediction row, ms (written_at − created_at)",
        ylabel="fraction of listings",
        title="Pipeline latency CDF per run",
    )
    axes.grid(True, which="both", alpha=0.3)
    axes.legend()
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.pipeline", description=__doc__.split("\n")[0]
    )
    env = os.environ.get
    parser.add_argument(
        "--bulk",
        type=int,
        nargs="*",
        default=[20_000, 100_000, 100_000, 100_000],
        help="bulk sizes in order; the RSS after the last three shows whether memory grows",
    )
    parser.add_argument("--rates", type=float, nargs="*", default=[100, 500, 1000])
    parser.add_argument(
        "--warm-up", type=int, default=5_000, help="listings of an unmeasured bulk run first"
    )
    parser.add_argument(
        "--steady-seconds", type=float, default=float(env("BENCH_STEADY_SECONDS", "60"))
    )
    parser.add_argument(
        "--bridge-seconds", type=float, default=float(env("BENCH_BRIDGE_SECONDS", "15"))
    )
    parser.add_argument(
        "--rescore-listings",
        type=int,
        default=int(env("BENCH_RESCORE_LISTINGS", "20000")),
        help="listings a rescore re-prices: once on an idle pipeline, then during a steady run "
        "at each --rescore-rates (0: skip them)",
    )
    parser.add_argument(
        "--rescore-rates",
        type=float,
        nargs="*",
        default=[100, 500],
        help="live listings/s written while a rescore runs, each next to the same rate without",
    )
    parser.add_argument("--out", type=Path, default=Path("reports/bench"))
    parser.add_argument(
        "--progress-seconds", type=float, default=5.0, help="a progress line this often"
    )
    args = parser.parse_args(argv)
    settings = StackSettings()
    for name, check in readiness.CHECKS.items():
        if (reason := check(settings)) is not None:
            print(
                f"{name} is not ready ({reason}); start the stack with `make up`", file=sys.stderr
            )
            return 1
    rows = ford_listings(settings.ford_csv_path)
    peak: dict[str, float] = {}
    sampled = 0.0

    def sample() -> None:
        """The whole stack's largest memory seen while bulk runs, read every 2 s at most:
        reading a JVM's page tables costs CPU the pipeline is using."""
        nonlocal sampled
        if time.monotonic() - sampled < 2:
            return
        now, sampled = rss_mib(settings), time.monotonic()
        if sum(now.values()) > sum(peak.values()):
            peak.clear()
            peak.update(now)

    say = Progress(args.progress_seconds)
    with psycopg.connect(settings.postgres.dsn(), autocommit=True) as db:
        if args.warm_up:  # a fresh stack's JVMs compile as they go: not what is measured
            say(f"warm-up: bulk {args.warm_up:,} (not measured)")
            bulk(db, settings, rows, args.warm_up, lambda: None, say)
        runs, at_rest = [], []
        for count in args.bulk:
            say(f"bulk {count:,}: one COPY, then until every listing is priced")
            runs.append(bulk(db, settings, rows, count, sample, say))
            if (nth := args.bulk[: len(runs)].count(count)) > 1:
                runs[-1].name += f" #{nth}"
            at_rest.append(rss_mib(settings))  # after its cleanup: what the run left behind
            say(runs[-1].line())
        seed = None
        if args.bridge_seconds > 0:
            say(f"seed-style bridge: one listing at a time for {args.bridge_seconds:.0f} s")
            seed = bridge(db, settings, rows, args.bridge_seconds, say)
            say(seed.line())
        for rate in args.rates:
            say(f"steady {rate:,.0f}/s for {args.steady_seconds:.0f} s")
            runs.append(steady(db, rows, rate, args.steady_seconds, say))
            say(runs[-1].line())
        compared: list[tuple[Run, Run, str]] = []  # (with a rescore, without, what it did)
        if args.rescore_listings:
            listings = args.rescore_listings
            say(f"rescore of {listings:,} listings on an otherwise idle pipeline")
            runs.append(rescore_idle(db, settings, rows, listings, say))
            say(runs[-1].line())
        for rate in args.rescore_rates if args.rescore_listings else []:
            calm = next((r for r in runs if r.name == f"steady {rate:,.0f}/s"), None)
            if calm is None:
                say(f"steady {rate:,.0f}/s for {args.steady_seconds:.0f} s (to compare with)")
                runs.append(calm := steady(db, rows, rate, args.steady_seconds, say))
                say(calm.line())
            say(f"steady {rate:,.0f}/s while a rescore re-prices {listings:,} listings of its own")
            rescoring, rescored = during_rescore(
                db, settings, rows, listings, rate, args.steady_seconds, say
            )
            runs.append(rescoring)
            compared.append((rescoring, calm, rescored))
            say(f"{rescoring.line()}; {rescored}")
    notes = [
        f"bulk {r.name[5:]}: first prediction {r.first_ms:,.0f} ms after commit"
        for r in runs
        if r.first_ms is not None
    ]
    fastest = max((r.rate for r in runs if r.first_ms is not None), default=None)
    if seed is not None:
        notes.append(
            f"seed-style bridge: {seed.rate:,.0f} listings/s over "
            f"{args.bridge_seconds:.0f} s ({seed.listings:,} events)"
        )
        if fastest:
            notes.append(f"bulk / bridge: {fastest / max(seed.rate, 1e-9):,.1f}x")
    for rescoring, calm, rescored in compared:
        busy, normal = rescoring.summary(), calm.summary()
        notes.append(
            f"{rescoring.name} vs {calm.name}: p50 {busy['p50_ms'] / normal['p50_ms']:.1f}x, "
            f"p99 {busy['p99_ms'] / normal['p99_ms']:.1f}x ({rescored})"
        )
    for r in runs:
        if r.cpu_ms:
            parts = ", ".join(f"{name} {ms:.3f}" for name, ms in r.cpu_ms.items() if ms >= 0.0005)
            total, cores = sum(r.cpu_ms.values()), os.cpu_count() or 1
            notes.append(
                f"{r.name}: CPU ms per listing {parts}; total {total:.3f} "
                f"(on {cores} cores at most {cores * 1e3 / total:,.0f} listings/s)"
            )
    if len(at_rest) >= 3:
        notes.append(growth(at_rest[-3:]))
    if peak:
        parts = ", ".join(f"{name} {mib:,.0f}" for name, mib in peak.items())
        notes.append(f"RSS MiB at the bulk peak: {parts}; total {sum(peak.values()):,.0f}")
    notes.append(f"whole bench: {time.monotonic() - say.started:,.0f} s")
    print(format_table(runs + ([seed] if seed else []), notes))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "runs": [asdict(r) | {"summary": r.summary()} for r in runs],
        "bridge": seed and asdict(seed),
        "rss_peak_mib": peak,
        "rss_after_bulk_mib": at_rest,
        "args": vars(args),
    }
    (args.out / "bench.json").write_text(json.dumps(report, default=str))
    plot_cdf(runs, args.out / "latency_cdf.png")
    print(f"raw numbers: {args.out / 'bench.json'}; latency CDF: {args.out / 'latency_cdf.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
