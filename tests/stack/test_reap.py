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
from stack.reap import port_holders, reap

# listens on the port in argv[2] (0: any), shareable (SO_REUSEPORT), and prints it
LISTEN = "import socket, sys, time; s = socket.socket()\n"
LISTEN += "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)\n"
LISTEN += "s.bind(('127.0.0.1', int(sys.argv[2]))); s.listen()\n"
LISTEN += "print(s.getsockname()[1], flush=True); time.sleep(120)"


# the command reap.py runs: it binds the port its predecessor held
BIND = "import socket, sys; socket.socket().bind(('127.0.0.1', int(sys.argv[1])))\n"
BIND += "print('command bound the port')"


def _listening(port: int) -> bool:
    return any(c.status == psutil.CONN_LISTEN and c.laddr.port == port
               for c in psutil.net_connections("tcp"))  # fmt: skip


@pytest.fixture()
def leftover() -> Iterator[tuple[subprocess.Popen, str, int]]:
    """A process holding a listening port, with a unique name on its command line."""
    name = f"reap-test-{uuid.uuid4().hex[:8]}"
    process = subprocess.Popen([sys.executable, "-c", LISTEN, name, "0"], stdout=subprocess.PIPE,
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
         sys.executable, "-c", BIND, str(port)],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip

    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines() == [
        f"[reap] killed {name} leftovers holding port {port}: pids [{process.pid}]",
        "command bound the port",
    ]
    assert process.wait(10) == -9 and not _listening(port)


def test_reap_waits_for_the_port_and_says_so_when_another_program_holds_it(
    leftover, capsys: pytest.CaptureFixture[str]
) -> None:
    """Another program listening on the same port is not killed; reap waits for the port,
    then says it is still held (the command would fail to bind)."""
    process, name, port = leftover
    other = subprocess.Popen([sys.executable, "-c", LISTEN, "another-program", str(port)],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        assert int(other.stdout.readline()) == port
        assert reap(port, name, timeout=1) == [process.pid]
        assert process.wait(10) == -9 and other.poll() is None
    finally:
        other.kill()
        other.wait(10)
    assert capsys.readouterr().out == f"[reap] port {port} still held\n"
