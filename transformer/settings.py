"""Transformer configuration, read from the environment and `.env`.

The env names are a contract shared with `.env.example` and compose: the shared
ones (KAFKA_HOST, CDC_TOPIC, ...) carry no prefix, everything that only the
transformer reads is prefixed `TRANSFORMER_`. Field names are short for the code;
`validation_alias` pins the env name so a rename in code can't break the contract.
"""

from __future__ import annotations

import logging

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything `python -m transformer` needs; see ENV_NAMES for the env contract."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",  # .env also holds Postgres/Connect settings we don't read
        populate_by_name=True,  # tests build Settings(batch_size=3) by field name
        frozen=True,
    )

    # --- shared with the rest of the stack ----------------------------------
    kafka_host: str = Field("127.0.0.1", validation_alias="KAFKA_HOST")
    kafka_port: int = Field(9092, ge=1, le=65535, validation_alias="KAFKA_PORT")
    cdc_topic: str = Field("car_database.public.tbl_car_price", validation_alias="CDC_TOPIC")
    predictions_topic: str = Field("car_price_predictions", validation_alias="PREDICTIONS_TOPIC")
    dlq_topic: str = Field("car_price_predictions.dlq", validation_alias="DLQ_TOPIC")
    bentoml_host: str = Field("127.0.0.1", validation_alias="BENTOML_HOST")
    bentoml_port: int = Field(3000, ge=1, le=65535, validation_alias="BENTOML_PORT")
    # 0 = let the OS pick a free port (handy for parallel test runs); the port is logged.
    metrics_port: int = Field(9400, ge=0, le=65535, validation_alias="TRANSFORMER_METRICS_PORT")

    # --- transformer only ---------------------------------------------------
    metrics_host: str = Field("127.0.0.1", validation_alias="TRANSFORMER_METRICS_HOST")
    group_id: str = Field("car-price-transformer", validation_alias="TRANSFORMER_GROUP_ID")
    batch_size: int = Field(500, ge=1, le=100_000, validation_alias="TRANSFORMER_BATCH_SIZE")
    batch_max_wait_ms: int = Field(
        200, ge=0, le=600_000, validation_alias="TRANSFORMER_BATCH_MAX_WAIT_MS"
    )
    request_timeout_ms: int = Field(
        10_000, ge=1, le=600_000, validation_alias="TRANSFORMER_REQUEST_TIMEOUT_MS"
    )
    retry_max_attempts: int = Field(
        5, ge=1, le=100, validation_alias="TRANSFORMER_RETRY_MAX_ATTEMPTS"
    )
    retry_backoff_initial_ms: int = Field(
        200, ge=0, le=600_000, validation_alias="TRANSFORMER_RETRY_BACKOFF_INITIAL_MS"
    )
    retry_backoff_max_ms: int = Field(
        5_000, ge=0, le=600_000, validation_alias="TRANSFORMER_RETRY_BACKOFF_MAX_MS"
    )
    shutdown_timeout_ms: int = Field(
        10_000, ge=0, le=600_000, validation_alias="TRANSFORMER_SHUTDOWN_TIMEOUT_MS"
    )
    log_level: str = Field("INFO", validation_alias="TRANSFORMER_LOG_LEVEL")

    @field_validator("log_level")
    @classmethod
    def _known_log_level(cls, value: str) -> str:
        level = value.strip().upper()
        if level not in logging.getLevelNamesMapping():
            raise ValueError(f"unknown log level {value!r}")
        return level

    @model_validator(mode="after")
    def _backoff_bounds(self) -> Settings:
        if self.retry_backoff_max_ms < self.retry_backoff_initial_ms:
            raise ValueError(
                "TRANSFORMER_RETRY_BACKOFF_MAX_MS must be >= TRANSFORMER_RETRY_BACKOFF_INITIAL_MS"
            )
        return self

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.kafka_host}:{self.kafka_port}"

    @property
    def bentoml_url(self) -> str:
        return f"http://{self.bentoml_host}:{self.bentoml_port}"


def env_names() -> list[str]:
    """The env variable names this service reads, in declaration order (for docs/tests)."""
    return [str(field.validation_alias) for field in Settings.model_fields.values()]
