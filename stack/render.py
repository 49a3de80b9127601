"""Render the Kafka/Connect config templates with the values from `.env`.

ConnectDistributed takes only a properties file, so ports from `.env` have to be
written into one; the rendered files live in the git-ignored state folder.
"""

from __future__ import annotations

from pathlib import Path
from string import Template

from stack.settings import StackSettings

TEMPLATES = Path(__file__).parent / "templates"


def template_values(settings: StackSettings) -> dict[str, str]:
    kafka, connect = settings.kafka, settings.connect
    return {
        "kafka_host": kafka.kafka_host,
        "kafka_port": str(kafka.kafka_port),
        "kafka_controller_port": str(kafka.kafka_controller_port),
        "kafka_data_dir": str(settings.kafka_data_dir),
        "connect_host": connect.connect_host,
        "connect_port": str(connect.connect_port),
        "plugin_path": str(settings.jvm_dir / "plugins"),
        "kafka_max_message_bytes": str(kafka.kafka_max_message_bytes),
    }


def render_configs(settings: StackSettings) -> list[Path]:
    """Write every template to `.state/conf/`; returns the written paths."""
    settings.conf_dir.mkdir(parents=True, exist_ok=True)
    values = template_values(settings)
    written = []
    for template in sorted(TEMPLATES.iterdir()):
        target = settings.conf_dir / template.name
        text = Template(template.read_text()).substitute(values)
        if not target.exists() or target.read_text() != text:
            target.write_text(text)
        written.append(target)
    return written
