"""The whole product on the real stack: a listing written to Postgres gets its price.

Postgres → Debezium → Kafka → transformer → BentoML → Kafka → JDBC sink → Postgres.
"""

from __future__ import annotations

import statistics
import uuid

import psycopg
import pytest
from confluent_kafka import Producer

from config.settings import StackSettings
from tests.support import (
    FIELDS,
    FIESTA,
    end_offsets,
    generated_listings,
    insert_listing,
    prediction,
    read_until,
    served_prediction,
    wait_for,
)


def test_insert_gets_the_served_price_within_10_seconds(
    stack_ready: StackSettings, db: psycopg.Connection, cleanup: list[int]
) -> None:
    car_id = insert_listing(db, FIESTA)
    cleanup.append(car_id)

    row = wait_for(lambda: prediction(db, car_id), timeout=10, interval=0.2)

    served = served_prediction(stack_ready, FIESTA)
    assert row["model_version"] == served["model_version"]
    assert row["predicted_price"] == pytest.approx(served["predicted_price"], abs=0.01)
    assert row["price_low"] <= row["predicted_price"] <= row["price_high"]
    assert row["written_at"] >= row["source_committed_at"]


def test_update_changes_the_prediction_and_delete_removes_it(
    stack_ready: StackSettings, db: psycopg.Connection
) -> None:
    car_id = insert_listing(db, FIESTA)
    first = wait_for(lambda: prediction(db, car_id), timeout=10, interval=0.2)

    db.execute("UPDATE tbl_car_price SET mileage = 150000 WHERE id = %s", (car_id,))
    changed = wait_for(
        lambda: (
            (p := prediction(db, car_id)) and p["predicted_price"] != first["predicted_price"] and p
        ),
        timeout=10,
        interval=0.2,
    )
    assert changed["predicted_price"] < first["predicted_price"], "more miles, lower price"
    served = served_prediction(stack_ready, dict(FIESTA, mileage=150000))
    assert changed["predicted_price"] == pytest.approx(served["predicted_price"], abs=0.01)

    db.execute("DELETE FROM tbl_car_price WHERE id = %s", (car_id,))
    wait_for(lambda: prediction(db, car_id) is None, timeout=10, interval=0.2)


def test_2000_listings_in_one_transaction_get_exactly_2000_predictions(
    stack_ready: StackSettings, db: psycopg.Connection, cleanup: list[int]
) -> None:
    listings = generated_listings(2000)
    with db.transaction(), db.cursor() as cursor:
        columns = ", ".join(FIELDS)
        cursor.executemany(
            f"INSERT INTO tbl_car_price ({columns}) VALUES "
            f"({', '.join(f'%({field})s' for field in FIELDS)}) RETURNING id",
            listings,
            returning=True,
        )
        ids = []
        while True:
            ids.append(cursor.fetchone()[0])
            if not cursor.nextset():
                break
    cleanup.extend(ids)
    assert len(set(ids)) == 2000

    def arrived() -> int:
        return db.execute(
            "SELECT count(*) FROM tbl_price_prediction WHERE car_id = ANY(%s)", (ids,)
        ).fetchone()[0]

    wait_for(lambda: arrived() == 2000, timeout=120, interval=1)
    rows = db.execute(
        "SELECT car_id, extract(epoch FROM written_at - source_committed_at) "
        "FROM tbl_price_prediction WHERE car_id = ANY(%s)",
        (ids,),
    ).fetchall()
    assert sorted(car_id for car_id, _ in rows) == sorted(ids), "each listing its row (the key)"
    latencies = [float(seconds) for _, seconds in rows]
    print(
        f"\ninsert->prediction latency over 2,000 listings: "
        f"p50 {statistics.median(latencies):.2f}s, max {max(latencies):.2f}s"
    )


def test_garbage_on_the_cdc_topic_goes_to_the_dlq_and_the_pipeline_keeps_flowing(
    stack_ready: StackSettings, db: psycopg.Connection, cleanup: list[int]
) -> None:
    kafka = stack_ready.kafka
    dlq_start = end_offsets(stack_ready, kafka.dlq_topic)
    marker = f"garbage-{uuid.uuid4().hex}".encode()
    producer = Producer(stack_ready.kafka_admin())
    producer.produce(kafka.cdc_topic, key=b'{"id": -42}', value=b"{not json " + marker)
    assert producer.flush(10) == 0

    dead = read_until(
        stack_ready,
        dlq_start,
        lambda seen: any(marker in (m.value() or b"") for m in seen),
        timeout=30,
    )
    letter = next(m for m in dead if marker in (m.value() or b""))
    headers = {key: value.decode() for key, value in letter.headers() or []}
    assert headers["dlq.reason"] == "invalid_json"
    assert headers["dlq.source.topic"] == kafka.cdc_topic
    assert headers["dlq.error"], "the reason is spelled out"

    car_id = insert_listing(db, dict(FIESTA, model="Focus"))
    cleanup.append(car_id)
    wait_for(lambda: prediction(db, car_id), timeout=10, interval=0.2)


def test_the_view_gives_a_verdict_on_the_asking_price(
    stack_ready: StackSettings, db: psycopg.Connection, cleanup: list[int]
) -> None:
    cheap = insert_listing(db, dict(FIESTA, price=500))
    dear = insert_listing(db, dict(FIESTA, price=90000))
    cleanup.extend([cheap, dear])
    wait_for(lambda: prediction(db, cheap) and prediction(db, dear), timeout=10, interval=0.2)
    verdicts = dict(
        db.execute(
            "SELECT id, verdict FROM v_car_price_recommendation WHERE id = ANY(%s)",
            ([cheap, dear],),
        ).fetchall()
    )
    assert verdicts == {cheap: "below range", dear: "above range"}
