"""The package layers hold (pyproject.toml [tool.importlinter]), and the shared settings stay
light: a program that never talks SQL (the transformer) must not load SQLAlchemy or psycopg."""

from __future__ import annotations

import subprocess
import sys

from config.settings import REPO_ROOT


def loaded_after(module: str) -> set[str]:
    """Top-level packages in sys.modules after importing `module` in a fresh interpreter."""
    code = (
        f"import sys, {module}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True
    )
    return set(done.stdout.split())


def test_the_transformer_loads_neither_sqlalchemy_nor_psycopg() -> None:
    loaded = loaded_after("transformer.service")
    assert "confluent_kafka" in loaded  # the probe sees what the module imports
    assert not loaded & {"sqlalchemy", "psycopg"}


def test_the_shared_settings_load_neither_until_a_connection_string_is_asked_for() -> None:
    assert not loaded_after("config.settings") & {"sqlalchemy", "psycopg"}


def test_the_import_contracts_are_kept() -> None:
    linted = subprocess.run(
        [str(REPO_ROOT / ".venv" / "bin" / "lint-imports")],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert linted.returncode == 0, linted.stdout[-3000:]
    assert "3 kept, 0 broken" in linted.stdout


def test_make_reads_settings_from_config() -> None:
    """`$(call setting,NAME)` in the Makefile: the value the programs see."""
    from config.settings import KafkaServerSettings  # the stack's view: every local broker

    out = subprocess.run(
        [sys.executable, "-m", "config", "dlq_topic", "sink_dlq_topic", "bootstrap_servers"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    kafka = KafkaServerSettings()
    assert out == [kafka.dlq_topic, kafka.sink_dlq_topic, kafka.bootstrap_servers]
