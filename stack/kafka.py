"""Format the KRaft log directory once and create the pipeline's topics."""

from __future__ import annotations

import base64
import subprocess
import uuid

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from stack.settings import StackSettings

# partitions per topic: the CDC and prediction topics are keyed by listing id
TOPIC_PARTITIONS = {"cdc_topic": 3, "predictions_topic": 3, "dlq_topic": 1}


def new_cluster_id() -> str:
    """Kafka's cluster id format: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


def format_storage(settings: StackSettings) -> bool:
    """Run `kafka-storage format` on first start; True when it formatted now."""
    if (settings.kafka_data_dir / "meta.properties").exists():
        return False
    settings.kafka_data_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "java",
            "-cp",
            f"{settings.jvm_dir}/kafka/libs/*",
            f"-Dlog4j2.configurationFile={settings.conf_dir / 'log4j2.properties'}",
            "kafka.tools.StorageTool",
            "format",
            "--ignore-formatted",
            "--cluster-id",
            new_cluster_id(),
            "--config",
            str(settings.conf_dir / "server.properties"),
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return True


def ensure_topics(settings: StackSettings) -> list[str]:
    """Create the CDC, prediction and DLQ topics when missing; returns those created."""
    admin = AdminClient({"bootstrap.servers": settings.kafka.bootstrap_servers})
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = [
        NewTopic(getattr(settings.kafka, field), num_partitions=count, replication_factor=1)
        for field, count in TOPIC_PARTITIONS.items()
    ]
    missing = [topic for topic in wanted if topic.topic not in existing]
    if not missing:
        return []
    for topic, future in admin.create_topics(missing).items():
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    return [topic.topic for topic in missing]


def consumer_group_lag(settings: StackSettings, group_id: str, topic: str) -> int | None:
    """Messages on `topic` not yet committed by `group_id` (None: group has no commits)."""
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka.bootstrap_servers,
            "group.id": group_id,
            "enable.auto.commit": False,
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=5).topics[topic].partitions
        committed = consumer.committed([TopicPartition(topic, p) for p in partitions], timeout=5)
        if all(tp.offset < 0 for tp in committed):
            return None
        lag = 0
        for tp in committed:
            low, high = consumer.get_watermark_offsets(tp, timeout=5)
            lag += high - (tp.offset if tp.offset >= 0 else low)
        return lag
    finally:
        consumer.close()
