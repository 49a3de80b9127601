"""The Docker path shares everything it can with the local stack, so it cannot drift.

The broker and worker settings are the local stack's templates one to one, the Postgres
server options and the JVMs' heap and GC flags are supervisord's, and every container runs
the Makefile's command.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from types import SimpleNamespace
from urllib.parse import urlsplit

import httpx
import pytest
from docker_facts import (
    DOCKERFILE,
    TEMPLATES,
    command,
    dockerfile_instructions,
    environment,
    healthcheck_text,
    makefile_recipe_args,
    pom_properties,
    read_env_file,
    render_template,
    services,
    supervisor_command,
)

from config.settings import REPO_ROOT, ServiceSettings, StackSettings
from operations.connectors import CONNECTORS_DIR
from stack import readiness
from stack.render import jaas

PLAIN = "org.apache.kafka.common.security.plain.PlainLoginModule"
SCRAM = "org.apache.kafka.common.security.scram.ScramLoginModule"

# the properties that are about where a process listens or keeps files, not how it behaves
KAFKA_CONTAINER_ONLY = {
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "log.dirs",
    # the published HOST listener authenticates like CLIENT
    "listener.name.host.plain.sasl.jaas.config",
    "listener.name.host.scram-sha-512.sasl.jaas.config",
}
CONNECT_CONTAINER_ONLY = {"listeners", "plugin.path", "config.providers.file.param.allowed.paths"}
#: what apache/kafka and Debezium's image put on the java command line after the heap flags
JVM_OPTIONS = "KAFKA_JVM_PERFORMANCE_OPTS"
#: where both images (kafka-run-class.sh) take extra java options: the JMX exporter agent
AGENT_OPTIONS = "KAFKA_OPTS"
POSTGRES_PROCESS_ONLY = {"listen_addresses", "port", "unix_socket_directories", "logging_collector"}
# quay.io/debezium/connect's docker-entrypoint.sh short names for worker properties
DEBEZIUM_SHORT_NAMES = {
    "BOOTSTRAP_SERVERS": "bootstrap.servers",
    "GROUP_ID": "group.id",
    "CONFIG_STORAGE_TOPIC": "config.storage.topic",
    "OFFSET_STORAGE_TOPIC": "offset.storage.topic",
    "STATUS_STORAGE_TOPIC": "status.storage.topic",
    "KEY_CONVERTER": "key.converter",
    "VALUE_CONVERTER": "value.converter",
    "OFFSET_FLUSH_INTERVAL_MS": "offset.flush.interval.ms",
    "ADVERTISED_HOST_NAME": "rest.advertised.host.name",
    "ADVERTISED_PORT": "rest.advertised.port",
    "REST_PORT": "rest.port",
}


def container_values() -> dict[str, str]:
    """Template placeholders (`${kafka_host}`...) with the values the containers get."""
    values = {key.lower(): value for key, value in read_env_file().items()}
    for name in ("kafka", "connect"):
        values.update({k.lower(): v for k, v in environment(services(True)[name]).items()})
    values.update({"kafka_host": "kafka", "connect_host": "connect"})
    values["bootstrap_servers"] = f"kafka:{values['kafka_port']}"
    # the Docker path runs one broker: node 1, the sole voter, one replica of everything
    controller = values["kafka_controller_port"]
    values |= {"node_id": "1", "controller_quorum_voters": f"1@127.0.0.1:{controller}"}
    values |= {"replication_factor": "1", "min_insync_replicas": "1"}
    # the SASL placeholders, as stack/render.py fills them from the same .env values
    rendered = template_values(SimpleNamespace(env=values))
    values.update(rendered)
    return values


def template_values(settings: SimpleNamespace) -> dict[str, str]:
    values = settings.env
    admin, password = values["kafka_admin_user"], values["kafka_admin_password"]
    return {
        "kafka_security_protocol": "SASL_PLAINTEXT",
        "admin_plain_jaas": jaas(PLAIN, username=admin, password=password,
                                 **{f"user_{admin}": password}),
        "connect_scram_jaas": jaas(SCRAM, username=values["kafka_connect_user"],
                                   password=values["kafka_connect_password"]),
    }  # fmt: skip


def env_to_property(name: str, prefix: str) -> str:
    """KAFKA_LOG_RETENTION_HOURS -> log.retention.hours (`__` is `_`, `___` is `-`)."""
    body = name.removeprefix(prefix)
    return body.lower().replace("___", "-").replace("__", "\0").replace("_", ".").replace("\0", "_")


def kafka_properties() -> dict[str, str]:
    env = environment(services(True)["kafka"])
    return {
        env_to_property(k, "KAFKA_"): v
        for k, v in env.items()
        # the image passes these to java (its exclusion list), not to server.properties
        if k.startswith("KAFKA_") and k not in (JVM_OPTIONS, AGENT_OPTIONS)
    }


def local_jvm_options(program: str) -> list[str]:
    """The heap (default) and GC flags supervisord starts `program`'s JVM with, in order."""
    heap = StackSettings.model_fields[f"{program}_heap_opts"].default.split()
    argv = supervisor_command(program)
    argv = [*heap, *argv[2:]] if argv[1] == f"%(ENV_{program.upper()}_HEAP_OPTS)s" else argv
    return [arg for arg in argv if arg.startswith("-X")]


def connect_properties() -> dict[str, str]:
    properties = {}
    for key, value in environment(services(True)["connect"]).items():
        if key in DEBEZIUM_SHORT_NAMES:
            properties[DEBEZIUM_SHORT_NAMES[key]] = value
        elif key.startswith("CONNECT_"):
            properties[env_to_property(key, "CONNECT_")] = value
    return properties


def postgres_options(argv: list[str]) -> dict[str, str]:
    pairs = [argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg == "-c"]
    return dict(pair.split("=", 1) for pair in pairs)


def test_broker_settings_are_the_local_server_properties() -> None:
    local = render_template(TEMPLATES / "server.properties", container_values())
    shared = {k: v for k, v in local.items() if k not in KAFKA_CONTAINER_ONLY}
    docker = kafka_properties()
    assert {k: docker.get(k) for k in shared} == shared
    extra = set(docker) - set(local) - KAFKA_CONTAINER_ONLY
    assert not extra, f"broker settings only the Docker path has: {sorted(extra)}"
    # the listeners differ (the published HOST one is Docker's), how they authenticate not
    local_map, docker_map = (
        dict(pair.split(":") for pair in props["listener.security.protocol.map"].split(","))
        for props in (local, docker)
    )
    assert set(local_map.values()) == set(docker_map.values()) == {"SASL_PLAINTEXT"}


def test_worker_settings_are_the_local_connect_properties() -> None:
    local = render_template(TEMPLATES / "connect-distributed.properties", container_values())
    shared = {k: v for k, v in local.items() if k not in CONNECT_CONTAINER_ONLY}
    docker = connect_properties()
    assert {k: docker.get(k) for k in shared} == shared
    extra = set(docker) - set(local) - CONNECT_CONTAINER_ONLY
    assert not extra, f"worker settings only the Docker path has: {sorted(extra)}"
    assert docker["listeners"].rsplit(":", 1)[1] == local["listeners"].rsplit(":", 1)[1]


def test_the_jvms_get_supervisords_heap_and_gc_flags() -> None:
    kafka = environment(services()["kafka"])
    assert kafka[JVM_OPTIONS].split() == local_jvm_options("kafka")
    connect = environment(services()["connect"])
    docker = [*connect["HEAP_OPTS"].split(), *connect[JVM_OPTIONS].split()]
    assert docker == local_jvm_options("connect")


def test_connect_rest_asks_for_credentials_on_both_paths() -> None:
    """The worker's JVM gets a JAAS file for its REST extension (stack/supervisord.conf,
    compose's KAFKA_OPTS), and the extension is a worker property (parity test above)."""
    flag = "-Djava.security.auth.login.config="
    assert any(a.startswith(flag) for a in supervisor_command("connect"))
    options = environment(services()["connect"])[AGENT_OPTIONS].split()
    assert any(option.startswith(flag) for option in options)


def test_the_jvms_get_supervisords_jmx_exporter_agent_and_rules() -> None:
    """The same agent, rules file and port setting as stack/supervisord.conf; the agent's
    jar is the pom's version (compose's jmx-agent job)."""
    for program in ("kafka", "connect"):
        [local] = [a for a in supervisor_command(program) if a.startswith("-javaagent:")]
        options = environment(services()[program])[AGENT_OPTIONS].split()
        [docker] = [option for option in options if option.startswith("-javaagent:")]
        local_jar, local_port, local_rules = re.fullmatch(
            r"-javaagent:.*/(\S+\.jar)=%\(ENV_MONITORING_HOST\)s:%\(ENV_(\w+)\)s:.*/(monitoring/jmx/\w+\.yaml)",
            local,
        ).groups()
        jar, port, rules = re.fullmatch(
            r"-javaagent:/opt/jmx/agent/(\S+\.jar)=\$\{(\w+)\}:/opt/jmx/rules/(\w+\.yaml)", docker
        ).groups()
        assert (jar, port, f"monitoring/jmx/{rules}") == (local_jar, local_port, local_rules)
        assert "./monitoring/jmx:/opt/jmx/rules:ro" in services()[program]["volumes"]
    version = pom_properties()["jmx.exporter.version"]
    job = " ".join(command(services()["jmx-agent"]))
    assert f"io.prometheus.jmx:jmx_prometheus_javaagent:{version}" in job


def test_postgres_server_options_are_supervisords() -> None:
    local = postgres_options(supervisor_command("postgres"))
    docker = postgres_options(command(services()["postgres"]))
    shared = {k: v for k, v in local.items() if k not in POSTGRES_PROCESS_ONLY}
    assert docker == shared


def test_bento_serves_the_service_supervisor_serves() -> None:
    target = re.compile(r"^[\w.]+:\w+$")
    local = [arg for arg in supervisor_command("bentoml") if target.match(arg)]
    docker = command(services()["bento"])
    assert docker[:2] == ["bentoml", "serve"] and docker[2:] == local


def test_transformer_runs_what_supervisor_runs() -> None:
    local = supervisor_command("transformer")
    assert local[0].endswith("/python") and command(services()["transformer"]) == [
        "python",
        *local[1:],
    ]


def test_jobs_run_the_makefile_commands() -> None:
    assert command(services()["migrate"]) == ["python", *makefile_recipe_args("migrate")]
    assert command(services()["deploy-connectors"]) == [
        "python",
        *makefile_recipe_args("deploy-connectors"),
    ]
    train = " ".join(makefile_recipe_args("train")).replace("FORD_CSV", "/data/ford.csv")
    assert f"python {train}" in " ".join(command(services()["train"]))


def test_train_checks_the_model_the_local_stack_checks() -> None:
    from model.settings import MODEL_NAME

    assert f"bentoml models get {MODEL_NAME}:latest" in " ".join(command(services()["train"]))


def test_train_reads_the_data_file_read_only() -> None:
    mounts = [v for v in services()["train"]["volumes"] if isinstance(v, dict)]
    data = [m for m in mounts if m["target"] == "/data/ford.csv"]
    assert data and data[0]["source"] == "${FORD_CSV}" and data[0]["read_only"] is True


def test_deploy_connectors_reads_the_same_connector_files() -> None:
    workdir = next(args for kw, args in dockerfile_instructions(DOCKERFILE) if kw == "WORKDIR")
    in_image = PurePosixPath(workdir) / CONNECTORS_DIR.relative_to(REPO_ROOT).as_posix()
    volumes = services()["deploy-connectors"]["volumes"]
    assert f"./connectors:{in_image}:ro" in volumes, volumes


def test_connect_is_ready_when_the_local_readiness_check_would_say_so() -> None:
    check = healthcheck_text(services()["connect"])
    assert "/connector-plugins" in check
    for plugin in readiness.DEBEZIUM_PLUGINS:
        assert plugin in check


HEALTHCHECK_URL = re.compile(r"http://127\.0\.0\.1:\$\{(\w+)\}(/[^'\"\s]*)")


@pytest.mark.parametrize(
    ("service", "check"),
    [("bento", readiness.bentoml_ready), ("transformer", readiness.transformer_ready)],
)
def test_python_services_use_the_local_readiness_endpoints(
    service: str, check: readiness.Check, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The container's healthcheck asks the port and path the local readiness check asks."""
    env = read_env_file()
    asked: list[str] = []

    def get(url: str, **_: object) -> httpx.Response:
        asked.append(url)
        return httpx.Response(200)

    monkeypatch.setattr(readiness.httpx, "get", get)
    ports = {
        "bentoml_port": env["BENTOML_PORT"],
        "transformer_metrics_port": env["TRANSFORMER_METRICS_PORT"],
    }
    assert check(SimpleNamespace(services=ServiceSettings(**ports))) is None  # type: ignore[arg-type]
    [local] = asked
    [(variable, path)] = HEALTHCHECK_URL.findall(healthcheck_text(services()[service]))
    assert (int(env[variable]), path) == (urlsplit(local).port, urlsplit(local).path)


def test_image_variables_are_not_confused_with_ours() -> None:
    """apache/kafka turns every KAFKA_* into a broker property (and older images abort on
    KAFKA_HOST/KAFKA_PORT); Debezium's image does the same with CONNECT_*. Our .env names
    KAFKA_HOST, CONNECT_PORT... must therefore never reach those two containers."""
    ours = set(read_env_file())
    assert not ours & {k for k in environment(services()["kafka"]) if k.startswith("KAFKA_")}
    assert not ours & {k for k in environment(services()["connect"]) if k.startswith("CONNECT_")}
