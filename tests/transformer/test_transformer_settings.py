"""Env contract of the transformer (transformer/settings.py).

Named test_transformer_settings.py so it cannot clash with another package's
test_settings.py (the test dirs are not packages).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from transformer.settings import Settings, env_names

ENV_NAMES = [
    "KAFKA_HOST",
    "KAFKA_PORT",
    "CDC_TOPIC",
    "PREDICTIONS_TOPIC",
    "DLQ_TOPIC",
    "BENTOML_HOST",
    "BENTOML_PORT",
    "TRANSFORMER_METRICS_PORT",
    "TRANSFORMER_METRICS_HOST",
    "TRANSFORMER_GROUP_ID",
    "TRANSFORMER_BATCH_SIZE",
    "TRANSFORMER_BATCH_MAX_WAIT_MS",
    "TRANSFORMER_REQUEST_TIMEOUT_MS",
    "TRANSFORMER_RETRY_MAX_ATTEMPTS",
    "TRANSFORMER_RETRY_BACKOFF_INITIAL_MS",
    "TRANSFORMER_RETRY_BACKOFF_MAX_MS",
    "TRANSFORMER_SHUTDOWN_TIMEOUT_MS",
    "TRANSFORMER_LOG_LEVEL",
]


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env from the repo
    return tmp_path


def test_env_names_are_the_documented_contract() -> None:
    assert env_names() == ENV_NAMES


def test_defaults(clean_env: Path) -> None:
    settings = Settings()

    assert settings.bootstrap_servers == "127.0.0.1:9092"
    assert settings.bentoml_url == "http://127.0.0.1:3000"
    assert (settings.cdc_topic, settings.predictions_topic, settings.dlq_topic) == (
        "car_database.public.tbl_car_price",
        "car_price_predictions",
        "car_price_predictions.dlq",
    )
    assert (settings.metrics_host, settings.metrics_port) == ("127.0.0.1", 9400)
    assert settings.group_id == "car-price-transformer"
    assert (settings.batch_size, settings.batch_max_wait_ms) == (500, 200)
    assert settings.request_timeout_ms == 10_000
    assert (
        settings.retry_max_attempts,
        settings.retry_backoff_initial_ms,
        settings.retry_backoff_max_ms,
    ) == (5, 200, 5_000)
    assert settings.log_level == "INFO"


def test_environment_overrides(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_HOST", "kafka")
    monkeypatch.setenv("KAFKA_PORT", "29092")
    monkeypatch.setenv("BENTOML_HOST", "bentoml")
    monkeypatch.setenv("TRANSFORMER_GROUP_ID", "it-group")
    monkeypatch.setenv("TRANSFORMER_BATCH_SIZE", "7")
    monkeypatch.setenv("TRANSFORMER_LOG_LEVEL", "debug")

    settings = Settings()

    assert settings.bootstrap_servers == "kafka:29092"
    assert settings.bentoml_url == "http://bentoml:3000"
    assert (settings.group_id, settings.batch_size, settings.log_level) == ("it-group", 7, "DEBUG")


def test_dotenv_file_is_read_and_unrelated_keys_are_ignored(clean_env: Path) -> None:
    (clean_env / ".env").write_text(
        "PG_HOST=db\nBENTOML_PORT=3999\nTRANSFORMER_METRICS_PORT=9499\n"
    )

    settings = Settings()

    assert (settings.bentoml_port, settings.metrics_port) == (3999, 9499)


def test_environment_wins_over_dotenv(clean_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (clean_env / ".env").write_text("TRANSFORMER_BATCH_SIZE=3\n")
    monkeypatch.setenv("TRANSFORMER_BATCH_SIZE", "4")

    assert Settings().batch_size == 4


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("TRANSFORMER_BATCH_SIZE", "0"),
        ("KAFKA_PORT", "not-a-port"),
        ("TRANSFORMER_LOG_LEVEL", "chatty"),
        ("TRANSFORMER_RETRY_MAX_ATTEMPTS", "0"),
        ("TRANSFORMER_RETRY_BACKOFF_MAX_MS", "10"),  # below the 200 ms initial backoff
    ],
)
def test_invalid_values_are_refused(
    clean_env: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(ValidationError):
        Settings()
