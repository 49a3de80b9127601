"""`python -m stack up|down|restart|…` — what the Makefile calls to
run the local stack (the pipeline's operations are `python -m operations.<name>`).

`up` is idempotent: it initialises only what is missing, starts only what is not
running, and waits until every component answers.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

from config import new_env
from config.settings import REPO_ROOT, StackSettings
from model.settings import MODEL_NAME
from stack import kafka, monitoring, postgres, private, readiness
from stack.render import render_configs
from stack.supervisor import VENV_BIN, Supervisor, stack_environment


def say(message: str) -> None:
    print(f"[stack] {message}", flush=True)


def _tail(settings: StackSettings, name: str, lines: int = 40) -> str:
    log = settings.log_dir / f"{name}.log"
    if not log.exists():
        return f"(no {log})"
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])


def up(settings: StackSettings) -> int:
    os.umask(private.UMASK)  # whatever the stack writes: ours alone (stack/private.py)
    private.private_state(settings)  # first: `.state` 0711, so Postgres' user can pass it
    for key in new_env.add_missing_passwords(REPO_ROOT / ".env", REPO_ROOT / ".env.example"):
        say(f"added a random {key} to .env")
    for warning in new_env.weaknesses(REPO_ROOT / ".env", REPO_ROOT / ".env.example"):
        say(f"warning: {warning}")
    try:  # before anything is rendered or started: a changed count is refused whole
        kafka.check_broker_count(settings)
    except kafka.BrokerCountChanged as exc:
        say(f"refused: {exc}")
        return 2
    render_configs(settings)
    if postgres.init_cluster(settings):
        say(f"initialised Postgres cluster in {settings.pg_data_dir}")
    hba_changed = postgres.write_hba(settings)
    for node in kafka.format_storage(settings):
        say(f"formatted KRaft storage of broker {node} in {settings.broker_data_dir(node)}")
    if ensure_model(settings) != 0:
        return 1
    private.private_state(settings)
    say(Supervisor(settings).start())
    for name in readiness.CHECKS:
        started = time.monotonic()
        try:
            readiness.wait_until_ready(settings, name)
        except TimeoutError as exc:
            say(f"{exc}\n--- last lines of .state/logs/{name}.log ---\n{_tail(settings, name)}")
            return 1
        say(f"{name:<9} ready ({time.monotonic() - started:.1f}s)")
        if name == "kafka":  # before Connect and the transformer can authenticate
            kafka.ensure_principals(settings)
    if hba_changed:
        postgres.reload_config(settings)  # a server that was already running
    if postgres.ensure_database(settings):
        say(f"created database {settings.postgres.pg_database}")
    created = kafka.ensure_topics(settings)
    if created:
        say(f"created topics {created}")
    monitoring.reload_prometheus(settings)  # the scrape targets of added instances
    return 0


def ensure_model(settings: StackSettings) -> int:
    """Train once when the BentoML store has no model, so BentoML can start."""
    env = stack_environment(settings)
    found = subprocess.run(
        [str(VENV_BIN / "bentoml"), "models", "get", f"{MODEL_NAME}:latest"],
        env=env,
        capture_output=True,
        text=True,
    )
    if found.returncode == 0:
        return 0
    data = settings.ford_csv_path
    if not data.exists():
        say(
            f"no model in the BentoML store and no data at {data}: get ford.csv "
            "(README, 'Get the data') and set FORD_CSV in .env"
        )
        return 1
    say(f"no model in the BentoML store ({env['BENTOML_HOME']}): training on {data}")
    trained = subprocess.run(
        [sys.executable, "-m", "model.train", "--data", str(data)], env=env, cwd=REPO_ROOT
    ).returncode
    if trained == 0:  # the first model is deployed; later ones by `make deploy-model`
        subprocess.run(
            [sys.executable, "-m", "model.store", "--deploy-newest"],
            env=env,
            cwd=REPO_ROOT,
            check=True,
        )
    return trained


def urls(settings: StackSettings) -> int:
    pg, services = settings.postgres, settings.services
    print(f"""
  Adminer      {services.adminer_url}
               System: PostgreSQL  Server: {pg.pg_host}:{pg.pg_port}  Username: {pg.app_db_user}
               Password: APP_DB_PASSWORD from .env  Database: {pg.pg_database}
  BentoML      {services.bentoml_url}  (POST /predict, /readyz, /metrics)
  Transformer  {services.transformer_metrics_url}
  Kafka        {settings.kafka.bootstrap_servers}    Connect REST {settings.connect.url}
  Prometheus   {settings.monitoring.prometheus_url}/graph  (alerts: /alerts, docs/monitoring.md)
  Postgres     postgresql://{pg.app_db_user}@{pg.pg_host}:{pg.pg_port}/{pg.pg_database}
""")
    return 0


def down(settings: StackSettings) -> int:
    stopped = Supervisor(settings).shutdown()
    say("stopped every program and supervisord" if stopped else "stack was not running")
    return 0


def create_topics(settings: StackSettings) -> int:
    kafka.ensure_principals(settings)
    created = kafka.ensure_topics(settings)
    say(f"created topics {created}" if created else "every topic exists")
    return 0


def restart(settings: StackSettings, program: str) -> int:
    Supervisor(settings).restart(program)
    say(f"restarted {program}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stack", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    plain = {"up": up, "down": down, "urls": urls}
    for name, run in (plain | {"create-topics": create_topics}).items():
        commands.add_parser(name).set_defaults(run=run)
    restart_one = commands.add_parser("restart", help="restart one supervisor program")
    restart_one.add_argument("program")
    restart_one.set_defaults(run=restart)
    args = vars(parser.parse_args(argv))
    run, _ = args.pop("run"), args.pop("command")
    return run(StackSettings(), **args)


if __name__ == "__main__":
    sys.exit(main())
