"""`python -m stack.reap NAME -- COMMAND...`: start COMMAND after killing what is left of
the previous NAME.

supervisord starts every program in its own process group. When a program that forks
workers (BentoML's arbiter and its worker) is killed with SIGKILL, only the parent dies;
the worker keeps the port, and every restart fails with "Address already in use" until
supervisor gives up. So before starting, this kills the process group recorded for NAME
last time (only processes that still belong to it), records its own group, and execs the
command in place: supervisor keeps managing the same pid.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path


def group_members(pgid: int) -> list[int]:
    """Pids whose process group is `pgid` (read from /proc, so no race with reuse of the
    leader's pid: a reused pid is in another group)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:  # fields after the command: state, ppid, pgrp, ...
            members.append(int(entry.name))
    return members


def reap(record: Path, timeout: float = 10.0) -> list[int]:
    """Kill the leftovers of the group written in `record`; returns the pids killed."""
    try:
        pgid = int(record.read_text())
    except (OSError, ValueError):
        return []
    if pgid == os.getpgrp():
        return []
    killed = group_members(pgid)
    for pid in killed:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return killed


def main(argv: list[str]) -> None:
    if len(argv) < 3 or argv[1] != "--":
        sys.exit("usage: python -m stack.reap NAME -- COMMAND [ARGS...]")
    name, command = argv[0], argv[2:]
    record = Path(os.environ.get("STACK_STATE_DIR", ".state")) / "run" / f"{name}.pgid"
    record.parent.mkdir(parents=True, exist_ok=True)
    killed = reap(record)
    if killed:
        print(f"[reap] killed leftovers of the previous {name}: pids {killed}", flush=True)
    record.write_text(str(os.getpgrp()))
    os.execvp(command[0], command)


if __name__ == "__main__":
    main(sys.argv[1:])
