"""The shape of compose.yaml: which services exist, how they start and what they expose.

`docker compose up --wait` must bring the whole pipeline up with no sleeps and no manual
steps, so the start order is carried entirely by healthchecks and depends_on conditions.
"""

from __future__ import annotations

import re
from graphlib import CycleError, TopologicalSorter

import pytest
from docker_facts import (
    compose_raw,
    healthcheck_text,
    long_running_services,
    one_shot_services,
    published_ports,
    read_env_file,
    service_image,
    services,
)

REQUIRED_SERVICES = {"postgres", "kafka", "connect", "bento", "transformer", "adminer"}
MONITORING_SERVICES = {"prometheus", "postgres-exporter", "grafana"}
REQUIRED_JOBS = {"migrate", "deploy-connectors"}
# the host port each published service uses, named as in .env.example
PUBLISHED_PORT_VARIABLE = {
    "postgres": "PG_PORT",
    "kafka": "KAFKA_PORT",
    "connect": "CONNECT_PORT",
    "bento": "BENTOML_PORT",
    "adminer": "ADMINER_PORT",
    "transformer": "TRANSFORMER_METRICS_PORT",
    "prometheus": "PROMETHEUS_PORT",
    "grafana": "GRAFANA_PORT",
}
LOOPBACK = "127.0.0.1"


def dependencies(name: str) -> dict[str, dict]:
    depends_on = services()[name].get("depends_on") or {}
    assert isinstance(depends_on, dict), (
        f"{name}: depends_on must be the long form with a condition, not a list"
    )
    return depends_on


def test_every_required_service_and_job_exists() -> None:
    assert REQUIRED_SERVICES <= long_running_services()
    assert REQUIRED_JOBS <= one_shot_services()


def test_monitoring_services_mount_the_repository_configs_read_only() -> None:
    """Prometheus, its Postgres exporter and Grafana read monitoring/ (rules, queries,
    dashboards, provisioning) and never write it."""
    assert MONITORING_SERVICES <= long_running_services()
    for name in MONITORING_SERVICES:
        binds = [v for v in services()[name]["volumes"] if v.startswith("./")]
        assert binds and all(v.startswith("./monitoring") and v.endswith(":ro") for v in binds)
    grafana = " ".join(services()["grafana"]["volumes"])
    assert "/etc/grafana/provisioning:ro" in grafana and "/var/lib/grafana/dashboards:ro" in grafana


def test_images_are_the_ones_the_issue_names() -> None:
    assert service_image("postgres")[0] == "postgres"  # the official image
    assert service_image("kafka")[0] == "apache/kafka"
    assert service_image("connect")[0] == "quay.io/debezium/connect"
    assert service_image("adminer")[0] == "adminer"


def test_every_restart_policy_is_one_shot_or_long_running() -> None:
    policies = {name: svc.get("restart") for name, svc in services().items()}
    assert set(policies.values()) <= {"no", "unless-stopped"}, policies


@pytest.mark.parametrize("name", sorted(long_running_services()))
def test_every_long_running_service_has_a_healthcheck(name: str) -> None:
    healthcheck = services()[name].get("healthcheck") or {}
    assert not healthcheck.get("disable"), f"{name}: healthcheck disabled"
    test = healthcheck.get("test")
    assert isinstance(test, list) and test[0] in ("CMD", "CMD-SHELL") and len(test) > 1, (
        f"{name}: needs a healthcheck test, got {test!r}"
    )


@pytest.mark.parametrize("name", sorted(services()))
def test_depends_on_names_defined_services_with_a_fitting_condition(name: str) -> None:
    for target, spec in dependencies(name).items():
        assert target in services(), f"{name} depends on undefined service {target}"
        condition = (spec or {}).get("condition")
        if target in one_shot_services():
            assert condition == "service_completed_successfully", (
                f"{name} -> job {target}: condition {condition!r}"
            )
        else:
            assert condition == "service_healthy", f"{name} -> {target}: condition {condition!r}"


def test_start_order_has_no_cycle() -> None:
    graph = {name: set(dependencies(name)) for name in services()}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"depends_on cycle: {exc.args[1]}")
    assert order.index("migrate") < order.index("deploy-connectors")


@pytest.mark.parametrize("job", sorted(one_shot_services()))
def test_every_job_is_awaited_by_a_service(job: str) -> None:
    """`up --wait` treats a job that nobody waits for as a failed container."""
    waiting = [
        name
        for name in services()
        if dependencies(name).get(job, {}).get("condition") == "service_completed_successfully"
    ]
    assert waiting, f"no service depends on {job} with service_completed_successfully"


def test_the_pipeline_waits_for_everything_it_needs() -> None:
    transformer = dependencies("transformer")
    assert {"bento", "deploy-connectors"} <= set(transformer)
    assert {"connect", "migrate"} <= set(dependencies("deploy-connectors"))
    assert "postgres" in dependencies("migrate")


def test_no_sleeps_anywhere() -> None:
    """Readiness is the healthchecks' job, never a timer."""
    for name, svc in services().items():
        text = " ".join(map(str, svc.get("command") or [])) + " " + healthcheck_text(svc)
        assert not re.search(r"\bsleep\b|wait-for|until ", text), f"{name}: {text}"


@pytest.mark.parametrize("name", sorted(services()))
def test_published_ports_bind_loopback_with_the_env_port(name: str) -> None:
    env = read_env_file()
    for host_ip, published, _target in published_ports(services()[name]):
        assert host_ip == LOOPBACK, f"{name}: publishes on {host_ip or '0.0.0.0'}"
        variable = re.fullmatch(r"\$\{(\w+)\}", published)
        assert variable and variable.group(1) in env, (
            f"{name}: host port {published!r} must be a ${{..._PORT}} from .env.example"
        )
        assert variable.group(1) == PUBLISHED_PORT_VARIABLE.get(name), (
            f"{name}: publishes ${{{variable.group(1)}}}"
        )


def test_every_port_the_issue_names_is_published() -> None:
    for name in PUBLISHED_PORT_VARIABLE:
        assert published_ports(services()[name]), f"{name} publishes no port"


def test_container_ports_match_the_env_ports() -> None:
    """Inside the network a service listens on the same port as on the local stack."""
    for name, variable in PUBLISHED_PORT_VARIABLE.items():
        if name == "kafka":  # its host listener is a second listener (see x-env)
            continue
        for _ip, published, target in published_ports(services()[name]):
            assert target == published == f"${{{variable}}}", f"{name}: {published}->{target}"


def test_postgres_keeps_its_data_in_a_named_volume() -> None:
    volumes = services()["postgres"]["volumes"]
    named = [
        v
        for v in volumes
        if isinstance(v, str) and v.split(":")[0] in (compose_raw().get("volumes") or {})
    ]
    assert any(v.endswith(":/var/lib/postgresql/data") for v in named), volumes


def test_postgres_runs_with_logical_wal() -> None:
    command = services()["postgres"]["command"]
    assert "wal_level=logical" in command


def test_kafka_is_a_single_kraft_node() -> None:
    env = services()["kafka"]["environment"]
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert not any("ZOOKEEPER" in key for key in env)
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", env["CLUSTER_ID"]), "Kafka cluster id format"


def test_kafka_host_listener_is_the_published_port() -> None:
    """Host clients bootstrap on 127.0.0.1:KAFKA_PORT and must be told that same address."""
    env = services()["kafka"]["environment"]
    [(host_ip, published, target)] = published_ports(services()["kafka"])
    listeners = dict(item.split("://") for item in env["KAFKA_LISTENERS"].split(","))
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert listeners["HOST"].rsplit(":", 1)[1] == target
    assert advertised["HOST"] == f"{host_ip}:{published}"
    assert advertised["CLIENT"] == "kafka:${KAFKA_PORT}"
