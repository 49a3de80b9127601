"""The rendered Prometheus config (pure logic, no running stack): one target per program and
extra instance, every one on 127.0.0.1, the rules file valid, the agent ports per worker."""

from __future__ import annotations

import configparser
import re
from pathlib import Path

import yaml

from config.settings import StackSettings
from stack.render import render_configs
from tests.support import promtool


def rendered(tmp_path: Path, monkeypatch, **env: str) -> tuple[dict, configparser.RawConfigParser]:
    env.setdefault("KAFKA_BROKERS", "1")  # the brokers' targets: tests/stack/test_cluster_config
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    settings = StackSettings(state_dir=tmp_path)
    render_configs(settings)
    scale_out = configparser.RawConfigParser()
    scale_out.read(settings.scale_out_conf)
    return yaml.safe_load((settings.conf_dir / "prometheus.yml").read_text()), scale_out


def scrape_targets(config: dict) -> dict[str, list[tuple[str, str]]]:
    return {
        job["job_name"]: [
            (static["labels"]["program"], target)
            for static in job["static_configs"]
            for target in static["targets"]
        ]
        for job in config["scrape_configs"]
    }


def test_added_instances_are_scraped(tmp_path: Path, monkeypatch) -> None:
    config, scale_out = rendered(
        tmp_path,
        monkeypatch,
        TRANSFORMER_INSTANCES="3",
        CONNECT_WORKERS="2",
        TRANSFORMER_METRICS_PORT="19400",
        CONNECT_JMX_PORT="19095",
        KAFKA_JMX_PORT="19094",
    )
    jobs = scrape_targets(config)
    assert jobs["transformer"] == [
        ("transformer", "127.0.0.1:19400"),
        ("transformer-2", "127.0.0.1:19401"),
        ("transformer-3", "127.0.0.1:19402"),
    ]
    assert jobs["connect"] == [("connect", "127.0.0.1:19095"), ("connect-2", "127.0.0.1:19096")]
    assert jobs["kafka"] == [("kafka", "127.0.0.1:19094")]
    assert set(jobs) == {"transformer", "bentoml", "kafka", "connect", "postgres", "prometheus"}
    # worker 2's agent listens on its own port, the first worker's on CONNECT_JMX_PORT
    assert "=%(ENV_MONITORING_HOST)s:19096:" in scale_out["program:connect-2"]["command"]


def test_every_target_is_loopback_by_default(tmp_path: Path, monkeypatch) -> None:
    config, _ = rendered(tmp_path, monkeypatch)
    for targets in scrape_targets(config).values():
        assert all(target.startswith("127.0.0.1:") for _, target in targets)


def test_promtool_accepts_the_rendered_config(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path)
    render_configs(settings)
    result = promtool("check", "config", str(settings.conf_dir / "prometheus.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def test_monitoring_ports_are_not_connect_worker_properties(tmp_path: Path, monkeypatch) -> None:
    """CONNECT_JMX_PORT is the stack's setting, not `jmx.port` for the worker."""
    monkeypatch.setenv("CONNECT_JMX_PORT", "19095")
    settings = StackSettings(state_dir=tmp_path)
    render_configs(settings)
    properties = (settings.conf_dir / "connect-distributed.properties").read_text()
    assert "jmx.port" not in properties and "workers=" not in properties


REPO = Path(__file__).resolve().parents[2]


def test_the_docker_prometheus_scrapes_the_local_jobs(tmp_path: Path, monkeypatch) -> None:
    """monitoring/prometheus.yml (compose) has the jobs and programs of the local template,
    and the prometheus service fills every @PORT@ it names."""
    monkeypatch.setenv("KAFKA_BROKERS", "1")  # compose runs one broker
    docker_text = (REPO / "monitoring" / "prometheus.yml").read_text()
    compose = yaml.safe_load((REPO / "compose.yaml").read_text())
    fill = " ".join(compose["services"]["prometheus"]["command"])
    placeholders = set(re.findall(r"@(\w+)@", re.sub(r"#.*", "", docker_text)))
    assert placeholders == set(re.findall(r"s/@(\w+)@/\$\{\1\}/", fill))
    docker = scrape_targets(yaml.safe_load(re.sub(r"@\w+@", "1", docker_text)))
    local = scrape_targets(yaml.safe_load(render_for(tmp_path)))
    assert {job: [p for p, _ in t] for job, t in docker.items()} == {
        job: [p for p, _ in t] for job, t in local.items()
    }


def render_for(tmp_path: Path) -> str:
    settings = StackSettings(state_dir=tmp_path)
    render_configs(settings)
    return (settings.conf_dir / "prometheus.yml").read_text()
