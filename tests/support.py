"""Helpers every test folder shares: one valid listing, one generator of many, the ways a
test writes listings and reads predictions, Kafka topics and the transformer's group.

Fixtures stay in the conftest.py files; whatever a test imports comes from here
(`from tests.support import ...`), never from another folder's conftest.
"""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
import time
from collections.abc import Callable

import httpx
import psycopg
import pytest
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, Message, TopicPartition
from confluent_kafka.admin import AdminClient

from config.settings import REPO_ROOT, StackSettings

# --- the stack ----------------------------------------------------------------------------


def _programs() -> tuple[str, ...]:
    conf = configparser.RawConfigParser()
    conf.read(REPO_ROOT / "stack" / "supervisord.conf")
    return tuple(s.removeprefix("program:") for s in conf.sections() if s.startswith("program:"))


#: every program of the stack, by name, as stack/supervisord.conf declares them
PROGRAMS = _programs()
assert {"postgres", "kafka", "connect", "bentoml", "transformer", "watchdog"} <= set(PROGRAMS)

# --- listings ---------------------------------------------------------------------------

#: the columns a listing is written with
FIELDS = (
    "model",
    "year",
    "price",
    "transmission",
    "mileage",
    "fuel_type",
    "tax",
    "mpg",
    "engine_size",
)
#: one valid listing (every rule of model/listing_rules.py holds)
FIESTA = dict(
    model="Fiesta",
    year=2018,
    price=9995,
    transmission="Manual",
    mileage=24000,
    fuel_type="Petrol",
    tax=145,
    mpg=65.7,
    engine_size=1.0,
)
#: the same listing as the price service sees it (it never sees the asking price)
FIESTA_LISTING = {name: value for name, value in FIESTA.items() if name != "price"}
MODELS = ("Fiesta", "Focus", "Kuga", "EcoSport", "Puma", "Mondeo", "Galaxy", "S-MAX")


def generated_listing(i: int) -> dict:
    """The i-th of a varied, valid series of listings (any i >= 0)."""
    return dict(
        model=MODELS[i % len(MODELS)],
        year=2010 + i % 11,
        price=5000 + (i * 37) % 15000,
        transmission=("Manual", "Automatic", "Semi-Auto")[i % 3],
        mileage=1000 + (i * 7919) % 120000,
        fuel_type=("Petrol", "Diesel", "Hybrid")[i % 3],
        tax=(0, 20, 145, 150)[i % 4],
        mpg=40.0 + i % 30,
        engine_size=(1.0, 1.5, 2.0)[i % 3],
    )


def generated_listings(count: int) -> list[dict]:
    return [generated_listing(i) for i in range(count)]


def insert_listing(db: psycopg.Connection, listing: dict) -> int:
    columns = ", ".join(FIELDS)
    values = ", ".join(f"%({field})s" for field in FIELDS)
    return db.execute(
        f"INSERT INTO tbl_car_price ({columns}) VALUES ({values}) RETURNING id", listing
    ).fetchone()[0]


def copy_listings(conn: psycopg.Connection, count: int) -> list[int]:
    """Insert `count` generated listings in one COPY (one transaction); returns their ids."""
    start = conn.execute("SELECT coalesce(max(id), 0) FROM tbl_car_price").fetchone()[0]
    with conn.transaction():
        with conn.cursor().copy(f"COPY tbl_car_price ({', '.join(FIELDS)}) FROM STDIN") as copy:
            for i in range(count):
                listing = generated_listing(i)
                copy.write_row(tuple(listing[field] for field in FIELDS))
        ids = [
            row[0]
            for row in conn.execute(
                "SELECT id FROM tbl_car_price WHERE id > %s ORDER BY id LIMIT %s", (start, count)
            )
        ]
    assert len(ids) == count
    return ids


def prediction(db: psycopg.Connection, car_id: int) -> dict | None:
    row = db.execute(
        "SELECT predicted_price, price_low, price_high, model_version, "
        "source_committed_at, written_at FROM tbl_price_prediction "
        "WHERE car_id = %s",
        (car_id,),
    ).fetchone()
    keys = (
        "predicted_price",
        "price_low",
        "price_high",
        "model_version",
        "source_committed_at",
        "written_at",
    )
    return dict(zip(keys, row)) if row else None


def served_prediction(settings: StackSettings, listing: dict) -> dict:
    body = {"listings": [{key: value for key, value in listing.items() if key != "price"}]}
    response = httpx.post(f"{settings.services.bentoml_url}/predict", json=body, timeout=10)
    response.raise_for_status()
    return response.json()[0]


# --- waiting ----------------------------------------------------------------------------


def wait_for(condition: Callable[[], object], timeout: float = 30, interval: float = 0.5) -> object:
    """Poll until condition() is truthy; returns its value or fails with the last value."""
    deadline = time.monotonic() + timeout
    value = condition()
    while not value:
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)
        value = condition()
    return value


# --- Kafka ------------------------------------------------------------------------------


def end_offsets(settings: StackSettings, topic: str) -> list[TopicPartition]:
    """The current end of every partition: where a reader of 'what happens next' starts."""
    consumer = Consumer({**settings.kafka_admin(), "group.id": "tests-offsets"})
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = []
        for partition in partitions:
            _, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
            ends.append(TopicPartition(topic, partition, high))
        return ends
    finally:
        consumer.close()


def _reader(settings: StackSettings, start: list[TopicPartition]) -> Consumer:
    """A consumer assigned to `start`: it joins no group and commits nothing."""
    consumer = Consumer(
        {
            **settings.kafka_admin(),
            "group.id": "tests-reader",
            "enable.auto.commit": False,
        }
    )
    consumer.assign(start)
    return consumer


def read_until(
    settings: StackSettings,
    start: list[TopicPartition],
    done: Callable[[list[Message]], bool],
    timeout: float = 30,
) -> list[Message]:
    """Read from `start` (no consumer group commits) until `done(messages)` or timeout."""
    consumer = _reader(settings, start)
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None or message.error():
                continue
            messages.append(message)
            if done(messages):
                return messages
    finally:
        consumer.close()
    return messages


def read_to_end(
    settings: StackSettings, start: list[TopicPartition], timeout: float = 60
) -> list[Message]:
    """Every record from `start` up to the end each partition has now."""
    ends = {tp.partition: tp.offset for tp in end_offsets(settings, start[0].topic)}
    consumer = _reader(settings, start)
    messages: list[Message] = []
    deadline = time.monotonic() + timeout
    at = {tp.partition: tp.offset for tp in start}  # position() is unset before a fetch
    try:
        while any(at[p] < ends[p] for p in at):
            if time.monotonic() > deadline:
                pytest.fail(f"{start[0].topic} not read to {ends} within {timeout}s")
            message = consumer.poll(0.5)
            if message is not None and not message.error():
                messages.append(message)
            for tp in consumer.position(consumer.assignment()):
                at[tp.partition] = max(at[tp.partition], tp.offset)
    finally:
        consumer.close()
    return messages


def json_or_none(raw: bytes | None) -> dict | None:
    return None if raw is None else json.loads(raw)


def committed_offsets(settings: StackSettings, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset per partition of `topic` (-1: nothing committed)."""
    admin = AdminClient(settings.kafka_admin())
    partitions = admin.list_topics(topic, timeout=10).topics[topic].partitions
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    answer = admin.list_consumer_group_offsets([request])[group].result(timeout=10)
    return {tp.partition: tp.offset for tp in answer.topic_partitions}


def behind(settings: StackSettings, group: str, topic: str) -> dict[int, int]:
    """Per partition, how many records of `topic` lie past `group`'s commit (its lag)."""
    committed = committed_offsets(settings, group, topic)
    return {
        tp.partition: tp.offset - max(committed.get(tp.partition, -1), 0)
        for tp in end_offsets(settings, topic)
    }


# --- CDC messages for the transformer's unit tests ----------------------------------------

CDC_TOPIC = "car_database.public.tbl_car_price"
#: builds a real `confluent_kafka.Message` (tests/transformer/conftest.py: `message`, `change`)
MessageOf = Callable[..., Message]


def key_of(car_id: int) -> bytes:
    """The CDC key of a listing, as Debezium writes it (schemas.enable=false)."""
    return json.dumps({"id": car_id}).encode()


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run promtool in monitoring/. Fails (never skips) without it: `make up` installs it
    (Debian's prometheus package, stack/bootstrap.sh)."""
    found = shutil.which("promtool")
    assert found, "promtool missing: make up installs it"
    return subprocess.run(
        [found, *args], cwd=REPO_ROOT / "monitoring", capture_output=True, text=True, timeout=120
    )
