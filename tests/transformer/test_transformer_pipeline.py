"""The consume -> predict -> produce -> commit loop with fake clients (transformer/pipeline.py).

No broker and no BentoML: FakeConsumer/FakeProducer record every call, a fake
clock makes waits instant. These pin the ordering rules (commit only after all
deliveries), the hold-and-retry behaviour and rebalance handling; the real
clients are exercised by the lead's stack tests.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException
from prometheus_client import CollectorRegistry
from transformer_fakes import (
    CDC_TOPIC,
    FakeClock,
    FakeConsumer,
    FakeKafkaError,
    FakeMessage,
    FakeProducer,
    change,
    key_bytes,
    tombstone,
)

from transformer.metrics import TransformerMetrics
from transformer.pipeline import FatalKafkaError, KafkaErrorMonitor, Pipeline
from transformer.predictor_client import Prediction, PredictorUnavailable, Rejection
from transformer.settings import Settings

PREDICTIONS = "car_price_predictions"
DLQ = "car_price_predictions.dlq"


class ScriptedPredictor:
    """Fails `failures` times with PredictorUnavailable, then predicts price = mileage."""

    def __init__(self, failures: int = 0, on_call: Any = None) -> None:
        self.failures = failures
        self.calls: list[list[int]] = []
        self.on_call = on_call

    def __call__(self, listings: Sequence[dict[str, Any]]) -> list[Prediction | Rejection]:
        self.calls.append([listing["mileage"] for listing in listings])
        if self.on_call is not None:
            self.on_call(len(self.calls))
        if len(self.calls) <= self.failures:
            raise PredictorUnavailable("connection refused")
        return [
            Prediction(float(listing["mileage"]), 0.0, 1.0, "car_price_xgb:v1")
            for listing in listings
        ]


class Harness:
    def __init__(
        self,
        messages: list[FakeMessage],
        *,
        predictor: ScriptedPredictor | None = None,
        partitions: list[int] | None = None,
        before_consume: Any = None,
        **settings: Any,
    ) -> None:
        self.clock = FakeClock()
        self.consumer = FakeConsumer(
            messages, self.clock, partitions=partitions, before_consume=before_consume
        )
        self.producer = FakeProducer(self.consumer.calls)
        self.predictor = predictor or ScriptedPredictor()
        self.metrics = TransformerMetrics(CollectorRegistry())
        self.stop = threading.Event()
        self.errors = KafkaErrorMonitor(self.clock)
        defaults: dict[str, Any] = {
            "batch_size": 100,
            "batch_max_wait_ms": 200,
            "retry_max_attempts": 3,
            "retry_backoff_initial_ms": 100,
            "retry_backoff_max_ms": 400,
            "shutdown_timeout_ms": 1000,
        }
        self.settings = Settings(_env_file=None, **(defaults | settings))
        self.pipeline = Pipeline(
            self.settings,
            consumer=self.consumer,
            producer=self.producer,
            predict=self.predictor,
            metrics=self.metrics,
            stop=self.stop,
            errors=self.errors,
            clock=self.clock,
            now=lambda: datetime(2024, 1, 1, tzinfo=UTC),
        )
        self.pipeline.subscribe()

    def metric(self, name: str, **labels: str) -> float | None:
        return self.metrics.registry.get_sample_value(name, labels)

    def delivered_ids(self, topic: str = PREDICTIONS) -> list[int]:
        return [
            json.loads(r["key"])["payload"]["car_id"]
            for r in self.producer.delivered
            if r["topic"] == topic
        ]


def test_batch_is_committed_after_all_deliveries_with_last_offset_plus_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    messages = [
        change("c", 1, partition=0, offset=10),
        change("u", 2, partition=1, offset=3),
        change("u", 1, partition=0, offset=11, mileage=99),
        change("d", 3, partition=1, offset=4),
        tombstone(3, partition=1, offset=5),
        FakeMessage(b"garbage", key_bytes(7), partition=0, offset=12),
    ]
    h = Harness(messages)

    with caplog.at_level(logging.INFO, logger="transformer.pipeline"):
        assert h.pipeline.run_once() is True

    assert h.consumer.commits == [[(CDC_TOPIC, 0, 13), (CDC_TOPIC, 1, 6)]]
    calls = [c for c in h.consumer.calls if c in {"produce", "flush", "commit"}]
    assert calls == ["produce"] * 4 + ["flush", "commit"]  # 2 predictions, 1 tombstone, 1 DLQ
    assert h.predictor.calls == [[15944, 99]]  # one call, newest version of listing 1
    assert sorted(h.delivered_ids()) == [1, 2, 3]
    assert [r["key"] for r in h.producer.delivered if r["topic"] == DLQ] == [key_bytes(7)]
    assert h.metric("transformer_predictions_produced_total") == 2
    assert h.metric("transformer_tombstones_produced_total") == 1
    assert h.metric("transformer_dlq_messages_total", reason="invalid_json") == 1
    consumed = {
        kind: h.metric("transformer_events_consumed_total", kind=kind)
        for kind in ("create", "read", "update", "delete", "tombstone", "invalid")
    }
    assert consumed == {
        "create": 1,
        "read": 0,
        "update": 2,
        "delete": 1,
        "tombstone": 1,
        "invalid": 1,
    }
    assert h.metric("transformer_batch_size_count") == 1
    batch_lines = [
        r for r in caplog.records if getattr(r, "structured_fields", {}).get("event") == "batch"
    ]
    assert len(batch_lines) == 1
    fields = batch_lines[0].structured_fields
    assert (
        fields["outcome"],
        fields["messages"],
        fields["predictions"],
        fields["tombstones"],
        fields["dlq"],
    ) == ("committed", 6, 2, 1, 1)


def test_failed_delivery_is_produced_again_before_the_commit() -> None:
    h = Harness([change("c", 1, offset=0), change("c", 2, offset=1)])
    h.producer.fail_next(FakeKafkaError("Local: Message timed out"))

    assert h.pipeline.run_once() is True

    assert len(h.producer.produced) == 3
    assert sorted(h.delivered_ids()) == [1, 2]
    assert h.consumer.commits == [[(CDC_TOPIC, 0, 2)]]
    assert h.consumer.calls.index("commit") > max(
        i for i, c in enumerate(h.consumer.calls) if c == "produce"
    )


def test_bentoml_down_holds_the_batch_pauses_and_retries_until_it_is_back() -> None:
    predictor = ScriptedPredictor(failures=7)
    h = Harness([change("c", 1, offset=0), change("c", 2, offset=1)], predictor=predictor)
    start = h.clock.now

    assert h.pipeline.run_once() is True

    # 3 rounds of 3 attempts: 7 failures, success on the 8th call, always the same batch
    assert len(predictor.calls) == 8
    assert all(call == [15944, 15944] for call in predictor.calls)
    assert h.consumer.commits == [[(CDC_TOPIC, 0, 2)]]
    assert h.consumer.calls.index("pause") < h.consumer.calls.index("produce")
    assert h.consumer.calls.index("resume") > h.consumer.calls.index("commit")
    assert h.consumer.paused == set()
    # waits: round1 0.1+0.2, cooldown 0.4, round2 0.1+0.2, cooldown 0.4, round3 0.1
    assert h.clock.now - start == pytest.approx(0.2 + 1.5, abs=1e-6)  # + the 200 ms batch window
    assert h.metric("transformer_bentoml_failures_total") == 7
    assert h.metric("transformer_bentoml_available") == 1


def test_shutdown_while_bentoml_is_down_abandons_without_commit() -> None:
    h = Harness([change("c", 1, offset=0)])
    h.predictor.failures = 10**6
    h.predictor.on_call = lambda n: h.stop.set() if n == 2 else None

    assert h.pipeline.run_once() is False

    assert h.consumer.commits == []
    assert h.producer.produced == []
    assert len(h.predictor.calls) == 2
    assert h.consumer.paused == set()
    assert h.metric("transformer_batches_total", outcome="abandoned") == 1


def test_stop_during_collection_still_finishes_the_batch() -> None:
    h = Harness([change("c", 1, offset=0), change("c", 2, offset=1)])

    def signal_during_second_poll(consumer: FakeConsumer, n: int) -> None:
        if n == 2:
            h.stop.set()  # SIGTERM arrives while we are still collecting
            consumer.queue.append(change("c", 3, offset=2, mileage=3))

    h.consumer.before_consume = signal_during_second_poll

    h.pipeline.run()  # returns once stop is set

    assert h.consumer.consume_count == 2
    assert h.predictor.calls == [[15944, 15944, 3]]
    assert h.consumer.commits == [[(CDC_TOPIC, 0, 3)]]


def test_revoked_partition_is_dropped_from_a_held_batch_and_not_committed() -> None:
    def revoke_p1_on_first_keepalive(consumer: FakeConsumer, n: int) -> None:
        if "pause" in consumer.calls and (CDC_TOPIC, 1) in consumer.assigned:
            consumer.revoke([1])

    h = Harness(
        [
            change("c", 1, partition=0, offset=0, mileage=1),
            change("c", 2, partition=1, offset=0, mileage=2),
        ],
        predictor=ScriptedPredictor(failures=1),
        before_consume=revoke_p1_on_first_keepalive,
    )

    assert h.pipeline.run_once() is True

    assert h.delivered_ids() == [1]
    assert h.consumer.commits == [[(CDC_TOPIC, 0, 1)]]
    assert h.predictor.calls[-1] == [1]


def test_partition_assigned_while_paused_is_carried_into_the_next_batch() -> None:
    def assign_p1_during_wait(consumer: FakeConsumer, n: int) -> None:
        if "pause" in consumer.calls and (CDC_TOPIC, 1) not in consumer.assigned:
            consumer.assign([1])

    h = Harness(
        [
            change("c", 1, partition=0, offset=0, mileage=1),
            change("c", 2, partition=1, offset=7, mileage=2),
        ],
        predictor=ScriptedPredictor(failures=1),
        partitions=[0],
        before_consume=assign_p1_during_wait,
    )

    assert h.pipeline.run_once() is True
    assert h.consumer.commits == [[(CDC_TOPIC, 0, 1)]]
    assert h.delivered_ids() == [1]

    assert h.pipeline.run_once() is True
    assert h.consumer.commits[-1] == [(CDC_TOPIC, 1, 8)]
    assert h.delivered_ids() == [1, 2]
    assert h.consumer.paused == set()


def test_commit_failure_is_logged_not_fatal() -> None:
    h = Harness([change("c", 1, offset=0)])

    def failing_commit(**_: Any) -> None:
        raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))

    h.consumer.commit = failing_commit  # type: ignore[method-assign]

    assert h.pipeline.run_once() is False
    assert h.delivered_ids() == [1]
    assert h.metric("transformer_batches_total", outcome="commit_failed") == 1


def test_fatal_client_error_stops_the_loop() -> None:
    h = Harness([])
    h.errors(FakeKafkaError("producer fenced", fatal=True))

    with pytest.raises(FatalKafkaError, match="fenced"):
        h.pipeline.run_once()


def test_consume_errors_are_skipped_and_fatal_ones_raise() -> None:
    eof = KafkaError(KafkaError._PARTITION_EOF)
    unknown = KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)
    h = Harness(
        [FakeMessage(None, error=eof), FakeMessage(None, error=unknown), change("c", 1, offset=0)]
    )

    assert h.pipeline.run_once() is True
    assert h.delivered_ids() == [1]

    h.consumer.queue.append(FakeMessage(None, error=FakeKafkaError("fatal", fatal=True)))
    h.pipeline.run_once()
    with pytest.raises(FatalKafkaError):
        h.pipeline.run_once()


def test_idle_loop_blocks_in_poll_instead_of_spinning() -> None:
    h = Harness([])
    start = h.clock.now

    for _ in range(3):
        assert h.pipeline.run_once() is False

    assert h.consumer.consume_count == 3
    assert h.clock.now - start == pytest.approx(3.0)  # one 1 s blocking poll each
    assert h.consumer.commits == []


def test_consumer_lag_gauge_from_watermark_and_position() -> None:
    h = Harness([])
    h.consumer.position = lambda tps: [type(tp)(tp.topic, tp.partition, 5) for tp in tps]  # type: ignore[method-assign]
    h.consumer.get_watermark_offsets = lambda tp, **_: (0, 12)  # type: ignore[method-assign]

    h.pipeline.run_once()

    assert h.metric("transformer_consumer_lag", topic=CDC_TOPIC, partition="0") == 7
