"""Transformer settings. The broker, topics and the BentoML and /metrics addresses are the
stack's own classes (stack/settings.py), so each env name is declared once; what only the
transformer reads is prefixed TRANSFORMER_.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import SettingsConfigDict

from model.api_schema import MAX_BATCH
from stack.settings import BentoMLSettings, KafkaSettings, TransformerMetricsSettings


class Settings(KafkaSettings, BentoMLSettings, TransformerMetricsSettings):
    model_config = SettingsConfigDict(frozen=True)

    transformer_group_id: str = "car-price-transformer"
    # one batch is one /predict call, so it never exceeds what the service accepts
    transformer_batch_size: int = Field(500, ge=1, le=MAX_BATCH)
    transformer_batch_max_wait_ms: int = Field(20, ge=10, le=600_000)  # > 0: no busy loop
    transformer_request_timeout_ms: int = Field(10_000, ge=1, le=600_000)
    transformer_retry_backoff_initial_ms: int = Field(200, ge=1, le=600_000)
    transformer_retry_backoff_max_ms: int = Field(5_000, ge=1, le=600_000)
    transformer_shutdown_timeout_ms: int = Field(10_000, ge=0, le=600_000)
    transformer_log_level: str = "INFO"

    @field_validator("transformer_log_level")
    @classmethod
    def _known_level(cls, value: str) -> str:
        if value.upper() not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}")
        return value.upper()

    @model_validator(mode="after")
    def _backoff_bounds(self) -> Settings:
        if self.transformer_retry_backoff_max_ms < self.transformer_retry_backoff_initial_ms:
            raise ValueError("the backoff cap must be >= the initial backoff")
        return self

    @staticmethod
    def kafka_client_extras() -> dict[str, str]:
        """librdkafka properties from TRANSFORMER_KAFKA_<PROPERTY> variables, e.g.
        TRANSFORMER_KAFKA_SECURITY_PROTOCOL=SASL_SSL -> security.protocol: how to reach a
        secured Kafka (SASL, TLS) without a code change. Applied to both clients."""
        prefix = "TRANSFORMER_KAFKA_"
        return {
            name[len(prefix) :].lower().replace("_", "."): value
            for name, value in os.environ.items()
            if name.startswith(prefix)
        }

    def consumer_config(self) -> dict[str, Any]:
        return self.kafka_client_extras() | {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": "car-price-transformer",
            "group.id": self.transformer_group_id,
            "enable.auto.commit": False,  # committed explicitly, after delivery
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",  # a new group must see the snapshot
            "topic.metadata.refresh.interval.ms": 10_000,  # see the CDC topic soon once created
            "session.timeout.ms": 10_000,  # a crashed member's partitions move after 10 s
            "heartbeat.interval.ms": 2_000,
        }

    def producer_config(self) -> dict[str, Any]:
        return self.kafka_client_extras() | {
            "bootstrap.servers": self.bootstrap_servers,
            "client.id": "car-price-transformer",
            "acks": "all",
            "enable.idempotence": True,  # broker-side dedupe of internal retries, keeps order
            "linger.ms": 5,
            "message.max.bytes": self.kafka_max_message_bytes,  # the topics' max.message.bytes
        }
