"""Prometheus metrics of the transformer; dashboards and tests use these names. Tests pass
a fresh registry; the service uses the default one (with the process_* series)."""

import collections
from typing import Any

from confluent_kafka import KafkaException
from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram

from transformer.events import EventKind, Reason
from transformer.records import Label, RecordKind

SIZES = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000)
# a batch's outcomes (transformer/pipeline.py): committed, or why not
OUTCOMES = ("committed", "commit_failed", "revoked", "retried", "abandoned")
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        def new(kind: Any, name: str, doc: str, *labels: str, **options: Any) -> Any:
            return kind(f"transformer_{name}", doc, labels, registry=registry, **options)

        self.registry = registry
        self.events_consumed = new(Counter, "events_consumed", "CDC messages, by kind", "kind")
        self.predictions_produced = new(Counter, "predictions_produced", "Predictions acked")
        self.tombstones_produced = new(Counter, "tombstones_produced", "Deletes acked")
        self.refusals_produced = new(Counter, "refusals_produced", "Refused records acked")
        self.dlq_messages = new(Counter, "dlq_messages", "Messages parked in the DLQ", "reason")
        self.batches = new(Counter, "batches", "Batches, by outcome", "outcome")
        self.bentoml_failures = new(Counter, "bentoml_failures", "Failed /predict, retried")
        self.batch_size = new(Histogram, "batch_size", "Messages per batch", buckets=SIZES)
        self.bentoml_request_seconds = new(
            Histogram, "bentoml_request_seconds", "POST /predict", "outcome", buckets=SECONDS
        )
        self.consumer_lag = new(Gauge, "consumer_lag", "Behind the end", "topic", "partition")
        self.bentoml_available = new(Gauge, "bentoml_available", "0 while /predict fails")
        self.bentoml_available.set(1)
        # labelled series exist from the start: dashboards see zeros, not gaps
        for kind in EventKind:
            self.events_consumed.labels(kind)
        for reason in Reason:
            self.dlq_messages.labels(reason)
        for outcome in ("ok", "rejected", "unavailable"):
            self.bentoml_request_seconds.labels(outcome)
        for outcome in OUTCOMES:
            self.batches.labels(outcome)

    def delivered(
        self, records: collections.Counter[Label], kinds: collections.Counter[EventKind]
    ) -> None:
        """Count a batch whose records (by label) are all acknowledged."""
        for kind, count in kinds.items():
            self.events_consumed.labels(kind).inc(count)
        self.predictions_produced.inc(records[RecordKind.PREDICTION])
        self.tombstones_produced.inc(records[RecordKind.TOMBSTONE])
        self.refusals_produced.inc(records[RecordKind.REFUSED])
        for reason in Reason:  # the dead letters (deletions are counted with their tombstones)
            self.dlq_messages.labels(reason).inc(records[reason])

    def refresh_lag(self, consumer: Any) -> None:
        """Lag per owned partition, from local state: cheap enough for every turn of the loop."""
        try:
            for tp in consumer.position(consumer.assignment()):
                _, high = consumer.get_watermark_offsets(tp, cached=True) or (-1, -1)
                if high >= 0 and tp.offset >= 0:
                    self.consumer_lag.labels(tp.topic, str(tp.partition)).set(high - tp.offset)
        except KafkaException:
            pass  # no position or watermarks yet: the next refresh tries again
