"""Topics are created on purpose, each with its configs, and nothing else is created."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import AdminClient

from config.settings import StackSettings
from operations.replicas import partitions, under_replicated
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


def test_every_broker_is_in_the_metadata_and_every_topic_has_its_replicas(
    stack_ready: StackSettings,
) -> None:
    """KAFKA_BROKERS brokers answer; the pipeline's topics, Connect's and Kafka's own have
    one replica per broker (up to 3), all in sync, min.insync.replicas a majority and no
    unclean leader election (3 brokers: RF 3, min.insync.replicas=2)."""
    kafka_ = stack_ready.kafka
    rf, min_isr = kafka_.replication_factor, kafka_.min_insync_replicas
    admin = AdminClient(stack_ready.kafka_admin())
    assert set(admin.list_topics(timeout=10).brokers) == set(kafka_.brokers)
    layout = partitions(stack_ready)
    pipeline = [kafka_.cdc_topic, kafka_.predictions_topic, kafka_.dlq_topic, kafka_.sink_dlq_topic]
    internal = ["_connect-configs", "_connect-offsets", "_connect-status", "__consumer_offsets"]
    for topic in pipeline + internal:
        replicas = [rs for (name, _), (_, rs, _) in layout.items() if name == topic]
        assert replicas and {len(rs) for rs in replicas} == {rf}, (topic, replicas)
        configs = describe_topic(stack_ready, topic)
        assert configs["min.insync.replicas"] == str(min_isr), topic
        assert configs["unclean.leader.election.enable"] == "false", topic
    assert under_replicated(stack_ready) == []
