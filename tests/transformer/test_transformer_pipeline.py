"""The consume -> predict -> produce -> commit loop (transformer/pipeline.py).

The guarantees are pinned here with a fake consumer and producer, because a test must
inject rebalances and delivery failures; the messages and errors are real
confluent_kafka objects. tests/e2e runs the same loop on the real stack.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition
from prometheus_client import CollectorRegistry

from model.api_schema import PricePrediction
from tests.support import CDC_TOPIC, FIESTA_LISTING, MessageOf, key_of
from transformer.bentoml_client import Unavailable
from transformer.metrics import Metrics
from transformer.pipeline import SLICE_S, Pipeline

Hook = Callable[["FakeConsumer"], None]


class FakeConsumer:
    """In-memory partitions with positions, pauses, seeks, commits and rebalances."""

    def __init__(self, log: dict[int, list[Message]], calls: list[str]) -> None:
        self.log, self.calls = log, calls
        self.assigned = set(log)
        self.position_of = dict.fromkeys(log, 0)
        self.committed_at: dict[int, int] = {}
        self.commits: list[dict[int, int]] = []
        self.paused: set[int] = set()
        self.errors: list[Message] = []
        self.hooks: list[Hook] = []  # run inside consume(), where rebalances happen
        self.consume_timeouts: list[float] = []

    def subscribe(self, topics: list[str], on_revoke: Any, on_lost: Any) -> None:
        self.on_revoke, self.on_lost = on_revoke, on_lost

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        self.calls.append("consume")
        self.consume_timeouts.append(timeout)
        for hook in list(self.hooks):
            hook(self)
        out, self.errors = self.errors, []
        for partition in sorted(self.assigned - self.paused):
            while len(out) < num_messages and self.position_of[partition] < len(
                self.log[partition]
            ):
                out.append(self.log[partition][self.position_of[partition]])
                self.position_of[partition] += 1
        if not out:
            time.sleep(min(timeout, 0.001))
        return out

    def revoke(self, partition: int, lost: bool = False) -> None:
        """A rebalance takes the partition (or, `lost`, the session timed out)."""
        (self.on_lost if lost else self.on_revoke)(self, [TopicPartition(CDC_TOPIC, partition)])
        self.assigned.discard(partition)
        self.paused.discard(partition)

    def assign(self, partition: int) -> None:
        self.assigned.add(partition)
        self.position_of[partition] = self.committed_at.get(partition, 0)

    def assignment(self) -> list[TopicPartition]:
        return [TopicPartition(CDC_TOPIC, p) for p in sorted(self.assigned)]

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.calls.append("pause")
        self.paused |= {tp.partition for tp in partitions}

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.paused -= {tp.partition for tp in partitions}

    def committed(self, partitions: list[TopicPartition], timeout: float) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.committed_at.get(tp.partition, -1001))
                for tp in partitions]  # fmt: skip

    def seek(self, tp: TopicPartition) -> None:
        if tp.partition not in self.assigned:
            raise KafkaException(KafkaError(KafkaError._STATE))
        self.calls.append("seek")
        self.position_of[tp.partition] = 0 if tp.offset == OFFSET_BEGINNING else tp.offset

    def commit(self, offsets: list[TopicPartition], asynchronous: bool) -> list[TopicPartition]:
        assert asynchronous is False
        self.calls.append("commit")
        self.commits.append({tp.partition: tp.offset for tp in offsets})
        self.committed_at.update(self.commits[-1])
        return offsets

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        return [TopicPartition(tp.topic, tp.partition, self.position_of[tp.partition])
                for tp in partitions]  # fmt: skip

    def get_watermark_offsets(self, tp: TopicPartition, cached: bool) -> tuple[int, int]:
        return 0, len(self.log[tp.partition])


class FakeProducer:
    """Acknowledges on flush(), failing the records it is told to fail; the first `stuck`
    flushes acknowledge nothing (the broker is slow)."""

    def __init__(self, calls: list[str]) -> None:
        self.calls, self.pending, self.acked = calls, [], []
        self.failures: list[KafkaError] = []
        self.stuck, self.timeouts = 0, []

    def produce(self, topic: str, value: Any, key: Any, headers: Any, on_delivery: Any) -> None:
        self.calls.append("produce")
        self.pending.append(((topic, key, value, headers), on_delivery))

    def flush(self, timeout: float) -> int:
        self.calls.append("flush")
        self.timeouts.append(timeout)
        if len(self.timeouts) <= self.stuck:
            return len(self.pending)
        for record, on_delivery in self.pending:
            error = self.failures.pop(0) if self.failures else None
            on_delivery(error, None)
            if error is None:
                self.acked.append(record)
        self.pending = []
        return 0


class Harness:
    def __init__(self, log: dict[int, list[Message]], failures: int = 0, **settings: Any):
        self.calls: list[str] = []
        self.consumer, self.producer = FakeConsumer(log, self.calls), FakeProducer(self.calls)
        self.failures, self.requests = failures, []
        self.metrics, self.stop = Metrics(CollectorRegistry()), threading.Event()
        self.on_predict: Callable[[int], None] = lambda n: None
        defaults = {
            "transformer_retry_backoff_initial_ms": 1,
            "transformer_retry_backoff_max_ms": 4,
        }
        from transformer.settings import Settings

        config = Settings(_env_file=None, **(defaults | settings))
        self.pipeline = Pipeline(config, self.predict, self.metrics, self.stop,
                                 self.consumer, self.producer)  # fmt: skip
        self.pipeline.subscribe()  # the callbacks the service registers

    def predict(self, listings: list[dict]) -> list[PricePrediction]:
        self.requests.append([item["mileage"] for item in listings])
        self.on_predict(len(self.requests))
        if len(self.requests) <= self.failures:
            raise Unavailable("connection refused")
        return [PricePrediction(predicted_price=item["mileage"], price_low=0, price_high=1e6,
                                model_version="xgb:v1") for item in listings]  # fmt: skip

    def until_committed(self, limit: int = 50) -> list[str | None]:
        outcomes = []
        while "committed" not in outcomes and len(outcomes) < limit:
            outcomes.append(self.pipeline.run_once())
        return outcomes

    def acked_ids(self, topic: str = "car_price_predictions") -> list[int]:
        import json

        return [json.loads(k)["car_id"] for t, k, _, _ in self.producer.acked if t == topic]

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)


def test_a_batch_is_committed_after_every_ack_with_the_last_offset_plus_one(
    change: MessageOf, message: MessageOf, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness({
        0: [change("c", 1, offset=0), change("u", 1, offset=1, mileage=99),
            message(b"garbage", key_of(7), offset=2)],
        1: [change("u", 2, partition=1, offset=0), change("d", 3, partition=1, offset=1),
            message(None, key_of(3), partition=1, offset=2)],
    })  # fmt: skip

    with caplog.at_level(logging.INFO, logger="transformer"):
        assert h.pipeline.run_once() == "committed"

    mileage = FIESTA_LISTING["mileage"]
    assert h.requests == [[99, mileage]], "one call, the newest version of listing 1"
    assert h.consumer.commits == [{0: 3, 1: 3}]
    assert h.calls[h.calls.index("produce") :] == ["produce"] * 5 + ["flush", "commit"]
    assert sorted(h.acked_ids()) == [1, 2, 3, 3], "3: its deletion, then its tombstone"
    assert [key for topic, key, *_ in h.producer.acked if topic.endswith("dlq")] == [key_of(7)]
    assert h.metric("transformer_predictions_produced_total") == 2
    assert h.metric("transformer_tombstones_produced_total") == 1
    assert h.metric("transformer_dlq_messages_total", reason="invalid_json") == 1
    kinds = ("create", "read", "update", "delete", "tombstone", "invalid")
    consumed = [h.metric("transformer_events_consumed_total", kind=kind) for kind in kinds]
    assert consumed == [1, 0, 2, 1, 1, 1]
    lines = [r for r in caplog.records if getattr(r, "event", None) == "batch"]
    assert [(r.outcome, r.messages, r.records) for r in lines] == [
        ("committed", 6, {"prediction": 2, "deleted": 1, "tombstone": 1, "invalid_json": 1})
    ]


def test_bentoml_down_holds_the_batch_with_a_backoff_rising_to_its_cap(
    change: MessageOf, caplog: pytest.LogCaptureFixture
) -> None:
    h = Harness({0: [change("c", 1, offset=0), change("c", 2, offset=1)]}, failures=4)
    h.on_predict = lambda n: n == 2 and available.append(h.metric("transformer_bentoml_available"))
    available: list[float | None] = []

    with caplog.at_level(logging.INFO, logger="transformer"):
        assert h.until_committed() == ["retried"] * 4 + ["committed"]

    retries = [r.retry_in_s for r in caplog.records if getattr(r, "outcome", "") == "retried"]
    assert retries == [0.001, 0.002, 0.004, 0.004]
    batch = [FIESTA_LISTING["mileage"]] * 2
    assert h.requests == [batch] * 5, "the same batch, read again after each wait"
    assert h.calls.index("produce") > h.calls.index("pause") > h.calls.index("seek")
    assert h.calls.count("consume") > 5, "polled while waiting: the consumer stays in its group"
    assert h.consumer.commits == [{0: 2}] and h.consumer.paused == set()
    assert available == [0] and h.metric("transformer_bentoml_available") == 1
    assert h.metric("transformer_bentoml_failures_total") == 4

    h.consumer.log[0].append(change("c", 3, offset=2))  # the next outage, after a success
    h.failures = len(h.requests) + 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="transformer"):
        assert h.until_committed() == ["retried", "committed"]
    again = [r.retry_in_s for r in caplog.records if getattr(r, "outcome", "") == "retried"]
    assert again == [0.001], "the wait starts over after a success"


def test_shutdown_while_bentoml_is_down_commits_and_produces_nothing(change: MessageOf) -> None:
    minute = {
        "transformer_retry_backoff_initial_ms": 60_000,
        "transformer_retry_backoff_max_ms": 60_000,
    }
    h = Harness({0: [change("c", 1, offset=0)]}, failures=10**6, **minute)
    threading.Timer(0.2, h.stop.set).start()

    started = time.monotonic()
    assert h.pipeline.run_once() == "abandoned"

    assert time.monotonic() - started < 5, "SIGTERM cuts the wait short"
    assert h.consumer.commits == [] and h.producer.acked == []
    assert h.metric("transformer_batches_total", outcome="abandoned") == 1


def test_stopping_waits_for_acknowledgements_no_longer_than_the_grace(change: MessageOf) -> None:
    h = Harness({0: [change("c", 1, offset=0)]}, transformer_shutdown_timeout_ms=2500)
    h.producer.stuck = 10**6
    h.stop.set()

    assert h.pipeline.run_once() == "abandoned"

    assert h.consumer.commits == [] and h.producer.acked == []
    assert h.producer.timeouts == [SLICE_S, 2.5], "one slice, then the grace once, no more"


def test_an_acknowledgement_within_the_grace_is_committed(change: MessageOf) -> None:
    h = Harness({0: [change("c", 1, offset=0)]}, transformer_shutdown_timeout_ms=2500)
    h.producer.stuck = 1  # the first slice passes without it
    h.stop.set()

    assert h.pipeline.run_once() == "committed"

    assert h.consumer.commits == [{0: 1}] and h.producer.timeouts[:2] == [SLICE_S, 2.5]


def test_a_failed_delivery_commits_nothing_and_the_batch_is_produced_again(
    change: MessageOf,
) -> None:
    h = Harness({0: [change("c", 1, offset=0), change("c", 2, offset=1)]})
    h.producer.failures = [KafkaError(KafkaError._MSG_TIMED_OUT)]

    assert h.until_committed() == ["retried", "committed"]

    assert h.calls.count("produce") == 4 and h.consumer.commits == [{0: 2}]
    assert h.calls.index("commit") > max(i for i, c in enumerate(h.calls) if c == "produce")
    assert h.acked_ids()[-2:] == [1, 2], "the whole batch again: a repeated upsert is harmless"


def test_a_partition_revoked_mid_batch_is_neither_produced_nor_committed(
    change: MessageOf,
) -> None:
    h = Harness({0: [change("c", 1, offset=0)], 1: [change("c", 2, partition=1, offset=0)]})
    h.on_predict = lambda n: h.consumer.revoke(1)

    assert h.pipeline.run_once() == "committed"

    assert h.acked_ids() == [1] and h.consumer.commits == [{0: 1}]


def test_a_partition_lost_and_assigned_again_mid_batch_is_read_again(change: MessageOf) -> None:
    h = Harness({0: [change("c", 1, offset=0)], 1: [change("c", 2, partition=1, offset=0)]})
    h.on_predict = lambda n: n == 1 and (h.consumer.revoke(1, lost=True), h.consumer.assign(1))

    assert h.pipeline.run_once() == "committed"
    assert h.acked_ids() == [1] and h.consumer.commits == [{0: 1}]

    assert h.pipeline.run_once() == "committed"
    assert h.acked_ids() == [1, 2] and h.consumer.commits[-1] == {1: 1}


def test_a_partition_assigned_during_a_wait_is_rewound_not_skipped(change: MessageOf) -> None:
    h = Harness({0: [change("c", 1, offset=0)], 1: [change("c", 2, partition=1, offset=0)]},
                failures=1)  # fmt: skip
    h.consumer.assigned = {0}

    def assign_p1_while_paused(consumer: FakeConsumer) -> None:
        if consumer.paused and 1 not in consumer.assigned:
            consumer.assign(1)

    h.consumer.hooks.append(assign_p1_while_paused)

    outcomes = h.until_committed()
    while h.consumer.committed_at.get(1) != 1 and len(outcomes) < 10:
        outcomes.append(h.pipeline.run_once())

    assert outcomes[0] == "retried" and sorted(h.acked_ids()) == [1, 2]
    assert h.consumer.committed_at == {0: 1, 1: 1}


def test_a_failed_commit_is_not_fatal(change: MessageOf) -> None:
    h = Harness({0: [change("c", 1, offset=0)]})

    def refuse(**_: Any) -> None:
        raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))

    h.consumer.commit = refuse  # type: ignore[method-assign]

    assert h.pipeline.run_once() == "commit_failed"
    assert h.acked_ids() == [1]
    assert h.metric("transformer_batches_total", outcome="commit_failed") == 1


def test_stop_during_collection_still_finishes_the_batch(change: MessageOf) -> None:
    h = Harness({0: [change("c", 1, offset=0)]})
    h.consumer.hooks.append(lambda consumer: h.stop.set())

    h.pipeline.run()

    assert h.consumer.commits == [{0: 1}] and h.acked_ids() == [1]


def test_consume_errors_are_skipped_and_a_fatal_one_stops_the_loop(
    change: MessageOf, message: MessageOf
) -> None:
    h = Harness({0: [change("c", 1, offset=0)]})
    h.consumer.errors = [
        Message(topic=CDC_TOPIC, error=KafkaError(KafkaError._PARTITION_EOF)),
        Message(topic=CDC_TOPIC, error=KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)),
    ]
    assert h.pipeline.run_once() == "committed"

    h.consumer.errors = [Message(error=KafkaError(KafkaError._FATAL, "fenced", fatal=True))]
    with pytest.raises(KafkaException, match="fenced"):
        h.pipeline.run_once()


def test_a_fatal_client_error_stops_the_loop() -> None:
    h = Harness({0: []})
    h.pipeline.on_error(KafkaError(KafkaError._TRANSPORT, "brokers down"))
    assert h.pipeline.run_once() is None

    fenced = KafkaError(KafkaError._FATAL, "producer fenced", fatal=True)
    h.consumer.hooks.append(lambda _: h.pipeline.on_error(fenced))  # error_cb, inside consume
    with pytest.raises(KafkaException, match="fenced"):
        h.pipeline.run_once()


def test_a_pause_left_from_before_a_rebalance_is_undone_before_the_next_batch(
    change: MessageOf,
) -> None:
    """librdkafka keeps a partition paused across revoke and re-assign: a rebalance during
    a paused wait must not leave the partition paused for good."""
    h = Harness({0: [change("c", 1, offset=0)]})
    h.consumer.paused = {0}

    assert h.pipeline.run_once() == "committed"

    assert h.metric("transformer_consumer_lag", topic=CDC_TOPIC, partition="0") == 0


def test_an_idle_loop_blocks_in_consume_and_reports_the_lag() -> None:
    h = Harness({0: []}, transformer_batch_max_wait_ms=250)

    assert h.pipeline.run_once() is None

    assert h.consumer.consume_timeouts == [0.25], "one consume, waiting the batch's max wait"

    assert h.metric("transformer_consumer_lag", topic=CDC_TOPIC, partition="0") == 0


def test_a_listing_whose_prediction_raises_is_an_internal_error_alone(
    change: MessageOf,
) -> None:
    h = Harness({0: [change("c", 1, offset=0), change("c", 2, offset=1, mileage=666)]})
    priced = h.predict

    def buggy(listings: list[dict]) -> list[PricePrediction]:
        if any(item["mileage"] == 666 for item in listings):
            raise ZeroDivisionError("a bug")
        return priced(listings)

    h.pipeline.predict = buggy

    assert h.pipeline.run_once() == "committed"

    assert h.consumer.commits == [{0: 2}]
    statuses = {
        json.loads(k)["car_id"]: json.loads(v)["status"]
        for t, k, v, _ in h.producer.acked
        if t == "car_price_predictions"
    }
    assert statuses == {1: "priced", 2: "refused"}
    [letter] = [headers for t, _, _, headers in h.producer.acked if t.endswith(".dlq")]
    assert (("dlq.reason", b"internal_error") in letter) and b"ZeroDivisionError" in dict(letter)[
        "dlq.error"
    ]
    assert h.metric("transformer_dlq_messages_total", reason="internal_error") == 1


def test_a_record_the_producer_refuses_becomes_a_trimmed_note_in_the_dlq(
    message: MessageOf, change: MessageOf
) -> None:
    h = Harness({0: [message(b"x" * 100, key_of(1), offset=0), change("c", 2, offset=1)]})
    produce = h.producer.produce

    def refuse_large(topic: str, value: Any, key: Any, headers: Any, on_delivery: Any) -> None:
        if value is not None and len(value) == 100:
            raise KafkaException(KafkaError(KafkaError.MSG_SIZE_TOO_LARGE))
        produce(topic, value, key, headers, on_delivery)

    h.producer.produce = refuse_large

    assert h.pipeline.run_once() == "committed"

    note = next(r for r in h.producer.acked if r[0].endswith(".dlq"))
    headers = dict(note[3])
    assert note[2] == b"" and headers["dlq.reason"] == b"internal_error"
    assert headers["dlq.trimmed"] == b"true" and headers["dlq.source.offset"] == b"0"
    assert b"MSG_SIZE_TOO_LARGE" in headers["dlq.error"] and headers["dlq.original.size"] == b"100"
    assert h.acked_ids() == [2]
