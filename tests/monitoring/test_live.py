"""Prometheus on the running stack: every hop is scraped, exporters bind loopback and show
no secret, nothing fires at rest, and stopping the real transformer fires TransformerDown
(within 3 minutes), which resolves once it is back."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections.abc import Iterator
from datetime import datetime

import httpx
import psutil
import psycopg
import pytest

from config.settings import StackSettings
from operations.status import alerts_lines
from stack.render import instance_name
from stack.supervisor import Supervisor
from tests.support import wait_for

JOBS = {"transformer", "bentoml", "kafka", "connect", "postgres", "prometheus"}
LISTING = (
    "INSERT INTO tbl_car_price (model, year, price, transmission, mileage, fuel_type, tax, "
    "mpg, engine_size) VALUES ('Fiesta', 2018, 9995, 'Manual', %s, 'Petrol', 145, 65.7, 1.0)"
)


def api(settings: StackSettings, path: str, **params: str) -> dict:
    url = f"{settings.monitoring.prometheus_url}/api/v1/{path}"
    response = httpx.get(url, params=params, timeout=10)
    response.raise_for_status()
    return response.json()["data"]


def targets(settings: StackSettings) -> list[dict]:
    return api(settings, "targets", state="active")["activeTargets"]


def alerts(settings: StackSettings, state: str = "firing") -> dict[str, dict]:
    found = api(settings, "alerts")["alerts"]
    return {a["labels"]["alertname"]: a for a in found if a["state"] == state}


def value(settings: StackSettings, query: str) -> float | None:
    result = api(settings, "query", query=query)["result"]
    return float(result[0]["value"][1]) if result else None


def loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    return (
        getattr(address, "ipv4_mapped", None) is not None
        and address.ipv4_mapped.is_loopback
        or address.is_loopback
    )


def drained(settings: StackSettings) -> bool:
    """Every listing has a prediction of its latest state (the exporter's view)."""
    return value(settings, "car_pipeline_waiting_listings") == 0


def all_targets_up(settings: StackSettings) -> bool:
    found = targets(settings)
    return {t["labels"]["job"] for t in found} == JOBS and all(t["health"] == "up" for t in found)


def test_every_hop_is_scraped(stack_ready: StackSettings) -> None:
    wait_for(lambda: all_targets_up(stack_ready), timeout=60)
    programs = {t["labels"]["program"] for t in targets(stack_ready)}
    assert programs >= {"transformer", "bentoml", "kafka", "connect", "postgres_exporter"}
    brokers = {instance_name("kafka", node) for node in stack_ready.kafka.brokers}
    assert programs >= brokers, "every broker (KAFKA_BROKERS) is scraped"


def test_exporters_bind_loopback_and_show_no_secret(stack_ready: StackSettings) -> None:
    pg = stack_ready.postgres
    secrets = [
        pg.pg_superuser_password,
        pg.app_db_password,
        pg.cdc_db_password,
        pg.sink_db_password,
        pg.monitoring_db_password,
    ]
    ports = {int(t["scrapeUrl"].split(":")[2].split("/")[0]) for t in targets(stack_ready)}
    listening = {
        c.laddr.port: c.laddr.ip
        for c in psutil.net_connections(kind="tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    }
    assert set(listening) == ports
    # Java's sockets say ::ffff:127.0.0.1: IPv4 loopback all the same
    assert all(loopback(ip) for ip in listening.values()), listening
    for target in targets(stack_ready):
        text = httpx.get(target["scrapeUrl"], timeout=10).text
        leaked = [s for s in secrets if s in text]
        assert not leaked, f"{target['scrapeUrl']} shows a password"
    exporter = next(p for p in Supervisor(stack_ready).processes() if p.name == "postgres_exporter")
    assert pg.monitoring_db_password not in " ".join(psutil.Process(exporter.pid).cmdline())


# what the exporter's queries (monitoring/postgres-queries.yaml) read: keys and times only
MONITORING_READS = {
    ("tbl_car_price", "id"),
    ("tbl_car_price", "updated_at"),
    ("tbl_price_prediction", "car_id"),
    ("tbl_price_prediction", "status"),
    ("tbl_price_prediction", "source_committed_at"),
    ("tbl_price_prediction", "written_at"),
}
# every column of every table and view in public the current role may do `privilege` on
COLUMNS_WITH = """
    SELECT c.relname, a.attname FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace AND n.nspname = 'public'
    JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
    WHERE c.relkind IN ('r', 'p', 'v', 'm') AND has_column_privilege(c.oid, a.attnum, %s)
"""


def test_monitoring_role_reads_no_listing_data(stack_ready: StackSettings) -> None:
    """It reads the keys and times its queries need and nothing else of any table or view:
    no listing's data, no price, no reason; it writes nothing."""
    pg = stack_ready.postgres
    dsn = pg.dsn(user=pg.monitoring_db_user, password=pg.monitoring_db_password)
    with psycopg.connect(dsn) as conn:
        conn.execute("SELECT count(*) FROM pg_replication_slots").fetchone()
        readable = set(conn.execute(COLUMNS_WITH, ("SELECT",)).fetchall())
        writable = {
            privilege: conn.execute(COLUMNS_WITH, (privilege,)).fetchall()
            for privilege in ("INSERT", "UPDATE")
        }
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("SELECT price FROM tbl_car_price LIMIT 1")
    assert readable == MONITORING_READS
    assert writable == {"INSERT": [], "UPDATE": []}


# alerts about the last minutes' records (5 minute windows): tests send bad input on
# purpose, and these rightly fire until it is out of their window. This file runs first
# (tests/conftest.py), so on a fresh stack nothing is in their window; on a stack a test
# run has just used, the last wait below lasts until it is.
ABOUT_RECENT_RECORDS = {"TransformerDeadLetters", "SinkDeadLetters", "RefusedShareHigh"}


def rules_evaluated_since(settings: StackSettings, moment: float) -> bool:
    """Every rule group has been evaluated after `moment` (epoch seconds): a rule not yet
    evaluated fires nothing, whatever the stack's state."""
    groups = api(settings, "rules")["groups"]
    return bool(groups) and all(
        datetime.fromisoformat(g["lastEvaluation"]).timestamp() > moment for g in groups
    )


def test_nothing_fires_at_rest(stack_ready: StackSettings) -> None:
    wait_for(lambda: all_targets_up(stack_ready), timeout=60)
    wait_for(lambda: drained(stack_ready), timeout=120)
    moment = time.time()
    wait_for(lambda: rules_evaluated_since(stack_ready, moment), timeout=60)
    firing = set(alerts(stack_ready))
    assert not firing - ABOUT_RECENT_RECORDS, f"alerts firing on a healthy stack: {firing}"
    wait_for(lambda: not alerts(stack_ready), timeout=360, interval=5)


@pytest.fixture()
def listings_flowing(stack_ready: StackSettings) -> Iterator[None]:
    """Two listings a second, as people add them, until the test ends."""
    stop = threading.Event()

    def feed() -> None:
        with psycopg.connect(stack_ready.postgres.dsn(), autocommit=True) as conn:
            mileage = 10_000
            while not stop.wait(0.5):
                mileage += 1
                conn.execute(LISTING, (mileage,))

    thread = threading.Thread(target=feed, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


def test_transformer_stopped_fires_and_resolves(
    stack_ready: StackSettings, listings_flowing: None
) -> None:
    supervisor = Supervisor(stack_ready)
    started = time.monotonic()
    supervisor.stop_program("transformer")
    try:
        wait_for(lambda: "TransformerDown" in alerts(stack_ready), timeout=180, interval=2)
        fired_after = time.monotonic() - started
        assert value(stack_ready, "car_pipeline_waiting_listings") > 0  # listings pile up
        shown = alerts_lines(stack_ready)  # what `make status` prints under the programs
        assert any(line.startswith("alert TransformerDown firing since") for line in shown)
    finally:
        supervisor.start_program("transformer")
    back = time.monotonic()

    def resolved() -> bool:
        return not {"TransformerDown"} & (
            set(alerts(stack_ready)) | set(alerts(stack_ready, "pending"))
        )

    wait_for(resolved, timeout=60, interval=2)
    print(
        f"TransformerDown fired {fired_after:.0f}s after the stop, "
        f"resolved {time.monotonic() - back:.0f}s after the start"
    )
    wait_for(lambda: drained(stack_ready), timeout=120, interval=2)
