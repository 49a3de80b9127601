"""Prediction records in the exact shape Debezium's JDBC sink expects.

The sink runs JsonConverter with `schemas.enable=true`, so key and value both carry
an inline Connect schema. It upserts on the key field `car_id` and deletes on a
tombstone (value null). `source_committed_at` uses the Connect Timestamp logical
type so it lands in a timestamptz column, not a bigint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from transformer.predictor_client import Prediction

KEY_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "car_price_predictions.Key",
    "optional": False,
    "fields": [{"field": "car_id", "type": "int64", "optional": False}],
}

VALUE_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "car_price_predictions.Value",
    "optional": False,
    "fields": [
        {"field": "car_id", "type": "int64", "optional": False},
        {"field": "predicted_price", "type": "double", "optional": False},
        {"field": "price_low", "type": "double", "optional": False},
        {"field": "price_high", "type": "double", "optional": False},
        {"field": "model_version", "type": "string", "optional": False},
        {
            "field": "source_committed_at",
            "type": "int64",
            "optional": True,
            "name": "org.apache.kafka.connect.data.Timestamp",
            "version": 1,
        },
    ],
}


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One record to produce; value None is a tombstone."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


def _dumps(document: Any) -> bytes:
    # allow_nan=False: NaN/Infinity are not JSON and would poison the sink.
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode("utf-8")


def prediction_key(car_id: int) -> bytes:
    return _dumps({"schema": KEY_SCHEMA, "payload": {"car_id": car_id}})


def prediction_value(
    car_id: int, prediction: Prediction, source_committed_at_ms: int | None
) -> bytes:
    return _dumps(
        {
            "schema": VALUE_SCHEMA,
            "payload": {
                "car_id": car_id,
                "predicted_price": float(prediction.predicted_price),
                "price_low": float(prediction.price_low),
                "price_high": float(prediction.price_high),
                "model_version": prediction.model_version,
                "source_committed_at": source_committed_at_ms,
            },
        }
    )


def prediction_record(
    topic: str, car_id: int, prediction: Prediction, source_committed_at_ms: int | None
) -> OutputRecord:
    return OutputRecord(
        topic=topic,
        key=prediction_key(car_id),
        value=prediction_value(car_id, prediction, source_committed_at_ms),
    )


def tombstone_record(topic: str, car_id: int) -> OutputRecord:
    """Same key as the prediction, null value: the sink deletes the row."""
    return OutputRecord(topic=topic, key=prediction_key(car_id), value=None)
