"""Render the Kafka/Connect config templates with the values from `.env`.

ConnectDistributed takes only a properties file, so ports from `.env` have to be
written into one; the rendered files live in the git-ignored state folder.
"""

from __future__ import annotations

import configparser
import io
from pathlib import Path
from string import Template

from config.settings import StackSettings
from stack import monitoring, private

TEMPLATES = Path(__file__).parent / "templates"


def _jaas_string(text: str) -> str:
    """A JAAS option value: quoted, `\\` and `"` escaped."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _property_value(text: str) -> str:
    """A value as java.util.Properties reads it back (backslash escapes)."""
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _property_key(text: str) -> str:
    """A key as java.util.Properties reads it back (`=`, `:`, blanks escaped too)."""
    escaped = _property_value(text)
    for char in "=: \t#!":
        escaped = escaped.replace(char, "\\" + char)
    return escaped


def jaas(module: str, **options: str) -> str:
    """A `sasl.jaas.config` property value."""
    pairs = " ".join(f"{name}={_jaas_string(value)}" for name, value in options.items())
    return _property_value(f"{module} required {pairs};")


def template_values(settings: StackSettings) -> dict[str, str]:
    kafka, connect, principals = settings.kafka, settings.connect, settings.kafka_principals
    admin_user, admin_password = principals.kafka_admin_user, principals.kafka_admin_password
    return (
        {
            "kafka_security_protocol": principals.kafka_security_protocol,
            "kafka_admin_user": admin_user,
            "admin_plain_jaas": jaas(
                "org.apache.kafka.common.security.plain.PlainLoginModule",
                username=admin_user,
                password=admin_password,
                **{f"user_{admin_user}": admin_password},
            ),
            "kafka_admin_sasl_mechanism": principals.kafka_admin_sasl_mechanism,
            "admin_client_jaas": jaas(
                "org.apache.kafka.common.security.plain.PlainLoginModule"
                if principals.kafka_admin_sasl_mechanism == "PLAIN"
                else "org.apache.kafka.common.security.scram.ScramLoginModule",
                username=admin_user,
                password=admin_password,
            ),
            "connect_rest_users": _property_key(connect.connect_rest_user)
            + "="
            + _property_value(connect.connect_rest_password),
            "connect_rest_users_file": str(settings.conf_dir / "connect-rest-users.properties"),
            "connect_scram_jaas": jaas(
                "org.apache.kafka.common.security.scram.ScramLoginModule",
                username=principals.kafka_connect_user,
                password=principals.kafka_connect_password,
            ),
            "kafka_host": kafka.kafka_host,
            "bootstrap_servers": kafka.bootstrap_servers,
            # every node is a voter: the quorum is the whole cluster (docs/cluster.md)
            "controller_quorum_voters": ",".join(
                f"{node}@127.0.0.1:{kafka.controller_port(node)}" for node in kafka.brokers
            ),
            "replication_factor": str(kafka.replication_factor),
            "cluster_worker_properties": CLUSTER_WORKER_PROPERTIES
            if kafka.kafka_brokers > 1
            else "",
            "min_insync_replicas": str(kafka.min_insync_replicas),
            "connect_host": connect.connect_host,
            "connect_port": str(connect.connect_port),
            "plugin_path": str(settings.jvm_dir / "plugins"),
            "kafka_max_message_bytes": str(kafka.kafka_max_message_bytes),
            "secrets_dir": str(settings.secrets_dir),
            "extra_worker_properties": extra_worker_properties(
                {f"CONNECT_{name.upper()}": value for name, value in connect.connect.items()}
            ),
        }
        | monitoring.template_values(settings)
        | broker_values(settings, 1)
    )


def broker_values(settings: StackSettings, node: int) -> dict[str, str]:
    """What differs between the brokers' properties: id, ports, log directory."""
    kafka = settings.kafka
    return {
        "node_id": str(node),
        "kafka_port": str(kafka.broker_port(node)),
        "kafka_controller_port": str(kafka.controller_port(node)),
        "kafka_data_dir": str(settings.broker_data_dir(node)),
    }


def broker_properties(node: int) -> str:
    """Broker n's rendered properties file: `server.properties` for broker 1 (the single
    broker's name, as before), `kafka-n.properties` for the others."""
    return "server.properties" if node == 1 else f"{instance_name('kafka', node)}.properties"


# With several brokers, a broker that dies leads partitions of Connect's offsets topic
# until the controller fences it (9 s). The worker's admin calls (reading that topic to its
# end, which Debezium's task waits for) would wait for it up to the default 60 s; these
# retry against the new leader within seconds instead (docs/cluster.md).
CLUSTER_WORKER_PROPERTIES = """\
# KAFKA_BROKERS > 1: a call stuck on a dead broker is retried soon (stack/render.py)
request.timeout.ms=5000
default.api.timeout.ms=5000
metadata.max.age.ms=5000
"""


# the stack's own CONNECT_* settings, not worker properties
STACK_CONNECT_SETTINGS = {
    "CONNECT_HOST",
    "CONNECT_PORT",
    "CONNECT_HEAP_OPTS",
    "CONNECT_JMX_PORT",
    "CONNECT_WORKERS",
    "CONNECT_REST_USER",
    "CONNECT_REST_PASSWORD",
}


def extra_worker_properties(env: dict[str, str]) -> str:
    """CONNECT_* settings as worker properties, by the rule of Debezium's Connect image
    (CONNECT_SECURITY_PROTOCOL -> security.protocol; `__` is `_`, `___` is `-`), so SASL or
    TLS towards another Kafka is set the same way on both paths."""
    lines = []
    for key in sorted(env):
        if not key.startswith("CONNECT_") or key in STACK_CONNECT_SETTINGS:
            continue
        name = (
            key.removeprefix("CONNECT_")
            .lower()
            .replace("___", "-")
            .replace("__", "\0")
            .replace("_", ".")
            .replace("\0", "_")
        )
        value = env[key].replace("\\", "\\\\").replace("\n", "\\n")
        lines.append(f"{name}={value}")
    header = "# from CONNECT_* settings (.env or the environment)\n" if lines else ""
    return header + "\n".join(lines) + ("\n" if lines else "")


def instance_name(program: str, number: int) -> str:
    """`transformer`, `transformer-2`, …: instance 1 keeps the program's own name."""
    return program if number == 1 else f"{program}-{number}"


def scale_out_sections(settings: StackSettings) -> str:
    """supervisord sections for the instances beyond the first (KAFKA_BROKERS,
    TRANSFORMER_INSTANCES, CONNECT_WORKERS), copied from the first's section in
    stack/supervisord.conf so each program is defined once: instance n runs `launch.py
    <program>-n` (its own environment file), Connect worker n reads its own properties (REST
    port CONNECT_PORT + n - 1), broker n its own (`kafka-n.properties`, own JMX port)."""
    base = configparser.RawConfigParser()
    base.read(settings.supervisor_conf)
    extra = configparser.RawConfigParser()
    counts = {
        "kafka": settings.kafka.kafka_brokers,
        "transformer": settings.transformer_instances,
        "connect": settings.connect_workers,
    }
    jmx_port = settings.monitoring.connect_jmx_port
    for program, count in counts.items():
        for number in range(2, count + 1):
            name = instance_name(program, number)
            section = {key: value for key, value in base.items(f"program:{program}")}
            section["command"] = (
                section["command"]
                .replace(f"launch.py {program}", f"launch.py {name}")
                .replace("connect-distributed.properties", f"{name}.properties")
                .replace("%(ENV_CONNECT_JMX_PORT)s", str(jmx_port + number - 1))
                .replace("conf/server.properties", f"conf/{broker_properties(number)}")
                .replace("%(ENV_KAFKA_JMX_PORT)s", str(settings.kafka_jmx_port(number)))
            )
            section["stdout_logfile"] = section["stdout_logfile"].replace(
                f"/{program}.log", f"/{name}.log"
            )
            extra[f"program:{name}"] = section
    text = io.StringIO()
    extra.write(text)
    header = "; written by stack/render.py: KAFKA_BROKERS, TRANSFORMER_INSTANCES, CONNECT_WORKERS\n"
    return header + text.getvalue()


def render_configs(settings: StackSettings) -> list[Path]:
    """Write every template to `.state/conf/`, plus one properties file per extra broker
    and Connect worker and the extra supervisord sections; returns the written paths."""
    settings.conf_dir.mkdir(parents=True, exist_ok=True)
    settings.secrets_dir.mkdir(parents=True, exist_ok=True)
    settings.secrets_dir.chmod(0o700)
    values = template_values(settings)
    targets = {
        template.name: (template.read_text(), values) for template in sorted(TEMPLATES.iterdir())
    }
    worker = targets["connect-distributed.properties"][0]
    port = settings.connect.connect_port
    for number in range(2, settings.connect_workers + 1):
        targets[f"{instance_name('connect', number)}.properties"] = (
            worker.replace("${connect_port}", str(port + number - 1)),
            values,
        )
    server = targets["server.properties"][0]
    for node in settings.kafka.brokers:
        targets[broker_properties(node)] = (server, values | broker_values(settings, node))
    written = []
    for name, (template, its_values) in targets.items():
        private.write_private(settings.conf_dir / name, Template(template).substitute(its_values))
        written.append(settings.conf_dir / name)
    private.write_private(settings.scale_out_conf, scale_out_sections(settings))
    return [*written, settings.scale_out_conf]
