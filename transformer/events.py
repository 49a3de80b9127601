"""Turn raw Debezium change events for `tbl_car_price` into typed events.

Parsing is pure (bytes in, dataclass or `InvalidEvent` out) so that every way an
event can be malformed is decided in one place and ends up in the DLQ with a
stable reason, instead of crashing the loop or blocking a partition.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

# DLQ reasons decided here (predictor-side reasons live in dlq.py).
REASON_INVALID_JSON = "invalid_json"
REASON_INVALID_KEY = "invalid_key"
REASON_INVALID_ENVELOPE = "invalid_envelope"
REASON_UNSUPPORTED_OP = "unsupported_op"
REASON_INVALID_LISTING = "invalid_listing"

UPSERT_OPS = frozenset({"c", "r", "u"})  # create, snapshot read, update
DELETE_OP = "d"


class InvalidEvent(ValueError):
    """The message can never be turned into a prediction; `reason` is the DLQ label."""

    def __init__(self, reason: str, detail: str, car_id: int | None = None) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail
        self.car_id = car_id


@dataclass(frozen=True, slots=True)
class Listing:
    """The model inputs of one row, exactly the fields of the BentoML contract."""

    model: str
    year: int
    transmission: str
    mileage: int
    fuel_type: str
    tax: int | None
    mpg: float | None
    engine_size: float

    def as_request(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "year": self.year,
            "transmission": self.transmission,
            "mileage": self.mileage,
            "fuel_type": self.fuel_type,
            "tax": self.tax,
            "mpg": self.mpg,
            "engine_size": self.engine_size,
        }


@dataclass(frozen=True, slots=True)
class ListingUpserted:
    """c/r/u: the row exists with these values and needs a (new) prediction."""

    car_id: int
    listing: Listing
    op: Literal["c", "r", "u"]
    source_ts_ms: int | None


@dataclass(frozen=True, slots=True)
class ListingDeleted:
    """d: the row is gone, its prediction must go too."""

    car_id: int
    source_ts_ms: int | None


@dataclass(frozen=True, slots=True)
class ListingTombstone:
    """Kafka tombstone (value null) Debezium sends after a delete, for log compaction."""

    car_id: int


ChangeEvent: TypeAlias = ListingUpserted | ListingDeleted | ListingTombstone


def parse_change_event(key: bytes | None, value: bytes | None) -> ChangeEvent:
    """Decode one CDC message; raises InvalidEvent with a DLQ reason when it can't."""
    key_id = _parse_key(key)
    if value is None:
        if key_id is None:
            raise InvalidEvent(REASON_INVALID_KEY, "tombstone without a usable key {'id': <int>}")
        return ListingTombstone(car_id=key_id)

    envelope = _unwrap(_load_json(value, "value"))
    if envelope is None:  # JsonConverter with schemas: {"schema": null, "payload": null}
        if key_id is None:
            raise InvalidEvent(REASON_INVALID_KEY, "tombstone without a usable key {'id': <int>}")
        return ListingTombstone(car_id=key_id)
    if not isinstance(envelope, dict):
        raise InvalidEvent(
            REASON_INVALID_ENVELOPE, f"value is a JSON {_kind(envelope)}, not an object"
        )

    op = envelope.get("op")
    if not isinstance(op, str):
        raise InvalidEvent(
            REASON_INVALID_ENVELOPE, "missing 'op' (not a Debezium envelope)", key_id
        )
    source_ts_ms = _source_ts_ms(envelope)

    if op in UPSERT_OPS:
        after = envelope.get("after")
        if not isinstance(after, dict):
            raise InvalidEvent(
                REASON_INVALID_ENVELOPE, f"op={op!r} without an 'after' object", key_id
            )
        car_id = key_id if key_id is not None else _row_id(after)
        if car_id is None:
            raise InvalidEvent(REASON_INVALID_KEY, "no listing id in key or 'after.id'")
        return ListingUpserted(
            car_id=car_id,
            listing=parse_listing(after, car_id),
            op=op,
            source_ts_ms=source_ts_ms,  # type: ignore[arg-type]
        )

    if op == DELETE_OP:
        before = envelope.get("before")
        car_id = key_id
        if car_id is None and isinstance(before, dict):
            car_id = _row_id(before)
        if car_id is None:
            raise InvalidEvent(
                REASON_INVALID_KEY, "delete without a listing id in key or 'before.id'"
            )
        return ListingDeleted(car_id=car_id, source_ts_ms=source_ts_ms)

    # 't' (truncate) and 'm' (logical message) have no per-row key we could act on.
    raise InvalidEvent(REASON_UNSUPPORTED_OP, f"unsupported op {op!r}", key_id)


def parse_listing(row: dict[str, Any], car_id: int | None = None) -> Listing:
    """Validate the model inputs of a row; the model never sees half-valid data."""
    return Listing(
        model=_required_str(row, "model", car_id),
        year=_int(row, "year", car_id, nullable=False),  # type: ignore[arg-type]
        transmission=_required_str(row, "transmission", car_id),
        mileage=_int(row, "mileage", car_id, nullable=False),  # type: ignore[arg-type]
        fuel_type=_required_str(row, "fuel_type", car_id),
        tax=_int(row, "tax", car_id, nullable=True),
        mpg=_float(row, "mpg", car_id, nullable=True),
        engine_size=_float(row, "engine_size", car_id, nullable=False),  # type: ignore[arg-type]
    )


# --- helpers ------------------------------------------------------------------


def _load_json(raw: bytes, what: str) -> Any:
    try:
        return json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidEvent(REASON_INVALID_JSON, f"{what} is not JSON: {exc!s:.200}") from None


def _unwrap(document: Any) -> Any:
    """Strip the JsonConverter `schemas.enable=true` wrapper if present."""
    if isinstance(document, dict) and "payload" in document and "schema" in document:
        return document["payload"]
    return document


def _parse_key(key: bytes | None) -> int | None:
    """Listing id from `{"id": 42}` (or its schema+payload form); None if absent/unusable.

    A bad key is only fatal when the value can't supply the id either, so this
    returns None instead of raising and lets the caller decide.
    """
    if key is None:
        return None
    try:
        document = _unwrap(json.loads(key))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return None
    if isinstance(document, dict):
        return _row_id(document)
    return None


def _row_id(row: dict[str, Any]) -> int | None:
    value = row.get("id")
    return value if _is_int(value) else None


def _source_ts_ms(envelope: dict[str, Any]) -> int | None:
    source = envelope.get("source")
    if isinstance(source, dict) and _is_int(source.get("ts_ms")):
        return source["ts_ms"]
    return None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _kind(value: Any) -> str:
    return {list: "array", str: "string", bool: "boolean", int: "number", float: "number"}.get(
        type(value), type(value).__name__
    )


def _bad(field: str, problem: str, car_id: int | None) -> InvalidEvent:
    return InvalidEvent(REASON_INVALID_LISTING, f"field {field!r} {problem}", car_id)


def _required_str(row: dict[str, Any], field: str, car_id: int | None) -> str:
    value = row.get(field)
    if not isinstance(value, str) or not value.strip():
        raise _bad(field, f"must be a non-empty string, got {value!r}", car_id)
    return value


def _int(row: dict[str, Any], field: str, car_id: int | None, *, nullable: bool) -> int | None:
    value = row.get(field)
    if value is None and nullable:
        return None
    if _is_int(value):
        return value
    # Debezium may render an int column as 2017.0 only if misconfigured; accept exact ones.
    if isinstance(value, float) and value.is_integer():
        return int(value)
    raise _bad(field, f"must be an integer{' or null' if nullable else ''}, got {value!r}", car_id)


def _float(row: dict[str, Any], field: str, car_id: int | None, *, nullable: bool) -> float | None:
    value = row.get(field)
    if value is None and nullable:
        return None
    if (_is_int(value) or isinstance(value, float)) and math.isfinite(value):
        return float(value)
    raise _bad(
        field, f"must be a finite number{' or null' if nullable else ''}, got {value!r}", car_id
    )
