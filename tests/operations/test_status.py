"""`make status` (operations/status.py) on the running stack: a line per supervised program by
name with its state and readiness, each connector with its task, the slot and the alerts."""

from __future__ import annotations

import re
import subprocess
import sys

from config.settings import REPO_ROOT, StackSettings
from tests.support import PROGRAMS


def test_status_names_every_program_connector_slot_and_the_alerts(
    stack_ready: StackSettings,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "operations.status"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    states = {line.split()[0]: line.split()[1] for line in lines if line.split()[:1]}
    assert {name: states.get(name) for name in PROGRAMS} == dict.fromkeys(PROGRAMS, "RUNNING")
    transformer = next(line for line in lines if line.startswith("transformer "))
    assert re.search(r"ready, lag (\d+ events|no commits yet)$", transformer), transformer
    bentoml = next(line for line in lines if line.startswith("bentoml "))
    assert re.search(r"ready, serving car_price_xgb:\w+$", bentoml), bentoml
    connectors = [line for line in lines if line.startswith("connector ")]
    assert len(connectors) == 2 and all("RUNNING    task0=RUNNING" in c for c in connectors)
    assert any(re.match(r"slot dbz_car_price +active", line) for line in lines), lines
    assert lines[-1] == "alerts: none firing" or lines[-1].startswith("alert "), lines[-1]
