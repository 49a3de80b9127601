"""The consume -> predict -> produce -> commit loop.

Delivery guarantee (at-least-once, made idempotent by the sink's upsert on car_id):
- offsets are committed synchronously, explicitly (last offset + 1 per partition),
  and only after every record of the batch (predictions, tombstones, DLQ records)
  has a successful delivery report from an acks=all idempotent producer;
- a crash anywhere before that commit means the batch is consumed again on restart.

While the model service is down the batch is *held*: no commit, partitions are
paused (which keeps the consumer in its group without fetching), the consumer is
polled while we wait so rebalances are served, and the same batch is retried in
rounds of bounded exponential backoff until the service answers again.

Rebalances: every consumed message is tagged with the assignment generation of its
partition. Messages of a partition that was revoked (even if it came back) are
dropped from the batch - the new owner, or our new assignment, re-reads them from
the last committed offset - and offsets are only committed for partitions we still
own in the same generation.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from confluent_kafka import KafkaError, KafkaException, TopicPartition

from transformer.batching import collect_batch
from transformer.consumed import Assignment, Consumed, TopicPartitionKey, next_offsets
from transformer.delivery import DeliveryTracker
from transformer.dlq import utc_now
from transformer.logs import log_event
from transformer.metrics import TransformerMetrics, lag
from transformer.predictor_client import (
    Prediction,
    PredictorUnavailable,
    Rejection,
    predict_isolating_rejections,
)
from transformer.processing import BatchResult, transform_batch
from transformer.records import OutputRecord
from transformer.retry import RetriesExhausted, RetryAborted, RetryPolicy, call_with_retries
from transformer.settings import Settings

log = logging.getLogger("transformer.pipeline")

IDLE_POLL_S = 1.0  # longest a blocking poll may delay noticing SIGTERM
WAIT_SLICE_S = 0.5  # granularity of interruptible waits
DELIVERY_KEEPALIVE_AFTER_S = 60.0  # well below max.poll.interval.ms (300 s default)
LAG_REFRESH_S = 5.0
ERROR_LOG_INTERVAL_S = 30.0

PredictCall = Callable[[Sequence[dict[str, Any]]], list[Prediction | Rejection]]


class FatalKafkaError(RuntimeError):
    """librdkafka reported a fatal error: the client is unusable, restart the process."""


class ConsumerLike(Protocol):
    def subscribe(self, topics: list[str], **callbacks: Any) -> None: ...
    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Any]: ...
    def commit(self, *, offsets: list[TopicPartition], asynchronous: bool) -> Any: ...
    def pause(self, partitions: list[TopicPartition]) -> None: ...
    def resume(self, partitions: list[TopicPartition]) -> None: ...
    def assignment(self) -> list[TopicPartition]: ...
    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]: ...
    def get_watermark_offsets(self, partition: TopicPartition, **kwargs: Any) -> Any: ...
    def close(self) -> None: ...


class ProducerLike(Protocol):
    def produce(self, topic: str, **kwargs: Any) -> None: ...
    def poll(self, timeout: float = ...) -> int: ...
    def flush(self, timeout: float = ...) -> int: ...


@dataclass(slots=True)
class _BatchTimings:
    started: float
    collect_s: float = 0.0
    predict_s: float = 0.0
    produce_s: float = 0.0
    commit_s: float = 0.0


class _Throttle:
    """Log a repeating error once per interval, not once per poll."""

    def __init__(self, interval_s: float, clock: Callable[[], float]) -> None:
        self._interval = interval_s
        self._clock = clock
        self._last: dict[str, float] = {}

    def allow(self, key: str) -> bool:
        now = self._clock()
        if now - self._last.get(key, float("-inf")) >= self._interval:
            self._last[key] = now
            return True
        return False


class KafkaErrorMonitor:
    """error_cb for both clients: logs global errors (brokers down, auth) once per
    interval and remembers fatal ones so the loop can stop instead of spinning."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.fatal: str | None = None
        self._throttle = _Throttle(ERROR_LOG_INTERVAL_S, clock)

    def __call__(self, err: KafkaError) -> None:
        if err.fatal():
            self.fatal = err.str()
            log_event(log, logging.CRITICAL, "kafka_fatal", err.str(), code=err.name())
        elif self._throttle.allow(str(err.code())):
            log_event(log, logging.WARNING, "kafka_error", err.str(), code=err.name())


def consumer_config(settings: Settings, **callbacks: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "group.id": settings.group_id,
        "client.id": "car-price-transformer",
        "enable.auto.commit": False,  # we commit explicitly after delivery
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",  # a new group must see the snapshot
        # pick up the CDC topic soon after Debezium creates it (default: 5 min)
        "topic.metadata.refresh.interval.ms": 10_000,
        # a crashed member's partitions move to its replacement after 10 s, not 45 s
        "session.timeout.ms": 10_000,
        "heartbeat.interval.ms": 2_000,
        **callbacks,
    }


def producer_config(settings: Settings, **callbacks: Any) -> dict[str, Any]:
    return {
        "bootstrap.servers": settings.bootstrap_servers,
        "client.id": "car-price-transformer",
        "acks": "all",
        "enable.idempotence": True,  # broker-side dedupe of internal retries, keeps order
        "linger.ms": 5,
        **callbacks,
    }


class Pipeline:
    def __init__(
        self,
        settings: Settings,
        *,
        consumer: ConsumerLike,
        producer: ProducerLike,
        predict: PredictCall,
        metrics: TransformerMetrics,
        stop: threading.Event,
        errors: KafkaErrorMonitor | None = None,
        clock: Callable[[], float] = time.monotonic,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        self._settings = settings
        self._consumer = consumer
        self._producer = producer
        self._predict = predict
        self._metrics = metrics
        self._stop = stop
        self._errors = errors or KafkaErrorMonitor(clock)
        self._clock = clock
        self._now = now
        self._policy = RetryPolicy(
            max_attempts=settings.retry_max_attempts,
            initial_backoff_s=settings.retry_backoff_initial_ms / 1000,
            max_backoff_s=settings.retry_backoff_max_ms / 1000,
        )
        self._assignment = Assignment()
        self._paused = False
        self._carry: list[Consumed] = []  # consumed while paused; start of the next batch
        self._fatal: str | None = None
        self._throttle = _Throttle(ERROR_LOG_INTERVAL_S, clock)
        self._last_lag_refresh = float("-inf")
        self._service_down = False

    # --- public -----------------------------------------------------------------

    def run(self) -> None:
        """Loop until `stop` is set; raises FatalKafkaError if a client becomes unusable."""
        self.subscribe()
        while not self._stop.is_set():
            self.run_once()
        log_event(log, logging.INFO, "stopping", "stop requested; leaving the loop")

    def subscribe(self) -> None:
        self._consumer.subscribe(
            [self._settings.cdc_topic],
            on_assign=self._on_assign,
            on_revoke=self._on_revoke,
            on_lost=self._on_lost,
        )
        log_event(
            log,
            logging.INFO,
            "started",
            "consuming",
            topic=self._settings.cdc_topic,
            group_id=self._settings.group_id,
            batch_size=self._settings.batch_size,
            batch_max_wait_ms=self._settings.batch_max_wait_ms,
        )

    def run_once(self) -> bool:
        """Collect and handle one batch; returns True if it was committed."""
        self._raise_if_fatal()
        started = self._clock()
        initial, self._carry = self._carry, []
        batch = collect_batch(
            self._poll,
            initial=initial,
            max_size=self._settings.batch_size,
            max_wait_s=self._settings.batch_max_wait_ms / 1000,
            idle_poll_s=IDLE_POLL_S,
            should_stop=self._stop.is_set,
            clock=self._clock,
        )
        committed = False
        if batch:
            timings = _BatchTimings(started=started, collect_s=self._clock() - started)
            committed = self._handle_batch(batch, timings)
        self._refresh_lag()
        return committed

    # --- one batch ----------------------------------------------------------------

    def _handle_batch(self, batch: list[Consumed], timings: _BatchTimings) -> bool:
        self._metrics.batch_size.observe(len(batch))
        rounds = 0
        while True:
            live = [item for item in batch if self._assignment.is_current(item)]
            if not live:
                self._finish(batch, live, None, timings, "revoked", rounds)
                return False
            try:
                predict_started = self._clock()
                result = transform_batch(
                    [item.message for item in live],
                    predict=self._predict_listings,
                    predictions_topic=self._settings.predictions_topic,
                    dlq_topic=self._settings.dlq_topic,
                    now=self._now,
                )
                timings.predict_s += self._clock() - predict_started
            except RetriesExhausted as exhausted:
                rounds += 1
                self._service_down = True
                self._metrics.bentoml_available.set(0)
                log_event(
                    log,
                    logging.ERROR,
                    "bentoml_unavailable",
                    "BentoML still unavailable; batch held (not committed), partitions paused",
                    attempts=exhausted.attempts,
                    rounds=rounds,
                    error=str(exhausted.last_error),
                    messages=len(live),
                    retry_in_s=self._policy.cooldown_s,
                )
                if self._wait(self._policy.cooldown_s):
                    continue
                self._finish(batch, live, None, timings, "abandoned", rounds)
                return False
            except RetryAborted:
                self._finish(batch, live, None, timings, "abandoned", rounds)
                return False
            if any(not self._assignment.is_current(item) for item in live):
                continue  # a rebalance happened while we waited: redo without those partitions
            break

        if self._service_down:
            self._service_down = False
            self._metrics.bentoml_available.set(1)
            log_event(
                log,
                logging.INFO,
                "bentoml_recovered",
                "BentoML answers again; resuming",
                rounds=rounds,
            )
        for kind, count in result.events_by_kind.items():
            self._metrics.events_consumed.labels(kind=kind).inc(count)

        produce_started = self._clock()
        delivered = self._deliver(result.records)
        timings.produce_s = self._clock() - produce_started
        if not delivered:
            self._finish(batch, live, result, timings, "abandoned", rounds)
            return False

        commit_started = self._clock()
        committed = self._commit(live)
        timings.commit_s = self._clock() - commit_started
        self._count_delivered(result)
        self._finish(
            batch, live, result, timings, "committed" if committed else "commit_failed", rounds
        )
        return committed

    def _predict_listings(self, listings: list[dict[str, Any]]) -> list[Prediction | Rejection]:
        return predict_isolating_rejections(listings, self._predict_with_retries)

    def _predict_with_retries(
        self, listings: Sequence[dict[str, Any]]
    ) -> list[Prediction | Rejection]:
        def on_retry(attempt: int, error: BaseException, delay: float) -> None:
            self._metrics.bentoml_failures.inc()
            log_event(
                log,
                logging.WARNING,
                "bentoml_retry",
                "POST /predict failed; retrying",
                attempt=attempt,
                max_attempts=self._policy.max_attempts,
                retry_in_s=round(delay, 3),
                listings=len(listings),
                error=str(error),
            )

        def attempt() -> list[Prediction | Rejection]:
            return self._predict(listings)

        try:
            return call_with_retries(
                attempt,
                self._policy,
                is_retryable=lambda error: isinstance(error, PredictorUnavailable),
                wait=self._wait,
                on_retry=on_retry,
            )
        except RetriesExhausted:
            self._metrics.bentoml_failures.inc()
            raise

    # --- produce and commit -----------------------------------------------------------

    def _deliver(self, records: list[OutputRecord]) -> bool:
        """Produce all records and wait until each one is acknowledged.

        Failed deliveries are produced again (after a backoff) until they succeed;
        returns False only if shutdown interrupts this, in which case the batch is
        not committed and will be replayed.
        """
        tracker = DeliveryTracker()
        pending = records
        failed_rounds = 0
        while pending:
            for record in pending:
                self._produce(record, tracker)
            if not self._await_deliveries(tracker):
                return False
            if tracker.fatal_error:
                raise FatalKafkaError(f"producer: {tracker.fatal_error}")
            failed = tracker.take_failed()
            if not failed:
                return True
            failed_rounds += 1
            delay = self._policy.backoff_after(min(failed_rounds, self._policy.max_attempts))
            log_event(
                log,
                logging.WARNING,
                "delivery_failed",
                "records not acknowledged; producing them again",
                failed=len(failed),
                error=failed[0][1],
                retry_in_s=delay,
            )
            if self._stop.is_set() or not self._wait(delay):
                return False
            pending = [record for record, _error in failed]
        return True

    def _produce(self, record: OutputRecord, tracker: DeliveryTracker) -> None:
        token, on_delivery = tracker.track(record)
        while True:
            try:
                self._producer.produce(
                    record.topic,
                    key=record.key,
                    value=record.value,
                    headers=record.headers,
                    on_delivery=on_delivery,
                )
                return
            except BufferError:
                self._producer.poll(0.1)  # local queue full: serve reports, then try again
            except KafkaException:
                tracker.forget(token)
                raise

    def _await_deliveries(self, tracker: DeliveryTracker) -> bool:
        started = self._clock()
        stop_seen: float | None = None
        shutdown_timeout = self._settings.shutdown_timeout_ms / 1000
        while tracker.in_flight:
            self._producer.flush(WAIT_SLICE_S)
            if not tracker.in_flight:
                break
            self._raise_if_fatal()
            now = self._clock()
            if now - started > DELIVERY_KEEPALIVE_AFTER_S:
                self._keepalive(0)
            if self._stop.is_set():
                stop_seen = stop_seen if stop_seen is not None else now
                if now - stop_seen >= shutdown_timeout:
                    log_event(
                        log,
                        logging.WARNING,
                        "delivery_abandoned",
                        "shutdown: records still unacknowledged; batch not committed",
                        in_flight=tracker.in_flight,
                    )
                    return False
        return True

    def _commit(self, live: list[Consumed]) -> bool:
        owned = self._assignment.owned()
        offsets = [
            TopicPartition(topic, partition, offset)
            for (topic, partition), offset in sorted(next_offsets(live).items())
            if (topic, partition) in owned
        ]
        if not offsets:
            return False
        try:
            result = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log_event(
                log,
                logging.ERROR,
                "commit_failed",
                "offset commit failed; the batch will be replayed (harmless upserts)",
                error=str(exc),
            )
            return False
        failed = [tp for tp in (result or []) if getattr(tp, "error", None)]
        if failed:
            log_event(
                log,
                logging.ERROR,
                "commit_failed",
                "some partitions failed to commit",
                partitions=[f"{tp.topic}[{tp.partition}]: {tp.error}" for tp in failed],
            )
            return False
        return True

    # --- consumer plumbing --------------------------------------------------------------

    def _poll(self, max_messages: int, timeout: float) -> list[Consumed]:
        messages = self._consumer.consume(num_messages=max_messages, timeout=max(timeout, 0))
        out: list[Consumed] = []
        for message in messages:
            error = message.error()
            if error is not None:
                self._on_message_error(error)
                continue
            tp = (message.topic(), message.partition())
            out.append(Consumed(message, self._assignment.generation(tp)))
        return out

    def _on_message_error(self, error: KafkaError) -> None:
        if error.code() == KafkaError._PARTITION_EOF:
            return
        if error.fatal():
            self._fatal = error.str()
            return
        if self._throttle.allow(f"consume:{error.code()}"):
            log_event(log, logging.WARNING, "consume_error", error.str(), code=error.name())

    def _raise_if_fatal(self) -> None:
        fatal = self._fatal or self._errors.fatal
        if fatal:
            raise FatalKafkaError(fatal)

    def _wait(self, seconds: float) -> bool:
        """Sleep that keeps the consumer in the group and ends early on shutdown.

        Partitions are paused first so polling fetches nothing for the held batch.
        """
        deadline = self._clock() + seconds
        while not self._stop.is_set():
            remaining = deadline - self._clock()
            if remaining <= 0:
                return True
            self._keepalive(min(remaining, WAIT_SLICE_S))
        return False

    def _keepalive(self, timeout: float) -> None:
        """Poll while paused: serves rebalance callbacks; records from partitions that
        were newly assigned (so not paused) are kept for the next batch."""
        self._pause_assignment()
        arrived = self._poll(self._settings.batch_size, timeout)
        if arrived:
            self._carry.extend(arrived)
            self._pause([item.partition_key for item in arrived])
        self._raise_if_fatal()

    def _pause_assignment(self) -> None:
        if not self._paused:
            self._pause(self._assignment.owned())
            self._paused = True

    def _pause(self, partitions: Sequence[TopicPartitionKey] | set[TopicPartitionKey]) -> None:
        if partitions:
            self._consumer.pause([TopicPartition(t, p) for t, p in sorted(partitions)])

    def _resume_if_paused(self) -> None:
        if self._paused:
            self._paused = False
            partitions = self._consumer.assignment()
            if partitions:
                self._consumer.resume(partitions)

    def _on_assign(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._assignment.assigned(keys)
        log_event(
            log,
            logging.INFO,
            "partitions_assigned",
            "partitions assigned",
            partitions=[f"{t}[{p}]" for t, p in keys],
        )

    def _on_revoke(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        keys = [(tp.topic, tp.partition) for tp in partitions]
        self._assignment.revoked(keys)
        self._metrics.forget_partitions(keys)
        self._carry = [item for item in self._carry if self._assignment.is_current(item)]
        log_event(
            log,
            logging.INFO,
            "partitions_revoked",
            "partitions revoked",
            partitions=[f"{t}[{p}]" for t, p in keys],
        )

    def _on_lost(self, consumer: Any, partitions: list[TopicPartition]) -> None:
        self._on_revoke(consumer, partitions)

    def _refresh_lag(self) -> None:
        now = self._clock()
        if now - self._last_lag_refresh < LAG_REFRESH_S:
            return
        self._last_lag_refresh = now
        owned = sorted(self._assignment.owned())
        if not owned:
            return
        # Both calls are local (no broker round trip): position is the app's offset,
        # cached watermarks are updated by every fetch response.
        try:
            positions = self._consumer.position([TopicPartition(t, p) for t, p in owned])
        except KafkaException as exc:
            log.debug("lag refresh failed: %s", exc)
            return
        for tp in positions:
            try:
                watermarks = self._consumer.get_watermark_offsets(
                    TopicPartition(tp.topic, tp.partition), cached=True
                )
            except KafkaException as exc:
                log.debug("no cached watermarks for %s[%s]: %s", tp.topic, tp.partition, exc)
                continue
            if watermarks:
                self._metrics.set_lag(tp.topic, tp.partition, lag(watermarks[1], tp.offset))

    # --- bookkeeping ------------------------------------------------------------------

    def _count_delivered(self, result: BatchResult) -> None:
        self._metrics.predictions_produced.inc(result.predictions)
        self._metrics.tombstones_produced.inc(result.tombstones)
        for reason, count in result.dlq_by_reason.items():
            self._metrics.dlq_messages.labels(reason=reason).inc(count)

    def _finish(
        self,
        batch: list[Consumed],
        live: list[Consumed],
        result: BatchResult | None,
        timings: _BatchTimings,
        outcome: str,
        rounds: int,
    ) -> None:
        """Resume fetching, count the batch, and write its one INFO line."""
        self._resume_if_paused()
        self._metrics.batches.labels(outcome=outcome).inc()
        ranges: dict[TopicPartitionKey, list[int]] = {}
        for item in live:
            ranges.setdefault(item.partition_key, []).append(item.offset)
        fields: dict[str, Any] = {
            "outcome": outcome,
            "messages": len(batch),
            "dropped_by_rebalance": len(batch) - len(live),
            "offsets": {f"{t}[{p}]": f"{min(o)}-{max(o)}" for (t, p), o in sorted(ranges.items())},
            "retry_rounds": rounds,
            "collect_ms": round(timings.collect_s * 1000, 1),
            "predict_ms": round(timings.predict_s * 1000, 1),
            "produce_ms": round(timings.produce_s * 1000, 1),
            "commit_ms": round(timings.commit_s * 1000, 1),
            "total_ms": round((self._clock() - timings.started) * 1000, 1),
        }
        if result is not None:
            fields.update(
                events=dict(result.events_by_kind),
                superseded=result.superseded,
                listings_sent=result.listings_sent,
                predictions=result.predictions,
                tombstones=result.tombstones,
                dlq=len(result.dead_letters),
                dlq_reasons=dict(result.dlq_by_reason),
            )
        level = logging.INFO if outcome == "committed" else logging.WARNING
        log_event(log, level, "batch", f"batch {outcome}", **fields)
