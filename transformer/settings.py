"""Transformer settings. The broker, topics and the BentoML and /metrics addresses are the
stack's own classes (config/settings.py), so each env name is declared once; what only the
transformer reads is prefixed TRANSFORMER_."""

from typing import Annotated, Any, Literal, Self

from pydantic import BeforeValidator, Field, model_validator
from pydantic_settings import SettingsConfigDict

from config.settings import BentoMLSettings, KafkaSettings, TransformerMetricsSettings
from model.api_schema import MAX_BATCH

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Settings(KafkaSettings, BentoMLSettings, TransformerMetricsSettings):
    model_config = SettingsConfigDict(frozen=True, env_nested_delimiter="_", env_nested_max_split=1)

    transformer_group_id: str = "car-price-transformer"
    # one batch is one /predict call, so it never exceeds what the service accepts
    transformer_batch_size: int = Field(2000, ge=1, le=MAX_BATCH)
    transformer_batch_max_wait_ms: int = Field(20, ge=10, le=600_000)  # > 0: no busy loop
    transformer_request_timeout_ms: int = Field(10_000, ge=1, le=600_000)
    transformer_retry_backoff_initial_ms: int = Field(200, ge=1, le=600_000)
    transformer_retry_backoff_max_ms: int = Field(5_000, ge=1, le=600_000)
    transformer_shutdown_timeout_ms: int = Field(10_000, ge=0, le=600_000)
    transformer_log_level: Annotated[Level, BeforeValidator(str.upper)] = "INFO"
    # librdkafka properties of both clients: TRANSFORMER_KAFKA_SASL_MECHANISM -> sasl.mechanism
    transformer_kafka: dict[str, str] = {}

    @model_validator(mode="after")
    def _backoff_bounds(self) -> Self:
        if self.transformer_retry_backoff_max_ms < self.transformer_retry_backoff_initial_ms:
            raise ValueError("the backoff cap must be >= the initial backoff")
        return self

    def _client_config(self) -> dict[str, Any]:
        """Both clients' base: the passed-through properties, which ours then override."""
        extras = {name.replace("_", "."): value for name, value in self.transformer_kafka.items()}
        ours = {"bootstrap.servers": self.bootstrap_servers, "client.id": "car-price-transformer"}
        return extras | ours

    def consumer_config(self) -> dict[str, Any]:
        return self._client_config() | {
            "group.id": self.transformer_group_id,
            "enable.auto.commit": False,  # committed explicitly, after delivery
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",  # a new group must see the snapshot
            "topic.metadata.refresh.interval.ms": 10_000,  # see the CDC topic soon once created
            "session.timeout.ms": 10_000,  # a crashed member's partitions move after 10 s
            "heartbeat.interval.ms": 2_000,
        }

    def producer_config(self) -> dict[str, Any]:
        return self._client_config() | {
            "acks": "all",
            "enable.idempotence": True,  # broker-side dedupe of internal retries, keeps order
            "linger.ms": 5,
            "message.max.bytes": self.kafka_max_message_bytes,  # the topics' max.message.bytes
        }
