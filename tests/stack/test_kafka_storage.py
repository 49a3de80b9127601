"""KRaft storage (stack/kafka.py): the cluster id comes from Kafka's own tool, and formatting
a fresh log directory works whatever id it is given. Needs the Kafka jars (`make bootstrap`),
not a running stack."""

from __future__ import annotations

import base64
import json
import re
import shutil
import uuid
from pathlib import Path

import pytest

from config.settings import StackSettings
from stack.kafka import cluster_file, format_storage, new_cluster_id
from stack.render import render_configs

# 16 random bytes whose URL-safe base64 starts with "-" (0xf8..0xfb): one uuid4 in 64
DASHED = uuid.UUID(bytes=bytes([0xFB]) + bytes(range(1, 16)))


@pytest.fixture()
def dashed_uuid4(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every uuid4() is DASHED, which a hand-made base64 id would turn into `-…`."""
    assert base64.urlsafe_b64encode(DASHED.bytes).startswith(b"-")
    monkeypatch.setattr(uuid, "uuid4", lambda: DASHED)


@pytest.mark.usefixtures("dashed_uuid4")
def test_the_cluster_id_is_kafkas_and_never_starts_with_a_dash() -> None:
    settings = StackSettings()

    ids = [new_cluster_id(settings) for _ in range(2)]

    for cluster_id in ids:
        assert not cluster_id.startswith("-"), cluster_id
        assert re.fullmatch(r"[A-Za-z0-9_-]{22}", cluster_id), cluster_id
    assert ids[0] != ids[1], "a fresh random id each time"


def _rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, brokers: int) -> StackSettings:
    """A stack of `brokers` brokers in tmp_path, its configs rendered, nothing formatted."""
    monkeypatch.setenv("KAFKA_BROKERS", str(brokers))
    settings = StackSettings(state_dir=tmp_path)
    render_configs(settings)
    return settings


@pytest.mark.usefixtures("dashed_uuid4")
def test_format_storage_formats_a_fresh_log_dir_from_the_rendered_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _rendered(tmp_path, monkeypatch, brokers=1)

    assert format_storage(settings) == [1]
    meta = (settings.kafka_data_dir / "meta.properties").read_text()
    cluster_id = re.search(r"^cluster\.id=(.*)$", meta, re.MULTILINE).group(1)
    assert re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]{21}", cluster_id), meta
    assert format_storage(settings) == [], "formatted once, left alone after"
    assert (settings.kafka_data_dir / "meta.properties").read_text() == meta


def test_three_brokers_are_formatted_into_one_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _rendered(tmp_path, monkeypatch, brokers=3)

    assert format_storage(settings) == [1, 2, 3]
    metas = [(settings.broker_data_dir(n) / "meta.properties").read_text() for n in (1, 2, 3)]
    ids = {re.search(r"^cluster\.id=(.*)$", meta, re.MULTILINE).group(1) for meta in metas}
    nodes = [re.search(r"^node\.id=(.*)$", meta, re.MULTILINE).group(1) for meta in metas]
    assert len(ids) == 1 and nodes == ["1", "2", "3"]
    assert json.loads(cluster_file(settings).read_text()) == {"cluster_id": ids.pop(), "brokers": 3}
    assert format_storage(settings) == [], "formatted once, left alone after"


def test_a_start_interrupted_mid_format_formats_the_rest_into_the_same_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _rendered(tmp_path, monkeypatch, brokers=3)
    format_storage(settings)
    shutil.rmtree(settings.broker_data_dir(3))  # as if the start had died before node 3

    assert format_storage(settings) == [3]
    metas = [(settings.broker_data_dir(n) / "meta.properties").read_text() for n in (1, 3)]
    ids = {re.search(r"^cluster\.id=(.*)$", meta, re.MULTILINE).group(1) for meta in metas}
    assert len(ids) == 1
