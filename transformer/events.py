"""Debezium change events of `tbl_car_price` (JsonConverter, `schemas.enable=false`):
key `{"id": 42}`, value `{"op", "before", "after", "source": {"ts_ms"}}` or null (the
tombstone after a delete). `parse` says what a message asks for, or why it can never be
priced (`Reason`: the DLQ header and metrics label). The listing's fields are the model's
(model/api_schema.py), and the model judges their values.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from model.api_schema import Listing

LISTING_FIELDS = tuple(Listing.model_fields)
KINDS = {"c": "create", "r": "read", "u": "update", "d": "delete"}  # op -> metrics label


class Reason(StrEnum):
    """Why a message goes to the DLQ."""

    INVALID_JSON = "invalid_json"
    INVALID_KEY = "invalid_key"
    INVALID_ENVELOPE = "invalid_envelope"
    UNSUPPORTED_OP = "unsupported_op"
    REJECTED_BY_MODEL = "rejected_by_model"


class Invalid(ValueError):
    def __init__(self, reason: Reason, error: str) -> None:
        super().__init__(error)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Event:
    """One listing's change: `listing` to price, or None when its prediction must go."""

    car_id: int
    kind: str  # create, read, update, delete or tombstone
    listing: dict[str, Any] | None = None
    source_ts_ms: int | None = None  # the change's commit time


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
        raise Invalid(Reason.UNSUPPORTED_OP, f"unsupported op {op!r}")
    row = envelope.get("before" if op == "d" else "after")
    if not isinstance(row, dict) and op != "d":
        raise Invalid(Reason.INVALID_ENVELOPE, f"op {op!r} without an 'after' object")
    car_id = car_id if car_id is not None else _id(row)
    if car_id is None:
        raise Invalid(Reason.INVALID_KEY, "no listing id in the key or the row")
    source = envelope.get("source")
    ts_ms = _id(source, "ts_ms")
    if op == "d":
        return Event(car_id, "delete", None, ts_ms)
    return Event(car_id, KINDS[op], {name: row.get(name) for name in LISTING_FIELDS}, ts_ms)


def _load(raw: bytes) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise Invalid(Reason.INVALID_JSON, f"not JSON: {exc!s:.200}") from None


def _id(document: Any, field: str = "id") -> int | None:
    """An integer field of a JSON object, else None."""
    value = document.get(field) if isinstance(document, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None
