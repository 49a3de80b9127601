"""How far a consumer group is behind a topic: the transformers' CDC backlog, which paces a
rescore (operations/rescore.py) and which `make status` shows."""

from __future__ import annotations

from confluent_kafka import Consumer, TopicPartition

from config.settings import StackSettings


class GroupLag:
    """Messages on `topic` not yet committed by `group_id`, read as often as needed over
    one connection (None: the group has no commits yet)."""

    def __init__(self, settings: StackSettings, group_id: str, topic: str) -> None:
        self.consumer = Consumer(
            settings.kafka_admin(**{"group.id": group_id, "enable.auto.commit": False})
        )
        self.topic = topic
        self.partitions: list[TopicPartition] = []  # read once, on the first call

    def __call__(self) -> int | None:
        if not self.partitions:  # a rescore asks many times a second
            metadata = self.consumer.list_topics(self.topic, timeout=5).topics[self.topic]
            self.partitions = [TopicPartition(self.topic, p) for p in metadata.partitions]
        committed = self.consumer.committed(self.partitions, timeout=5)
        if all(tp.offset < 0 for tp in committed):
            return None
        lag = 0
        for tp in committed:
            low, high = self.consumer.get_watermark_offsets(tp, timeout=5)
            lag += high - (tp.offset if tp.offset >= 0 else low)
        return lag

    def close(self) -> None:
        self.consumer.close()


def consumer_group_lag(settings: StackSettings, group_id: str, topic: str) -> int | None:
    """Messages on `topic` not yet committed by `group_id` (None: group has no commits)."""
    lag = GroupLag(settings, group_id, topic)
    try:
        return lag()
    finally:
        lag.close()
