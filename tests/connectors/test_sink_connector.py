"""Debezium JDBC sink: records on car_price_predictions are upserted into tbl_price_prediction."""

from __future__ import annotations

import random
import time

import httpx
import psycopg
from confluent_kafka import Producer

from config.settings import StackSettings
from model.api_schema import PricePrediction as Prediction
from operations.connectors import ConnectorState, connector_state
from tests.connectors import contract
from tests.support import end_offsets, read_until, wait_for
from transformer.events import Event
from transformer.records import prediction_key, prediction_value


def _value(car_id: int, price: float, committed_ms: int) -> bytes:
    """The transformer's own record builder: the sink is tested on the real contract."""
    prediction = Prediction(
        predicted_price=price,
        price_low=price * 0.9,
        price_high=price * 1.1,
        model_version="car_price_xgb:test",
    )
    event = Event(car_id, "update", source_ts_ms=committed_ms)
    return prediction_value(event, prediction, hops=(committed_ms + 5, committed_ms + 9))


def connector_state_of(settings: StackSettings, name: str) -> ConnectorState:
    with httpx.Client(
        base_url=settings.connect.url, auth=settings.connect.rest_auth, timeout=5
    ) as client:
        state = connector_state(client, name)
    assert state is not None, f"connector {name} is not deployed"
    return state


def _rows(db: psycopg.Connection, car_id: int) -> list[tuple]:
    return db.execute(
        "SELECT predicted_price, model_version, source_committed_at, written_at, "
        "consumed_at, replied_at FROM tbl_price_prediction WHERE car_id = %s",
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
    price, version, committed_at, written_at, consumed_at, replied_at = rows[0]
    assert price == 10500.0 and version == "car_price_xgb:test"
    assert abs(committed_at.timestamp() * 1000 - committed_ms) < 1, "source time kept to the ms"
    hops = [round((t - committed_at).total_seconds() * 1000) for t in (consumed_at, replied_at)]
    assert hops == [5, 9], "the per-hop times (migration 0006) are written too"
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
    dlq_start = end_offsets(stack_ready, kafka.sink_dlq_topic)
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


def _state(db: psycopg.Connection, car_id: int) -> tuple | None:
    return db.execute(
        "SELECT status, predicted_price, reason, refused_field, source_lsn "
        "FROM tbl_price_prediction WHERE car_id = %s",
        (car_id,),
    ).fetchone()


def test_priced_refused_deleted_records_and_the_newest_state_wins(
    stack_ready: StackSettings, producer: Producer, db: psycopg.Connection
) -> None:
    """The issue-9 record contract through the real sink; stale records are skipped by the
    table's trigger without failing the connector. Everything goes to one partition, so a
    marker record landing proves the stale record before it was handled."""
    topic = stack_ready.kafka.predictions_topic
    car_id, marker = random.sample(range(10**12, 10**13), 2)

    def send(target: int, **fields: object) -> None:
        producer.produce(
            topic, key=contract.key(target), partition=0, value=contract.value(target, **fields)
        )
        producer.flush(10)

    def stale_then_marker(marker_lsn: int, **stale: object) -> None:
        send(car_id, **stale)
        send(marker, status="priced", lsn=marker_lsn, price=float(marker_lsn))
        wait_for(lambda: _state(db, marker) == ("priced", marker_lsn, None, None, marker_lsn))

    try:
        send(car_id, status="priced", lsn=200, price=10_000.0, committed_ms=int(time.time() * 1e3))
        wait_for(lambda: _state(db, car_id) == ("priced", 10_000.0, None, None, 200))

        send(
            car_id,
            status="refused",
            lsn=300,
            reason="year 2060 is after next year",
            refused_field="year",
        )
        wait_for(
            lambda: (
                _state(db, car_id) == ("refused", None, "year 2060 is after next year", "year", 300)
            )
        )

        stale_then_marker(1, status="priced", lsn=250, price=1.0)
        assert _state(db, car_id)[0] == "refused", "an older price never replaces a newer state"

        send(car_id, status="deleted", lsn=400)
        wait_for(lambda: _state(db, car_id) is None)
        stale_then_marker(2, status="priced", lsn=300, price=2.0)
        assert _state(db, car_id) is None, "a re-delivered older event stays deleted"

        state = connector_state_of(stack_ready, "car-price-predictions-sink")
        assert state.running, state.line()
    finally:
        db.execute("DELETE FROM tbl_price_prediction WHERE car_id = ANY(%s)", ([car_id, marker],))
        db.execute(
            "DELETE FROM tbl_price_prediction_deleted WHERE car_id = ANY(%s)", ([car_id, marker],)
        )
