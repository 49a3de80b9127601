"""No supervised process holds a secret it does not need (read from /proc/<pid>/environ)."""

from __future__ import annotations

from pathlib import Path

import pytest
from security_facts import passwords, process_environment, program_pids

from config.settings import StackSettings
from tests.support import PROGRAMS

# which passwords each process may hold, .env name -> its variable there: Connect the ones
# its connectors use, the Postgres exporter its monitoring role's; no one else any
ALLOWED = {
    "connect": {"CDC_DB_PASSWORD": "CDC_DB_PASSWORD", "SINK_DB_PASSWORD": "SINK_DB_PASSWORD"},
    "postgres_exporter": {"MONITORING_DB_PASSWORD": "DATA_SOURCE_PASS"},
}
PROCESSES = ["supervisord", *PROGRAMS]


@pytest.mark.parametrize("name", PROCESSES)
def test_process_holds_only_the_passwords_it_needs(stack_ready: StackSettings, name: str) -> None:
    env = process_environment(program_pids(stack_ready)[name])
    allowed = ALLOWED.get(name, {})
    for key, secret in passwords(stack_ready).items():
        if key in allowed:
            assert env.get(allowed[key]) == secret, f"{name} lacks {key}, which it uses"
            continue
        assert key not in env, f"{name} has {key} in its environment"
        assert secret not in env.values(), f"{name} holds the value of {key}"


def test_connect_environment_is_the_allowlist(stack_ready: StackSettings) -> None:
    from stack.environments import CONNECT_ENV, OS_BASICS

    env = process_environment(program_pids(stack_ready)["connect"])
    assert set(env) - set(OS_BASICS) == set(CONNECT_ENV)


def _kafka_and_rest_secrets(settings: StackSettings) -> dict[str, str]:
    principals = settings.kafka_principals
    return {
        "KAFKA_ADMIN_PASSWORD": principals.kafka_admin_password,
        "KAFKA_CONNECT_PASSWORD": principals.kafka_connect_password,
        "KAFKA_TRANSFORMER_PASSWORD": principals.kafka_transformer_password,
        "CONNECT_REST_PASSWORD": settings.connect.connect_rest_password,
    }


@pytest.mark.parametrize("name", PROCESSES)
def test_each_program_holds_only_its_own_kafka_credentials(
    stack_ready: StackSettings, name: str
) -> None:
    """The transformer its own principal's password (TRANSFORMER_KAFKA_*), nobody any other;
    Connect reads its own from its 0600 worker properties, not from its environment."""
    values = " ".join(process_environment(program_pids(stack_ready)[name]).values())
    for key, secret in _kafka_and_rest_secrets(stack_ready).items():
        if name == "transformer" and key == "KAFKA_TRANSFORMER_PASSWORD":
            assert secret in values, "the transformer lacks its own Kafka password"
        else:
            assert secret not in values, f"{name} holds {key}"


def test_no_secret_on_a_command_line(stack_ready: StackSettings) -> None:
    """What `ps` shows every local user: no password of any kind, in any process."""
    secrets = {**passwords(stack_ready), **_kafka_and_rest_secrets(stack_ready)}
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # the process ended
        for key, secret in secrets.items():
            assert secret not in text, f"{key} on the command line of {cmdline.parent.name}"


def test_no_kafka_or_connect_secret_in_a_log(stack_ready: StackSettings) -> None:
    """Kafka and Connect log their configs at start (password-type values hidden)."""
    secrets = _kafka_and_rest_secrets(stack_ready)
    for log in stack_ready.log_dir.glob("*.log"):
        text = log.read_text(errors="replace")
        leaked = [key for key, secret in secrets.items() if secret in text]
        assert not leaked, f"{log.name} holds {leaked}"
