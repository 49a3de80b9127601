"""`python -I stack/reap.py NAME PORT -- COMMAND...`: start COMMAND after killing what a
killed predecessor left holding PORT.

BentoML's arbiter runs its worker in a session of its own (setsid), and the worker holds
the listening socket. When the arbiter is killed with SIGKILL, the worker lives on,
unmanaged, keeps the port, and every restart fails with "Address already in use" until
supervisor gives up. So before starting, this kills every process whose command line
names NAME and which holds a listening socket on PORT, waits until the port is free, and
execs the command in place (supervisor keeps managing the same pid). Standard library
only: it runs before anything is imported.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on `port` (IPv4 and IPv6), from the kernel's tables."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    return inodes


def port_holders(port: int, name: str) -> list[int]:
    """Pids (other than ours) whose command line mentions `name` and which hold a
    listening socket on `port`."""
    sockets = {f"socket:[{inode}]" for inode in listening_inodes(port)}
    holders = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if name not in (entry / "cmdline").read_bytes().decode(errors="replace"):
                continue
            if any(os.readlink(fd) in sockets for fd in (entry / "fd").iterdir()):
                holders.append(int(entry.name))
        except OSError:
            continue
    return holders


def reap(port: int, name: str, timeout: float = 10.0) -> list[int]:
    """Kill the leftovers holding `port`; returns their pids."""
    killed = port_holders(port, name)
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while killed and listening_inodes(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    return killed


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
