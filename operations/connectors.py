"""`make deploy-connectors` (`python -m operations.connectors`): deploy
`connectors/*.json` to Kafka Connect and report their state (also for `make status`, the
watchdog and the tests).

Each file is the usual registration body (`{"name": ..., "config": {...}}`, as in
debezium-examples). Deploying PUTs the config, which creates or updates the
connector, so running it twice is harmless.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from config.settings import REPO_ROOT, ConnectSettings, StackSettings
from config.waiting import WaitTimeout, wait_until

CONNECTORS_DIR = REPO_ROOT / "connectors"


HELD_STATES = ("PAUSED", "STOPPED")


@dataclass(frozen=True)
class ConnectorState:
    name: str
    state: str
    tasks: list[tuple[int, str]]
    trace: str | None  # the first FAILED trace, connector's or a task's
    workers: tuple[str, ...] = ()  # the Connect worker of each task (host:port)

    @property
    def running(self) -> bool:
        return (
            self.state == "RUNNING"
            and bool(self.tasks)
            and all(state == "RUNNING" for _, state in self.tasks)
        )

    @property
    def held(self) -> bool:
        """Paused or stopped through the REST API: Connect keeps that through config updates."""
        return self.state in HELD_STATES

    @property
    def failed(self) -> bool:
        return self.state == "FAILED" or any(state == "FAILED" for _, state in self.tasks)

    def line(self) -> str:
        tasks = " ".join(f"task{task_id}={state}" for task_id, state in self.tasks) or "no tasks"
        if self.workers:
            tasks += f" on {','.join(self.workers)}"
        line = f"connector {self.name:<28} {self.state:<10} {tasks}"
        if self.held:
            line += f" (held by an operator: PUT /connectors/{self.name}/resume starts it)"
        return line


class ConnectorDeployFailed(RuntimeError):
    pass


def load_connector_files(directory: Path = CONNECTORS_DIR) -> list[dict]:
    return [json.loads(path.read_text()) for path in sorted(directory.glob("*.json"))]


def connector_state(client: httpx.Client, name: str) -> ConnectorState | None:
    response = client.get(f"/connectors/{name}/status")
    if response.status_code == 404:
        return None
    response.raise_for_status()
    body = response.json()
    tasks = [(task["id"], task["state"]) for task in body.get("tasks", [])]
    traces = [body["connector"].get("trace")]
    traces += [task.get("trace") for task in body.get("tasks", [])]
    return ConnectorState(
        name,
        body["connector"]["state"],
        tasks,
        next((trace for trace in traces if trace), None),
        tuple(task.get("worker_id", "?") for task in body.get("tasks", [])),
    )


def all_states(settings: ConnectSettings) -> list[ConnectorState]:
    with httpx.Client(base_url=settings.url, auth=settings.rest_auth, timeout=5) as client:
        names = client.get("/connectors").raise_for_status().json()
        return [state for name in sorted(names) if (state := connector_state(client, name))]


def deploy(
    settings: ConnectSettings, connectors: list[dict] | None = None, timeout: float = 120
) -> list[ConnectorState]:
    """PUT every config, restart what had failed, then wait until each connector and its
    tasks are RUNNING, or held (paused or stopped by an operator, which a config update
    keeps). A connector still FAILED after FAILED_GRACE_S raises with its trace."""
    connectors = connectors if connectors is not None else load_connector_files()
    with httpx.Client(base_url=settings.url, auth=settings.rest_auth, timeout=30) as client:
        for connector in connectors:
            name = connector["name"]
            response = client.put(f"/connectors/{name}/config", json=connector["config"])
            if response.status_code >= 400:
                raise ConnectorDeployFailed(
                    f"{name}: Connect rejected the config ({response.status_code}): {response.text}"
                )
            # a task that FAILED before stays FAILED through a config update: restart it
            client.post(
                f"/connectors/{name}/restart", params={"includeTasks": "true", "onlyFailed": "true"}
            )
        return [_wait_running(client, connector["name"], timeout) for connector in connectors]


# Connect reports the old FAILED state for a moment after a PUT or restart.
FAILED_GRACE_S = 10.0


def _wait_running(client: httpx.Client, name: str, timeout: float) -> ConnectorState:
    failed_since: float | None = None

    def state_now() -> ConnectorState | None:
        nonlocal failed_since
        state = connector_state(client, name)
        if state is not None and state.failed:
            failed_since = failed_since or time.monotonic()
            if time.monotonic() - failed_since >= FAILED_GRACE_S:
                raise ConnectorDeployFailed(f"{name} FAILED:\n{state.trace}")
        else:
            failed_since = None
        return state

    try:
        return wait_until(
            state_now,
            lambda state: state is not None and (state.running or state.held),
            timeout=timeout,
            interval=1,
            message=lambda state: (
                f"{name} not RUNNING after {timeout:.0f}s: {state.line() if state else 'absent'}"
            ),
        )
    except WaitTimeout as exc:
        raise ConnectorDeployFailed(str(exc)) from exc


def main(argv: list[str] | None = None) -> int:
    """PUT each connector JSON of the folder, then print each one's state; 1 on failure."""
    parser = argparse.ArgumentParser(prog="python -m operations.connectors", description=__doc__)
    parser.add_argument("--connectors-dir", dest="directory", type=Path, default=CONNECTORS_DIR)
    directory = parser.parse_args(argv).directory
    files = load_connector_files(directory)
    if not files:
        print(f"[connectors] no connector JSON in {directory}", flush=True)
        return 1
    try:
        for state in deploy(StackSettings().connect, files):
            print(f"[connectors] {state.line()}", flush=True)
    except ConnectorDeployFailed as exc:
        print(f"[connectors] {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
