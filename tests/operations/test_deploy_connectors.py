"""`make deploy-connectors` against the real Connect: idempotent, loud on FAILED."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx

from config.settings import REPO_ROOT, StackSettings
from operations.connectors import CONNECTORS_DIR, ConnectorState
from tests.support import wait_for


def _deploy(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "operations.connectors", "--connectors-dir", str(directory)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_redeploying_the_project_connectors_keeps_them_running(stack_ready: StackSettings) -> None:
    result = _deploy(CONNECTORS_DIR)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("RUNNING    task0=RUNNING") == 2, result.stdout


def test_a_failing_connector_prints_its_trace_and_exits_non_zero(
    stack_ready: StackSettings, tmp_path: Path
) -> None:
    broken = json.loads((CONNECTORS_DIR / "car-price-predictions-sink.json").read_text())
    broken["name"] = "test-broken-sink"
    broken["config"]["topics"] = "test_broken_sink"
    broken["config"]["connection.url"] = "jdbc:postgresql://127.0.0.1:1/nowhere"
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    try:
        result = _deploy(tmp_path)
    finally:
        httpx.delete(
            f"{stack_ready.connect.url}/connectors/test-broken-sink",
            auth=stack_ready.connect.rest_auth,
            timeout=30,
        )
    assert result.returncode == 1
    assert "test-broken-sink FAILED" in result.stdout
    assert "Exception" in result.stdout and "\tat " in result.stdout, "the task's stack trace"


def test_a_paused_connector_is_redeployed_and_left_paused(
    stack_ready: StackSettings, tmp_path: Path
) -> None:
    """Connect keeps an operator's pause through a config update: deploying reports it
    and succeeds, instead of waiting for a RUNNING that will not come."""
    paused = json.loads((CONNECTORS_DIR / "car-price-predictions-sink.json").read_text())
    paused["name"] = "test-paused-sink"
    paused["config"]["topics"] = "test_paused_sink"
    (tmp_path / "paused.json").write_text(json.dumps(paused))
    url, auth = (
        f"{stack_ready.connect.url}/connectors/test-paused-sink",
        stack_ready.connect.rest_auth,
    )
    try:
        httpx.put(f"{url}/config", json=paused["config"], auth=auth, timeout=30).raise_for_status()
        httpx.put(f"{url}/pause", auth=auth, timeout=30).raise_for_status()
        wait_for(
            lambda: (
                httpx.get(f"{url}/status", auth=auth, timeout=5).json()["connector"]["state"]
                == "PAUSED"
            ),
            timeout=60,
        )
        result = _deploy(tmp_path)
        state = httpx.get(f"{url}/status", auth=auth, timeout=5).json()["connector"]["state"]
    finally:
        httpx.delete(url, auth=auth, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "test-paused-sink" in result.stdout and "PAUSED" in result.stdout, result.stdout
    assert "/connectors/test-paused-sink/resume" in result.stdout, result.stdout
    assert state == "PAUSED", "the deploy left the operator's pause in place"


def test_connector_state_summarises_connector_and_tasks() -> None:
    running = ConnectorState("a", "RUNNING", [(0, "RUNNING")], None)
    half = ConnectorState("b", "RUNNING", [(0, "RUNNING"), (1, "FAILED")], "trace")
    no_tasks = ConnectorState("c", "RUNNING", [], None)
    assert running.running and not running.failed
    assert half.failed and not half.running
    assert not no_tasks.running, "a connector without tasks moves no data"
    assert running.line().split()[:3] == ["connector", "a", "RUNNING"]
    paused = ConnectorState("d", "PAUSED", [(0, "PAUSED")], None)
    assert paused.held and not paused.running and not paused.failed
    assert "/connectors/d/resume" in paused.line() and "resume" not in running.line()
