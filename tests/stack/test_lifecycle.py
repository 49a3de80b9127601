"""`make up` is idempotent and `make down` leaves no process behind.

This module stops and restarts the whole stack, so it ends by bringing it back up.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from config.settings import REPO_ROOT, StackSettings
from stack.supervisor import Supervisor
from tests.support import PROGRAMS

# every program supervisord.conf declares, by name (a program missing from `make status`
# fails too)
CONNECTORS = ("car-price-predictions-sink", "car-price-source")
ALL_RUNNING = {
    **{program: "RUNNING" for program in PROGRAMS},
    **{f"connector {name}": "RUNNING task0=RUNNING" for name in CONNECTORS},
}


def _make(target: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, f"make {target} failed:\n{result.stdout}\n{result.stderr}"
    return result


def _states(status: str) -> dict[str, str]:
    """`make status` lines -> {program: state, "connector <name>": "state task0=state ..."}."""
    states = {}
    for line in status.splitlines():
        words = line.split()
        if words[:1] == ["connector"] and len(words) >= 3:
            tasks = [word for word in words[3:] if word.startswith("task")]
            states[f"connector {words[1]}"] = " ".join([words[2], *tasks])
        elif len(words) >= 2 and words[0] in PROGRAMS:
            states[words[0]] = words[1]
    return states


def _pids(settings: StackSettings) -> dict[str, int]:
    supervisor = Supervisor(settings)
    return {
        "supervisord": supervisor.daemon_pid() or 0,
        **{p.name: p.pid for p in supervisor.processes()},
    }


def _processes_mentioning(path: Path) -> list[str]:
    """Command lines of live processes that refer to the stack's state folder."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if str(path) in cmdline:
            found.append(f"{proc.name}: {cmdline[:160]}")
    return found


@pytest.fixture(scope="module")
def running_stack(stack_ready: StackSettings) -> StackSettings:
    return stack_ready


def test_up_on_a_running_stack_changes_nothing(running_stack: StackSettings) -> None:
    before = _pids(running_stack)
    output = _make("up").stdout
    assert _pids(running_stack) == before, "make up restarted something that was running"
    assert "every program is running" in output
    assert _states(output) == ALL_RUNNING, output  # `make up` ends with `make status`


def test_down_leaves_no_process_behind_and_up_restores(running_stack: StackSettings) -> None:
    pids = [pid for pid in _pids(running_stack).values() if pid]
    try:
        _make("down")
        still_alive = [pid for pid in pids if Path(f"/proc/{pid}").exists()]
        assert still_alive == []
        for folder in (running_stack.state_dir, running_stack.pg_dir):
            assert _processes_mentioning(folder) == []
        assert Supervisor(running_stack).daemon_pid() is None
    finally:
        _make("up")
    status = _make("status").stdout
    assert _states(status) == ALL_RUNNING, status
