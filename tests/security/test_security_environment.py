"""No supervised process holds a secret it does not need (read from /proc/<pid>/environ)."""

from __future__ import annotations

import pytest
from security_facts import passwords, process_environment, program_pids

from config.settings import StackSettings

# which passwords each process may hold: Connect the ones its connectors use, no one else any
ALLOWED = {"connect": {"CDC_DB_PASSWORD", "SINK_DB_PASSWORD"}}
PROCESSES = ["supervisord", "postgres", "kafka", "connect", "bentoml", "transformer", "adminer"]


@pytest.mark.parametrize("name", PROCESSES)
def test_process_holds_only_the_passwords_it_needs(stack_ready: StackSettings, name: str) -> None:
    env = process_environment(program_pids(stack_ready)[name])
    allowed = ALLOWED.get(name, set())
    for key, secret in passwords(stack_ready).items():
        if key in allowed:
            assert env.get(key) == secret, f"{name} lacks {key}, which its connectors use"
            continue
        assert key not in env, f"{name} has {key} in its environment"
        assert secret not in env.values(), f"{name} holds the value of {key}"


def test_connect_environment_is_the_allowlist(stack_ready: StackSettings) -> None:
    from stack.environments import CONNECT_ENV, OS_BASICS

    env = process_environment(program_pids(stack_ready)["connect"])
    assert set(env) - set(OS_BASICS) == set(CONNECT_ENV)
