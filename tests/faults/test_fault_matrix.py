"""Each fault of issue 10 under a real load: the pipeline heals by itself, nothing is lost,
nothing is stale, every connector RUNNING without a redeploy, every program supervised."""

from __future__ import annotations

import os
import signal
import time

from config.settings import StackSettings
from stack.readiness import bentoml_ready, kafka_ready, postgres_ready
from stack.reap import port_holders
from stack.supervisor import Supervisor
from tests.conftest import wait_for
from tests.faults.conftest import (
    Load,
    assert_healed,
    change_some,
    judge,
    keep_down,
    make,
    parent_of,
    pid_of,
    unanswered_requests,
    wait_for_program,
)


def bentoml_processes(settings: StackSettings, supervisor: Supervisor) -> list[int]:
    """The supervised BentoML and its worker (which runs in a session of its own)."""
    worker = port_holders(settings.services.bentoml_port, "bentoml")
    return sorted({pid_of(supervisor, "bentoml"), *worker})


def signal_all(pids: list[int], signum: signal.Signals) -> None:
    for pid in pids:
        os.kill(pid, signum)


def test_postgres_stopped_for_60s(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    time.sleep(0.5)  # the COPY is committed and streaming
    supervisor.stop_program("postgres")
    time.sleep(60)
    supervisor.start_program("postgres")
    ended = time.monotonic()
    wait_for(lambda: postgres_ready(stack_ready) is None, timeout=60)
    change_some(stack_ready, load)
    assert_healed(stack_ready, judge(stack_ready, "postgres stopped 60 s", load, ended))


def test_kafka_killed_and_started_20s_later(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    time.sleep(0.5)
    os.kill(pid_of(supervisor, "kafka"), signal.SIGKILL)
    keep_down(supervisor, "kafka")
    change_some(stack_ready, load)  # listings keep changing while Kafka is down
    time.sleep(20)
    supervisor.start_program("kafka")
    ended = time.monotonic()
    wait_for(lambda: kafka_ready(stack_ready) is None, timeout=60)
    assert_healed(stack_ready, judge(stack_ready, "kafka SIGKILL, down 20 s", load, ended))


def test_connect_worker_killed(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    time.sleep(0.5)
    old = pid_of(supervisor, "connect")
    os.kill(old, signal.SIGKILL)
    change_some(stack_ready, load)
    wait_for_program(supervisor, "connect", old)
    ended = time.monotonic()
    assert_healed(stack_ready, judge(stack_ready, "connect SIGKILL", load, ended))


def test_bentoml_killed(stack_ready: StackSettings, supervisor: Supervisor, load: Load) -> None:
    time.sleep(0.5)
    old = pid_of(supervisor, "bentoml")
    os.kill(old, signal.SIGKILL)
    change_some(stack_ready, load)
    new = wait_for_program(supervisor, "bentoml", old)
    wait_for(lambda: bentoml_ready(stack_ready) is None, timeout=90)
    ended = time.monotonic()
    assert_healed(stack_ready, judge(stack_ready, "bentoml SIGKILL", load, ended))
    # no orphan serves in its place: whatever listens on the port is the new BentoML or
    # one of its own children
    port = stack_ready.services.bentoml_port
    holders = port_holders(port, "bentoml")
    assert holders and all(pid == new or parent_of(pid) == new for pid in holders), holders


def test_bentoml_hung_for_30s(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    pids = bentoml_processes(stack_ready, supervisor)
    signal_all(pids, signal.SIGSTOP)  # the arbiter and its worker: the whole service hangs
    try:
        change_some(stack_ready, load)
        time.sleep(30)
    finally:
        signal_all(pids, signal.SIGCONT)
    ended = time.monotonic()
    assert_healed(stack_ready, judge(stack_ready, "bentoml SIGSTOP 30 s", load, ended))


def test_transformer_killed_mid_batch(
    stack_ready: StackSettings, supervisor: Supervisor, load: Load
) -> None:
    bento = bentoml_processes(stack_ready, supervisor)
    signal_all(bento, signal.SIGSTOP)  # slow BentoML down to a halt ...
    try:
        change_some(stack_ready, load)  # ... so these changes get stuck inside a batch:
        # the transformer is provably mid-batch once its request sits unanswered
        wait_for(lambda: unanswered_requests(stack_ready.services.bentoml_port), timeout=30)
        old = pid_of(supervisor, "transformer")
        os.kill(old, signal.SIGKILL)
    finally:
        signal_all(bento, signal.SIGCONT)
    wait_for_program(supervisor, "transformer", old)
    ended = time.monotonic()
    assert_healed(stack_ready, judge(stack_ready, "transformer SIGKILL mid-batch", load, ended))


def test_make_down_mid_load_then_make_up(stack_ready: StackSettings, load: Load) -> None:
    time.sleep(0.5)
    make("down")
    make("up")
    ended = time.monotonic()
    change_some(stack_ready, load)
    assert_healed(stack_ready, judge(stack_ready, "make down + make up", load, ended))
