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

from __future__ import annotations

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from confluent_kafka import Message

from model.api_schema import PricePrediction
from transformer.batch import Batch, DeadLetter
from transformer.events import Event, Reason, Refusal

MAX_ERROR_CHARS = 2000
HEADROOM = 64 * 1024  # our headers and the record batch overhead, under the topic limit
KEEP_KEY_BYTES = 1024  # a trimmed dead letter's key
Timestamp = "org.apache.kafka.connect.data.Timestamp"
Out = tuple[Message, "Record", str]  # (source message, record, metrics label)
# per-hop times (epoch ms): the change's commit, the batch consumed, BentoML's reply
HOPS = ("source_committed_at", "consumed_at", "replied_at")


def _field(field: str, kind: str, optional: bool = False, **logical: Any) -> dict[str, Any]:
    return {"field": field, "type": kind, "optional": optional, **logical}


def _struct(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "struct", "name": name, "optional": False, "fields": list(fields)}


KEY_SCHEMA = _struct("car_price_predictions.Key", _field("car_id", "int64"))
VALUE_SCHEMA = _struct(
    "car_price_predictions.Value",
    _field("car_id", "int64"),
    _field("status", "string"),
    *(_field(name, "double", True) for name in ("predicted_price", "price_low", "price_high")),
    _field("model_version", "string", True),
    _field("reason", "string", True),
    _field("refused_field", "string", True),
    _field("source_lsn", "int64", True),
    *(_field(name, "int64", True, name=Timestamp, version=1) for name in HOPS),
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


def prediction_value(
    event: Event, answer: PricePrediction | Refusal | None, hops: tuple[int, int] | None = None
) -> bytes:
    """The record for `event`: priced, refused, or (answer None) deleted; `hops` are the
    (consumed, replied) epoch ms the bench reads per hop."""
    payload: dict[str, Any] = {"car_id": event.car_id, "status": "deleted"}
    if isinstance(answer, PricePrediction):
        payload |= {"status": "priced", **answer.model_dump()}
    elif isinstance(answer, Refusal):
        payload |= {"status": "refused", "reason": answer.reason, "refused_field": answer.field}
    payload |= {"source_committed_at": event.source_ts_ms, "source_lsn": event.source_lsn}
    if hops is not None:
        payload |= dict(zip(HOPS[1:], hops, strict=True))
    return _dumps({"schema": VALUE_SCHEMA, "payload": payload})


def dead_letter(topic: str, letter: DeadLetter, max_bytes: int) -> Record:
    source, error = letter.message, letter.error
    key, value = source.key(), source.value()
    ours = {
        "dlq.reason": letter.reason,
        "dlq.error": error if len(error) <= MAX_ERROR_CHARS else error[:MAX_ERROR_CHARS] + "...",
        "dlq.source.topic": source.topic(),
        "dlq.source.partition": source.partition(),
        "dlq.source.offset": source.offset(),
        "dlq.failed_at": datetime.now(UTC).isoformat(timespec="milliseconds"),
    }
    headers = [(str(name), bytes(value or b"")) for name, value in source.headers() or []]
    size = len(key or b"") + len(value or b"") + sum(len(n) + len(v) for n, v in headers)
    if size > max_bytes - HEADROOM:  # would not fit: keep a prefix, say what it was
        ours |= {"dlq.trimmed": "true", "dlq.original.size": len(value or b"")}
        ours["dlq.original.sha256"] = hashlib.sha256(value or b"").hexdigest()
        key, headers = key and key[:KEEP_KEY_BYTES], []
        value = value and value[: max(0, max_bytes - HEADROOM - len(key or b""))]
    headers += [(name, str(value).encode()) for name, value in ours.items()]
    return Record(topic, key, value, headers)


def for_batch(
    batch: Batch, answers: list[PricePrediction | Refusal], topics: tuple[str, str], limit: int
) -> list[Out]:
    """Every record the batch produces; `answers` are the model's, one per listing to
    price, in order; `topics` are (predictions, dlq). A record that cannot be built sends
    its message to the DLQ as `internal_error`."""
    out = [(d.message, dead_letter(topics[1], d, limit), d.reason.value) for d in batch.dead]
    priced, hops = iter(answers), (batch.consumed_ms, time.time_ns() // 1_000_000)
    for message, event in batch.changes:
        answer = next(priced) if event.listing is not None else event.refused
        try:
            out += _records(message, event, answer, topics, limit, hops)
        except Exception as exc:
            letter = DeadLetter(message, Reason.INTERNAL_ERROR, repr(exc))
            out.append((message, dead_letter(topics[1], letter, limit), letter.reason.value))
    # tombstones last (after their key's deletion still): the sink then writes a batch's
    # upserts and deletes as two JDBC batches, not one transaction per alternating record
    return sorted(out, key=lambda item: item[2] == "tombstone")


def _records(
    message: Message,
    event: Event,
    answer: Any,
    topics: tuple[str, str],
    limit: int,
    hops: tuple[int, int],
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
    value = prediction_value(event, answer, hops)
    if not isinstance(answer, Refusal):
        return [(message, Record(predictions, key, value), "prediction")]
    letter = dead_letter(dlq, DeadLetter(message, answer.code, answer.reason), limit)
    return [(message, Record(predictions, key, value), "refused"), (message, letter, answer.code)]
