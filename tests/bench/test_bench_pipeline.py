"""The benchmark (bench/pipeline.py): its pure logic, and a tiny run against the real stack."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from bench import pipeline as bench
from bench.pipeline import HOPS, Progress, Run, ford_listings, format_table, percentile
from config.settings import REPO_ROOT, StackSettings
from tests.support import wait_for


def test_percentile_is_nearest_rank_of_unsorted_values() -> None:
    values = [float(v) for v in range(100, 0, -1)]  # 1..100, reversed

    assert [percentile(values, q) for q in (0, 50, 99, 100)] == [1.0, 50.0, 99.0, 100.0]
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_summary_has_latency_and_every_hop() -> None:
    run = Run("steady 5/s", 4, 5.0, [40.0, 10.0, 30.0, 20.0], {HOPS[0]: [1.0, 2.0, 3.0, 4.0]})

    summary = run.summary()

    assert (summary["p50_ms"], summary["p99_ms"], summary["max_ms"]) == (20.0, 40.0, 40.0)
    assert (summary[f"{HOPS[0]} p50_ms"], summary[f"{HOPS[0]} p99_ms"]) == (2.0, 4.0)


def test_table_has_a_line_per_run_dashes_for_missing_numbers_and_the_notes() -> None:
    runs = [
        Run("bulk 20,000", 20_000, 5245.4, [100.0, 900.0], dict.fromkeys(HOPS, [5.0, 7.0])),
        Run("seed bridge 15 s", 2775, 185.0),
    ]

    lines = format_table(runs, ["bulk / bridge: 28.4x"]).splitlines()

    assert lines[0].split()[:6] == ["run", "listings", "listings/s", "p50", "ms", "p99"]
    assert all(hop in lines[0] for hop in HOPS)
    bulk, seed = lines[2], lines[3]
    assert bulk.split()[:7] == ["bulk", "20,000", "20,000", "5,245", "100", "900", "900"]
    assert bulk.split()[7:] == ["5/7"] * 3
    assert seed.split()[:5] == ["seed", "bridge", "15", "s", "2,775"]
    assert seed.split()[5:] == ["185", "-", "-", "-", "-/-", "-/-", "-/-"]
    assert lines[-1] == "bulk / bridge: 28.4x" and len({len(lines[0]), len(bulk)}) == 1


def test_csv_rows_become_table_rows_and_rows_the_table_refuses_are_left_out(
    tmp_path: Path,
) -> None:
    csv = tmp_path / "cars.csv"
    csv.write_text(
        "model,year,price,transmission,mileage,fuelType,tax,mpg,engineSize\n"
        " Fiesta,2017,12000,Automatic,15944,Petrol,150,57.7,1.0\n"
        " Focus,2060,14000,Manual,9083,Petrol,150,57.7,1.0\n"  # year too far ahead
    )

    assert ford_listings(csv) == [
        ("Fiesta", 2017, 12000, "Automatic", 15944, "Petrol", 150, 57.7, 1.0)
    ]


def test_growth_names_only_what_grows_run_over_run_beyond_the_slack() -> None:
    after = [
        {"kafka": 500.0, "connect": 700.0, "postgres": 300.0},
        {"kafka": 540.0, "connect": 690.0, "postgres": 330.0},  # kafka: warms up once
        {"kafka": 545.0, "connect": 760.0, "postgres": 360.0},  # connect: not run over run
    ]

    line = bench.growth(after, slack_mib=16)

    assert line.startswith("RSS MiB after the last 3 bulk runs: kafka 500→540→545; connect")
    assert line.endswith("(growing: postgres)")
    assert bench.growth(after[:1] * 3).endswith("(no component grows)")


def test_progress_says_every_line_and_while_waiting_one_line_per_period(
    capsys: pytest.CaptureFixture[str],
) -> None:
    say = Progress(every=0.2)

    say("bulk 200: one COPY")
    say.tick(lambda: "too soon")
    time.sleep(0.25)
    say.tick(lambda: "  50 / 200 priced")
    say.tick(lambda: "too soon again")

    lines = capsys.readouterr().out.splitlines()
    assert [line.split("] ", 1)[1] for line in lines] == ["bulk 200: one COPY", "  50 / 200 priced"]
    assert all(line.startswith("[bench ") for line in lines)


def _counts(db: psycopg.Connection) -> tuple[int, ...]:
    return db.execute(
        "SELECT (SELECT count(*) FROM tbl_car_price), (SELECT count(*) FROM tbl_price_prediction),"
        " (SELECT count(*) FROM tbl_price_prediction_deleted)"
    ).fetchone()


def test_a_tiny_bench_measures_the_real_stack_and_leaves_no_row_behind(
    db: psycopg.Connection, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = _counts(db)

    argv = ["--warm-up", "50", "--bulk", "200", "100", "100", "--rates", "20"]
    argv += ["--steady-seconds", "2"]
    argv += ["--bridge-seconds", "2"]
    argv += ["--rescore-listings", "1000", "--rescore-rates", "20"]
    assert bench.main([*argv, "--out", str(tmp_path)]) == 0

    report = json.loads((tmp_path / "bench.json").read_text())
    (bulk, _, again, steady, idle, rescoring) = report["runs"]
    assert (bulk["name"], bulk["listings"], steady["name"]) == ("bulk 200", 200, "steady 20/s")
    assert again["name"] == "bulk 100 #2" and len(report["rss_after_bulk_mib"]) == 3
    assert rescoring["name"] == "steady 20/s + rescore"
    assert (idle["name"], idle["listings"]) == ("rescore 1,000 idle", 1000) and idle["rate"] > 0
    assert idle["cpu_ms"]["connect"] > 0, "the rescore's CPU per listing, by component"
    for run in (bulk, steady, rescoring):  # timing goals are `make bench`'s, not a test's
        assert run["listings"] > 0 and 0 < run["rate"] < math.inf, run["name"]
        assert len(run["latency_ms"]) == run["listings"], f"{run['name']}: every listing measured"
        s = run["summary"]
        assert 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"] < math.inf, run["name"]
        for hop in HOPS:
            assert len(run["hops_ms"][hop]) == run["listings"], f"{hop}: every row has its times"
            assert -50 < s[f"{hop} p50_ms"] <= s[f"{hop} p99_ms"] < math.inf, hop
    assert 0 <= bulk["first_ms"] < math.inf
    assert set(bulk["cpu_ms"]) >= {"postgres", "kafka", "connect", "bentoml", "transformer"}
    assert bulk["cpu_ms"]["transformer"] > 0 and sum(bulk["cpu_ms"].values()) > 0
    assert report["bridge"]["listings"] > 0 and report["bridge"]["rate"] > 0
    assert set(report["rss_peak_mib"]) >= {"postgres", "kafka", "connect", "bentoml"}
    assert (tmp_path / "latency_cdf.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "bulk 200" in out and "steady 20/s" in out and "bulk / bridge:" in out
    assert "steady 20/s + rescore vs steady 20/s: p50" in out and "rescore of" in out
    assert "rescore 1,000 idle: CPU ms per listing " in out
    assert "bulk 200: CPU ms per listing " in out and "listings/s)" in out
    growth = next(line for line in out.splitlines() if "after the last 3 bulk runs" in line)
    assert all(f"{name} " in growth for name in ("postgres", "kafka", "connect", "bentoml"))
    assert _counts(db) == before, "listings, predictions and deletion traces all cleaned up"


@dataclass(frozen=True)
class BenchRun:
    lines: list[tuple[float, str]]  # (seconds since the start, line) as each line came out
    ended: float  # seconds from the start to the process' exit
    returncode: int
    foreign_before: dict[int, object]  # car_id -> written_at of listings not the bench's
    foreign_after: dict[int, object]


def _written_at(db: psycopg.Connection, ids: list[int]) -> dict[int, object]:
    return dict(
        db.execute(
            "SELECT car_id, written_at FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
        ).fetchall()
    )


@pytest.fixture(scope="module")
def bench_beside_other_listings(
    stack_ready: StackSettings, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[BenchRun]:
    """`python -m bench`, small, as `make bench` runs it, on a table that already holds
    priced listings that are not the bench's; its output read line by line as it comes."""
    with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as db:
        foreign = bench._copy(db, ford_listings(stack_ready.ford_csv_path), 300)
        try:
            wait_for(lambda: bench._priced(db, foreign) == len(foreign), timeout=120)
            before = _written_at(db, foreign)
            argv = ["--warm-up", "0", "--bulk", "100", "--rates", "20", "--steady-seconds", "4"]
            argv += ["--bridge-seconds", "0", "--rescore-listings", "1000", "--rescore-rates", "20"]
            argv += ["--out", str(tmp_path_factory.mktemp("bench"))]
            started, lines = time.monotonic(), []
            with subprocess.Popen(
                [sys.executable, "-m", "bench", *argv],
                cwd=REPO_ROOT,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            ) as process:
                for line in process.stdout:
                    lines.append((time.monotonic() - started, line.rstrip("\n")))
            ended = time.monotonic() - started
            yield BenchRun(lines, ended, process.returncode, before, _written_at(db, foreign))
        finally:
            bench._cleanup(db, foreign, 120, Progress(math.inf))


def test_the_bench_says_what_it_does_while_it_runs(bench_beside_other_listings: BenchRun) -> None:
    run = bench_beside_other_listings
    text = "\n".join(line for _, line in run.lines)
    assert run.returncode == 0, text
    progress = [(at, line) for at, line in run.lines if line.startswith("[bench ")]
    for phase in (
        "bulk 100: one COPY",
        "bulk 100: 100 listings, ",
        "steady 20/s for 4 s",
        "steady 20/s: ",
        "rescore of 1,000 listings on an otherwise idle pipeline",
        "rescore 1,000 idle: 1,000 listings, ",
        "steady 20/s while a rescore re-prices 1,000 listings of its own",
        "rescore: done: every listing is priced by",
        "steady 20/s + rescore: ",
    ):
        assert any(phase in line for _, line in progress), f"no line for {phase!r}:\n{text}"
    assert progress[0][0] < run.ended - 3, f"the first line came only as the bench ended:\n{text}"
    table = next(i for i, (_, line) in enumerate(run.lines) if line.startswith("run "))
    assert run.lines.index(progress[-1]) < table, "progress first, then the table"


def test_the_rescore_phase_reprices_only_the_benchs_own_listings(
    bench_beside_other_listings: BenchRun,
) -> None:
    run = bench_beside_other_listings
    assert run.returncode == 0, "\n".join(line for _, line in run.lines)
    assert len(run.foreign_before) == 300
    changed = [car_id for car_id, at in run.foreign_before.items()
               if run.foreign_after.get(car_id) != at]  # fmt: skip
    assert not changed, f"{len(changed)} listings not the bench's re-priced, e.g. {changed[:5]}"
