"""Prometheus on the local stack: the scrape targets written into .state/conf/prometheus.yml
(one per program and extra instance) and the reload on `up`. The rules, exporter configs
and dashboards are data in monitoring/."""

from __future__ import annotations

import json
import os
import signal

from config.settings import REPO_ROOT, StackSettings
from stack.supervisor import Supervisor

MONITORING_DIR = REPO_ROOT / "monitoring"


def _targets(program: str, host: str, port: int, count: int = 1, step: int = 1) -> str:
    """static_configs (JSON is YAML): instance n is `program-n` on port + step * (n - 1)."""
    names = [program, *(f"{program}-{n}" for n in range(2, count + 1))]
    return json.dumps(
        [
            {"targets": [f"{host}:{port + step * i}"], "labels": {"program": n}}
            for i, n in enumerate(names)
        ]
    )


def template_values(settings: StackSettings) -> dict[str, str]:
    mon, svc, kafka = settings.monitoring, settings.services, settings.kafka
    host = mon.monitoring_host
    return {
        "monitoring_dir": str(MONITORING_DIR),
        "scrape_interval": mon.prometheus_scrape_interval,
        "transformer_targets": _targets(
            "transformer",
            svc.transformer_metrics_host,
            svc.transformer_metrics_port,
            settings.transformer_instances,
        ),
        "bentoml_targets": _targets("bentoml", svc.bentoml_host, svc.bentoml_port),
        "kafka_targets": _targets(
            "kafka", host, mon.kafka_jmx_port, kafka.kafka_brokers, kafka.kafka_broker_port_step
        ),
        "connect_targets": _targets(
            "connect", host, mon.connect_jmx_port, settings.connect_workers
        ),
        "postgres_targets": _targets("postgres_exporter", host, mon.postgres_exporter_port),
        "prometheus_targets": _targets("prometheus", host, mon.prometheus_port),
    }


def reload_prometheus(settings: StackSettings) -> None:
    """SIGHUP: a running Prometheus rereads its config and rules (after `up` rendered them)."""
    for process in Supervisor(settings).processes():
        if process.name == "prometheus" and process.state == "RUNNING":
            os.kill(process.pid, signal.SIGHUP)
