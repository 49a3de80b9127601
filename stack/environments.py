"""Which environment each supervised program gets: only what it needs.

supervisord itself starts with `supervisord_environment()`: the OS basics and the
STACK_* paths, hosts and ports its config expands, and no secret. Postgres, Kafka,
Adminer and Prometheus inherit that. Connect, BentoML, the transformer and the Postgres
exporter are started through stack/launch.py, which execs them with the environment
written here for each one (`.state/env/<program>.json`, mode 0600, rewritten by every `up`
and `restart`). Connect gets the CDC and sink credentials, never the superuser's or the
app's (its own Kafka credentials are in its rendered worker properties, 0600); the
transformer its own Kafka principal's (TRANSFORMER_KAFKA_SASL_*); the Postgres exporter
the monitoring role's alone. Every value comes from the settings classes
(config/settings.py, transformer/settings.py, model/store.py): they alone read `.env`
and the environment.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

from config.settings import REPO_ROOT, BentoMLSettings, StackSettings, as_env
from model.settings import ServingSettings
from stack import private
from stack.postgres import find_bindir

# supervisord/supervisorctl and the launched programs come from this interpreter's virtualenv
VENV_BIN = Path(sys.executable).parent

# what every process may see of the environment it was started from
OS_BASICS = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")

# The only names Connect's EnvVarConfigProvider may resolve (connectors/*.json use them);
# the same tuple fills its environment and the provider's allowlist pattern.
CONNECT_ENV = (
    "PG_HOST",
    "PG_PORT",
    "PG_DATABASE",
    "CDC_DB_USER",
    "CDC_DB_PASSWORD",
    "SINK_DB_USER",
    "SINK_DB_PASSWORD",
)

LAUNCHED = ("connect", "bentoml", "transformer", "postgres_exporter")


def _pick(source: Mapping[str, str], names: Iterable[str]) -> dict[str, str]:
    return {name: source[name] for name in names if name in source}


def supervisord_environment(settings: StackSettings) -> dict[str, str]:
    """What supervisord (and the programs that inherit it) sees: no secret."""
    env = _pick(os.environ, OS_BASICS)
    env.update(
        {
            "STACK_STATE_DIR": str(settings.state_dir),
            "STACK_ENV_DIR": str(settings.env_dir),
            "STACK_JVM_DIR": str(settings.jvm_dir),
            "STACK_PG_BINDIR": str(find_bindir()),
            "STACK_PG_OS_USER": settings.server_os_user,
            "STACK_PG_DIR": str(settings.pg_dir),
            "STACK_ADMINER_OS_USER": settings.adminer_run_user,
            "STACK_ADMINER_DIR": str(settings.adminer_dir),
            "STACK_VENV_BIN": str(VENV_BIN),
            "STACK_REPO_ROOT": str(REPO_ROOT),
            "KAFKA_HEAP_OPTS": settings.kafka_heap_opts,
            "CONNECT_HEAP_OPTS": settings.connect_heap_opts,
            "PG_HOST": settings.postgres.pg_host,
            "PG_PORT": str(settings.postgres.pg_port),
            "BENTOML_HOST": settings.services.bentoml_host,
            "BENTOML_PORT": str(settings.services.bentoml_port),
            "ADMINER_HOST": settings.services.adminer_host,
            "ADMINER_PORT": str(settings.services.adminer_port),
            "MONITORING_HOST": settings.monitoring.monitoring_host,
            "PROMETHEUS_PORT": str(settings.monitoring.prometheus_port),
            "PROMETHEUS_RETENTION": settings.monitoring.prometheus_retention,
            "KAFKA_JMX_PORT": str(settings.monitoring.kafka_jmx_port),
            "CONNECT_JMX_PORT": str(settings.monitoring.connect_jmx_port),
            "POSTGRES_EXPORTER_PORT": str(settings.monitoring.postgres_exporter_port),
        }
    )
    return env


def program_environment(settings: StackSettings, program: str) -> dict[str, str]:
    """The complete environment of one launched program: the OS basics and the values of
    the settings classes it reads, under their env names."""
    env = _pick(os.environ, OS_BASICS)
    if program == "connect":
        return env | _pick(as_env(settings.postgres), CONNECT_ENV)
    if program == "postgres_exporter":  # its DSN as parts: the exporter escapes them
        pg = settings.postgres
        return env | {
            "DATA_SOURCE_URI": f"{pg.pg_host}:{pg.pg_port}/{pg.pg_database}?sslmode=disable",
            "DATA_SOURCE_USER": pg.monitoring_db_user,
            "DATA_SOURCE_PASS": pg.monitoring_db_password,
        }
    if program == "transformer":  # its own Kafka principal, passed through to librdkafka
        from transformer.settings import Settings as TransformerSettings

        principals = settings.kafka_principals
        own = principals.sasl(
            principals.kafka_transformer_user, principals.kafka_transformer_password
        )
        transformer = TransformerSettings()
        # its own principal, unless TRANSFORMER_KAFKA_* says otherwise explicitly
        kafka = {name.replace(".", "_"): value for name, value in own.items()}
        kafka |= transformer.transformer_kafka
        # every local broker (or the external cluster's list): it fails over by itself
        bootstrap = settings.kafka.bootstrap_servers
        update = {"transformer_kafka": kafka, "kafka_bootstrap_servers": bootstrap}
        return env | as_env(transformer.model_copy(update=update))
    serving = ServingSettings(_env_file=REPO_ROOT / ".env")  # the bento reads no .env itself
    return env | as_env(BentoMLSettings(), serving) | {"BENTOML_HOME": str(settings.bentoml_home)}


def write_program_environments(settings: StackSettings) -> list[Path]:
    """`.state/env/<program>.json` for every launched program and extra instance
    (stack/render.py names them), readable by us alone."""
    settings.env_dir.mkdir(parents=True, exist_ok=True)
    settings.env_dir.chmod(0o700)
    environments = {program: program_environment(settings, program) for program in LAUNCHED}
    metrics_port = settings.services.transformer_metrics_port
    for number in range(2, settings.transformer_instances + 1):
        port = str(metrics_port + number - 1 if metrics_port else 0)
        environments[f"transformer-{number}"] = environments["transformer"] | {
            "TRANSFORMER_METRICS_PORT": port
        }
    for number in range(2, settings.connect_workers + 1):
        environments[f"connect-{number}"] = environments["connect"]
    written = []
    for name, env in environments.items():
        path = settings.env_dir / f"{name}.json"
        private.write_private(path, json.dumps(env))
        written.append(path)
    return written
