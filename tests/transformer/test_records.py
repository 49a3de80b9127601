"""The records the transformer produces (transformer/records.py)."""

from __future__ import annotations

import hashlib
import json

from model.api_schema import PricePrediction
from operations.connectors import load_connector_files
from tests.connectors import contract
from tests.support import CDC_TOPIC, MessageOf, key_of
from transformer.batch import DeadLetter, build
from transformer.events import Event, Reason, Refusal
from transformer.records import (
    KEY_SCHEMA,
    MAX_ERROR_CHARS,
    VALUE_SCHEMA,
    dead_letter,
    for_batch,
    prediction_key,
    prediction_value,
)
from transformer.settings import Settings

LIMIT = 1_048_576
SETTINGS = Settings(
    _env_file=None, predictions_topic="predictions", dlq_topic="dlq", kafka_max_message_bytes=LIMIT
)
PREDICTION = PricePrediction(
    predicted_price=11000.5, price_low=9800.0, price_high=12100.0, model_version="xgb:abc"
)


def _sink_schemas() -> tuple[dict, dict]:
    """The schemas the sink's JsonConverters hold (`schema.content`, KIP-1054)."""
    [sink] = [
        c["config"]
        for c in load_connector_files()
        if c["config"]["connector.class"].endswith("JdbcSinkConnector")
    ]
    return tuple(json.loads(sink[f"{side}.converter.schema.content"]) for side in ("key", "value"))


def test_key_is_the_connect_struct_the_sink_upserts_on() -> None:
    key_schema, _ = _sink_schemas()

    assert json.loads(prediction_key(42)) == {"car_id": 42}, "the payload only"
    assert (
        key_schema
        == KEY_SCHEMA
        == contract.KEY_SCHEMA
        == {
            "type": "struct",
            "name": "car_price_predictions.Key",
            "optional": False,
            "fields": [{"field": "car_id", "type": "int64", "optional": False}],
        }
    )


def test_value_schema_and_payload() -> None:
    event = Event(42, "update", source_ts_ms=1_730_000_000_000, source_lsn=987654321)
    _, value_schema = _sink_schemas()

    value = json.loads(prediction_value(event, PREDICTION))

    fields = {f["field"]: (f["type"], f["optional"]) for f in value_schema["fields"]}
    assert fields == {
        "car_id": ("int64", False),
        "status": ("string", False),
        "predicted_price": ("double", True),
        "price_low": ("double", True),
        "price_high": ("double", True),
        "model_version": ("string", True),
        "reason": ("string", True),
        "refused_field": ("string", True),
        "source_lsn": ("int64", True),
        "source_committed_at": ("int64", True),
        "consumed_at": ("int64", True),
        "replied_at": ("int64", True),
    }
    assert value_schema == VALUE_SCHEMA == contract.VALUE_SCHEMA, "the sink's is the table's"
    assert set(value) <= set(fields), "no field the sink's schema does not know"
    assert value == {
        "car_id": 42,
        "status": "priced",
        "predicted_price": 11000.5,
        "price_low": 9800.0,
        "price_high": 12100.0,
        "model_version": "xgb:abc",
        "source_committed_at": 1_730_000_000_000,
        "source_lsn": 987654321,
    }


def test_a_refused_value_has_a_reason_and_no_price() -> None:
    event = Event(7, "create", source_lsn=5)

    payload = json.loads(prediction_value(event, Refusal("year: too new", "year")))

    assert payload == {
        "car_id": 7,
        "status": "refused",
        "reason": "year: too new",
        "refused_field": "year",
        "source_committed_at": None,
        "source_lsn": 5,
    }


def test_a_deleted_value_carries_only_the_position() -> None:
    payload = json.loads(prediction_value(Event(7, "delete", source_lsn=9), None))

    assert payload == {"car_id": 7, "status": "deleted", "source_committed_at": None,
                       "source_lsn": 9}  # fmt: skip


def test_a_dead_letter_keeps_the_original_bytes_and_says_why(message: MessageOf) -> None:
    original = message(
        b"\xffnot json", key_of(7), partition=2, offset=41, headers=[("trace", b"x")]
    )

    record = dead_letter("dlq", DeadLetter(original, Reason.INVALID_JSON, "e" * 5000), LIMIT)

    assert (record.topic, record.key, record.value) == ("dlq", key_of(7), b"\xffnot json")
    assert record.headers[0] == ("trace", b"x"), "original headers first, kept for a replay"
    headers = {name: value.decode() for name, value in record.headers[1:]}
    assert headers["dlq.reason"] == "invalid_json"
    assert headers["dlq.error"] == "e" * MAX_ERROR_CHARS + "..."
    assert (headers["dlq.source.topic"], headers["dlq.source.partition"]) == (CDC_TOPIC, "2")
    assert headers["dlq.source.offset"] == "41" and headers["dlq.failed_at"].endswith("+00:00")


def test_a_dead_letter_too_big_for_the_topic_is_trimmed_with_size_and_digest(
    message: MessageOf,
) -> None:
    value = b"x" * LIMIT
    original = message(value, b"k" * 5000, headers=[("big", b"h" * 100_000)])

    record = dead_letter("dlq", DeadLetter(original, Reason.INVALID_LISTING, "too big"), LIMIT)

    size = len(record.key) + len(record.value) + sum(len(n) + len(v) for n, v in record.headers)
    assert size <= LIMIT - 32 * 1024 and record.value == value[: len(record.value)]
    headers = {name: v.decode() for name, v in record.headers}
    assert headers["dlq.trimmed"] == "true" and headers["dlq.original.size"] == str(LIMIT)
    assert headers["dlq.original.sha256"] == hashlib.sha256(value).hexdigest()
    assert headers["dlq.reason"] == "invalid_listing" and "big" not in headers


def test_every_message_of_a_batch_gets_its_record(change: MessageOf, message: MessageOf) -> None:
    garbage = message(b"{", key_of(4), offset=3)
    batch = build(
        [change("c", 1, offset=0), change("c", 2, offset=1), change("d", 3, offset=2), garbage]
    )

    out = for_batch(batch, [PREDICTION, Refusal("mileage: too low", "mileage")], SETTINGS)

    assert [(o.message.offset(), o.record.topic, o.label) for o in out] == [
        (0, "predictions", "prediction"),
        (1, "predictions", "refused"),
        (2, "predictions", "deleted"),
        (3, "dlq", "invalid_json"),
        (1, "dlq", "rejected_by_model"),
    ]
    priced = out[0].record
    assert priced.key == prediction_key(1)
    payload = json.loads(priced.value)
    assert (payload["source_committed_at"], payload["source_lsn"]) == (1_700_000_000_001, 5_000_001)
    assert batch.consumed_ms <= payload["consumed_at"] <= payload["replied_at"], "per-hop times"
    refused = out[1].record
    assert json.loads(refused.value)["reason"] == "mileage: too low"
    letter = out[4].record
    assert letter.value == batch.messages[1].value()
    assert ("dlq.error", b"mileage: too low") in letter.headers
    deleted = out[2].record
    assert json.loads(deleted.value)["status"] == "deleted"


def test_a_listing_the_transformer_refuses_gets_a_refused_record(change: MessageOf) -> None:
    batch = build([change("u", 5, year=1850)])

    out = for_batch(batch, [], SETTINGS)

    assert [(o.record.topic, o.label) for o in out] == [
        ("predictions", "refused"),
        ("dlq", "invalid_listing"),
    ]
    payload = json.loads(out[0].record.value)
    assert (payload["status"], payload["refused_field"]) == ("refused", "year")
    assert "predicted_price" not in payload and payload["reason"].startswith("year: ")


def test_a_delete_then_its_tombstone_send_the_deletion_then_the_tombstone(
    change: MessageOf, message: MessageOf
) -> None:
    batch = build([change("d", 3, offset=0, lsn=77), message(None, key_of(3), offset=1)])

    out = for_batch(batch, [], SETTINGS)

    assert [(o.record.value is None, o.label) for o in out] == [
        (False, "deleted"),
        (True, "tombstone"),
    ]
    assert json.loads(out[0].record.value)["source_lsn"] == 77
    assert out[1].record.key == prediction_key(3)


def test_a_lone_tombstone_sends_only_the_tombstone(message: MessageOf) -> None:
    out = for_batch(build([message(None, key_of(3))]), [], SETTINGS)

    assert [(o.record.value, o.label) for o in out] == [(None, "tombstone")]


def test_a_record_that_cannot_be_built_is_an_internal_error(change: MessageOf) -> None:
    batch = build([change("c", 1), change("c", 2)])
    broken = PREDICTION.model_copy(update={"predicted_price": float("nan")})  # not JSON

    out = for_batch(batch, [broken, PREDICTION], SETTINGS)

    assert [o.label for o in out] == ["prediction", "internal_error"]
    headers = dict(out[1].record.headers)
    assert b"ValueError" in headers["dlq.error"] and out[1].record.topic == "dlq"


def test_tombstones_come_after_every_deletion_so_the_sink_batches_them(
    change: MessageOf, message: MessageOf
) -> None:
    pairs = [
        (change("d", i, offset=2 * i), message(None, key_of(i), offset=2 * i + 1))
        for i in (1, 2, 3)
    ]
    batch = build([m for pair in pairs for m in pair])

    out = for_batch(batch, [], SETTINGS)

    assert [o.label for o in out] == ["deleted"] * 3 + ["tombstone"] * 3
    assert [o.record.key for o in out] == [prediction_key(i) for i in (1, 2, 3)] * 2
