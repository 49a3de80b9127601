"""Each fault of issue 10 under a real load: the pipeline heals by itself, nothing is lost,
nothing is stale, every connector RUNNING without a redeploy, every program supervised.

Every fault hits work in flight (`verdict.in_flight`, matrix.py). The listings change while
the fault is on wherever the fault lets a client write; with Postgres stopped (or the whole
stack down) they change just before it, and the verdict proves the changes still in flight.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from config.settings import StackSettings
from stack.readiness import bentoml_ready, connect_ready, kafka_ready, postgres_ready
from stack.reap import port_holders
from stack.supervisor import Supervisor
from tests.faults.matrix import (
    LISTINGS,
    Load,
    assert_healed,
    change_some,
    fault_began,
    judge,
    keep_down,
    make,
    parent_of,
    pid_of,
    unanswered,
    unanswered_requests,
    wait_for_program,
    wait_streaming,
)
from tests.support import wait_for


def bentoml_processes(settings: StackSettings, supervisor: Supervisor) -> list[int]:
    """The supervised BentoML and its worker (which runs in a session of its own)."""
    worker = port_holders(settings.services.bentoml_port, "bentoml")
    return sorted({pid_of(supervisor, "bentoml"), *worker})


def signal_all(pids: list[int], signum: signal.Signals) -> None:
    """Send `signum`; a SIGSTOP takes effect when each process next runs (see frozen)."""
    for pid in pids:
        os.kill(pid, signum)


def restarted(supervisor: Supervisor, name: str, old_pid: int) -> bool:
    return any(p.name == name and p.state == "RUNNING" and p.pid != old_pid
               for p in supervisor.processes())  # fmt: skip


def frozen(pids: list[int]) -> dict[int, str]:
    """The /proc state of each of `pids` when every one is stopped (T) or gone (Z, X, no
    longer there: e.g. a worker the arbiter was replacing); else {}, falsy."""
    states = {}
    for pid in pids:
        try:
            states[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            states[pid] = "gone"
    if "T" in states.values() and set(states.values()) <= {"T", "Z", "X", "gone"}:
        return states
    print(f"not frozen: {states}")  # shown with the failure
    return {}


def test_postgres_stopped_for_60s(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    wait_streaming(stack_ready, load)
    change_some(stack_ready, load)  # a stopped server takes no writes: they go just before
    supervisor.stop_program("postgres")
    time.sleep(60)
    supervisor.start_program("postgres")
    ended = time.monotonic()
    wait_for(lambda: postgres_ready(stack_ready) is None, timeout=60)
    fault_began(stack_ready, load, since_server_start=True)
    verdict = judge(stack_ready, "postgres stopped 60 s", load, ended)
    assert_healed(stack_ready, verdict, load)


def test_kafka_killed_and_started_20s_later(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    wait_streaming(stack_ready, load)
    os.kill(pid_of(supervisor, "kafka"), signal.SIGKILL)
    fault_began(stack_ready, load)
    keep_down(supervisor, "kafka")
    change_some(stack_ready, load, lambda: kafka_ready(stack_ready))  # while Kafka is down
    time.sleep(20)
    supervisor.start_program("kafka")
    ended = time.monotonic()
    wait_for(lambda: kafka_ready(stack_ready) is None, timeout=60)
    verdict = judge(stack_ready, "kafka SIGKILL, down 20 s", load, ended)
    assert_healed(stack_ready, verdict, load)


def test_connect_worker_killed(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    wait_streaming(stack_ready, load)
    old = pid_of(supervisor, "connect")
    os.kill(old, signal.SIGKILL)
    fault_began(stack_ready, load)
    change_some(stack_ready, load, lambda: connect_ready(stack_ready))  # its REST still down
    wait_for_program(supervisor, "connect", old)
    ended = time.monotonic()
    verdict = judge(stack_ready, "connect SIGKILL", load, ended)
    assert_healed(stack_ready, verdict, load)


def test_bentoml_killed(stack_ready: StackSettings, supervisor: Supervisor, load: Load) -> None:
    wait_streaming(stack_ready, load)
    old = pid_of(supervisor, "bentoml")
    os.kill(old, signal.SIGKILL)
    fault_began(stack_ready, load)
    # no new BentoML yet: supervisor holds it STARTING for startsecs (the old one's orphaned
    # worker may answer until stack/reap.py kills it, so /readyz proves nothing here)
    change_some(stack_ready, load, lambda: not restarted(supervisor, "bentoml", old))
    new = wait_for_program(supervisor, "bentoml", old)
    wait_for(lambda: bentoml_ready(stack_ready) is None, timeout=90)
    ended = time.monotonic()
    verdict = judge(stack_ready, "bentoml SIGKILL", load, ended)
    assert_healed(stack_ready, verdict, load)
    # no orphan serves in its place: whatever listens on the port is the new BentoML or
    # one of its own children
    port = stack_ready.services.bentoml_port
    holders = port_holders(port, "bentoml")
    assert holders and all(pid == new or parent_of(pid) == new for pid in holders), holders


def test_bentoml_hung_for_30s(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    wait_streaming(stack_ready, load)
    pids = bentoml_processes(stack_ready, supervisor)
    signal_all(pids, signal.SIGSTOP)  # the arbiter and its worker: the whole service hangs
    try:
        wait_for(lambda: frozen(pids), timeout=10, interval=0.05)  # once each is scheduled
        fault_began(stack_ready, load)
        change_some(stack_ready, load, lambda: frozen(pids))
        time.sleep(30)
    finally:
        signal_all(pids, signal.SIGCONT)
    ended = time.monotonic()
    verdict = judge(stack_ready, "bentoml SIGSTOP 30 s", load, ended)
    assert_healed(stack_ready, verdict, load)


def test_transformer_killed_mid_batch(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    bento = bentoml_processes(stack_ready, supervisor)
    signal_all(bento, signal.SIGSTOP)  # slow BentoML down to a halt ...
    try:
        wait_for(lambda: frozen(bento), timeout=10, interval=0.05)  # once each is scheduled
        change_some(stack_ready, load, lambda: frozen(bento))  # ... so these changes get
        # stuck inside a batch: the transformer is provably mid-batch once its request
        # sits unanswered
        wait_for(lambda: unanswered_requests(stack_ready.services.bentoml_port), timeout=30)
        old = pid_of(supervisor, "transformer")
        os.kill(old, signal.SIGKILL)
        fault_began(stack_ready, load)
    finally:
        signal_all(bento, signal.SIGCONT)
    wait_for_program(supervisor, "transformer", old)
    ended = time.monotonic()
    verdict = judge(stack_ready, "transformer SIGKILL mid-batch", load, ended)
    assert_healed(stack_ready, verdict, load)


# `make down` stops the transformer a second or so in, and it finishes its batch first:
# 5,000 listings are all priced by then, so this load is ten times larger
@pytest.mark.parametrize("load", [max(LISTINGS, 50_000)], indirect=True)
def test_make_down_mid_load_then_make_up(stack_ready: StackSettings, load: Load) -> None:
    wait_streaming(stack_ready, load)
    change_some(stack_ready, load)  # a stack going down takes no writes: they go just before
    load.pending = unanswered(stack_ready, load)  # the database goes down too
    make("down")
    make("up")
    ended = time.monotonic()
    fault_began(stack_ready, load, since_server_start=True)
    verdict = judge(stack_ready, "make down + make up", load, ended)
    assert_healed(stack_ready, verdict, load, deploys_by_make_up=True)
