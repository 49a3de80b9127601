"""The records the transformer produces (transformer/records.py)."""

from __future__ import annotations

import json

from model.api_schema import PricePrediction
from tests.transformer.conftest import CDC_TOPIC, MessageOf, key_of
from transformer.batch import DeadLetter, build
from transformer.events import Reason
from transformer.predictor import Refused
from transformer.records import (
    MAX_ERROR_CHARS,
    dead_letter,
    for_batch,
    prediction_key,
    prediction_value,
)

PREDICTION = PricePrediction(
    predicted_price=11000.5, price_low=9800.0, price_high=12100.0, model_version="xgb:abc"
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
            "model_version": "xgb:abc",
            "source_committed_at": 1_730_000_000_000,
        },
    }
    assert (
        json.loads(prediction_value(42, PREDICTION, None))["payload"]["source_committed_at"] is None
    )


def test_a_dead_letter_keeps_the_original_bytes_and_says_why(message: MessageOf) -> None:
    original = message(
        b"\xffnot json", key_of(7), partition=2, offset=41, headers=[("trace", b"x")]
    )

    record = dead_letter("dlq", DeadLetter(original, Reason.INVALID_JSON, "e" * 5000))

    assert (record.topic, record.key, record.value) == ("dlq", key_of(7), b"\xffnot json")
    assert record.headers[0] == ("trace", b"x"), "original headers first, kept for a replay"
    headers = {name: value.decode() for name, value in record.headers[1:]}
    assert headers["dlq.reason"] == "invalid_json"
    assert headers["dlq.error"] == "e" * MAX_ERROR_CHARS + "..."
    assert (headers["dlq.source.topic"], headers["dlq.source.partition"]) == (CDC_TOPIC, "2")
    assert headers["dlq.source.offset"] == "41" and headers["dlq.failed_at"].endswith("+00:00")


def test_every_message_of_a_batch_gets_its_record(change: MessageOf, message: MessageOf) -> None:
    garbage = message(b"{", key_of(4), offset=3)
    batch = build(
        [change("c", 1, offset=0), change("c", 2, offset=1), change("d", 3, offset=2), garbage]
    )

    out = for_batch(batch, [PREDICTION, Refused("mileage < 0")], "predictions", "dlq")

    assert [(m.offset(), r.topic, label) for m, r, label in out] == [
        (3, "dlq", "invalid_json"),
        (0, "predictions", "prediction"),
        (1, "dlq", "rejected_by_model"),
        (2, "predictions", "tombstone"),
    ]
    _, priced, _ = out[1]
    assert priced.key == prediction_key(1)
    assert json.loads(priced.value)["payload"]["source_committed_at"] == 1_700_000_000_001
    _, refused, _ = out[2]
    assert refused.value == batch.messages[1].value()
    assert ("dlq.error", b"mileage < 0") in refused.headers
    _, removal, _ = out[3]
    assert (removal.key, removal.value) == (prediction_key(3), None)
