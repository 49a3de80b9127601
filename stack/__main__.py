"""`python -m stack up|down|status|deploy-connectors` — what the Makefile calls.

`up` is idempotent: it initialises only what is missing, starts only what is not
running, and waits until every component answers.
"""

from __future__ import annotations

import argparse
import sys
import time

from stack import connectors, kafka, postgres, readiness
from stack.render import render_configs
from stack.settings import StackSettings
from stack.supervisor import Supervisor

# the order in which supervisor starts them and we wait for them
COMPONENTS = ("postgres", "kafka", "connect")


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def _tail(settings: StackSettings, name: str, lines: int = 40) -> str:
    log = settings.log_dir / f"{name}.log"
    if not log.exists():
        return f"(no {log})"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def up(settings: StackSettings) -> int:
    render_configs(settings)
    if postgres.init_cluster(settings):
        say(f"initialised Postgres cluster in {settings.pg_data_dir}")
    if kafka.format_storage(settings):
        say(f"formatted KRaft storage in {settings.kafka_data_dir}")
    say(Supervisor(settings).start())
    for name in COMPONENTS:
        started = time.monotonic()
        try:
            readiness.wait_until_ready(settings, name)
        except TimeoutError as exc:
            say(f"{exc}\n--- last lines of .state/logs/{name}.log ---\n{_tail(settings, name)}")
            return 1
        say(f"{name:<9} ready ({time.monotonic() - started:.1f}s)")
    if postgres.ensure_database(settings):
        say(f"created database {settings.postgres.pg_database}")
    created = kafka.ensure_topics(settings)
    if created:
        say(f"created topics {created}")
    return 0


def down(settings: StackSettings) -> int:
    stopped = Supervisor(settings).shutdown()
    say("stopped every program and supervisord" if stopped else "stack was not running")
    return 0


def status(settings: StackSettings) -> int:
    supervisor = Supervisor(settings)
    if supervisor.daemon_pid() is None:
        say("stack is down (supervisord not running) — `make up` starts it")
        return 3
    for process in supervisor.processes():
        check = readiness.CHECKS.get(process.name)
        reason = check(settings) if check and process.state == "RUNNING" else None
        health = "" if check is None or process.state != "RUNNING" else \
            ("ready" if reason is None else f"not ready: {reason}")
        print(f"{process.name:<12} {process.state:<9} {process.description:<32} {health}")
    if readiness.connect_ready(settings) is None:
        states = connectors.all_states(settings.connect)
        for state in states:
            print(state.line())
        if not states:
            print("no connectors deployed — `make deploy-connectors`")
    return 0


def deploy_connectors(settings: StackSettings) -> int:
    try:
        for state in connectors.deploy(settings.connect):
            say(state.line())
    except connectors.ConnectorDeployFailed as exc:
        say(str(exc))
        return 1
    return 0


COMMANDS = {"up": up, "down": down, "status": status, "deploy-connectors": deploy_connectors}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    parser.add_argument("command", choices=sorted(COMMANDS))
    args = parser.parse_args(argv)
    return COMMANDS[args.command](StackSettings())


if __name__ == "__main__":
    sys.exit(main())
