"""Readiness checks: each returns None when ready, else a short reason."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import psycopg
from confluent_kafka.admin import AdminClient

from config.settings import StackSettings
from config.waiting import wait_until

DEBEZIUM_PLUGINS = (
    "io.debezium.connector.postgresql.PostgresConnector",
    "io.debezium.connector.jdbc.JdbcSinkConnector",
)

Check = Callable[[StackSettings], "str | None"]


def postgres_ready(settings: StackSettings) -> str | None:
    pg = settings.postgres
    try:
        with psycopg.connect(pg.dsn(database="postgres"), connect_timeout=2) as conn:
            conn.execute("SELECT 1")
    except psycopg.OperationalError as exc:
        return str(exc).strip().splitlines()[-1]
    return None


def _brokers_in_metadata(settings: StackSettings, bootstrap: str) -> set[int] | str:
    """The node ids of the live brokers, asked through `bootstrap`; else why not."""
    admin = AdminClient(settings.kafka_admin(log_level=0) | {"bootstrap.servers": bootstrap})
    try:
        return set(admin.list_topics(timeout=2).brokers)
    except Exception as exc:  # KafkaException: broker not up yet
        return f"no metadata: {exc}"


def kafka_ready(settings: StackSettings) -> str | None:
    """Every local broker answers on its own port and is in the cluster's metadata (asked
    one by one: a broker just killed stays in the others' metadata until the controller
    fences it, 9 s later); on an external cluster: any broker answers."""
    kafka = settings.kafka
    if kafka.kafka_bootstrap_servers:
        found = _brokers_in_metadata(settings, kafka.bootstrap_servers)
        return found if isinstance(found, str) else (None if found else "no broker in metadata")
    for node in kafka.brokers:
        reason = broker_ready(settings, node)
        if reason is not None:
            return f"broker {node}: {reason}" if kafka.kafka_brokers > 1 else reason
    return None


def broker_ready(settings: StackSettings, node: int) -> str | None:
    """Broker `node` answers on its own port, and the cluster's metadata lists it (it is
    registered and caught up with the metadata log: unfenced)."""
    found = _brokers_in_metadata(settings, settings.kafka.broker_address(node))
    if isinstance(found, str):
        return found
    return None if node in found else f"broker {node} not in metadata"


def connect_ready(settings: StackSettings) -> str | None:
    try:
        response = httpx.get(
            f"{settings.connect.url}/connector-plugins", auth=settings.connect.rest_auth, timeout=3
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return f"REST not answering: {exc}"
    classes = {plugin["class"] for plugin in response.json()}
    missing = [name for name in DEBEZIUM_PLUGINS if name not in classes]
    return f"plugins missing: {missing}" if missing else None


def _http_ok(url: str, auth: tuple[str, str] | None = None) -> str | None:
    try:
        response = httpx.get(url, auth=auth, timeout=3)
    except httpx.HTTPError as exc:
        return f"{url} not answering: {exc.__class__.__name__}"
    return None if response.status_code < 400 else f"{url} answered {response.status_code}"


def bentoml_ready(settings: StackSettings) -> str | None:
    return _http_ok(f"{settings.services.bentoml_url}/readyz")


def transformer_ready(settings: StackSettings) -> str | None:
    return _http_ok(settings.services.transformer_metrics_url)


def adminer_ready(settings: StackSettings) -> str | None:
    return _http_ok(settings.services.adminer_url)


def postgres_exporter_ready(settings: StackSettings) -> str | None:
    monitoring = settings.monitoring
    return _http_ok(f"http://{monitoring.monitoring_host}:{monitoring.postgres_exporter_port}/")


def prometheus_ready(settings: StackSettings) -> str | None:
    return _http_ok(f"{settings.monitoring.prometheus_url}/-/ready")


def instance_ready(settings: StackSettings, name: str) -> str | None:
    """An extra instance (stack/render.py): `transformer-n` answers /metrics and
    `connect-n` its REST API, each on the first instance's port + n - 1; `kafka-n` is
    broker n."""
    program, number = name.rsplit("-", 1)
    if program == "kafka":
        return broker_ready(settings, int(number))
    offset = int(number) - 1
    if program == "transformer":
        services = settings.services
        port = services.transformer_metrics_port + offset
        return _http_ok(f"http://{services.transformer_metrics_host}:{port}/metrics")
    connect = settings.connect
    url = f"http://{connect.connect_host}:{connect.connect_port + offset}/connectors"
    return _http_ok(url, auth=connect.rest_auth)


# in start order; `make up` waits for each, `make status` reports each
CHECKS: dict[str, Check] = {
    "postgres": postgres_ready,
    "kafka": kafka_ready,
    "connect": connect_ready,
    "bentoml": bentoml_ready,
    "transformer": transformer_ready,
    "adminer": adminer_ready,
    "postgres_exporter": postgres_exporter_ready,
    "prometheus": prometheus_ready,
}


def wait_until_ready(settings: StackSettings, name: str, timeout: float = 180) -> None:
    """Poll one component's check until it passes; TimeoutError names the last reason."""
    wait_until(
        lambda: CHECKS[name](settings),
        lambda reason: reason is None,
        timeout=timeout,
        interval=1,
        message=lambda reason: f"{name} not ready after {timeout:.0f}s: {reason}",
    )
