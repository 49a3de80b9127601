"""Rendering of the Kafka/Connect configs from `.env` values (pure logic)."""

from __future__ import annotations

import re
from pathlib import Path

from stack.kafka import new_cluster_id
from stack.render import render_configs
from stack.settings import StackSettings


def test_every_placeholder_is_filled_and_ports_come_from_settings(
    tmp_path: Path, monkeypatch
) -> None:
    monkeypatch.setenv("KAFKA_PORT", "19092")
    monkeypatch.setenv("CONNECT_PORT", "18083")
    settings = StackSettings(state_dir=tmp_path)
    written = {path.name: path.read_text() for path in render_configs(settings)}

    assert "listeners=PLAINTEXT://127.0.0.1:19092," in written["server.properties"]
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


def test_cluster_id_has_kafkas_format() -> None:
    cluster_id = new_cluster_id()
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id)
    assert new_cluster_id() != cluster_id
