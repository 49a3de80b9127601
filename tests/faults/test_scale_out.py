"""Scale-out on the real distributed parts (TRANSFORMER_INSTANCES=2, CONNECT_WORKERS=2):
one instance of each is SIGKILLed mid-load and kept down; its partitions (consumer group)
and tasks (Connect cluster) move to the survivor, and nothing is lost or stale."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest
from confluent_kafka.admin import AdminClient

from config.settings import REPO_ROOT, StackSettings
from operations import connectors
from stack.readiness import instance_ready
from stack.supervisor import Supervisor
from tests.faults.matrix import (
    Load,
    assert_healed,
    change_some,
    fault_began,
    judge,
    keep_down,
    pid_of,
    state_of,
    wait_for_program,
    wait_streaming,
)
from tests.support import wait_for
from transformer.settings import Settings as TransformerSettings

EXTRA = ("transformer-2", "connect-2")


def stack_up(instances: int) -> None:
    """`python -m stack up` with TRANSFORMER_INSTANCES and CONNECT_WORKERS set as in .env."""
    env = os.environ | {
        "TRANSFORMER_INSTANCES": str(instances),
        "CONNECT_WORKERS": str(instances),
    }
    subprocess.run(
        [sys.executable, "-m", "stack", "up"],
        cwd=REPO_ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def group_assignment(settings: StackSettings) -> dict[str, int]:
    """The transformer group's members (client host/id) -> how many partitions each owns."""
    admin = AdminClient(settings.kafka_admin())
    group_id = TransformerSettings().transformer_group_id
    group = admin.describe_consumer_groups([group_id])[group_id].result(timeout=10)
    return {member.member_id: len(member.assignment.topic_partitions) for member in group.members}


def task_workers(settings: StackSettings) -> set[str]:
    """Every Connect worker (host:port) that runs a task of ours."""
    return {worker for state in connectors.all_states(settings.connect) for worker in state.workers}


def connect_port(settings: StackSettings, number: int) -> int:
    return settings.connect.connect_port + number - 1


@pytest.fixture(scope="module")
def scaled_out(stack_ready: StackSettings) -> Iterator[StackSettings]:
    running = {p.name: p.pid for p in Supervisor(stack_ready).processes()}
    stack_up(2)
    try:
        now = {p.name: p.pid for p in Supervisor(stack_ready).processes()}
        assert {name: now[name] for name in running} == running, "scaling out restarted some"
        for name in EXTRA:
            wait_for(lambda name=name: instance_ready(stack_ready, name) is None, timeout=120)
        wait_for(lambda: len(group_assignment(stack_ready)) == 2, timeout=60)
        worker_2 = f"{stack_ready.connect.connect_host}:{connect_port(stack_ready, 2)}"
        # the cluster spreads the two connectors' tasks over both workers
        wait_for(lambda: worker_2 in task_workers(stack_ready), timeout=120)
        wait_for(
            lambda: all(s.running for s in connectors.all_states(stack_ready.connect)),
            timeout=60,
        )
        yield stack_ready
    finally:
        stack_up(1)  # the extra programs leave supervisor again
    assert not {p.name for p in Supervisor(stack_ready).processes()} & set(EXTRA)


def test_one_of_two_transformers_killed(scaled_out: StackSettings, load: Load) -> None:
    supervisor = Supervisor(scaled_out)
    wait_streaming(scaled_out, load)
    old = pid_of(supervisor, "transformer-2")
    os.kill(old, signal.SIGKILL)
    fault_began(scaled_out, load)
    keep_down(supervisor, "transformer-2")
    change_some(scaled_out, load, lambda: state_of(supervisor, "transformer-2") == "STOPPED")
    # after the session timeout the survivor owns every partition of the CDC topic
    partitions = len(
        AdminClient(scaled_out.kafka_admin())
        .list_topics(scaled_out.kafka.cdc_topic, timeout=10)
        .topics[scaled_out.kafka.cdc_topic]
        .partitions
    )
    wait_for(lambda: list(group_assignment(scaled_out).values()) == [partitions], timeout=60)
    ended = time.monotonic()
    verdict = judge(scaled_out, "1 of 2 transformers SIGKILL", load, ended)
    supervisor.start_program("transformer-2")
    wait_for_program(supervisor, "transformer-2", old)
    assert_healed(scaled_out, verdict, load)


def test_one_of_two_connect_workers_killed(scaled_out: StackSettings, load: Load) -> None:
    supervisor = Supervisor(scaled_out)
    survivor = f"{scaled_out.connect.connect_host}:{connect_port(scaled_out, 1)}"
    wait_streaming(scaled_out, load)
    old = pid_of(supervisor, "connect-2")
    os.kill(old, signal.SIGKILL)
    fault_began(scaled_out, load)
    keep_down(supervisor, "connect-2")
    change_some(scaled_out, load, lambda: state_of(supervisor, "connect-2") == "STOPPED")
    # after scheduled.rebalance.max.delay.ms the survivor runs every task
    wait_for(lambda: task_workers(scaled_out) == {survivor}, timeout=90)
    ended = time.monotonic()
    verdict = judge(scaled_out, "1 of 2 Connect workers SIGKILL", load, ended)
    supervisor.start_program("connect-2")
    wait_for_program(supervisor, "connect-2", old)
    wait_for(lambda: instance_ready(scaled_out, "connect-2") is None, timeout=120)
    # the returning worker triggers one more rebalance (the connector moves back)
    wait_for(lambda: all(s.running for s in connectors.all_states(scaled_out.connect)), timeout=60)
    assert_healed(scaled_out, verdict, load)


def test_added_instances_are_scraped(scaled_out: StackSettings) -> None:
    """Prometheus scrapes transformer-2 and connect-2 once `make up` added them."""

    def programs_up() -> set[str]:
        url = f"{scaled_out.monitoring.prometheus_url}/api/v1/targets"
        found = httpx.get(url, timeout=10).json()["data"]["activeTargets"]
        return {t["labels"]["program"] for t in found if t["health"] == "up"}

    wait_for(lambda: set(EXTRA) <= programs_up(), timeout=60)
