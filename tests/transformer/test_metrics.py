"""Prometheus metrics (transformer/metrics.py): the names dashboards and tests use."""

from __future__ import annotations

from collections import Counter

from prometheus_client import CollectorRegistry, generate_latest

from transformer.events import Reason
from transformer.metrics import OUTCOMES, Metrics

NAMES = (
    "transformer_events_consumed_total",
    "transformer_predictions_produced_total",
    "transformer_tombstones_produced_total",
    "transformer_dlq_messages_total",
    "transformer_batches_total",
    "transformer_bentoml_failures_total",
    "transformer_batch_size_bucket",
    "transformer_bentoml_request_seconds_bucket",
    "transformer_bentoml_available",
)


def test_every_series_is_there_from_the_start() -> None:
    metrics = Metrics(CollectorRegistry())

    text = generate_latest(metrics.registry).decode()

    assert all(name in text for name in NAMES)
    for reason in Reason:
        assert f'transformer_dlq_messages_total{{reason="{reason}"}} 0.0' in text
    assert 'transformer_events_consumed_total{kind="tombstone"} 0.0' in text
    assert 'transformer_bentoml_request_seconds_count{outcome="rejected"} 0.0' in text
    for outcome in OUTCOMES:
        assert f'transformer_batches_total{{outcome="{outcome}"}} 0.0' in text


def test_a_delivered_batch_is_counted() -> None:
    metrics = Metrics(CollectorRegistry())
    labels = Counter(
        {"prediction": 3, "tombstone": 1, "deleted": 1, "refused": 2, "rejected_by_model": 2}
    )

    metrics.delivered(labels, Counter({"update": 5, "invalid": 1}))

    assert metrics.registry.get_sample_value("transformer_refusals_produced_total") == 2
    sample = metrics.registry.get_sample_value
    assert sample("transformer_predictions_produced_total") == 3
    assert sample("transformer_dlq_messages_total", {"reason": "rejected_by_model"}) == 2
    assert sample("transformer_events_consumed_total", {"kind": "update"}) == 5
    assert sample("transformer_tombstones_produced_total") == 1
    assert sample("transformer_dlq_messages_total", {"reason": "deleted"}) is None
