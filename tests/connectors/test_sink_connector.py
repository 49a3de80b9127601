"""Debezium JDBC sink: records on car_price_predictions are upserted into tbl_price_prediction."""

from __future__ import annotations

import random
import time

import httpx
import psycopg
from confluent_kafka import Producer

from model.api_schema import PricePrediction as Prediction
from stack.connectors import ConnectorState, connector_state
from stack.settings import StackSettings
from tests.conftest import end_offsets, read_until, wait_for
from transformer.records import prediction_key, prediction_value


def _value(car_id: int, price: float, committed_ms: int) -> bytes:
    """The transformer's own record builder: the sink is tested on the real contract."""
    prediction = Prediction(
        predicted_price=price,
        price_low=price * 0.9,
        price_high=price * 1.1,
        model_version="car_price_xgb:test",
    )
    return prediction_value(car_id, prediction, committed_ms)


def connector_state_of(settings: StackSettings, name: str) -> ConnectorState:
    with httpx.Client(base_url=settings.connect.url, timeout=5) as client:
        state = connector_state(client, name)
    assert state is not None, f"connector {name} is not deployed"
    return state


def _rows(db: psycopg.Connection, car_id: int) -> list[tuple]:
    return db.execute(
        "SELECT predicted_price, model_version, source_committed_at, written_at "
        "FROM tbl_price_prediction WHERE car_id = %s",
        (car_id,),
    ).fetchall()


def test_upsert_then_newer_value_then_tombstone(
    stack_ready: StackSettings, producer: Producer, db: psycopg.Connection
) -> None:
    topic = stack_ready.kafka.predictions_topic
    car_id = random.randint(10**12, 10**13)  # far from any real listing id
    committed_ms = int(time.time() * 1000)

    producer.produce(topic, key=prediction_key(car_id), value=_value(car_id, 10500.0, committed_ms))
    producer.flush(10)
    rows = wait_for(lambda: _rows(db, car_id), timeout=30)
    assert len(rows) == 1
    price, version, committed_at, written_at = rows[0]
    assert price == 10500.0 and version == "car_price_xgb:test"
    assert abs(committed_at.timestamp() * 1000 - committed_ms) < 1, "source time kept to the ms"
    assert written_at >= committed_at

    newer = _value(car_id, 9900.0, committed_ms + 1)
    producer.produce(topic, key=prediction_key(car_id), value=newer)
    producer.flush(10)
    wait_for(lambda: _rows(db, car_id) and _rows(db, car_id)[0][0] == 9900.0, timeout=30)
    rows = _rows(db, car_id)
    assert len(rows) == 1, "an upsert on the same key leaves one row"
    assert rows[0][3] > written_at, "written_at moves on update"

    producer.produce(topic, key=prediction_key(car_id), value=None)
    producer.flush(10)
    wait_for(lambda: _rows(db, car_id) == [], timeout=30)


def test_a_malformed_record_goes_to_the_dlq_and_the_sink_keeps_running(
    stack_ready: StackSettings, producer: Producer, db: psycopg.Connection
) -> None:
    kafka = stack_ready.kafka
    dlq_start = end_offsets(stack_ready, kafka.dlq_topic)
    marker = f"not-a-connect-record-{random.randint(0, 10**9)}".encode()
    producer.produce(kafka.predictions_topic, key=prediction_key(1), value=b"{" + marker)
    car_id = random.randint(10**12, 10**13)
    producer.produce(
        kafka.predictions_topic,
        key=prediction_key(car_id),
        value=_value(car_id, 7777.0, int(time.time() * 1000)),
    )
    producer.flush(10)

    wait_for(lambda: _rows(db, car_id), timeout=30)  # the record after it still lands
    dead = read_until(
        stack_ready, dlq_start, lambda seen: any(marker in (m.value() or b"") for m in seen)
    )
    letter = next(m for m in dead if marker in (m.value() or b""))
    headers = dict(letter.headers() or [])
    assert b"DataException" in headers["__connect.errors.exception.class.name"]
    assert headers["__connect.errors.topic"] == kafka.predictions_topic.encode()
    state = connector_state_of(stack_ready, "car-price-predictions-sink")
    assert state.running, state.line()
    producer.produce(kafka.predictions_topic, key=prediction_key(car_id), value=None)
