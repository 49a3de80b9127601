"""Where each partition's replicas are, as the cluster's metadata says: what `make status`
shows per broker and what `make rolling-restart` waits on."""

from __future__ import annotations

from confluent_kafka.admin import AdminClient

from config.settings import StackSettings


def partitions(settings: StackSettings) -> dict[tuple[str, int], tuple[int, list[int], list[int]]]:
    """Every partition of every topic (Kafka's internal ones too) -> (leader, replicas, ISR),
    as the cluster's metadata says now."""
    admin = AdminClient(settings.kafka_admin(log_level=0))
    return {
        (name, number): (part.leader, list(part.replicas), list(part.isrs))
        for name, topic in admin.list_topics(timeout=10).topics.items()
        for number, part in topic.partitions.items()
    }


def under_replicated(settings: StackSettings) -> list[str]:
    """`topic-partition` of each partition with fewer in-sync replicas than replicas (or no
    leader): what must be empty before the next broker of a rolling restart stops."""
    return lagging(partitions(settings))


def lagging(parts: dict[tuple[str, int], tuple[int, list[int], list[int]]]) -> list[str]:
    """The under-replicated ones among `partitions()`' answer."""
    return sorted(
        f"{name}-{number}"
        for (name, number), (leader, replicas, isr) in parts.items()
        if leader < 0 or set(isr) != set(replicas)
    )
