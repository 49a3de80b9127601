"""Topics are created on purpose, each with its configs, and nothing else is created."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException, Producer

from config.settings import StackSettings
from stack.kafka import describe_topic


def test_cdc_and_prediction_topics_are_compacted(stack_ready: StackSettings) -> None:
    kafka = stack_ready.kafka
    for topic in (kafka.cdc_topic, kafka.predictions_topic):
        configs = describe_topic(stack_ready, topic)
        assert configs["cleanup.policy"] == "compact", topic
        assert int(configs["delete.retention.ms"]) >= 7 * 24 * 3600 * 1000, topic


def test_dead_letter_topics_are_kept_as_logs(stack_ready: StackSettings) -> None:
    kafka = stack_ready.kafka
    for topic in (kafka.dlq_topic, kafka.sink_dlq_topic):
        configs = describe_topic(stack_ready, topic)
        assert configs["cleanup.policy"] == "delete", topic
        assert int(configs["retention.ms"]) == 14 * 24 * 3600 * 1000, topic


def test_the_broker_creates_no_topic_by_itself(stack_ready: StackSettings) -> None:
    producer = Producer(
        {
            **stack_ready.kafka_admin(),
            "message.timeout.ms": 3000,
            "topic.metadata.refresh.interval.ms": 500,
        }
    )
    errors: list[str] = []
    producer.produce(
        "no_such_topic_made_by_a_typo",
        b"x",
        on_delivery=lambda err, _msg: errors.append(err.name() if err else ""),
    )
    producer.flush(10)
    assert errors and errors[0] in {"UNKNOWN_TOPIC_OR_PART", "_MSG_TIMED_OUT"}, errors
    with pytest.raises(KafkaException):
        describe_topic(stack_ready, "no_such_topic_made_by_a_typo")
