"""Prometheus metrics for the transformer.

All metrics hang off one registry object so tests can use a fresh
`CollectorRegistry` while production uses the default one (which also carries
the process_* and python_* collectors).
"""

from __future__ import annotations

from collections.abc import Iterable
from wsgiref.simple_server import WSGIServer

from prometheus_client import (
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    start_http_server,
)

from transformer.dlq import KNOWN_REASONS
from transformer.processing import EVENT_KINDS

BATCH_SIZE_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000)
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def lag(high_watermark: int, position: int) -> int | None:
    """Messages behind the end of the partition; None if either offset is unknown
    (librdkafka reports negative sentinels such as OFFSET_INVALID=-1001)."""
    if high_watermark < 0 or position < 0:
        return None
    return max(high_watermark - position, 0)


class TransformerMetrics:
    def __init__(self, registry: CollectorRegistry = REGISTRY) -> None:
        self.registry = registry
        self.events_consumed = Counter(
            "transformer_events_consumed",
            "CDC messages consumed, by kind (create/read/update/delete/tombstone/invalid)",
            ["kind"],
            registry=registry,
        )
        self.predictions_produced = Counter(
            "transformer_predictions_produced",
            "Prediction records acknowledged by Kafka",
            registry=registry,
        )
        self.tombstones_produced = Counter(
            "transformer_tombstones_produced",
            "Prediction tombstones (deletes) acknowledged by Kafka",
            registry=registry,
        )
        self.dlq_messages = Counter(
            "transformer_dlq_messages",
            "Messages parked in the DLQ topic, by reason",
            ["reason"],
            registry=registry,
        )
        self.batches = Counter(
            "transformer_batches",
            "Batches finished, by outcome (committed/commit_failed/abandoned)",
            ["outcome"],
            registry=registry,
        )
        self.bentoml_failures = Counter(
            "transformer_bentoml_failures",
            "Failed /predict attempts that will be retried (service unavailable)",
            registry=registry,
        )
        self.batch_size = Histogram(
            "transformer_batch_size",
            "Messages per consumed batch",
            buckets=BATCH_SIZE_BUCKETS,
            registry=registry,
        )
        self.bentoml_request_seconds = Histogram(
            "transformer_bentoml_request_seconds",
            "Latency of one POST /predict, by outcome (ok/rejected/unavailable)",
            ["outcome"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "transformer_consumer_lag",
            "High watermark minus consumer position, per assigned partition",
            ["topic", "partition"],
            registry=registry,
        )
        self.bentoml_available = Gauge(
            "transformer_bentoml_available",
            "1 while /predict answers, 0 while the current batch is held for retries",
            registry=registry,
        )
        self.bentoml_available.set(1)
        # Pre-create labelled series so dashboards and alerts see zeros, not gaps.
        for kind in EVENT_KINDS:
            self.events_consumed.labels(kind=kind)
        for reason in KNOWN_REASONS:
            self.dlq_messages.labels(reason=reason)
        for outcome in ("ok", "rejected", "unavailable"):
            self.bentoml_request_seconds.labels(outcome=outcome)

    def observe_request(self, seconds: float, outcome: str) -> None:
        self.bentoml_request_seconds.labels(outcome=outcome).observe(seconds)

    def set_lag(self, topic: str, partition: int, value: int | None) -> None:
        if value is not None:
            self.consumer_lag.labels(topic=topic, partition=str(partition)).set(value)

    def forget_partitions(self, partitions: Iterable[tuple[str, int]]) -> None:
        """Drop lag series of partitions we no longer own (another member reports them)."""
        for topic, partition in partitions:
            try:
                self.consumer_lag.remove(topic, str(partition))
            except KeyError:
                pass


def serve_metrics(host: str, port: int, registry: CollectorRegistry = REGISTRY) -> WSGIServer:
    """Start the /metrics HTTP server in a daemon thread.

    Returns the server: `server.server_address[1]` is the bound port (useful with
    port 0), `server.shutdown()` stops it.
    """
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server
