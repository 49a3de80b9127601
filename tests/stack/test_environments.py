"""Each supervised program's environment holds only what it needs (pure logic)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from config.settings import REPO_ROOT, StackSettings
from stack.environments import (
    CONNECT_ENV,
    OS_BASICS,
    program_environment,
    supervisord_environment,
    write_program_environments,
)
from stack.render import TEMPLATES, extra_worker_properties

SECRETS = {
    "PG_SUPERUSER_PASSWORD": "super-secret-1",
    "APP_DB_PASSWORD": "app-secret-2",
    "CDC_DB_PASSWORD": "cdc-secret-3",
    "SINK_DB_PASSWORD": "sink-secret-4",
}


@pytest.fixture()
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StackSettings:
    for key, value in SECRETS.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("TRANSFORMER_BATCH_SIZE", "7")
    monkeypatch.setenv("CAR_PRICE_PREDICT_THREADS", "1")
    return StackSettings(state_dir=tmp_path)


def _values(env: dict[str, str]) -> set[str]:
    return set(env.values())


def test_connect_gets_the_cdc_and_sink_credentials_and_nothing_else(
    settings: StackSettings,
) -> None:
    env = program_environment(settings, "connect")
    assert set(env) - set(OS_BASICS) == set(CONNECT_ENV)
    assert env["CDC_DB_PASSWORD"] == "cdc-secret-3"
    assert env["SINK_DB_PASSWORD"] == "sink-secret-4"
    assert not {"super-secret-1", "app-secret-2"} & _values(env)


@pytest.mark.parametrize("program", ["transformer", "bentoml"])
def test_the_python_services_get_no_database_password(
    settings: StackSettings, program: str
) -> None:
    env = program_environment(settings, program)
    assert not set(SECRETS.values()) & _values(env)
    assert not [key for key in env if key.endswith("_PASSWORD")]


def test_settings_and_prefixed_names_reach_their_program(settings: StackSettings) -> None:
    assert program_environment(settings, "transformer")["TRANSFORMER_BATCH_SIZE"] == "7"
    bentoml = program_environment(settings, "bentoml")
    assert bentoml["CAR_PRICE_PREDICT_THREADS"] == "1"
    assert bentoml["BENTOML_HOME"]


def test_the_transformer_reads_back_what_its_settings_passed_on(
    settings: StackSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Its environment is its own settings class, dumped under the env names: librdkafka
    properties (TRANSFORMER_KAFKA_<PROPERTY>) arrive as the one JSON value they became."""
    from transformer.settings import Settings

    monkeypatch.setenv("TRANSFORMER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    env = program_environment(settings, "transformer")
    for name in [name for name in os.environ if name.startswith(("TRANSFORMER_", "KAFKA_"))]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    passed = Settings(_env_file=None)
    assert passed.transformer_batch_size == 7
    assert passed.consumer_config()["security.protocol"] == "SASL_SSL"


def test_supervisord_itself_holds_no_secret(settings: StackSettings) -> None:
    env = supervisord_environment(settings)
    assert not set(SECRETS.values()) & _values(env)
    assert "STACK_ENV_DIR" in env and "PG_PORT" in env


def test_environment_files_are_private(settings: StackSettings) -> None:
    settings.env_dir.mkdir(parents=True)
    (settings.env_dir / "transformer.json").write_text("{}")
    (settings.env_dir / "transformer.json").chmod(0o644)  # left by an older version, or by hand
    for path in write_program_environments(settings):
        assert path.stat().st_mode & 0o777 == 0o600
        assert isinstance(json.loads(path.read_text()), dict)
    assert settings.env_dir.stat().st_mode & 0o777 == 0o700


def _worker_property(name: str) -> str:
    text = (TEMPLATES / "connect-distributed.properties").read_text()
    match = re.search(rf"^{re.escape(name)}=(.*)$", text, re.MULTILINE)
    assert match, f"connect-distributed.properties sets no {name}"
    return match.group(1)


def test_env_provider_allowlist_is_exactly_the_connect_environment() -> None:
    """Kafka's EnvVarConfigProvider full-matches each name against the pattern."""
    pattern = re.compile(_worker_property("config.providers.env.param.allowlist.pattern"))
    assert {name for name in CONNECT_ENV if pattern.fullmatch(name)} == set(CONNECT_ENV)
    for name in ("PG_SUPERUSER_PASSWORD", "APP_DB_PASSWORD", "PG_SUPERUSER", "PATH", "HOME"):
        assert not pattern.fullmatch(name), name


def test_connectors_reference_only_allowed_env_names() -> None:
    for path in sorted((REPO_ROOT / "connectors").glob("*.json")):
        names = set(re.findall(r"\$\{env:(\w+)\}", path.read_text()))
        assert names and names <= set(CONNECT_ENV), f"{path.name}: {names - set(CONNECT_ENV)}"


def test_worker_refuses_client_overrides_and_files_outside_the_secrets_folder() -> None:
    assert _worker_property("connector.client.config.override.policy") == "None"
    assert _worker_property("config.providers.file.param.allowed.paths") == "${secrets_dir}"


def test_connect_settings_become_worker_properties_like_debeziums_image() -> None:
    text = extra_worker_properties(
        {
            "CONNECT_SECURITY_PROTOCOL": "SASL_SSL",
            "CONNECT_PRODUCER_SASL_MECHANISM": "SCRAM-SHA-512",
            "CONNECT_SSL_TRUSTSTORE_LOCATION": "/etc/kafka/trust.p12",
            "CONNECT_PORT": "8083",
            "CONNECT_HOST": "127.0.0.1",
            "KAFKA_PORT": "9092",
        }
    )
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert lines == [
        "producer.sasl.mechanism=SCRAM-SHA-512",
        "security.protocol=SASL_SSL",
        "ssl.truststore.location=/etc/kafka/trust.p12",
    ]
    assert extra_worker_properties({"CONNECT_PORT": "1"}) == ""


def test_extra_instances_get_their_programs_environment(tmp_path: Path) -> None:
    settings = StackSettings(state_dir=tmp_path, transformer_instances=2, connect_workers=2)
    written = {
        path.stem: json.loads(path.read_text()) for path in write_program_environments(settings)
    }
    assert written["connect-2"] == written["connect"]
    port = settings.services.transformer_metrics_port
    assert written["transformer-2"] == written["transformer"] | {
        "TRANSFORMER_METRICS_PORT": str(port + 1)
    }
