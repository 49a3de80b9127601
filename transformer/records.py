"""The records the transformer produces.

The JDBC sink (JsonConverter, `schemas.enable=true`) upserts on the key's `car_id`, deletes on a
tombstone and writes every field of the value schema (the columns exist: migration 0003). Each
record carries `status` and the change's `source_lsn`, so the table's trigger lets the newest
state win: 'priced' (prices, model version), 'refused' (`reason`, `refused_field`) or 'deleted'
(never stored: the trigger records the deletion so an older re-delivered event cannot bring the
prediction back; the tombstone follows). A dead letter keeps the original bytes (replayable
as-is) and says why in `dlq.*` headers after the original ones; one too large for the topic is
trimmed, with `dlq.original.size` and `dlq.original.sha256` of the value. A record is its payload
only: the sink's converters hold the schemas (KEY_SCHEMA, VALUE_SCHEMA) as `schema.content`
(KIP-1054, connectors/car-price-predictions-sink.json), so the sink parses no schema per record."""

import hashlib
import json
import time
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, NamedTuple

from confluent_kafka import Message

from model.api_schema import PricePrediction
from transformer.batch import Batch, DeadLetter
from transformer.events import Answer, Event, EventKind, Reason, Refusal
from transformer.settings import Settings

MAX_ERROR_CHARS = 2000
HEADROOM = 64 * 1024  # our headers and the record batch overhead, under the topic limit
KEEP_KEY_BYTES = 1024  # a trimmed dead letter's key


def _dumps(document: Any) -> bytes:  # allow_nan=False: NaN is not JSON, poison for the sink
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


KEY_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "car_price_predictions.Key",
    "optional": False,
    "fields": [{"field": "car_id", "type": "int64", "optional": False}],
}
TIMESTAMP = {"name": "org.apache.kafka.connect.data.Timestamp", "version": 1}  # epoch ms
VALUE_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "car_price_predictions.Value",
    "optional": False,
    "fields": [
        {"field": "car_id", "type": "int64", "optional": False},
        {"field": "status", "type": "string", "optional": False},
        {"field": "predicted_price", "type": "double", "optional": True},
        {"field": "price_low", "type": "double", "optional": True},
        {"field": "price_high", "type": "double", "optional": True},
        {"field": "model_version", "type": "string", "optional": True},
        {"field": "reason", "type": "string", "optional": True},
        {"field": "refused_field", "type": "string", "optional": True},
        {"field": "source_lsn", "type": "int64", "optional": True},
        # per hop: the commit, the batch consumed, the reply
        {"field": "source_committed_at", "type": "int64", "optional": True, **TIMESTAMP},
        {"field": "consumed_at", "type": "int64", "optional": True, **TIMESTAMP},
        {"field": "replied_at", "type": "int64", "optional": True, **TIMESTAMP},
    ],
}


class Record(NamedTuple):
    """One record to produce; value None is a tombstone."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


class RecordKind(StrEnum):
    """What a record on the predictions topic is: its metrics label."""

    PREDICTION = "prediction"
    REFUSED = "refused"
    DELETED = "deleted"  # the deletion's position, before its tombstone
    TOMBSTONE = "tombstone"


Label = RecordKind | Reason  # a dead letter is counted by its reason


class Outgoing(NamedTuple):
    """A record to produce, with the message it answers (whose partition must still be ours)
    and its metrics label."""

    message: Message
    record: Record
    label: Label


def prediction_key(car_id: int) -> bytes:
    return b'{"car_id":%d}' % car_id


def prediction_value(event: Event, answer: Answer | None, hops: tuple[int, int] = (0, 0)) -> bytes:
    """The record for `event`: priced, refused or (None) deleted; `hops` (ms) for the bench."""
    payload: dict[str, Any] = {"car_id": event.car_id, "status": "deleted"}
    if isinstance(answer, PricePrediction):
        payload |= {"status": "priced", **answer.model_dump()}
    elif isinstance(answer, Refusal):
        payload |= {"status": "refused", "reason": answer.error, "refused_field": answer.field}
    payload |= {"source_committed_at": event.source_ts_ms, "source_lsn": event.source_lsn}
    payload |= dict(zip(("consumed_at", "replied_at"), hops, strict=True)) if any(hops) else {}
    return _dumps(payload)


def dead_letter(topic: str, letter: DeadLetter, max_bytes: int) -> Record:
    """The message as it came, trimmed if over `max_bytes` (0: a note for a refused record)."""
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


def for_batch(batch: Batch, answers: list[Answer], s: Settings) -> list[Outgoing]:
    """Every record of the batch (`answers`: one per listing to price, in order). A refused
    listing's message also goes to the DLQ, and one whose records fail as internal_error."""
    out: list[Outgoing] = []
    letters, priced = list(batch.dead), iter(answers)
    hops = (batch.consumed_ms, time.time_ns() // 1_000_000)
    for message, event in batch.changes:
        answer = next(priced) if event.listing is not None else event.refused
        try:
            out += _records(message, event, answer, s.predictions_topic, hops)
            if isinstance(answer, Refusal):
                letters.append(DeadLetter(message, answer.reason, answer.error))
        except Exception as exc:
            letters.append(DeadLetter(message, Reason.INTERNAL_ERROR, repr(exc)))
    limit = s.kafka_max_message_bytes
    # tombstones last (after their deletions): the sink writes them as one JDBC batch
    out.sort(key=lambda item: item.label == RecordKind.TOMBSTONE)
    for letter in letters:
        out.append(Outgoing(letter.message, dead_letter(s.dlq_topic, letter, limit), letter.reason))
    return out


def _records(
    message: Message, event: Event, answer: Answer | None, topic: str, hops: tuple[int, int]
) -> list[Outgoing]:
    """A listing's prediction records: priced or refused, or its deletion and tombstone."""
    key = prediction_key(event.car_id)
    if event.kind not in (EventKind.DELETE, EventKind.TOMBSTONE):
        label = RecordKind.REFUSED if isinstance(answer, Refusal) else RecordKind.PREDICTION
        return [Outgoing(message, Record(topic, key, prediction_value(event, answer, hops)), label)]
    out: list[Outgoing] = []
    if event.kind == EventKind.DELETE or event.source_lsn is not None:  # or its delete's tombstone
        deletion = Record(topic, key, prediction_value(event, None))
        out.append(Outgoing(message, deletion, RecordKind.DELETED))
    if event.kind == EventKind.TOMBSTONE:  # the prediction's key, null value: the sink deletes it
        out.append(Outgoing(message, Record(topic, key, None), RecordKind.TOMBSTONE))
    return out
