"""The consume -> predict -> produce -> commit loop, at least once (a replay is harmless: the sink
upserts on car_id). A batch is what one `Consumer.consume(batch_size, max_wait)` returns; one
message never fails it (what cannot be handled goes to the DLQ, records.py). Offsets are committed
(last offset + 1) only once every record of the batch is acknowledged by the acks=all idempotent
producer, and only for partitions owned all along since the batch was consumed; records of a
partition revoked meanwhile are not produced. When BentoML fails or a record is not acknowledged,
the batch is rewound to the last commit and the loop waits with the partitions paused, polling so
the consumer stays in its group; the wait doubles up to its cap and starts over after a success."""

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, KafkaException, Message, TopicPartition

from transformer.batch import Batch, DeadLetter, Partition, build, partition_of
from transformer.bentoml_client import Unavailable
from transformer.events import Answer, Reason, Refusal
from transformer.metrics import Metrics
from transformer.records import Outgoing, dead_letter, for_batch
from transformer.settings import Settings

log = logging.getLogger("transformer")
kafka_log = logging.getLogger("transformer.kafka")  # librdkafka's own lines too
SLICE_S = 0.5  # the longest a wait takes to notice SIGTERM


@dataclass
class Pipeline:
    s: Settings
    predict: Callable[[list[dict[str, Any]]], list[Answer]]  # BentoMLClient.predict
    metrics: Metrics
    stop: threading.Event
    consumer: Any = None  # the service sets the clients, with on_error as their error_cb
    producer: Any = None
    delay: float = 0.0  # the current backoff; 0 after a success
    revoked: set[Partition] = field(default_factory=set)  # since the batch was consumed

    def on_error(self, error: KafkaError) -> None:
        """error_cb of both clients, and consume errors. A fatal one (the client is unusable)
        ends the loop: raised in a callback, it comes out of the call that served it."""
        if error.fatal():
            raise KafkaException(error)
        kafka_log.warning(error.str())

    def run(self) -> None:
        """Loop until `stop` is set; raises KafkaException when a client becomes unusable."""
        self.subscribe()
        while not self.stop.is_set():
            self.run_once()

    def subscribe(self) -> None:
        """Join the group: a partition revoked or lost meanwhile leaves the batch under way."""
        self.consumer.subscribe([self.s.cdc_topic], on_revoke=self._revoked, on_lost=self._revoked)
        log.info(f"consuming {self.s.cdc_topic}", extra={"event": "started"})

    def run_once(self) -> str | None:
        """Consume and handle one batch; returns its outcome, None when there was none."""
        self.revoked.clear()
        # librdkafka keeps a partition's pause across a revoke and re-assign: a rebalance
        # during a paused wait would otherwise leave the partitions paused for good
        self.consumer.resume(self.consumer.assignment())
        started, wait_s = time.monotonic(), self.s.transformer_batch_max_wait_ms / 1000
        messages = self._consume(wait_s)
        outcome = self._handle(build(messages), started) if messages else None
        self.metrics.refresh_lag(self.consumer)
        return outcome

    def _handle(self, batch: Batch, started: float) -> str:
        self.metrics.batch_size.observe(len(batch.messages))
        listings = [event.listing for _, event in batch.changes if event.listing is not None]
        try:
            answers = self._predict(listings)
        except Unavailable as exc:
            self.metrics.bentoml_failures.inc()
            self.metrics.bentoml_available.set(0)
            return self._retry(batch, started, str(exc))
        self.metrics.bentoml_available.set(1)
        out = for_batch(batch, answers, self.s)
        out = [item for item in out if partition_of(item.message) not in self.revoked]
        if (error := self._deliver(out)) is not None:
            return self._retry(batch, started, error)
        self.delay = 0.0
        self.metrics.delivered(records := Counter(item.label for item in out), batch.kinds)
        outcome = self._commit(batch)
        self._rewind(self.revoked & batch.next_offsets().keys())  # owned again: read it again
        return self._log(batch, started, outcome, records=dict(records))

    def _predict(self, listings: list[dict[str, Any]]) -> list[Answer]:
        """The model's answers. A call raising something unexpected (a bug, not an outage) is
        made again one listing at a time; one that still raises is refused (internal_error)."""
        try:
            return self.predict(listings) if listings else []
        except Unavailable:
            raise
        except Exception as exc:
            if len(listings) == 1:
                log.exception("predict raised", extra={"event": "internal_error"})
                return [Refusal(f"internal error: {exc!r:.200}", reason=Reason.INTERNAL_ERROR)]
        return [answer for listing in listings for answer in self._predict([listing])]

    def _deliver(self, out: list[Outgoing]) -> str | None:
        """Produce, then wait for every acknowledgement; returns the first failure."""
        failures: list[str] = []

        def on_delivery(error: KafkaError | None, _message: Message) -> None:
            if error is not None:
                failures.append(error.str())

        for item in out:
            try:
                self.producer.produce(**item.record._asdict(), on_delivery=on_delivery)
            except KafkaException as exc:  # e.g. MSG_SIZE_TOO_LARGE: its message, trimmed
                error = f"{item.record.topic}: {exc}"
                note = DeadLetter(item.message, Reason.INTERNAL_ERROR, error)
                note_record = dead_letter(self.s.dlq_topic, note, 0)
                self.producer.produce(**note_record._asdict(), on_delivery=on_delivery)
        grace_s = self.s.transformer_shutdown_timeout_ms / 1000  # once stopping
        while self.producer.flush(SLICE_S):
            self._poll_paused(0)  # a long wait for the broker must not cost our partitions
            if self.stop.is_set() and self.producer.flush(grace_s):
                return "shutdown with records unacknowledged"
        return failures[0] if failures else None

    def _commit(self, batch: Batch) -> str:
        owned = sorted((p, o) for p, o in batch.next_offsets().items() if p not in self.revoked)
        offsets = [TopicPartition(*partition, offset) for partition, offset in owned]
        if not offsets:
            return "revoked"
        try:
            result = self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException:  # e.g. a rebalance under way: the batch is replayed, harmlessly
            return "commit_failed"
        return "commit_failed" if any(tp.error for tp in result) else "committed"

    def _retry(self, batch: Batch, started: float, error: str) -> str:
        """Rewind the batch to the last commit, then wait, backing off up to the cap."""
        initial_s = self.s.transformer_retry_backoff_initial_ms / 1000
        cap_s = self.s.transformer_retry_backoff_max_ms / 1000
        self.delay = min(max(self.delay * 2, initial_s), cap_s)
        self._rewind(set(batch.next_offsets()))
        outcome = "retried" if self._wait(self.delay) else "abandoned"
        return self._log(batch, started, outcome, error=error, retry_in_s=self.delay)

    def _rewind(self, partitions: set[Partition]) -> None:
        """Seek back to the last commit (none yet: the earliest), as a restart would."""
        owned = {(tp.topic, tp.partition) for tp in self.consumer.assignment()}
        wanted = [TopicPartition(*partition) for partition in sorted(partitions & owned)]
        for tp in self.consumer.committed(wanted, timeout=10) if wanted else []:
            offset = tp.offset if tp.offset >= 0 else OFFSET_BEGINNING
            self.consumer.seek(TopicPartition(tp.topic, tp.partition, offset))

    def _wait(self, seconds: float) -> bool:
        """Sleep with the partitions paused; False when SIGTERM cut it short."""
        deadline = time.monotonic() + seconds
        while not self.stop.is_set() and (remaining := deadline - time.monotonic()) > 0:
            self._poll_paused(min(remaining, SLICE_S))
        return not self.stop.is_set()  # the next batch resumes the partitions

    def _poll_paused(self, timeout: float) -> None:
        """Serve rebalances without taking work; a partition assigned meanwhile is rewound."""
        self.consumer.pause(self.consumer.assignment())
        self._rewind({partition_of(message) for message in self._consume(timeout)})

    def _consume(self, timeout: float) -> list[Message]:
        messages = self.consumer.consume(self.s.transformer_batch_size, timeout)
        for error in filter(None, (message.error() for message in messages)):
            self.on_error(error)
        return [message for message in messages if message.error() is None]

    def _revoked(self, _consumer: Any, partitions: list[TopicPartition]) -> None:
        self.revoked |= {(tp.topic, tp.partition) for tp in partitions}
        self.metrics.consumer_lag.clear()  # the owned ones come back at the next refresh
        log.info(f"partitions revoked: {partitions}", extra={"event": "partitions_revoked"})

    def _log(self, batch: Batch, started: float, outcome: str, **fields: Any) -> str:
        """The batch's one log line (and its outcome counted)."""
        self.metrics.batches.labels(outcome).inc()
        fields |= {"event": "batch", "outcome": outcome, "messages": len(batch.messages)}
        fields |= {"events": dict(batch.kinds), "ms": round((time.monotonic() - started) * 1e3)}
        level = logging.INFO if outcome == "committed" else logging.WARNING
        log.log(level, f"batch {outcome}", extra=fields)
        return outcome
