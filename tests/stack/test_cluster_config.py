"""One broker or three (KAFKA_BROKERS): what `make up` renders, the ports, the topics'
replication settings, and the refusal to change the count on an existing `.state` (pure
logic: nothing is started)."""

from __future__ import annotations

import configparser
import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from config.settings import KafkaServerSettings, StackSettings
from stack import __main__ as stack_main
from stack import kafka
from stack.__main__ import up
from stack.environments import program_environment
from stack.render import render_configs

REPLICATION = (
    "default.replication.factor",
    "offsets.topic.replication.factor",
    "transaction.state.log.replication.factor",
    "share.coordinator.state.topic.replication.factor",
)
MIN_ISR = (
    "min.insync.replicas",
    "transaction.state.log.min.isr",
    "share.coordinator.state.topic.min.isr",
)


def properties(text: str) -> dict[str, str]:
    lines = [line for line in text.splitlines() if "=" in line and not line.startswith("#")]
    return {key.strip(): value.strip() for key, value in (li.split("=", 1) for li in lines)}


def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, brokers: int) -> dict[str, str]:
    monkeypatch.setenv("KAFKA_BROKERS", str(brokers))
    for name in ("KAFKA_REPLICATION_FACTOR", "KAFKA_MIN_INSYNC_REPLICAS"):
        monkeypatch.delenv(name, raising=False)
    settings = StackSettings(state_dir=tmp_path)
    return {path.name: path.read_text() for path in render_configs(settings)}


def test_one_broker_renders_the_single_node_as_before(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = rendered(tmp_path, monkeypatch, 1)
    settings = StackSettings(state_dir=tmp_path)
    server = properties(written["server.properties"])
    port, controller = settings.kafka.kafka_port, settings.kafka.kafka_controller_port

    assert server["node.id"] == "1"
    assert server["controller.quorum.voters"] == f"1@127.0.0.1:{controller}"
    assert server["listeners"] == f"CLIENT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"
    assert server["log.dirs"] == str(tmp_path / "kafka" / "data")
    assert {server[key] for key in (*REPLICATION, *MIN_ISR)} == {"1"}
    assert server["unclean.leader.election.enable"] == "false"
    assert not [name for name in written if name.startswith("kafka-")]
    sections = configparser.RawConfigParser()
    sections.read_string(written["scale-out.conf"])
    assert sections.sections() == []
    worker = properties(written["connect-distributed.properties"])
    assert worker["bootstrap.servers"] == f"127.0.0.1:{port}"
    assert worker["config.storage.replication.factor"] == "1"
    assert (worker["producer.acks"], worker["producer.enable.idempotence"]) == ("all", "true")
    assert written["prometheus.yml"].count('"program": "kafka') == 1


def test_three_brokers_are_three_voters_with_their_own_ports_and_logs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = rendered(tmp_path, monkeypatch, 3)
    settings = StackSettings(state_dir=tmp_path)
    step = settings.kafka.kafka_broker_port_step
    files = ["server.properties", "kafka-2.properties", "kafka-3.properties"]
    nodes = [properties(written[name]) for name in files]
    voters = ",".join(
        f"{n}@127.0.0.1:{settings.kafka.kafka_controller_port + step * (n - 1)}" for n in (1, 2, 3)
    )

    assert [node["node.id"] for node in nodes] == ["1", "2", "3"]
    assert {node["controller.quorum.voters"] for node in nodes} == {voters}
    listeners = [node["listeners"] for node in nodes]
    assert len(set(listeners)) == 3
    assert f"CLIENT://127.0.0.1:{settings.kafka.kafka_port + 2 * step}," in listeners[2]
    assert len({node["log.dirs"] for node in nodes}) == 3
    assert nodes[2]["log.dirs"] == str(tmp_path / "kafka-3" / "data")
    for node in nodes:
        assert {node[key] for key in REPLICATION} == {"3"}
        assert {node[key] for key in MIN_ISR} == {"2"}
        assert node["unclean.leader.election.enable"] == "false"
        # brokers and controllers talk to each other as the admin, over SASL like clients
        assert node["listener.security.protocol.map"].count("SASL_PLAINTEXT") == 2
        assert node["sasl.mechanism.inter.broker.protocol"] == "PLAIN"

    worker = properties(written["connect-distributed.properties"])
    assert worker["bootstrap.servers"] == settings.kafka.bootstrap_servers
    assert len(worker["bootstrap.servers"].split(",")) == 3
    for topic in ("config", "offset", "status"):
        assert worker[f"{topic}.storage.replication.factor"] == "3"

    sections = configparser.RawConfigParser()
    sections.read_string(written["scale-out.conf"])
    assert sections.sections() == ["program:kafka-2", "program:kafka-3"]
    third = sections["program:kafka-3"]
    assert third["command"].endswith("conf/kafka-3.properties")
    assert f":{settings.monitoring.kafka_jmx_port + 2 * step}:" in third["command"]
    assert third["stdout_logfile"].endswith("/kafka-3.log")
    target = r'"127\.0\.0\.1:(\d+)"\], "labels": \{"program": "kafka'
    jmx = re.findall(target, written["prometheus.yml"])
    assert jmx == [str(settings.kafka_jmx_port(n)) for n in (1, 2, 3)]


def test_every_port_of_a_three_broker_stack_is_distinct(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", "3")
    settings = StackSettings()
    kafka_ = settings.kafka
    mon, svc = settings.monitoring, settings.services
    ports = [
        settings.postgres.pg_port,
        settings.connect.connect_port,
        svc.bentoml_port,
        svc.adminer_port,
        svc.transformer_metrics_port,
        mon.prometheus_port,
        mon.connect_jmx_port,
        mon.postgres_exporter_port,
        *(kafka_.broker_port(n) for n in kafka_.brokers),
        *(kafka_.controller_port(n) for n in kafka_.brokers),
        *(settings.kafka_jmx_port(n) for n in kafka_.brokers),
    ]
    assert len(ports) == len(set(ports)), sorted(ports)


def test_the_transformer_gets_every_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", "3")
    settings = StackSettings(state_dir=tmp_path)
    env = program_environment(settings, "transformer")
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == settings.kafka.bootstrap_servers
    assert len(env["KAFKA_BOOTSTRAP_SERVERS"].split(",")) == 3


@pytest.mark.parametrize(("brokers", "rf", "isr"), [(1, 1, "1"), (3, 3, "2")])
def test_pipeline_topics_get_the_replication_of_the_cluster(
    monkeypatch: pytest.MonkeyPatch, brokers: int, rf: int, isr: str
) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", str(brokers))
    settings = StackSettings()
    assert settings.kafka.replication_factor == rf
    assert kafka.topic_configs(settings) | {"max.message.bytes": "-"} == {
        "max.message.bytes": "-",
        "min.insync.replicas": isr,
        "unclean.leader.election.enable": "false",
    }


@pytest.mark.parametrize(
    "env",
    [
        {"KAFKA_BROKERS": "2"},
        {"KAFKA_BROKERS": "1", "KAFKA_REPLICATION_FACTOR": "3"},
        {"KAFKA_BROKERS": "3", "KAFKA_MIN_INSYNC_REPLICAS": "4"},
    ],
)
def test_impossible_replication_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ValidationError):
        KafkaServerSettings()


def test_an_external_cluster_takes_its_replication_factor_from_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b1:9092,b2:9092,b3:9092")
    monkeypatch.setenv("KAFKA_REPLICATION_FACTOR", "3")
    settings = KafkaServerSettings()
    assert (settings.replication_factor, settings.min_insync_replicas) == (3, 2)
    assert settings.bootstrap_servers == "b1:9092,b2:9092,b3:9092"


def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, brokers: int) -> StackSettings:
    monkeypatch.setenv("KAFKA_BROKERS", str(brokers))
    return StackSettings(state_dir=tmp_path)


def test_a_changed_broker_count_is_refused_with_the_way_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = _state(tmp_path, monkeypatch, 1)
    made.kafka_data_dir.mkdir(parents=True)
    kafka.cluster_file(made).write_text(json.dumps({"cluster_id": "x", "brokers": 1}))

    with pytest.raises(kafka.BrokerCountChanged) as refused:
        kafka.check_broker_count(_state(tmp_path, monkeypatch, 3))
    message = str(refused.value)
    assert "KAFKA_BROKERS=3" in message and "cluster of 1 broker" in message
    assert "KAFKA_BROKERS=1 again" in message and "rm -rf .state" in message
    kafka.check_broker_count(_state(tmp_path, monkeypatch, 1))  # the same count: fine


def test_a_state_from_before_cluster_mode_is_one_broker(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = _state(tmp_path, monkeypatch, 1)
    old.kafka_data_dir.mkdir(parents=True)
    (old.kafka_data_dir / "meta.properties").write_text("cluster.id=abc\nnode.id=1\n")

    assert kafka.formatted_cluster(old) == {"cluster_id": "abc", "brokers": 1}
    with pytest.raises(kafka.BrokerCountChanged):
        kafka.check_broker_count(_state(tmp_path, monkeypatch, 3))


def test_make_up_refuses_before_rendering_or_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    three = _state(tmp_path, monkeypatch, 3)
    three.kafka_data_dir.mkdir(parents=True)
    kafka.cluster_file(three).write_text(json.dumps({"cluster_id": "x", "brokers": 3}))

    def started(*_args: object, **_kwargs: object) -> None:  # a broken refusal stops here,
        raise AssertionError("make up went on to render")  # not in a second, real stack

    monkeypatch.setattr(stack_main, "render_configs", started)
    assert up(_state(tmp_path, monkeypatch, 1)) == 2
    assert "refused: KAFKA_BROKERS=1 in .env, but" in capsys.readouterr().out
    assert not (tmp_path / "conf").exists(), "nothing rendered"
    assert not (tmp_path / "supervisor.sock").exists(), "nothing started"
