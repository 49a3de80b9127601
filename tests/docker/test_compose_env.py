"""One `.env` drives both paths; only host names (and listen addresses) differ, in one place.

The variables a project container gets are compared with what its code reads: the
pydantic settings classes of stack/, transformer/ and model/ (whatever model/ defines),
literal os.environ look-ups, and the env options of the bentoml CLI.
"""

from __future__ import annotations

import json
import re
from fnmatch import fnmatch

import pytest
from docker_facts import (
    COMPOSE_FILE,
    PROJECT_PACKAGES,
    REPO,
    command,
    compose_raw,
    env_read_by_command,
    env_read_by_package,
    env_readers,
    environment,
    project_services,
    read_env_file,
    services,
    top_level_block,
    variables_in,
)

HOSTS_BLOCK = "x-env"
BIND_ALL = "0.0.0.0"
# files besides compose.yaml and the Python code where a .env variable can be used
OTHER_USERS = (
    "Makefile",
    "docker/compose.mk",
    "stack/supervisord.conf",
    "stack/bootstrap.sh",
    "stack/templates/*",
    "migrations/*.py",
    "alembic.ini",
)


def container_hosts() -> dict[str, str]:
    """Every *_HOST the x-env block gives the containers (clients and listeners)."""
    hosts: dict[str, str] = {}
    for block in compose_raw()[HOSTS_BLOCK].values():
        for key, value in block.items():
            if key.endswith("_HOST"):
                hosts.setdefault(key, value)
    return hosts


@pytest.mark.parametrize("name", sorted(project_services()))
def test_project_services_get_only_variables_their_code_reads(name: str) -> None:
    svc = services()[name]
    packages, extra = env_readers(command(svc))
    assert packages or extra, f"{name}: cannot tell which code `{command(svc)}` runs"
    read = env_read_by_command(command(svc))
    unread = {n for n in set(environment(svc)) - read if not any(fnmatch(n, r) for r in read)}
    assert not unread, f"{name} is given {sorted(unread)} but {sorted(packages)} never read them"


@pytest.mark.parametrize("name", ["transformer", "migrate"])
def test_every_env_setting_a_service_reads_is_passed(name: str) -> None:
    """A setting the service reads but compose does not pass would silently fall back to
    the code default instead of the value in .env."""
    svc = services()[name]
    wanted = env_read_by_command(command(svc)) & set(read_env_file())
    missing = wanted - set(environment(svc))
    assert not missing, f"{name} reads {sorted(missing)} from .env but compose does not pass them"


def test_the_readers_are_found() -> None:
    """Guards the two tests above against an introspection that finds nothing."""
    assert {"KAFKA_HOST", "BENTOML_PORT", "TRANSFORMER_METRICS_HOST"} <= env_read_by_package(
        "transformer"
    )
    assert {"PG_HOST", "PG_SUPERUSER_PASSWORD"} <= env_read_by_package("migrations")
    assert {"CONNECT_HOST", "KAFKA_PORT", "CDC_TOPIC"} <= env_read_by_package("stack")
    assert {"BENTOML_HOST", "BENTOML_PORT"} <= env_read_by_command(
        ["bentoml", "serve", "model.service:CarPriceService"]
    )


@pytest.mark.parametrize("name", sorted(services()))
def test_env_settings_are_passed_through_unchanged(name: str) -> None:
    """Every .env variable a service gets is `${SAME}`, except host names (x-env)."""
    env_example = read_env_file()
    for key, value in environment(services()[name]).items():
        if key in env_example and not key.endswith("_HOST"):
            assert value == f"${{{key}}}", f"{name}: {key}={value!r} instead of ${{{key}}}"


def test_host_names_live_only_in_the_x_env_block() -> None:
    names = "|".join(map(re.escape, services()))
    outside = COMPOSE_FILE.read_text().replace(top_level_block(HOSTS_BLOCK), "")
    host_keys = re.findall(r"^\s*(\w*_HOST(?:_NAME)?)\s*:", outside, flags=re.MULTILINE)
    assert not host_keys, f"host settings outside {HOSTS_BLOCK}: {host_keys}"
    host_uses = re.findall(rf"(?://|@|(?<![\w./-]))(?:{names}):\$\{{", outside)
    host_uses += re.findall(rf"(?://|@)(?:{names})\b", outside)
    assert not host_uses, f"service host names outside {HOSTS_BLOCK}: {host_uses}"


def test_container_hosts_are_service_names_or_bind_all() -> None:
    hosts = container_hosts()
    assert {"PG_HOST", "KAFKA_HOST", "CONNECT_HOST", "BENTOML_HOST"} <= set(hosts)
    for key, value in hosts.items():
        assert value in services() or value == BIND_ALL, f"{key}={value}"
    assert hosts["PG_HOST"] == "postgres" and hosts["KAFKA_HOST"] == "kafka"
    assert hosts["CONNECT_HOST"] == "connect" and hosts["BENTOML_HOST"] == "bento"


def test_python_services_listen_on_every_interface() -> None:
    """The local stack binds its *_HOST (127.0.0.1); a container must bind 0.0.0.0."""
    assert environment(services()["bento"])["BENTOML_HOST"] == BIND_ALL
    assert environment(services()["transformer"])["TRANSFORMER_METRICS_HOST"] == BIND_ALL
    assert environment(services()["transformer"])["BENTOML_HOST"] == "bento"


def test_every_env_example_variable_is_used_somewhere() -> None:
    used = variables_in(COMPOSE_FILE.read_text())
    for svc in services().values():
        used |= set(environment(svc))
    for package in PROJECT_PACKAGES:
        used |= env_read_by_package(package)
    texts = [
        path.read_text() for pattern in OTHER_USERS for path in REPO.glob(pattern) if path.is_file()
    ]
    unused = [
        name
        for name in read_env_file()
        if name not in used and not any(re.search(rf"\b{name}\b", t) for t in texts)
    ]
    assert not unused, f".env.example variables nobody uses: {unused}"


def test_connector_secrets_are_in_the_connect_environment() -> None:
    """connectors/*.json say ${env:NAME}; the worker's EnvVarConfigProvider needs NAME."""
    env = environment(services()["connect"])
    for path in sorted((REPO / "connectors").glob("*.json")):
        names = set(re.findall(r"\$\{env:(\w+)\}", path.read_text()))
        assert names, f"{path.name} uses no ${{env:...}} (then this test guards nothing)"
        assert names <= set(env), f"{path.name} needs {sorted(names - set(env))} in connect"
        json.loads(path.read_text())


def test_connect_resolves_secrets_with_the_env_config_provider() -> None:
    env = environment(services()["connect"])
    assert "env" in env["CONNECT_CONFIG_PROVIDERS"].split(",")
    assert (
        env["CONNECT_CONFIG_PROVIDERS_ENV_CLASS"]
        == "org.apache.kafka.common.config.provider.EnvVarConfigProvider"
    )
