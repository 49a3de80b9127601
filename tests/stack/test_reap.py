"""stack/reap.py: what a killed predecessor left holding the port is found (psutil) and killed,
and the script runs as supervisord runs it (`python -I`, no project on the path)."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Iterator

import psutil
import pytest

from config.settings import REPO_ROOT
from stack.reap import port_holders

LISTEN = "import socket, sys, time; s = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen()\n"
LISTEN += "print(s.getsockname()[1], flush=True); time.sleep(120)"


def _listening(port: int) -> bool:
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
               for c in psutil.net_connections("tcp"))  # fmt: skip


@pytest.fixture()
def leftover() -> Iterator[tuple[subprocess.Popen, str, int]]:
    """A process holding a listening port, with a unique name on its command line."""
    name = f"reap-test-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen([sys.executable, "-c", LISTEN, name], stdout=subprocess.PIPE,
                               text=True)  # fmt: skip
    port = int(process.stdout.readline())
    yield process, name, port
    process.kill()
    process.wait(10)


def test_only_a_process_with_the_name_holding_the_port_is_a_holder(leftover) -> None:
    process, name, port = leftover

    assert port_holders(port, name) == [process.pid]
    assert port_holders(port, "some-other-name") == []
    assert port_holders(port + 1 if port < 65535 else port - 1, name) == []


def test_the_script_kills_the_leftover_waits_for_the_port_and_runs_the_command(leftover) -> None:
    process, name, port = leftover

    ran = subprocess.run(
        [sys.executable, "-I", str(REPO_ROOT / "stack" / "reap.py"), name, str(port), "--",
         sys.executable, "-c", "print('command ran')"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        f"[reap] killed {name} leftovers holding port {port}: pids [{process.pid}]",
        "command ran",
    ]
    assert process.wait(10) == -9 and not _listening(port)
