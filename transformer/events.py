"""Debezium change events of `tbl_car_price` (JsonConverter, `schemas.enable=false`):
key `{"id": 42}`, value `{"op", "before", "after", "source": {"ts_ms", "lsn"}}` or null
(the tombstone after a delete). `parse` says what a message asks for, or why it names no
listing (`Reason`: the DLQ header and metrics label). A listing breaking the model's own
request schema (model/api_schema.py) is `refused` here, without a call."""

import contextlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import orjson
from pydantic import ValidationError

from model.api_schema import Listing, PricePrediction

INT64 = range(-(2**63), 2**63)  # car_id and source_lsn are bigint columns


class EventKind(StrEnum):
    """What a CDC message asks for: the `kind` label of transformer_events_consumed_total."""

    CREATE = "create"
    READ = "read"  # the snapshot
    UPDATE = "update"
    DELETE = "delete"
    TOMBSTONE = "tombstone"
    INVALID = "invalid"  # names no listing: counted, never an Event's kind


OPS = {"c": EventKind.CREATE, "r": EventKind.READ, "u": EventKind.UPDATE, "d": EventKind.DELETE}


class Reason(StrEnum):
    """Why a message goes to the DLQ."""

    INVALID_JSON = "invalid_json"
    INVALID_KEY = "invalid_key"
    INVALID_ENVELOPE = "invalid_envelope"
    UNSUPPORTED_OP = "unsupported_op"
    INVALID_LISTING = "invalid_listing"  # refused by the transformer's own validation
    REJECTED_BY_MODEL = "rejected_by_model"
    INTERNAL_ERROR = "internal_error"  # a bug: the exception is in the dlq.error header


class Invalid(ValueError):
    """The message names no listing: `reason` for the DLQ, `error` says what is wrong."""

    def __init__(self, reason: Reason, error: str) -> None:
        super().__init__(reason, error)
        self.reason, self.error = reason, error


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a listing cannot be priced: `error` and `field` fill the record's `reason` and
    `refused_field` columns, `reason` is its DLQ copy's."""

    error: str
    field: str | None = None
    reason: Reason = Reason.REJECTED_BY_MODEL


Answer = PricePrediction | Refusal  # what a listing to price gets


def refusal(loc: Sequence[Any], msg: str, reason: Reason = Reason.REJECTED_BY_MODEL) -> Refusal:
    """A pydantic error (its `loc` below the listing, and `msg`) as a Refusal."""
    field = ".".join(map(str, loc))[:100] or None
    return Refusal((f"{field}: {msg}" if field else msg)[:300], field, reason)


@dataclass(frozen=True, slots=True)
class Event:
    """One listing's change: `listing` to price, or `refused`, or neither (delete, tombstone)."""

    car_id: int
    kind: EventKind
    listing: dict[str, Any] | None = None
    source_ts_ms: int | None = None  # the change's commit time
    source_lsn: int | None = None  # its WAL position: the newest state wins in the table
    refused: Refusal | None = None


def parse(key: bytes | None, value: bytes | None) -> Event:
    """Decode one CDC message; raises Invalid with the DLQ reason when it can't."""
    car_id = _id(_load(key)) if key is not None else None
    if value is None:
        if car_id is None:
            raise Invalid(Reason.INVALID_KEY, 'tombstone without a key {"id": <int>}')
        return Event(car_id, EventKind.TOMBSTONE)
    envelope = _load(value)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("op"), str):
        raise Invalid(Reason.INVALID_ENVELOPE, "not a Debezium envelope (no 'op')")
    op = envelope["op"]
    if op not in OPS:  # 't' (truncate) and 'm' (message) name no listing
        raise Invalid(Reason.UNSUPPORTED_OP, f"unsupported op {op!r:.50}")
    kind = OPS[op]
    row = envelope.get("before" if kind == EventKind.DELETE else "after")
    if not isinstance(row, dict) and kind != EventKind.DELETE:
        raise Invalid(Reason.INVALID_ENVELOPE, f"op {op!r} without an 'after' object")
    car_id = car_id if car_id is not None else _id(row)
    if car_id is None:
        raise Invalid(Reason.INVALID_KEY, "no listing id (int64) in the key or the row")
    source = envelope.get("source")
    ts_ms, lsn = _id(source, "ts_ms"), _id(source, "lsn")
    if kind == EventKind.DELETE:
        return Event(car_id, kind, None, ts_ms, lsn)
    listing = {name: row.get(name) for name in Listing.model_fields}
    try:
        Listing.model_validate(listing)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        why = refusal(error["loc"], error["msg"], Reason.INVALID_LISTING)
        return Event(car_id, kind, None, ts_ms, lsn, why)
    return Event(car_id, kind, listing, ts_ms, lsn)


def _load(raw: bytes) -> Any:
    with contextlib.suppress(orjson.JSONDecodeError):  # 3x faster; json has the last word
        return orjson.loads(raw)  # on what orjson refuses (NaN too) and words the error
    try:
        return json.loads(raw)
    except (ValueError, TypeError, RecursionError) as exc:  # bad UTF-8, huge ints too
        raise Invalid(Reason.INVALID_JSON, f"not JSON: {exc!s:.200}") from None


def _id(document: Any, field: str = "id") -> int | None:
    """An int64 field of a JSON object, else None."""
    value = document.get(field) if isinstance(document, dict) else None
    return value if type(value) is int and value in INT64 else None
