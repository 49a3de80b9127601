"""`python -I stack/reap.py NAME PORT -- COMMAND...`: start COMMAND after killing what a
killed predecessor left holding PORT.

BentoML's arbiter runs its worker in a session of its own (setsid), and the worker holds
the listening socket. When the arbiter is killed with SIGKILL, the worker lives on,
unmanaged, keeps the port, and every restart fails with "Address already in use" until
supervisor gives up. So before starting, this kills every process whose command line
names NAME and which holds a listening socket on PORT, waits until the port is free, and
execs the command in place (supervisor keeps managing the same pid). It runs as a script
from the venv's interpreter, so it imports only the venv's packages (psutil, tenacity),
never the project.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable

import psutil
from tenacity import Retrying, retry_if_result, stop_after_delay, wait_fixed


def _listens(connections: Iterable, port: int) -> bool:
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port
               for c in connections)  # fmt: skip


def _holders(port: int, name: str) -> list[psutil.Process]:
    found = []
    for process in psutil.process_iter(["cmdline"]):
        try:
            if (
                process.pid != os.getpid()
                and name in " ".join(process.info["cmdline"] or ())
                and _listens(process.net_connections("tcp"), port)
            ):
                found.append(process)
        except psutil.Error:  # gone, or not ours to inspect
            continue
    return found


def port_holders(port: int, name: str) -> list[int]:
    """Pids (other than ours) whose command line mentions `name` and which hold a
    listening socket on `port`."""
    return [process.pid for process in _holders(port, name)]


def reap(port: int, name: str, timeout: float = 10.0) -> list[int]:
    """Kill the leftovers holding `port` and wait (at most `timeout` s) until it is free;
    returns their pids."""
    killed = _holders(port, name)
    for process in killed:
        try:
            process.kill()  # SIGKILL, unless the pid was reused meanwhile
        except psutil.NoSuchProcess:
            pass
    if killed:
        Retrying(
            stop=stop_after_delay(timeout),
            wait=wait_fixed(0.1),
            retry=retry_if_result(bool),
            retry_error_callback=lambda _: print(f"[reap] port {port} still held", flush=True),
        )(lambda: _listens(psutil.net_connections("tcp"), port))
    return [process.pid for process in killed]


def main(argv: list[str]) -> None:
    if len(argv) < 4 or argv[2] != "--":
        sys.exit("usage: reap.py NAME PORT -- COMMAND [ARGS...]")
    name, port, command = argv[0], int(argv[1]), argv[3:]
    killed = reap(port, name)
    if killed:
        print(f"[reap] killed {name} leftovers holding port {port}: pids {killed}", flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
