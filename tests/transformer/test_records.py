"""Prediction record format for the JDBC sink (transformer/records.py)."""

from __future__ import annotations

import json

import pytest

from transformer.predictor_client import Prediction
from transformer.records import (
    prediction_key,
    prediction_record,
    prediction_value,
    tombstone_record,
)

PREDICTION = Prediction(
    predicted_price=11000.5,
    price_low=9800.0,
    price_high=12100.0,
    model_version="car_price_xgb:abc123",
)


def test_key_is_the_connect_struct_the_sink_upserts_on() -> None:
    assert json.loads(prediction_key(42)) == {
        "schema": {
            "type": "struct",
            "name": "car_price_predictions.Key",
            "optional": False,
            "fields": [{"field": "car_id", "type": "int64", "optional": False}],
        },
        "payload": {"car_id": 42},
    }


def test_value_schema_and_payload() -> None:
    value = json.loads(prediction_value(42, PREDICTION, 1_730_000_000_000))

    assert value == {
        "schema": {
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
        },
        "payload": {
            "car_id": 42,
            "predicted_price": 11000.5,
            "price_low": 9800.0,
            "price_high": 12100.0,
            "model_version": "car_price_xgb:abc123",
            "source_committed_at": 1_730_000_000_000,
        },
    }


def test_missing_commit_time_is_null_because_the_field_is_optional() -> None:
    payload = json.loads(prediction_value(1, PREDICTION, None))["payload"]

    assert payload["source_committed_at"] is None


def test_integral_prices_are_written_as_json_doubles() -> None:
    whole = Prediction(predicted_price=12000, price_low=11000, price_high=13000, model_version="v")  # type: ignore[arg-type]

    raw = prediction_value(1, whole, None).decode()

    assert '"predicted_price":12000.0' in raw
    assert '"price_low":11000.0' in raw and '"price_high":13000.0' in raw


def test_not_a_number_never_reaches_the_topic() -> None:
    broken = Prediction(
        predicted_price=float("nan"), price_low=0.0, price_high=1.0, model_version="v"
    )

    with pytest.raises(ValueError):
        prediction_value(1, broken, None)


def test_prediction_record_is_keyed_by_listing_id() -> None:
    record = prediction_record("car_price_predictions", 42, PREDICTION, None)

    assert record.topic == "car_price_predictions"
    assert record.key == prediction_key(42)
    assert json.loads(record.value or b"")["payload"]["car_id"] == 42
    assert record.headers is None


def test_tombstone_has_the_same_key_and_a_null_value() -> None:
    record = tombstone_record("car_price_predictions", 42)

    assert record.key == prediction_record("car_price_predictions", 42, PREDICTION, None).key
    assert record.value is None


def test_records_are_compact_utf8_json() -> None:
    assert b" " not in prediction_key(42)
    assert (
        prediction_key(42) == b'{"schema":{"type":"struct","name":"car_price_predictions.Key",'
        b'"optional":false,"fields":[{"field":"car_id","type":"int64","optional":false}]},'
        b'"payload":{"car_id":42}}'
    )
