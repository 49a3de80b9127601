"""Rendering of the Kafka/Connect configs from `.env` values (pure logic)."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

from config.settings import StackSettings
from stack.render import render_configs


def test_every_placeholder_is_filled_and_ports_come_from_settings(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("KAFKA_PORT", "19092")
    monkeypatch.setenv("CONNECT_PORT", "18083")
    settings = StackSettings(state_dir=tmp_path)
    written = {path.name: path.read_text() for path in render_configs(settings)}

    assert "listeners=CLIENT://127.0.0.1:19092," in written["server.properties"]
    assert "listeners=http://127.0.0.1:18083" in written["connect-distributed.properties"]
    assert "bootstrap.servers=127.0.0.1:19092" in written["connect-distributed.properties"]
    for text in written.values():
        assert not re.search(r"\$\{(?!env:|file:)", text), "unrendered placeholder"


def test_config_provider_is_configured_for_connector_secrets(tmp_path: Path) -> None:
    text = (
        render_configs(StackSettings(state_dir=tmp_path))[0].parent
        / "connect-distributed.properties"
    ).read_text()
    assert (
        "config.providers.env.class=org.apache.kafka.common.config.provider."
        "EnvVarConfigProvider" in text
    )


def test_scale_out_adds_programs_copied_from_the_first_instance(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", "1")  # the brokers' sections: test_cluster_config.py
    settings = StackSettings(state_dir=tmp_path, transformer_instances=3, connect_workers=2)
    written = {path.name: path.read_text() for path in render_configs(settings)}
    port = settings.connect.connect_port

    sections = configparser.RawConfigParser()
    sections.read_string(written["scale-out.conf"])
    assert sections.sections() == [
        "program:transformer-2",
        "program:transformer-3",
        "program:connect-2",
    ]
    base = configparser.RawConfigParser()
    base.read(settings.supervisor_conf)
    for name in ("transformer-3", "connect-2"):
        program = name.split("-")[0]
        extra, first = sections[f"program:{name}"], base[f"program:{program}"]
        assert f"launch.py {name}" in extra["command"]
        assert extra["stdout_logfile"].endswith(f"/{name}.log")
        assert {k: v for k, v in extra.items() if k not in {"command", "stdout_logfile"}} == {
            k: v for k, v in first.items() if k not in {"command", "stdout_logfile"}
        }
    assert "conf/connect-2.properties" in sections["program:connect-2"]["command"]
    assert f"listeners=http://127.0.0.1:{port + 1}" in written["connect-2.properties"]
    assert "group.id=car-price-connect" in written["connect-2.properties"]


def test_one_instance_each_renders_no_extra_program(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BROKERS", "1")
    written = {p.name: p.read_text() for p in render_configs(StackSettings(state_dir=tmp_path))}
    sections = configparser.RawConfigParser()
    sections.read_string(written["scale-out.conf"])
    assert sections.sections() == []
    assert "connect-2.properties" not in written


def test_an_external_bootstrap_list_reaches_the_worker(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "b1:9092,b2:9092")
    written = {p.name: p.read_text() for p in render_configs(StackSettings(state_dir=tmp_path))}
    assert "bootstrap.servers=b1:9092,b2:9092" in written["connect-distributed.properties"]
