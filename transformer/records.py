"""The records the transformer produces.

The JDBC sink (JsonConverter, `schemas.enable=true`) upserts on the key's `car_id`, deletes on a
tombstone and writes every field of the value schema (the columns exist: migration 0003). Each
record carries `status` and the change's `source_lsn`, so the table's trigger lets the newest
state win: 'priced' (prices, model version), 'refused' (`reason`, `refused_field`) or 'deleted'
(never stored: the trigger records the deletion so an older re-delivered event cannot bring the
prediction back; the tombstone follows). A dead letter keeps the original bytes (replayable
as-is) and says why in `dlq.*` headers after the original ones; one too large for the topic is
trimmed, with `dlq.original.size` and `dlq.original.sha256` of the value. Every record repeats its
schema: it is serialized once (KEY_HEAD, VALUE_HEAD) and each payload goes after it."""

import hashlib
import json
import time
from datetime import UTC, datetime
from typing import Any, NamedTuple

from confluent_kafka import Message

from model.api_schema import PricePrediction
from transformer.batch import Batch, DeadLetter
from transformer.events import Event, Reason, Refusal
from transformer.settings import Settings

MAX_ERROR_CHARS = 2000
HEADROOM = 64 * 1024  # our headers and the record batch overhead, under the topic limit
KEEP_KEY_BYTES = 1024  # a trimmed dead letter's key


def _dumps(document: Any) -> bytes:  # allow_nan=False: NaN is not JSON, poison for the sink
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


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
    " source_committed_at:int64? consumed_at:int64? replied_at:int64?",
)
for _hop in VALUE_SCHEMA["fields"][-3:]:  # per hop: the commit, the batch consumed, the reply
    _hop |= {"name": "org.apache.kafka.connect.data.Timestamp", "version": 1}
KEY_HEAD, VALUE_HEAD = (b'{"schema":%s,"payload":' % _dumps(s) for s in (KEY_SCHEMA, VALUE_SCHEMA))


class Record(NamedTuple):
    """One record to produce; value None is a tombstone."""

    topic: str
    key: bytes | None
    value: bytes | None
    headers: list[tuple[str, bytes]] | None = None


Out = tuple[Message, Record, str]  # (source message, record, metrics label)


def prediction_key(car_id: int) -> bytes:
    return KEY_HEAD + b'{"car_id":%d}}' % car_id


def prediction_value(
    event: Event, answer: PricePrediction | Refusal | None, hops: tuple[int, int] = (0, 0)
) -> bytes:
    """The record for `event`: priced, refused or (None) deleted; `hops` (ms) for the bench."""
    payload: dict[str, Any] = {"car_id": event.car_id, "status": "deleted"}
    if isinstance(answer, PricePrediction):
        payload |= {"status": "priced", **answer.model_dump()}
    elif isinstance(answer, Refusal):
        payload |= {"status": "refused", "reason": answer.reason, "refused_field": answer.field}
    payload |= {"source_committed_at": event.source_ts_ms, "source_lsn": event.source_lsn}
    payload |= dict(zip(("consumed_at", "replied_at"), hops, strict=True)) if any(hops) else {}
    return VALUE_HEAD + _dumps(payload) + b"}"


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


def for_batch(batch: Batch, answers: list[PricePrediction | Refusal], s: Settings) -> list[Out]:
    """Every record of the batch (`answers`: one per listing to price, in order). A refused
    listing's message also goes to the DLQ, and one whose records fail as internal_error."""
    out: list[Out] = []
    letters, priced = list(batch.dead), iter(answers)
    hops = (batch.consumed_ms, time.time_ns() // 1_000_000)
    for message, event in batch.changes:
        answer = next(priced) if event.listing is not None else event.refused
        try:
            out += _records(message, event, answer, s.predictions_topic, hops)
            if isinstance(answer, Refusal):
                letters.append(DeadLetter(message, answer.code, answer.reason))
        except Exception as exc:
            letters.append(DeadLetter(message, Reason.INTERNAL_ERROR, repr(exc)))
    limit = s.kafka_max_message_bytes
    # tombstones last (after their deletions): the sink writes them as one JDBC batch
    out.sort(key=lambda item: item[2] == "tombstone")
    return out + [(d.message, dead_letter(s.dlq_topic, d, limit), d.reason) for d in letters]


def _records(
    message: Message, event: Event, answer: Any, topic: str, hops: tuple[int, int]
) -> list[Out]:
    """A listing's prediction records: priced or refused, or its deletion and tombstone."""
    key = prediction_key(event.car_id)
    if event.kind not in ("delete", "tombstone"):
        label = "refused" if isinstance(answer, Refusal) else "prediction"
        return [(message, Record(topic, key, prediction_value(event, answer, hops)), label)]
    out = []
    if event.kind == "delete" or event.source_lsn is not None:  # a tombstone after its delete
        out.append((message, Record(topic, key, prediction_value(event, None)), "deleted"))
    if event.kind == "tombstone":  # the prediction's key, null value: the sink deletes it
        out.append((message, Record(topic, key, None), "tombstone"))
    return out
