"""Whoever reaches Connect's REST API cannot make the worker reveal a secret it should not.

Connect resolves ${provider:...} references when it validates and when it starts a
connector; `config/validate` echoes every non-password value back, so it is the most
direct way to learn what a reference resolves to. Each probe has a positive control, a
reference that *must* resolve, so a probe that silently resolves nothing cannot pass.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest
from security_facts import passwords

from config.settings import REPO_ROOT, StackSettings

SINK = "io.debezium.connector.jdbc.JdbcSinkConnector"


@pytest.fixture()
def rest(stack_ready: StackSettings) -> Iterator[httpx.Client]:
    auth = stack_ready.connect.rest_auth
    with httpx.Client(base_url=stack_ready.connect.url, auth=auth, timeout=60) as client:
        yield client


def _validated_values(rest: httpx.Client, **config: str) -> dict[str, str]:
    """What Connect's validation made of each (non-password) setting, as it answers it."""
    body = {
        "connector.class": SINK,
        "topics": "security_probe",
        "connection.url": "jdbc:postgresql://127.0.0.1:1/none",
        **config,
    }
    response = rest.put("/connector-plugins/JdbcSinkConnector/config/validate", json=body)
    assert response.status_code == 200, response.text
    return {
        item["value"]["name"]: str(item["value"]["value"]) for item in response.json()["configs"]
    }


def test_env_provider_resolves_only_the_connector_names(
    rest: httpx.Client, stack_ready: StackSettings
) -> None:
    values = _validated_values(
        rest,
        **{
            "collection.name.format": "${env:CDC_DB_USER}",
            "topics": "${env:PG_SUPERUSER_PASSWORD}",
            "connection.username": "${env:APP_DB_PASSWORD}",
        },
    )
    assert values["collection.name.format"] == stack_ready.postgres.cdc_db_user  # control
    assert values["topics"] == "${env:PG_SUPERUSER_PASSWORD}"
    assert values["connection.username"] == "${env:APP_DB_PASSWORD}"


def test_file_provider_reads_only_the_secrets_folder(
    rest: httpx.Client, stack_ready: StackSettings
) -> None:
    token = uuid.uuid4().hex
    probe = stack_ready.secrets_dir / f"probe-{token}.properties"
    probe.write_text(f"probe={token}\n")
    env_file = REPO_ROOT / ".env"
    climb_out = f"{stack_ready.secrets_dir}/../../.env"  # inside the folder, by its name only
    try:
        values = _validated_values(
            rest,
            **{
                "collection.name.format": f"${{file:{probe}:probe}}",
                "topics": f"${{file:{env_file}:PG_SUPERUSER_PASSWORD}}",
                "connection.username": f"${{file:{climb_out}:APP_DB_PASSWORD}}",
                "connection.url": "${file:/etc/passwd:root}",
            },
        )
    finally:
        probe.unlink()
    assert values["collection.name.format"] == token  # control: the allowed folder resolves
    secrets = set(passwords(stack_ready).values())
    for key in ("topics", "connection.username", "connection.url"):
        assert values[key].startswith("${file:"), f"{key} resolved to {values[key]!r}"
        assert values[key] not in secrets


def test_a_connector_using_the_superuser_password_gets_nothing(
    rest: httpx.Client, stack_ready: StackSettings
) -> None:
    """A throwaway sink that logs in as the superuser with ${env:PG_SUPERUSER_PASSWORD}:
    had the reference resolved, it would run; it must fail, and leak nothing."""
    pg = stack_ready.postgres
    name = f"security-probe-{uuid.uuid4().hex[:8]}"
    config = {
        "connector.class": SINK,
        "tasks.max": "1",
        "topics": f"{name}-topic",
        "connection.url": f"jdbc:postgresql://{pg.pg_host}:{pg.pg_port}/{pg.pg_database}",
        "connection.username": pg.pg_superuser,
        "connection.password": "${env:PG_SUPERUSER_PASSWORD}",
        "collection.name.format": "${env:PG_SUPERUSER_PASSWORD}",
    }
    worker_log = stack_ready.log_dir / "connect.log"
    log_start = worker_log.stat().st_size
    try:
        response = rest.put(f"/connectors/{name}/config", json=config)
        assert response.status_code in (200, 201), response.text
        status = _settled_status(rest, name)
        assert status["state"] == "FAILED", status  # resolved, it would log in and run
        # failed for the reason that matters: it got no connection to the database ...
        assert "Unable to determine Dialect without JDBC metadata" in status["trace"], status
        # ... because no password reached the driver (the worker logs the driver's error;
        # the task's trace only has Hibernate's consequence)
        with worker_log.open("rb") as log:
            log.seek(log_start if worker_log.stat().st_size >= log_start else 0)  # rotated
            since = log.read().decode(errors="replace")
        assert f"name = {name} " in since, "the probe's task did not start"
        driver_errors = re.findall(r"PSQLException: (.*)", since)
        assert driver_errors and set(driver_errors) == {
            "The server requested SCRAM-based authentication, but no password was provided."
        }, driver_errors
        everything = (
            rest.get(f"/connectors/{name}/status").text
            + rest.get(f"/connectors/{name}/config").text
            + rest.get(f"/connectors/{name}/tasks").text
        )
        for secret in passwords(stack_ready).values():
            assert secret not in everything and secret not in since
    finally:
        rest.delete(f"/connectors/{name}")
    assert rest.get(f"/connectors/{name}").status_code == 404


def _settled_status(rest: httpx.Client, name: str, timeout: float = 90) -> dict:
    """The first task's status once it is RUNNING or FAILED."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = rest.get(f"/connectors/{name}/status")
        tasks = response.json().get("tasks", []) if response.status_code == 200 else []
        if tasks and tasks[0]["state"] in {"RUNNING", "FAILED"}:
            return {"state": tasks[0]["state"], "trace": tasks[0].get("trace", "")}
        time.sleep(1)
    raise AssertionError(f"{name}: no task settled within {timeout}s")


def test_connectors_cannot_override_the_workers_clients(rest: httpx.Client) -> None:
    name = f"security-probe-{uuid.uuid4().hex[:8]}"
    config = {
        "connector.class": SINK,
        "topics": f"{name}-topic",
        "connection.url": "jdbc:postgresql://127.0.0.1:1/none",
        "consumer.override.bootstrap.servers": "198.51.100.1:9092",
    }
    try:
        response = rest.put(f"/connectors/{name}/config", json=config)
        assert response.status_code == 400, response.text
        assert "'None' policy" in response.text and "bootstrap.servers" in response.text
    finally:
        rest.delete(f"/connectors/{name}")
