"""Parsing Debezium change events for tbl_car_price (transformer/events.py)."""

from __future__ import annotations

import json

import pytest
from transformer_fakes import ROW, SOURCE_TS_MS, envelope, key_bytes, row, value_bytes

from transformer.events import (
    InvalidEvent,
    Listing,
    ListingDeleted,
    ListingTombstone,
    ListingUpserted,
    parse_change_event,
)

EXPECTED_LISTING = Listing(
    model=" Fiesta",
    year=2017,
    transmission="Manual",
    mileage=15944,
    fuel_type="Petrol",
    tax=150,
    mpg=57.7,
    engine_size=1.0,
)


@pytest.mark.parametrize("op", ["c", "r", "u"])
def test_create_snapshot_read_and_update_become_upserts(op: str) -> None:
    before = row() if op == "u" else None
    event = parse_change_event(key_bytes(42), value_bytes(envelope(op, after=row(), before=before)))

    assert event == ListingUpserted(
        car_id=42, listing=EXPECTED_LISTING, op=op, source_ts_ms=SOURCE_TS_MS
    )


def test_listing_request_has_exactly_the_contract_fields() -> None:
    event = parse_change_event(key_bytes(42), value_bytes(envelope("c", after=row())))

    assert isinstance(event, ListingUpserted)
    assert event.listing.as_request() == {
        "model": " Fiesta",
        "year": 2017,
        "transmission": "Manual",
        "mileage": 15944,
        "fuel_type": "Petrol",
        "tax": 150,
        "mpg": 57.7,
        "engine_size": 1.0,
    }


def test_delete_with_default_replica_identity_uses_the_key() -> None:
    before = {name: None for name in ROW} | {"id": 42}
    event = parse_change_event(key_bytes(42), value_bytes(envelope("d", before=before)))

    assert event == ListingDeleted(car_id=42, source_ts_ms=SOURCE_TS_MS)


def test_kafka_tombstone_after_delete() -> None:
    assert parse_change_event(key_bytes(42), None) == ListingTombstone(car_id=42)


def test_schema_payload_wrapped_key_and_value_are_unwrapped() -> None:
    event = parse_change_event(
        key_bytes(7, wrapped=True), value_bytes(envelope("u", after=row(7)), wrapped=True)
    )

    assert isinstance(event, ListingUpserted)
    assert (event.car_id, event.listing) == (7, EXPECTED_LISTING)


def test_wrapped_null_payload_is_a_tombstone() -> None:
    value = json.dumps({"schema": None, "payload": None}).encode()

    assert parse_change_event(key_bytes(9, wrapped=True), value) == ListingTombstone(car_id=9)


def test_nullable_columns_may_be_null_and_ints_are_accepted_for_doubles() -> None:
    event = parse_change_event(
        key_bytes(1), value_bytes(envelope("c", after=row(1, tax=None, mpg=None, engine_size=2)))
    )

    assert isinstance(event, ListingUpserted)
    assert (event.listing.tax, event.listing.mpg, event.listing.engine_size) == (None, None, 2.0)
    assert isinstance(event.listing.engine_size, float)


def test_missing_source_timestamp_is_allowed() -> None:
    event = parse_change_event(key_bytes(1), value_bytes(envelope("c", after=row(1), ts_ms=None)))

    assert isinstance(event, ListingUpserted)
    assert event.source_ts_ms is None


def test_id_falls_back_to_the_row_when_the_key_is_missing_or_unusable() -> None:
    from_after = parse_change_event(None, value_bytes(envelope("c", after=row(5))))
    from_before = parse_change_event(b"not json", value_bytes(envelope("d", before={"id": 6})))

    assert from_after.car_id == 5
    assert from_before == ListingDeleted(car_id=6, source_ts_ms=SOURCE_TS_MS)


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (key_bytes(1), b"{not json", "invalid_json"),
        (key_bytes(1), b"\xff\xfe\x00garbage", "invalid_json"),
        (key_bytes(1), b"[1, 2, 3]", "invalid_envelope"),
        (key_bytes(1), b'"just a string"', "invalid_envelope"),
        (key_bytes(1), json.dumps({"id": 1, "model": "Fiesta"}).encode(), "invalid_envelope"),
        (key_bytes(1), value_bytes(envelope("c", after=None)), "invalid_envelope"),
        (key_bytes(1), value_bytes(envelope("u", after=None, before=row(1))), "invalid_envelope"),
        (key_bytes(1), value_bytes(envelope("t")), "unsupported_op"),
        (key_bytes(1), value_bytes(envelope("m")), "unsupported_op"),
        (None, None, "invalid_key"),
        (b"garbage", None, "invalid_key"),
        (json.dumps({"id": "42"}).encode(), None, "invalid_key"),
        (
            None,
            value_bytes(envelope("c", after={k: v for k, v in ROW.items() if k != "id"})),
            "invalid_key",
        ),
        (None, value_bytes(envelope("d", before=None)), "invalid_key"),
    ],
    ids=[
        "not-json",
        "not-utf8",
        "json-array",
        "json-string",
        "row-not-envelope",
        "create-without-after",
        "update-without-after",
        "truncate",
        "logical-message",
        "tombstone-no-key",
        "tombstone-garbage-key",
        "tombstone-string-id",
        "no-id-anywhere",
        "delete-no-id-anywhere",
    ],
)
def test_garbage_is_rejected_with_a_dlq_reason(
    key: bytes | None, value: bytes | None, reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_change_event(key, value)

    assert caught.value.reason == reason
    assert caught.value.detail


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"model": None}, "model"),
        ({"model": "   "}, "model"),
        ({"year": "2017"}, "year"),
        ({"year": True}, "year"),
        ({"year": 2017.5}, "year"),
        ({"mileage": None}, "mileage"),
        ({"transmission": 3}, "transmission"),
        ({"fuel_type": ""}, "fuel_type"),
        ({"tax": "150"}, "tax"),
        ({"mpg": "57.7"}, "mpg"),
        ({"mpg": float("nan")}, "mpg"),
        ({"engine_size": None}, "engine_size"),
    ],
)
def test_invalid_listing_fields_name_the_field_and_keep_the_id(changes: dict, field: str) -> None:
    value = value_bytes(envelope("c", after=row(3, **changes)))

    with pytest.raises(InvalidEvent) as caught:
        parse_change_event(key_bytes(3), value)

    assert caught.value.reason == "invalid_listing"
    assert repr(field) in caught.value.detail
    assert caught.value.car_id == 3


def test_missing_field_is_an_invalid_listing() -> None:
    after = {k: v for k, v in row(4).items() if k != "fuel_type"}

    with pytest.raises(InvalidEvent) as caught:
        parse_change_event(key_bytes(4), value_bytes(envelope("r", after=after)))

    assert caught.value.reason == "invalid_listing"
    assert "'fuel_type'" in caught.value.detail


def test_integral_float_for_an_int_column_is_accepted() -> None:
    event = parse_change_event(key_bytes(1), value_bytes(envelope("c", after=row(1, year=2017.0))))

    assert isinstance(event, ListingUpserted)
    assert event.listing.year == 2017 and isinstance(event.listing.year, int)


def test_absurdly_nested_json_is_garbage_not_a_crash() -> None:
    with pytest.raises(InvalidEvent) as caught:
        parse_change_event(key_bytes(1), b"[" * 100_000 + b"]" * 100_000)

    assert caught.value.reason == "invalid_json"
