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

from model.api_schema import Listing

KINDS = {"c": "create", "r": "read", "u": "update", "d": "delete"}  # op -> metrics label
INT64 = range(-(2**63), 2**63)  # car_id and source_lsn are bigint columns


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
    """Raised as Invalid(reason, error): the message names no listing."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """Why a listing cannot be priced: the `reason` and `refused_field` columns."""

    reason: str
    field: str | None = None
    code: Reason = Reason.REJECTED_BY_MODEL  # the DLQ copy's reason


def refusal(loc: Sequence[Any], msg: str, code: Reason = Reason.REJECTED_BY_MODEL) -> Refusal:
    """A pydantic error (its `loc` below the listing, and `msg`) as a Refusal."""
    field = ".".join(map(str, loc))[:100] or None
    return Refusal((f"{field}: {msg}" if field else msg)[:300], field, code)


@dataclass(frozen=True, slots=True)
class Event:
    """One listing's change: `listing` to price, or `refused`, or neither (delete, tombstone)."""

    car_id: int
    kind: str  # create, read, update, delete or tombstone
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
        return Event(car_id, "tombstone")
    envelope = _load(value)
    if not isinstance(envelope, dict) or not isinstance(envelope.get("op"), str):
        raise Invalid(Reason.INVALID_ENVELOPE, "not a Debezium envelope (no 'op')")
    op = envelope["op"]
    if op not in KINDS:  # 't' (truncate) and 'm' (message) name no listing
        raise Invalid(Reason.UNSUPPORTED_OP, f"unsupported op {op!r:.50}")
    row = envelope.get("before" if op == "d" else "after")
    if not isinstance(row, dict) and op != "d":
        raise Invalid(Reason.INVALID_ENVELOPE, f"op {op!r} without an 'after' object")
    car_id = car_id if car_id is not None else _id(row)
    if car_id is None:
        raise Invalid(Reason.INVALID_KEY, "no listing id (int64) in the key or the row")
    source = envelope.get("source")
    ts_ms, lsn = _id(source, "ts_ms"), _id(source, "lsn")
    if op == "d":
        return Event(car_id, "delete", None, ts_ms, lsn)
    listing = {name: row.get(name) for name in Listing.model_fields}
    try:
        Listing.model_validate(listing)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        why = refusal(error["loc"], error["msg"], Reason.INVALID_LISTING)
        return Event(car_id, KINDS[op], None, ts_ms, lsn, why)
    return Event(car_id, KINDS[op], listing, ts_ms, lsn)


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
