"""Debezium JDBC sink: records on car_price_predictions are upserted into tbl_price_prediction."""

from __future__ import annotations

import json
import random
import time

import psycopg
from confluent_kafka import Producer

from stack.settings import StackSettings
from tests.conftest import wait_for

KEY_SCHEMA = {"type": "struct", "name": "car_price_predictions.Key", "optional": False,
              "fields": [{"field": "car_id", "type": "int64", "optional": False}]}
VALUE_SCHEMA = {"type": "struct", "name": "car_price_predictions.Value", "optional": False,
                "fields": [
                    {"field": "car_id", "type": "int64", "optional": False},
                    {"field": "predicted_price", "type": "double", "optional": False},
                    {"field": "price_low", "type": "double", "optional": False},
                    {"field": "price_high", "type": "double", "optional": False},
                    {"field": "model_version", "type": "string", "optional": False},
                    {"field": "source_committed_at", "type": "int64", "optional": True,
                     "name": "org.apache.kafka.connect.data.Timestamp", "version": 1},
                ]}


def _key(car_id: int) -> bytes:
    return json.dumps({"schema": KEY_SCHEMA, "payload": {"car_id": car_id}}).encode()


def _value(car_id: int, price: float, committed_ms: int) -> bytes:
    payload = {"car_id": car_id, "predicted_price": price, "price_low": price * 0.9,
               "price_high": price * 1.1, "model_version": "car_price_xgb:test",
               "source_committed_at": committed_ms}
    return json.dumps({"schema": VALUE_SCHEMA, "payload": payload}).encode()


def _rows(db: psycopg.Connection, car_id: int) -> list[tuple]:
    return db.execute("SELECT predicted_price, model_version, source_committed_at, written_at "
                      "FROM tbl_price_prediction WHERE car_id = %s", (car_id,)).fetchall()


def test_upsert_then_newer_value_then_tombstone(
        stack_ready: StackSettings, producer: Producer, db: psycopg.Connection) -> None:
    topic = stack_ready.kafka.predictions_topic
    car_id = random.randint(10**12, 10**13)  # far from any real listing id
    committed_ms = int(time.time() * 1000)

    producer.produce(topic, key=_key(car_id), value=_value(car_id, 10500.0, committed_ms))
    producer.flush(10)
    rows = wait_for(lambda: _rows(db, car_id), timeout=30)
    assert len(rows) == 1
    price, version, committed_at, written_at = rows[0]
    assert price == 10500.0 and version == "car_price_xgb:test"
    assert abs(committed_at.timestamp() * 1000 - committed_ms) < 1, "source time kept to the ms"
    assert written_at >= committed_at

    producer.produce(topic, key=_key(car_id), value=_value(car_id, 9900.0, committed_ms + 1))
    producer.flush(10)
    wait_for(lambda: _rows(db, car_id) and _rows(db, car_id)[0][0] == 9900.0, timeout=30)
    rows = _rows(db, car_id)
    assert len(rows) == 1, "an upsert on the same key leaves one row"
    assert rows[0][3] > written_at, "written_at moves on update"

    producer.produce(topic, key=_key(car_id), value=None)
    producer.flush(10)
    wait_for(lambda: _rows(db, car_id) == [], timeout=30)
