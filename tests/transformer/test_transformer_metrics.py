"""Prometheus metrics and the /metrics endpoint (transformer/metrics.py)."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from transformer.metrics import TransformerMetrics, lag, serve_metrics


@pytest.mark.parametrize(
    ("high", "position", "expected"),
    [(100, 40, 60), (100, 100, 0), (100, 120, 0), (-1001, 5, None), (100, -1001, None)],
)
def test_lag_is_high_watermark_minus_position(
    high: int, position: int, expected: int | None
) -> None:
    assert lag(high, position) == expected


def test_labelled_series_exist_before_anything_happens() -> None:
    metrics = TransformerMetrics(CollectorRegistry())
    get = metrics.registry.get_sample_value

    assert get("transformer_dlq_messages_total", {"reason": "rejected_by_model"}) == 0
    assert get("transformer_events_consumed_total", {"kind": "tombstone"}) == 0
    assert get("transformer_bentoml_request_seconds_count", {"outcome": "unavailable"}) == 0
    assert get("transformer_bentoml_available") == 1


def test_lag_series_are_set_and_forgotten_per_partition() -> None:
    metrics = TransformerMetrics(CollectorRegistry())
    get = metrics.registry.get_sample_value

    metrics.set_lag("cdc", 0, 12)
    metrics.set_lag("cdc", 1, None)  # unknown: no series rather than a fake zero
    assert get("transformer_consumer_lag", {"topic": "cdc", "partition": "0"}) == 12
    assert get("transformer_consumer_lag", {"topic": "cdc", "partition": "1"}) is None

    metrics.forget_partitions([("cdc", 0), ("cdc", 1)])
    assert get("transformer_consumer_lag", {"topic": "cdc", "partition": "0"}) is None


def test_request_latency_is_observed_by_outcome() -> None:
    metrics = TransformerMetrics(CollectorRegistry())

    metrics.observe_request(0.03, "ok")
    metrics.observe_request(0.5, "ok")

    assert (
        metrics.registry.get_sample_value(
            "transformer_bentoml_request_seconds_count", {"outcome": "ok"}
        )
        == 2
    )
    assert (
        metrics.registry.get_sample_value(
            "transformer_bentoml_request_seconds_bucket", {"outcome": "ok", "le": "0.05"}
        )
        == 1
    )


def test_metrics_endpoint_serves_the_registry_on_a_free_port() -> None:
    metrics = TransformerMetrics(CollectorRegistry())
    metrics.predictions_produced.inc(3)
    metrics.batch_size.observe(42)

    server = serve_metrics("127.0.0.1", 0, metrics.registry)
    try:
        body = httpx.get(f"http://127.0.0.1:{server.server_address[1]}/metrics", timeout=5).text
    finally:
        server.shutdown()

    assert "transformer_predictions_produced_total 3.0" in body
    assert 'transformer_batch_size_bucket{le="50.0"} 1.0' in body
    for name in (
        "transformer_events_consumed_total",
        "transformer_tombstones_produced_total",
        "transformer_dlq_messages_total",
        "transformer_bentoml_request_seconds_bucket",
        "transformer_consumer_lag",
    ):
        assert name in body
