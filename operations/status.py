"""`make status` (`python -m operations.status`): one line per supervised program (`name
STATE …` and whether it answers: the transformer with its consumer lag, BentoML with the
model it serves), then each connector and task, the replication slot and the firing alerts.
It only reads: the running stack, Connect, Postgres and Prometheus."""

from __future__ import annotations

import functools
import sys

import httpx
import psycopg

from config.settings import StackSettings
from model.client import serving_version
from operations import connectors, replicas
from operations.lag import consumer_group_lag
from stack import readiness
from stack.supervisor import Supervisor
from transformer.settings import Settings as TransformerSettings


def status(settings: StackSettings) -> int:
    supervisor = Supervisor(settings)
    if supervisor.daemon_pid() is None:
        print("[stack] stack is down (supervisord not running) — `make up` starts it")
        return 3
    order = [*readiness.CHECKS, "watchdog"]
    processes = sorted(  # extra instances (connect-2, ...) right after the first
        supervisor.processes(), key=lambda p: (order.index(p.name.split("-")[0]), p.name)
    )
    for process in processes:
        check = readiness.CHECKS.get(process.name)
        if "-" in process.name:
            check = functools.partial(readiness.instance_ready, name=process.name)
        elif process.name == "kafka" and settings.kafka.kafka_brokers > 1:
            check = functools.partial(readiness.broker_ready, node=1)  # its own line
        reason = check(settings) if check and process.state == "RUNNING" else None
        health = (
            ""
            if check is None or process.state != "RUNNING"
            else ("ready" if reason is None else f"not ready: {reason}")
        )
        if process.name == "transformer" and process.state == "RUNNING":
            health += f", lag {_transformer_lag(settings)}"
        if process.name.startswith("kafka") and reason is None and process.state == "RUNNING":
            health += _broker_roles(settings, process.name)
        if process.name == "bentoml" and reason is None and process.state == "RUNNING":
            health += f", serving {_serving_model(settings)}"
        print(f"{process.name:<13} {process.state:<9} {process.description:<32} {health}")
    if readiness.connect_ready(settings) is None:
        states = connectors.all_states(settings.connect)
        for state in states:
            print(state.line())
        if not states:
            print("no connectors deployed — `make deploy-connectors`")
    if readiness.postgres_ready(settings) is None:
        print(slot_line(settings))
    print("\n".join(alerts_lines(settings)))
    return 0


def _transformer_lag(settings: StackSettings) -> str:
    group = TransformerSettings().transformer_group_id  # its own setting, not a copy
    try:
        lag = consumer_group_lag(settings, group, settings.kafka.cdc_topic)
    except Exception as exc:  # status must print something, whatever Kafka says
        return f"unknown ({exc})"
    return "no commits yet" if lag is None else f"{lag} events"


def _broker_roles(settings: StackSettings, program: str) -> str:
    """In cluster mode: how many partitions this broker leads, and the cluster's
    under-replicated ones (on broker 1's line), e.g. `, leads 12, 0 under-replicated`."""
    if settings.kafka.kafka_brokers == 1:
        return ""
    node = int(program.rsplit("-", 1)[1]) if "-" in program else 1
    try:
        parts = replicas.partitions(settings)
    except Exception as exc:  # status must print something, whatever Kafka says
        return f", partitions unknown ({exc})"
    led = sum(1 for leader, _, _ in parts.values() if leader == node)
    if node != 1:
        return f", leads {led}"
    behind = len(replicas.lagging(parts))
    return f", leads {led}; cluster: {len(parts)} partitions, {behind} under-replicated"


def _serving_model(settings: StackSettings) -> str:
    try:
        return serving_version(settings.services.bentoml_url)
    except Exception as exc:  # status must print something, whatever BentoML says
        return f"unknown ({exc})"


def slot_line(settings: StackSettings) -> str:
    """One status line per replication slot: active or not, and the WAL it keeps.

    `max_slot_wal_keep_size` (supervisord.conf) caps that WAL; a slot past the cap is
    `lost` and Debezium re-snapshots (`snapshot.mode=when_needed`).
    """
    with psycopg.connect(settings.postgres.dsn(), connect_timeout=3) as conn:
        rows = conn.execute(
            "SELECT slot_name, active, wal_status,"
            " pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn))"
            " FROM pg_replication_slots ORDER BY slot_name"
        ).fetchall()
    if not rows:
        return "slot         (none yet: the source connector creates it)"
    return "\n".join(
        f"slot {name:<22} {'active' if active else 'inactive':<9} "
        f"wal {status or '-':<9} retains {retained}"
        for name, active, status, retained in rows
    )


def alerts_lines(settings: StackSettings) -> list[str]:
    """`alerts: none firing`, or one line per firing alert (Prometheus' /api/v1/alerts)."""
    try:
        response = httpx.get(f"{settings.monitoring.prometheus_url}/api/v1/alerts", timeout=3)
        response.raise_for_status()
    except httpx.HTTPError as exc:
        return [f"alerts: unknown (Prometheus: {exc.__class__.__name__})"]
    firing = [a for a in response.json()["data"]["alerts"] if a["state"] == "firing"]
    return [
        f"alert {a['labels']['alertname']} firing since {a['activeAt'][:19]}: "
        + a["annotations"].get("summary", "")
        for a in firing
    ] or ["alerts: none firing"]


if __name__ == "__main__":
    sys.exit(status(StackSettings()))
