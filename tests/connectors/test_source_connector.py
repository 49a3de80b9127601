"""Debezium source: changes to tbl_car_price arrive on car_database.public.tbl_car_price."""

from __future__ import annotations

import psycopg
from confluent_kafka import Message

from config.settings import StackSettings
from tests.support import end_offsets, json_or_none, read_until

LISTING = ("Focus", 2019, 13500, "Manual", 12000, "Petrol", 145, 58.9, 1.0)


def _events_for(messages: list[Message], car_id: int) -> list[tuple[str | None, dict | None]]:
    """(op, value) for the listing, in order; op None marks a tombstone."""
    events = []
    for message in messages:
        key = json_or_none(message.key())
        if key != {"id": car_id}:
            continue
        value = json_or_none(message.value())
        events.append((value["op"] if value else None, value))
    return events


def test_insert_update_delete_arrive_on_the_cdc_topic(
    stack_ready: StackSettings, db: psycopg.Connection
) -> None:
    topic = stack_ready.kafka.cdc_topic
    start = end_offsets(stack_ready, topic)

    car_id = db.execute(
        "INSERT INTO tbl_car_price (model, year, price, transmission, mileage, fuel_type, tax, "
        "mpg, engine_size) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        LISTING,
    ).fetchone()[0]
    db.execute("UPDATE tbl_car_price SET mileage = 15000 WHERE id = %s", (car_id,))
    db.execute("DELETE FROM tbl_car_price WHERE id = %s", (car_id,))

    messages = read_until(
        stack_ready, start, lambda seen: len(_events_for(seen, car_id)) >= 4, timeout=60
    )
    events = _events_for(messages, car_id)

    assert [op for op, _ in events] == ["c", "u", "d", None], events
    created, updated, deleted = (value for _, value in events[:3])
    assert created["after"]["model"] == "Focus"
    assert created["after"]["engine_size"] == 1.0, "decimals arrive as numbers"
    assert created["source"]["table"] == "tbl_car_price"
    assert created["source"]["db"] == stack_ready.postgres.pg_database
    assert updated["after"]["mileage"] == 15000
    assert deleted["after"] is None and deleted["before"]["id"] == car_id
