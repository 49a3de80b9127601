"""The benchmark (bench/pipeline.py): its pure logic, and a tiny run against the real stack."""

from __future__ import annotations

import json
import math
from pathlib import Path

import psycopg
import pytest

from bench import pipeline as bench
from bench.pipeline import HOPS, Run, ford_listings, format_table, percentile


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
    argv += ["--rescore-listings", "100"]
    assert bench.main([*argv, "--out", str(tmp_path)]) == 0

    report = json.loads((tmp_path / "bench.json").read_text())
    (bulk, _, again, steady, rescoring) = report["runs"]
    assert (bulk["name"], bulk["listings"], steady["name"]) == ("bulk 200", 200, "steady 20/s")
    assert again["name"] == "bulk 100 #2" and len(report["rss_after_bulk_mib"]) == 3
    assert rescoring["name"] == "steady 20/s + rescore"
    for run in (steady, rescoring):
        assert 30 <= run["listings"] <= 41 and 5 <= run["rate"] <= 21
    for run in (bulk, steady, rescoring):
        s = run["summary"]
        assert 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"] < 120_000, run["name"]
        for hop in HOPS:
            assert len(run["hops_ms"][hop]) == run["listings"], f"{hop}: every row has its times"
            assert -50 < s[f"{hop} p50_ms"] <= s[f"{hop} p99_ms"] < 120_000, hop
    assert bulk["rate"] > 0 and 0 <= bulk["first_ms"] < 120_000
    assert set(bulk["cpu_ms"]) >= {"postgres", "kafka", "connect", "bentoml", "transformer"}
    assert bulk["cpu_ms"]["transformer"] > 0 and sum(bulk["cpu_ms"].values()) > 0
    assert report["bridge"]["listings"] > 0 and report["bridge"]["rate"] > 0
    assert set(report["rss_peak_mib"]) >= {"postgres", "kafka", "connect", "bentoml"}
    assert (tmp_path / "latency_cdf.png").read_bytes()[:4] == b"\x89PNG"
    out = capsys.readouterr().out
    assert "bulk 200" in out and "steady 20/s" in out and "bulk / bridge:" in out
    assert "steady 20/s + rescore vs steady 20/s: p50" in out and "rescore of" in out
    assert "bulk 200: CPU ms per listing " in out and "listings/s)" in out
    growth = next(line for line in out.splitlines() if "after the last 3 bulk runs" in line)
    assert all(f"{name} " in growth for name in ("postgres", "kafka", "connect", "bentoml"))
    assert _counts(db) == before, "listings, predictions and deletion traces all cleaned up"
