"""One batch from messages to records: dedupe, DLQ decisions, predictions.

Tests transformer/processing.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from transformer_fakes import SOURCE_TS_MS, FakeMessage, change, key_bytes, tombstone

from transformer.predictor_client import REASON_REJECTED_BY_MODEL, Prediction, Rejection
from transformer.processing import transform_batch
from transformer.records import prediction_key

PREDICTIONS = "car_price_predictions"
DLQ = "car_price_predictions.dlq"


class FakePredict:
    """Predicts price = mileage; rejects listings whose model is 'REJECT'."""

    def __init__(self) -> None:
        self.calls: list[list[dict[str, Any]]] = []

    def __call__(self, listings: list[dict[str, Any]]) -> list[Prediction | Rejection]:
        self.calls.append(listings)
        return [
            Rejection(REASON_REJECTED_BY_MODEL, "HTTP 400: listings.0.model")
            if listing["model"] == "REJECT"
            else Prediction(float(listing["mileage"]), 0.0, 1.0, "car_price_xgb:v1")
            for listing in listings
        ]


def run(messages: list[FakeMessage], predict: FakePredict | None = None):
    return transform_batch(
        messages,
        predict=predict or FakePredict(),
        predictions_topic=PREDICTIONS,
        dlq_topic=DLQ,
        now=lambda: datetime(2024, 1, 1, tzinfo=UTC),
    )


def by_topic(result, topic: str) -> list:
    return [record for record in result.records if record.topic == topic]


def car_id(record) -> int:
    return json.loads(record.key)["payload"]["car_id"]


def test_mixed_batch_produces_one_record_per_listing_and_dlqs_the_bad_ones() -> None:
    predict = FakePredict()
    messages = [
        change("c", 1, offset=0, mileage=100),
        change("r", 2, offset=1, mileage=200),
        FakeMessage(b"{garbage", key_bytes(9), offset=2),
        change("u", 1, offset=3, mileage=150),  # newer version of 1
        change("d", 3, offset=4),
        tombstone(3, offset=5),
        change("c", 4, offset=6, model="REJECT"),
    ]

    result = run(messages, predict)

    # one /predict call, newest version of each upserted listing, in consumption order
    assert [[(item["model"], item["mileage"]) for item in call] for call in predict.calls] == [
        [(" Fiesta", 200), (" Fiesta", 150), ("REJECT", 15944)]
    ]
    predictions = by_topic(result, PREDICTIONS)
    assert [(car_id(r), r.value is None) for r in predictions] == [
        (2, False),
        (1, False),
        (3, True),
    ]
    assert json.loads(predictions[1].value)["payload"]["predicted_price"] == 150.0
    dead = by_topic(result, DLQ)
    assert [dict(r.headers)["dlq.reason"] for r in dead] == [b"invalid_json", b"rejected_by_model"]
    assert dead[1].value == messages[6].value()
    assert (result.predictions, result.tombstones, result.superseded) == (2, 1, 2)
    assert dict(result.events_by_kind) == {
        "create": 2,
        "read": 1,
        "update": 1,
        "delete": 1,
        "tombstone": 1,
        "invalid": 1,
    }
    assert dict(result.dlq_by_reason) == {"invalid_json": 1, "rejected_by_model": 1}


def test_source_commit_time_becomes_source_committed_at() -> None:
    result = run([change("c", 1)])

    payload = json.loads(result.records[0].value)["payload"]
    assert payload["source_committed_at"] == SOURCE_TS_MS


def test_delete_after_upsert_in_the_same_batch_skips_prediction() -> None:
    predict = FakePredict()

    result = run(
        [
            change("c", 5, offset=0),
            change("u", 5, offset=1),
            change("d", 5, offset=2),
            tombstone(5, offset=3),
        ],
        predict,
    )

    assert predict.calls == []
    assert [(r.key, r.value) for r in result.records] == [(prediction_key(5), None)]


def test_reinsert_after_delete_in_the_same_batch_predicts() -> None:
    result = run([change("d", 5, offset=0), tombstone(5, offset=1), change("c", 5, offset=2)])

    assert len(result.records) == 1 and result.records[0].value is not None


def test_debezium_tombstone_alone_still_deletes_the_prediction() -> None:
    result = run([tombstone(8)])

    assert [(r.topic, r.key, r.value) for r in result.records] == [
        (PREDICTIONS, prediction_key(8), None)
    ]


def test_a_broken_newer_event_does_not_hide_the_valid_older_one() -> None:
    broken = FakeMessage(b'{"op": "u", "after": {"id": 1, "year": "soon"}}', key_bytes(1), offset=1)

    result = run([change("c", 1, offset=0, mileage=10), broken])

    assert [car_id(r) for r in by_topic(result, PREDICTIONS)] == [1]
    assert [dict(r.headers)["dlq.reason"] for r in by_topic(result, DLQ)] == [b"invalid_listing"]
    assert [dict(r.headers)["dlq.car_id"] for r in by_topic(result, DLQ)] == [b"1"]


def test_batch_of_only_garbage_calls_nothing_and_dlqs_everything() -> None:
    predict = FakePredict()

    result = run(
        [FakeMessage(b"\x00", offset=0), FakeMessage(b"[]", key_bytes(1), offset=1)], predict
    )

    assert predict.calls == []
    assert [r.topic for r in result.records] == [DLQ, DLQ]


def test_predict_must_answer_every_listing() -> None:
    with pytest.raises(AssertionError):
        transform_batch(
            [change("c", 1)],
            predict=lambda listings: [],
            predictions_topic=PREDICTIONS,
            dlq_topic=DLQ,
        )
