"""Transformer settings (transformer/settings.py): the env contract and its bounds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from pydantic import ValidationError

from config.settings import BentoMLSettings, KafkaSettings, TransformerMetricsSettings
from transformer.settings import Settings


def test_shared_names_are_declared_once_in_the_stack_settings() -> None:
    """The transformer reads KAFKA_HOST, CDC_TOPIC, BENTOML_PORT ... through the stack's
    classes, so a change of name or default happens in one place."""
    shared = (KafkaSettings, BentoMLSettings, TransformerMetricsSettings)
    assert all(issubclass(Settings, cls) for cls in shared)
    own = set(Settings.model_fields) - {name for cls in shared for name in cls.model_fields}
    assert own and all(name.startswith("transformer_") for name in own)


def test_env_names_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "KAFKA_HOST": "kafka",
        "KAFKA_PORT": "19092",
        "CDC_TOPIC": "cdc",
        "PREDICTIONS_TOPIC": "out",
        "DLQ_TOPIC": "out.dlq",
        "BENTOML_HOST": "bento",
        "BENTOML_PORT": "3333",
        "TRANSFORMER_METRICS_PORT": "0",
        "TRANSFORMER_BATCH_SIZE": "7",
        "TRANSFORMER_LOG_LEVEL": "debug",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)

    settings = Settings(_env_file=None)

    assert settings.consumer_config()["bootstrap.servers"] == "kafka:19092"
    assert (settings.cdc_topic, settings.predictions_topic, settings.dlq_topic) == (
        "cdc",
        "out",
        "out.dlq",
    )
    assert settings.bentoml_url == "http://bento:3333"
    assert (settings.transformer_batch_size, settings.transformer_log_level) == (7, "DEBUG")


@pytest.mark.parametrize(
    "fields",
    [
        {"transformer_batch_size": 0},
        {"transformer_batch_size": 10_001},  # more than one /predict call accepts
        {"transformer_batch_max_wait_ms": 0},  # an idle loop would spin
        {"transformer_retry_backoff_initial_ms": 500, "transformer_retry_backoff_max_ms": 100},
        {"transformer_log_level": "chatty"},
    ],
)
def test_impossible_values_are_refused(config: Callable[..., Settings], fields: dict) -> None:
    with pytest.raises(ValidationError):
        config(**fields)


def test_offsets_are_committed_by_us_and_records_acknowledged_by_all_replicas(
    config: Callable[..., Settings],
) -> None:
    settings = config()
    consumer, producer = settings.consumer_config(), settings.producer_config()
    assert consumer["enable.auto.commit"] is False and consumer["auto.offset.reset"] == "earliest"
    assert producer["acks"] == "all" and producer["enable.idempotence"] is True


def test_librdkafka_properties_pass_through_for_a_secured_kafka(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TRANSFORMER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("TRANSFORMER_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("TRANSFORMER_KAFKA_SSL_CA_LOCATION", "/etc/kafka/ca.pem")
    # what the delivery guarantees rest on: passed through, they must still lose
    monkeypatch.setenv("TRANSFORMER_KAFKA_ENABLE_AUTO_COMMIT", "true")
    monkeypatch.setenv("TRANSFORMER_KAFKA_ACKS", "1")
    monkeypatch.setenv("TRANSFORMER_KAFKA_ENABLE_IDEMPOTENCE", "false")
    settings = Settings()
    for config in (settings.consumer_config(), settings.producer_config()):
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "SCRAM-SHA-512"
        assert config["ssl.ca.location"] == "/etc/kafka/ca.pem"
    assert settings.consumer_config()["enable.auto.commit"] is False  # ours still win
    producer = settings.producer_config()
    assert (producer["acks"], producer["enable.idempotence"]) == ("all", True)
