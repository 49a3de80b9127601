"""Test doubles for the transformer unit tests: Kafka messages, clients, a clock.

They implement only what the transformer calls, with the same call signatures as
confluent-kafka, so pure logic can be exercised without a broker.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from confluent_kafka import TopicPartition

CDC_TOPIC = "car_database.public.tbl_car_price"
SOURCE_TS_MS = 1_730_000_000_000

ROW: dict[str, Any] = {
    "id": 42,
    "model": " Fiesta",
    "year": 2017,
    "price": 12000,
    "transmission": "Manual",
    "mileage": 15944,
    "fuel_type": "Petrol",
    "tax": 150,
    "mpg": 57.7,
    "engine_size": 1.0,
    "created_at": "2024-10-27T03:33:20.123456Z",
    "updated_at": "2024-10-27T03:33:20.123456Z",
}


def row(car_id: int = 42, **changes: Any) -> dict[str, Any]:
    return {**ROW, "id": car_id, **changes}


def key_bytes(car_id: int, *, wrapped: bool = False) -> bytes:
    payload = {"id": car_id}
    if wrapped:
        schema = {
            "type": "struct",
            "name": "car_database.public.tbl_car_price.Key",
            "optional": False,
            "fields": [{"field": "id", "type": "int64", "optional": False}],
        }
        return json.dumps({"schema": schema, "payload": payload}).encode()
    return json.dumps(payload).encode()


def envelope(
    op: str,
    *,
    after: dict[str, Any] | None = None,
    before: dict[str, Any] | None = None,
    ts_ms: int | None = SOURCE_TS_MS,
    snapshot: str = "false",
) -> dict[str, Any]:
    source: dict[str, Any] = {
        "version": "3.6.0.Final",
        "connector": "postgresql",
        "name": "car_database",
        "snapshot": snapshot,
        "db": "car_database",
        "schema": "public",
        "table": "tbl_car_price",
        "txId": 771,
        "lsn": 26_000_000,
    }
    if ts_ms is not None:
        source["ts_ms"] = ts_ms
    return {
        "before": before,
        "after": after,
        "source": source,
        "op": op,
        "ts_ms": SOURCE_TS_MS + 15,
        "transaction": None,
    }


def value_bytes(document: dict[str, Any] | None, *, wrapped: bool = False) -> bytes:
    if wrapped:
        document = {
            "schema": {"type": "struct", "optional": False, "fields": []},
            "payload": document,
        }
    return json.dumps(document).encode()


class FakeMessage:
    """Duck-typed confluent_kafka.Message."""

    def __init__(
        self,
        value: bytes | None,
        key: bytes | None = None,
        *,
        topic: str = CDC_TOPIC,
        partition: int = 0,
        offset: int = 0,
        headers: list[tuple[str, bytes]] | None = None,
        timestamp: tuple[int, int] = (1, SOURCE_TS_MS + 20),
        error: Any = None,
    ) -> None:
        self._value = value
        self._key = key
        self._topic = topic
        self._partition = partition
        self._offset = offset
        self._headers = headers
        self._timestamp = timestamp
        self._error = error

    def topic(self) -> str:
        return self._topic

    def partition(self) -> int:
        return self._partition

    def offset(self) -> int:
        return self._offset

    def key(self) -> bytes | None:
        return self._key

    def value(self) -> bytes | None:
        return self._value

    def headers(self) -> list[tuple[str, bytes]] | None:
        return self._headers

    def timestamp(self) -> tuple[int, int]:
        return self._timestamp

    def error(self) -> Any:
        return self._error


def change(
    op: str, car_id: int, *, partition: int = 0, offset: int = 0, **row_changes: Any
) -> FakeMessage:
    """A Debezium message for op c/r/u (after=row) or d (before=id only, as with
    REPLICA IDENTITY DEFAULT)."""
    if op == "d":
        before = {k: None for k in ROW} | {"id": car_id}
        doc = envelope("d", before=before)
    else:
        doc = envelope(
            op, after=row(car_id, **row_changes), snapshot="true" if op == "r" else "false"
        )
    return FakeMessage(value_bytes(doc), key_bytes(car_id), partition=partition, offset=offset)


def tombstone(car_id: int, *, partition: int = 0, offset: int = 0) -> FakeMessage:
    return FakeMessage(None, key_bytes(car_id), partition=partition, offset=offset)


class FakeKafkaError:
    """Duck-typed confluent_kafka.KafkaError."""

    def __init__(
        self, text: str = "Local: Message timed out", *, fatal: bool = False, code: int = -192
    ) -> None:
        self._text = text
        self._fatal = fatal
        self._code = code

    def fatal(self) -> bool:
        return self._fatal

    def str(self) -> str:
        return self._text

    def code(self) -> int:
        return self._code

    def name(self) -> str:
        return "_MSG_TIMED_OUT"

    def retriable(self) -> bool:
        return not self._fatal


class FakeClock:
    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class FakeConsumer:
    """In-memory consumer: one assignment given on the first consume, pause aware.

    `before_consume(consumer, call_number)` lets a test inject rebalances.
    Every method call is appended to `calls` so tests can check ordering.
    """

    def __init__(
        self,
        messages: list[FakeMessage],
        clock: FakeClock,
        *,
        partitions: list[int] | None = None,
        topic: str = CDC_TOPIC,
        before_consume: Callable[[FakeConsumer, int], None] | None = None,
    ) -> None:
        self.queue = list(messages)
        self.clock = clock
        self.topic = topic
        self.partitions = (
            partitions
            if partitions is not None
            else sorted({m.partition() for m in messages} or {0})
        )
        self.callbacks: dict[str, Callable[..., None]] = {}
        self.assigned: set[tuple[str, int]] = set()
        self.paused: set[tuple[str, int]] = set()
        self.commits: list[list[tuple[str, int, int]]] = []
        self.calls: list[str] = []
        self.consume_count = 0
        self.before_consume = before_consume
        self.closed = False

    # -- rebalance helpers for tests
    def assign(self, partitions: list[int]) -> None:
        tps = [TopicPartition(self.topic, p) for p in partitions]
        self.assigned |= {(self.topic, p) for p in partitions}
        self.callbacks["on_assign"](self, tps)

    def revoke(self, partitions: list[int]) -> None:
        tps = [TopicPartition(self.topic, p) for p in partitions]
        self.callbacks["on_revoke"](self, tps)
        self.assigned -= {(self.topic, p) for p in partitions}
        self.paused -= {(self.topic, p) for p in partitions}

    # -- confluent_kafka.Consumer surface
    def subscribe(self, topics: list[str], **callbacks: Callable[..., None]) -> None:
        self.calls.append("subscribe")
        self.callbacks = callbacks

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[FakeMessage]:
        self.calls.append("consume")
        self.consume_count += 1
        if not self.assigned and self.consume_count == 1:
            self.assign(self.partitions)
        if self.before_consume is not None:
            self.before_consume(self, self.consume_count)
        out: list[FakeMessage] = []
        for message in list(self.queue):
            if len(out) >= num_messages:
                break
            tp = (message.topic(), message.partition())
            if tp in self.assigned and tp not in self.paused:
                out.append(message)
                self.queue.remove(message)
        if not out and timeout > 0:
            self.clock.advance(timeout)
        return out

    def commit(
        self, *, offsets: list[TopicPartition], asynchronous: bool = True
    ) -> list[TopicPartition]:
        assert asynchronous is False, "commits must be synchronous"
        self.calls.append("commit")
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])
        return offsets

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.calls.append("pause")
        self.paused |= {(tp.topic, tp.partition) for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.calls.append("resume")
        self.paused -= {(tp.topic, tp.partition) for tp in partitions}

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(t, p) for t, p in sorted(self.assigned)]

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, -1001) for tp in partitions]

    def get_watermark_offsets(self, partition: TopicPartition, **_: Any) -> tuple[int, int]:
        return (0, 0)

    def close(self) -> None:
        self.closed = True


class FakeProducer:
    """Acknowledges on flush/poll. `fail_first(n)` makes the next n deliveries fail."""

    def __init__(self, calls: list[str] | None = None) -> None:
        self.in_queue: list[tuple[dict[str, Any], Callable[[Any, Any], None]]] = []
        self.delivered: list[dict[str, Any]] = []
        self.produced: list[dict[str, Any]] = []
        self.calls = calls if calls is not None else []
        self._failures: list[Any] = []

    def fail_next(self, *errors: Any) -> None:
        self._failures.extend(errors)

    def produce(
        self,
        topic: str,
        *,
        key: bytes | None = None,
        value: bytes | None = None,
        headers: Any = None,
        on_delivery: Callable[[Any, Any], None],
    ) -> None:
        self.calls.append("produce")
        record = {"topic": topic, "key": key, "value": value, "headers": headers}
        self.produced.append(record)
        self.in_queue.append((record, on_delivery))

    def poll(self, timeout: float = 0) -> int:
        return self._serve()

    def flush(self, timeout: float = -1) -> int:
        self.calls.append("flush")
        self._serve()
        return 0

    def _serve(self) -> int:
        served = 0
        while self.in_queue:
            record, callback = self.in_queue.pop(0)
            error = self._failures.pop(0) if self._failures else None
            if error is None:
                self.delivered.append(record)
            callback(error, None)
            served += 1
        return served
