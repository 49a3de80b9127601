"""The records the transformer produces.

The JDBC sink reads JsonConverter with `schemas.enable=true`, upserts on the key's
`car_id` and deletes on a tombstone; it writes every field the value schema carries
(`schema.evolution=none`: the columns exist, migration 0003). Each record carries
`status` and the change's `source_lsn`, so the table's trigger lets the newest state win:
- 'priced': prices and model version; 'refused': `reason`, `refused_field`, no prices;
- 'deleted' (for a Debezium delete): never stored, the trigger records the deletion so an
  older re-delivered event cannot bring the prediction back; the tombstone follows.
A dead letter keeps the original bytes (it can be replayed as-is) and says why in `dlq.*`
headers after the original ones. One that would not fit the topic's max.message.bytes
is trimmed, with `dlq.original.size` and `dlq.original.sha256` of the value.
"""

import hashlib
import json
from datetime import UTC, datetime
from typing import Any, NamedTuple

from confluent_kafka import Message

from model.api_schema import PricePrediction
from transformer.batch import Batch, DeadLetter
from transformer.events import Event, Reason, Refusal

MAX_ERROR_CHARS = 2000
HEADROOM = 64 * 1024  # our headers and the record batch overhead, under the topic limit
KEEP_KEY_BYTES = 1024  # a trimmed dead letter's key


def _struct(name: str, fields: str) -> dict[str, Any]:
    """A Connect struct schema from `field:type` words; a type ending in `?` is optional."""
    pairs = [word.split(":") for word in fields.split()]
    kinds = [{"field": f, "type": t.rstrip("?"), "optional": t.endswith("?")} for f, t in pairs]
    return {"type": "struct", "name": name, "optional": False, "fields": kinds}


KEY_SCHEMA = _struct("car_price_predictions.Key", "car_id:int64")
VALUE_SCHEMA = _struct(
    "car_price_predictions.Value",
    "car_id:int64 status:string predicted_price:double? price_low:double? price_high:double?"
    " model_version:string? reason:string? refused_field:string? source_lsn:int64?"
    " source_committed_at:int64?",
)
VALUE_SCHEMA["fields"][-1] |= {"name": "org.apache.kafka.connect.data.Timestamp", "version": 1}


class Record(NamedTuple):
    """One record to produce; value None is a tombstone."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


Out = tuple[Message, Record, str]  # (source message, record, metrics label)


def _dumps(document: Any) -> bytes:
    # allow_nan=False: NaN/Infinity are not JSON and would poison the sink.
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def prediction_key(car_id: int) -> bytes:
    return _dumps({"schema": KEY_SCHEMA, "payload": {"car_id": car_id}})


def prediction_value(event: Event, answer: PricePrediction | Refusal | None) -> bytes:
    """The record for `event`: priced, refused, or (answer None) deleted."""
    payload: dict[str, Any] = {"car_id": event.car_id, "status": "deleted"}
    if isinstance(answer, PricePrediction):
        payload |= {"status": "priced", **answer.model_dump()}
    elif isinstance(answer, Refusal):
        payload |= {"status": "refused", "reason": answer.reason, "refused_field": answer.field}
    payload |= {"source_committed_at": event.source_ts_ms, "source_lsn": event.source_lsn}
    return _dumps({"schema": VALUE_SCHEMA, "payload": payload})


def dead_letter(topic: str, letter: DeadLetter, max_bytes: int) -> Record:
    """The message as it came, or trimmed when it would not fit in `max_bytes` (0: a bare
    note, for a record the producer refused)."""
    source, error = letter.message, letter.error
    key, value = source.key(), source.value()
    ours = {
        "reason": letter.reason,
        "error": error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "...",
        "source.topic": source.topic(),
        "source.partition": source.partition(),
        "source.offset": source.offset(),
        "failed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    headers = [(str(n), bytes(v or b"")) for n, v in source.headers() or []]
    size = len(key or b"") + len(value or b"") + sum(len(n) + len(v) for n, v in headers)
    if size > max_bytes - HEADROOM:  # would not fit: keep a prefix, say what it was
        ours |= {"trimmed": "true", "original.size": len(value or b"")}
        ours["original.sha256"] = hashlib.sha256(value or b"").hexdigest()
        key, headers = key and key[:KEEP_KEY_BYTES], []
        value = value and value[: max(0, max_bytes - HEADROOM - len(key or b""))]
    headers += [(f"dlq.{name}", str(v).encode()) for name, v in ours.items()]
    return Record(topic, key, value, headers)


def for_batch(
    batch: Batch, answers: list[PricePrediction | Refusal], topics: tuple[str, str], limit: int
) -> list[Out]:
    """Every record the batch produces; `answers` are the model's, one per listing to
    price, in order; `topics` are (predictions, dlq). A record that cannot be built sends
    its message to the DLQ as `internal_error`."""
    out = [(d.message, dead_letter(topics[1], d, limit), d.reason.value) for d in batch.dead]
    priced = iter(answers)
    for message, event in batch.changes:
        answer = next(priced) if event.listing is not None else event.refused
        try:
            out += _records(message, event, answer, topics, limit)
        except Exception as exc:
            letter = DeadLetter(message, Reason.INTERNAL_ERROR, repr(exc))
            out.append((message, dead_letter(topics[1], letter, limit), letter.reason.value))
    return out


def _records(
    message: Message, event: Event, answer: Any, topics: tuple[str, str], limit: int
) -> list[Out]:
    predictions, dlq = topics
    key = prediction_key(event.car_id)
    out: list[Out] = []
    if event.kind == "delete" or (event.kind == "tombstone" and event.source_lsn is not None):
        out.append((message, Record(predictions, key, prediction_value(event, None)), "deleted"))
    if event.kind == "tombstone":  # the prediction's key, null value: the sink deletes it
        out.append((message, Record(predictions, key, None), "tombstone"))
    if event.kind in ("delete", "tombstone"):
        return out
    value = prediction_value(event, answer)
    if not isinstance(answer, Refusal):
        return [(message, Record(predictions, key, value), "prediction")]
    letter = dead_letter(dlq, DeadLetter(message, answer.code, answer.reason), limit)
    return [(message, Record(predictions, key, value), "refused"), (message, letter, answer.code)]
