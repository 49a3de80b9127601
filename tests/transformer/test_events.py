"""Parsing Debezium change events (transformer/events.py)."""

from __future__ import annotations

import json

import pytest

from tests.support import FIESTA_LISTING, key_of
from transformer.events import Event, Invalid, Reason, parse


def envelope(op: str, row: dict | None, **extra: object) -> bytes:
    document = {"op": op, "before": row if op == "d" else None, "after": row if op != "d" else None}
    return json.dumps({**document, "source": {"ts_ms": 1_700_000_000_123}, **extra}).encode()


@pytest.mark.parametrize(("op", "kind"), [("c", "create"), ("r", "read"), ("u", "update")])
def test_upserts_carry_exactly_the_models_fields(op: str, kind: str) -> None:
    row = {"id": 7, **FIESTA_LISTING, "price": 9995, "created_at": 1}

    event = parse(key_of(7), envelope(op, row))

    assert event == Event(7, kind, FIESTA_LISTING, 1_700_000_000_123)


def test_the_position_of_the_change_is_kept() -> None:
    value = json.dumps({"op": "u", "after": {"id": 7, **FIESTA_LISTING},
                        "source": {"ts_ms": 5, "lsn": 2**40}}).encode()  # fmt: skip

    assert parse(key_of(7), value) == Event(7, "update", FIESTA_LISTING, 5, 2**40)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ({"mileage": "lots"}, "mileage"),
        ({"year": 1850}, "year"),
        ({"year": 3000}, "year"),
        ({"mpg": float("nan")}, "mpg"),
        ({"model": "\t\n"}, "model"),
        ({"model": "x" * 101}, "model"),
        ({"engine_size": True}, "engine_size"),
        ({"model": None}, "model"),
    ],
)
def test_a_listing_the_models_schema_refuses_is_refused_with_its_field(
    row: dict, field: str
) -> None:
    event = parse(key_of(7), envelope("u", {"id": 7, **FIESTA_LISTING, **row}))

    assert (event.car_id, event.kind, event.listing) == (7, "update", None)
    assert event.refused is not None and event.refused.field == field
    assert event.refused.error.startswith(f"{field}: ") and len(event.refused.error) <= 300
    assert event.refused.reason == Reason.INVALID_LISTING


def test_delete_and_tombstone_ask_to_remove_the_prediction() -> None:
    assert parse(key_of(7), envelope("d", {"id": 7})) == Event(7, "delete", None, 1_700_000_000_123)
    assert parse(key_of(7), None) == Event(7, "tombstone")


def test_the_id_comes_from_the_row_when_there_is_no_key() -> None:
    assert parse(None, envelope("c", {"id": 9, **FIESTA_LISTING})).car_id == 9
    assert parse(None, envelope("d", {"id": 9})).car_id == 9


@pytest.mark.parametrize(
    ("key", "value", "reason"),
    [
        (key_of(1), b"{not json", Reason.INVALID_JSON),
        (key_of(1), b"\xff\xfe", Reason.INVALID_JSON),
        (None, None, Reason.INVALID_KEY),
        (b'{"id": "seven"}', None, Reason.INVALID_KEY),
        (None, envelope("c", {"model": "Ka"}), Reason.INVALID_KEY),
        (key_of(1), b"[1, 2]", Reason.INVALID_ENVELOPE),
        (key_of(1), b'{"after": {}}', Reason.INVALID_ENVELOPE),
        (key_of(1), envelope("c", None), Reason.INVALID_ENVELOPE),
        (key_of(1), envelope("t", None), Reason.UNSUPPORTED_OP),
        (key_of(1), envelope("x" * 10_000, None), Reason.UNSUPPORTED_OP),
        (key_of(1), b'{"op": "c", "after": {"id": ' + b"9" * 5000 + b"}}", Reason.INVALID_JSON),
        (key_of(1), b"\xc3\x28", Reason.INVALID_JSON),
        (key_of(1), b"[" * 100_000, Reason.INVALID_JSON),
        (key_of(1), b"null", Reason.INVALID_ENVELOPE),
        (key_of(1), b'{"op": 1}', Reason.INVALID_ENVELOPE),
        (key_of(1), b'{"op": "u", "after": [1]}', Reason.INVALID_ENVELOPE),
        (b'{"id": 99999999999999999999}', envelope("c", {"model": "Ka"}), Reason.INVALID_KEY),
        (b'{"id": true}', None, Reason.INVALID_KEY),
        (b"\xff", None, Reason.INVALID_JSON),
        (b"", None, Reason.INVALID_JSON),
    ],
)
def test_what_can_never_be_priced_says_why(
    key: bytes | None, value: bytes | None, reason: Reason
) -> None:
    with pytest.raises(Invalid) as raised:
        parse(key, value)

    assert raised.value.reason == reason and raised.value.error
