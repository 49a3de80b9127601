"""The records the transformer produces.

The JDBC sink reads JsonConverter with `schemas.enable=true`, upserts on the key's
`car_id` and deletes on a tombstone; `source_committed_at` is a Connect Timestamp, so it
lands in a timestamptz column. A dead letter keeps the original bytes (it can be replayed
as-is) and says why in `dlq.*` headers after the original ones.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from confluent_kafka import Message

from model.api_schema import PricePrediction
from transformer.batch import Batch, DeadLetter
from transformer.events import Reason
from transformer.predictor import Refused

MAX_ERROR_CHARS = 2000
Timestamp = "org.apache.kafka.connect.data.Timestamp"


def _field(field: str, kind: str, optional: bool = False, **logical: Any) -> dict[str, Any]:
    return {"field": field, "type": kind, "optional": optional, **logical}


def _struct(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "struct", "name": name, "optional": False, "fields": list(fields)}


KEY_SCHEMA = _struct("car_price_predictions.Key", _field("car_id", "int64"))
VALUE_SCHEMA = _struct(
    "car_price_predictions.Value",
    _field("car_id", "int64"),
    *(_field(name, "double") for name in ("predicted_price", "price_low", "price_high")),
    _field("model_version", "string"),
    _field("source_committed_at", "int64", True, name=Timestamp, version=1),
)


class Record(NamedTuple):
    """One record to produce; value None is a tombstone."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


def _dumps(document: Any) -> bytes:
    # allow_nan=False: NaN/Infinity are not JSON and would poison the sink.
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def prediction_key(car_id: int) -> bytes:
    return _dumps({"schema": KEY_SCHEMA, "payload": {"car_id": car_id}})


def prediction_value(car_id: int, prediction: PricePrediction, committed_ms: int | None) -> bytes:
    payload = {"car_id": car_id, **prediction.model_dump(), "source_committed_at": committed_ms}
    return _dumps({"schema": VALUE_SCHEMA, "payload": payload})


def dead_letter(topic: str, letter: DeadLetter) -> Record:
    source, error = letter.message, letter.error
    ours = {
        "dlq.reason": letter.reason,
        "dlq.error": error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "...",
        "dlq.source.topic": source.topic(),
        "dlq.source.partition": source.partition(),
        "dlq.source.offset": source.offset(),
        "dlq.failed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    headers = [(name, value or b"") for name, value in source.headers() or []]
    headers += [(name, str(value).encode()) for name, value in ours.items()]
    return Record(topic, source.key(), source.value(), headers)


def for_batch(
    batch: Batch, answers: list[PricePrediction | Refused], predictions: str, dlq: str
) -> list[tuple[Message, Record, str]]:
    """(source message, record, metrics label) for every record the batch produces;
    `answers` are the model's, one per listing to price, in order."""
    out = [(d.message, dead_letter(dlq, d), d.reason.value) for d in batch.dead]
    priced = iter(answers)
    for message, event in batch.changes:
        answer = next(priced) if event.listing is not None else None
        key = prediction_key(event.car_id)
        if answer is None:  # a delete: the prediction's key, null value, the sink deletes it
            out.append((message, Record(predictions, key, None), "tombstone"))
        elif isinstance(answer, Refused):
            letter = DeadLetter(message, Reason.REJECTED_BY_MODEL, answer)
            out.append((message, dead_letter(dlq, letter), letter.reason.value))
        else:
            value = prediction_value(event.car_id, answer, event.source_ts_ms)
            out.append((message, Record(predictions, key, value), "prediction"))
    return out
