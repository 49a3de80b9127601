"""The Grafana dashboard (monitoring/grafana/dashboards/pipeline.json): every panel's query
evaluates on the live Prometheus and returns data, once a few listings went through."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import psycopg
import pytest

from config.settings import StackSettings
from tests.support import wait_for

DASHBOARD = Path(__file__).resolve().parents[2] / "monitoring/grafana/dashboards/pipeline.json"


def panel_queries() -> list[tuple[str, str]]:
    panels = json.loads(DASHBOARD.read_text())["panels"]
    return [(p["title"], t["expr"]) for p in panels for t in p.get("targets", [])]


def query(settings: StackSettings, expr: str) -> dict:
    url = f"{settings.monitoring.prometheus_url}/api/v1/query"
    return httpx.get(url, params={"query": expr}, timeout=10).json()


def test_the_dashboard_is_valid_and_uses_the_provisioned_data_source() -> None:
    dashboard = json.loads(DASHBOARD.read_text())
    assert dashboard["uid"] == "car-price-pipeline"
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == "prometheus", panel["title"]
    assert len(panel_queries()) >= 20


@pytest.fixture(scope="module")
def listings_went_through(stack_ready: StackSettings) -> StackSettings:
    """A few listings priced and written, then one scrape-and-rate window."""
    with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as conn:
        ids = [
            conn.execute(
                "INSERT INTO tbl_car_price (model, year, price, transmission, mileage, fuel_type,"
                " tax, mpg, engine_size) VALUES ('Focus', 2019, 12995, 'Manual', %s, 'Petrol',"
                " 145, 58.9, 1.0) RETURNING id",
                (20_000 + n,),
            ).fetchone()[0]
            for n in range(5)
        ]
        wait_for(
            lambda: (
                conn.execute(
                    "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
                ).fetchone()[0]
                == len(ids)
            ),
            timeout=60,
        )
    # the exporters' next scrapes, so rates over [1m] have two samples of the new counts
    wait_for(lambda: query(stack_ready, "car_pipeline_predictions_rows")["data"]["result"])
    wait_for(
        lambda: query(stack_ready, "sum(rate(transformer_predictions_produced_total[1m])) > 0")[
            "data"
        ]["result"],
        timeout=60,
    )
    return stack_ready


@pytest.mark.parametrize(("title", "expr"), panel_queries())
def test_every_panel_query_returns_data(
    listings_went_through: StackSettings, title: str, expr: str
) -> None:
    answer = query(listings_went_through, expr)
    assert answer["status"] == "success", f"{title}: {answer}"
    assert answer["data"]["result"], f"{title}: `{expr}` returned no series"
