"""Format the KRaft log directory once, create the pipeline's topics, and the principals
(SCRAM credentials) and ACLs of the programs that use them."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import (
    AclBinding,
    AclOperation,
    AclPermissionType,
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourcePatternType,
    ResourceType,
    ScramCredentialInfo,
    ScramMechanism,
    UserScramCredentialUpsertion,
)

from config.settings import StackSettings
from stack.render import broker_properties

# Each topic of the pipeline: settings field -> (partitions, topic configs). The CDC and
# prediction topics are keyed by listing id, so compaction keeps the newest record of
# every listing for ever (a rebuild re-reads them: one state per listing, deletes as
# tombstones kept for a week). The DLQs are logs for operators: kept 14 days.
WEEK_MS = str(7 * 24 * 3600 * 1000)
DLQ = {"cleanup.policy": "delete", "retention.ms": str(14 * 24 * 3600 * 1000)}
COMPACT = {"cleanup.policy": "compact", "delete.retention.ms": WEEK_MS}
TOPICS: dict[str, tuple[int, dict[str, str]]] = {
    "cdc_topic": (3, COMPACT | {"min.compaction.lag.ms": str(3600 * 1000)}),
    "predictions_topic": (3, COMPACT),
    "dlq_topic": (1, DLQ),
    "sink_dlq_topic": (1, DLQ),
}


# Connect's own names: its worker group and internal topics (connect-distributed.properties),
# each sink connector's consumer group (connect-<name>), the source connector's heartbeat
# topic (__debezium-heartbeat.<topic.prefix>) and its topics (<topic.prefix>.<schema>.<table>),
# connectors/car-price-source.json.
CONNECT_GROUP = "car-price-connect"
CONNECT_INTERNAL_TOPICS = "_connect-"
CONNECTOR_GROUPS = "connect-car-price-"
HEARTBEAT_TOPIC = "__debezium-heartbeat.car_database"
# every topic the source connector writes starts with its topic.prefix: the CDC topic, and
# the signal table's events during an incremental snapshot (car_database.public.debezium_signal)
SOURCE_TOPICS = "car_database."

Acl = tuple[ResourceType, str, ResourcePatternType, tuple[AclOperation, ...]]


def acls(settings: StackSettings) -> dict[str, list[Acl]]:
    """Each program's principal -> what it may do; nothing else is allowed to anyone but
    the admin (the super user). docs/security.md shows the same as a table."""
    kafka, principals = settings.kafka, settings.kafka_principals
    from transformer.settings import Settings as TransformerSettings

    group = TransformerSettings().transformer_group_id
    topic, lit, pre = ResourceType.TOPIC, ResourcePatternType.LITERAL, ResourcePatternType.PREFIXED
    read = (AclOperation.READ, AclOperation.DESCRIBE)
    write = (AclOperation.WRITE, AclOperation.DESCRIBE)
    made = (AclOperation.CREATE, AclOperation.DESCRIBE_CONFIGS)  # topics Connect creates
    return {
        principals.kafka_transformer_user: [
            (topic, kafka.cdc_topic, lit, read),
            (topic, kafka.predictions_topic, lit, write),
            (topic, kafka.dlq_topic, lit, write),
            (ResourceType.GROUP, group, lit, (AclOperation.READ, AclOperation.DESCRIBE)),
            (ResourceType.BROKER, "kafka-cluster", lit, (AclOperation.IDEMPOTENT_WRITE,)),
        ],
        principals.kafka_connect_user: [
            # the worker: its group and its internal topics (config, offsets, status)
            (ResourceType.GROUP, CONNECT_GROUP, lit, (AclOperation.READ, AclOperation.DESCRIBE)),
            (topic, CONNECT_INTERNAL_TOPICS, pre, (AclOperation.ALL,)),
            (
                ResourceType.BROKER,
                "kafka-cluster",
                lit,
                (
                    AclOperation.DESCRIBE,
                    AclOperation.DESCRIBE_CONFIGS,
                    AclOperation.IDEMPOTENT_WRITE,
                ),
            ),  # fmt: skip
            # the source connector: change events and heartbeats
            (topic, SOURCE_TOPICS, pre, write + made),
            (topic, HEARTBEAT_TOPIC, lit, write + made),
            # the sink connector: reads predictions, writes its dead letters
            (ResourceType.GROUP, CONNECTOR_GROUPS, pre, (AclOperation.READ, AclOperation.DESCRIBE)),
            (topic, kafka.predictions_topic, lit, read),
            (topic, kafka.sink_dlq_topic, lit, write + made),
        ],
    }


def ensure_principals(settings: StackSettings) -> None:
    """As the admin: upsert each program's SCRAM-SHA-512 credential (the password in
    `.env`, so a changed one takes effect) and create its ACLs (creating an existing one
    changes nothing)."""
    principals = settings.kafka_principals
    admin = AdminClient(settings.kafka_admin(log_level=4))  # no info lines in make up
    credentials = {
        principals.kafka_connect_user: principals.kafka_connect_password,
        principals.kafka_transformer_user: principals.kafka_transformer_password,
    }
    info = ScramCredentialInfo(ScramMechanism.SCRAM_SHA_512, 8192)
    upserts = [UserScramCredentialUpsertion(u, info, p.encode()) for u, p in credentials.items()]
    for future in admin.alter_user_scram_credentials(upserts).values():
        future.result()
    bindings = [
        AclBinding(kind, name, pattern, f"User:{user}", "*", operation, AclPermissionType.ALLOW)
        for user, rules in acls(settings).items()
        for kind, name, pattern, operations in rules
        for operation in operations
    ]
    for future in admin.create_acls(bindings).values():
        future.result()


def _storage_tool(settings: StackSettings, *args: str, stdout: int | None) -> str:
    """Run Kafka's `kafka-storage` (StorageTool) from the jars `make bootstrap` fetched."""
    log4j = f"-Dlog4j2.configurationFile={settings.conf_dir / 'log4j2.properties'}"
    tool = ["java", "-cp", f"{settings.jvm_dir}/kafka/libs/*", log4j, "kafka.tools.StorageTool"]
    return subprocess.run([*tool, *args], check=True, stdout=stdout, text=True).stdout


def new_cluster_id(settings: StackSettings) -> str:
    """A cluster id made by Kafka (`kafka-storage random-uuid`): never a reserved id, nor
    one starting with `-`, which `format --cluster-id` would take for an option."""
    return _storage_tool(settings, "random-uuid", stdout=subprocess.PIPE).strip().splitlines()[-1]


class BrokerCountChanged(RuntimeError):
    """KAFKA_BROKERS differs from the cluster formatted in `.state`."""


def cluster_file(settings: StackSettings) -> Path:
    """Which cluster `.state` holds: its id and broker count, written before any node is
    formatted, so a start interrupted mid-format formats the rest into the same cluster."""
    return settings.kafka_data_dir.parent / "cluster.json"


def formatted_cluster(settings: StackSettings) -> dict[str, object] | None:
    """{"cluster_id", "brokers"} of the cluster in `.state`, or None before the first start.
    A `.state` from before cluster mode has no cluster.json: one broker, its meta.properties'
    cluster id."""
    if cluster_file(settings).exists():
        return json.loads(cluster_file(settings).read_text())
    meta = settings.kafka_data_dir / "meta.properties"
    if not meta.exists():
        return None
    found = re.search(r"^cluster\.id=(.+)$", meta.read_text(), re.MULTILINE)
    return {"cluster_id": found.group(1).strip() if found else "", "brokers": 1}


def check_broker_count(settings: StackSettings) -> None:
    """Refuse a KAFKA_BROKERS other than the count `.state` was made with: a running
    cluster cannot be grown or shrunk by a restart (replication factors, the controller
    quorum and Connect's topics are fixed at creation), so nothing is started half-done."""
    cluster = formatted_cluster(settings)
    wanted = settings.kafka.kafka_brokers
    if cluster is None or cluster["brokers"] == wanted:
        return
    raise BrokerCountChanged(
        f"KAFKA_BROKERS={wanted} in .env, but {settings.state_dir} holds a Kafka cluster of "
        f"{cluster['brokers']} broker(s). The count is fixed for a stack's state; either set "
        f"KAFKA_BROKERS={cluster['brokers']} again, or start a fresh stack with "
        f"{wanted} (this deletes every listing, prediction and topic): "
        "make down && rm -rf .state && make up"
    )


def format_storage(settings: StackSettings) -> list[int]:
    """Run `kafka-storage format` for each broker whose log directory is not formatted
    yet, all with one cluster id; returns the nodes formatted now."""
    check_broker_count(settings)
    todo = [
        node
        for node in settings.kafka.brokers
        if not (settings.broker_data_dir(node) / "meta.properties").exists()
    ]
    if not todo:
        return []
    cluster = formatted_cluster(settings) or {
        "cluster_id": new_cluster_id(settings),
        "brokers": settings.kafka.kafka_brokers,
    }
    cluster_file(settings).parent.mkdir(parents=True, exist_ok=True)
    cluster_file(settings).write_text(json.dumps(cluster))
    for node in todo:
        settings.broker_data_dir(node).mkdir(parents=True, exist_ok=True)
        config = settings.conf_dir / broker_properties(node)
        _storage_tool(settings, "format", "--ignore-formatted",
                      f"--cluster-id={cluster['cluster_id']}", f"--config={config}",
                      stdout=subprocess.DEVNULL)  # fmt: skip
    return todo


def topic_configs(settings: StackSettings) -> dict[str, str]:
    """Set explicitly on every pipeline topic (not left to broker defaults, which an
    external cluster may set otherwise): the record size limit is the one Connect's producer
    uses too (max.request.size); an acknowledged write (acks=all) is on min.insync.replicas
    brokers; only an in-sync replica may lead, so no acknowledged write is ever dropped."""
    return {
        "max.message.bytes": str(settings.kafka.kafka_max_message_bytes),
        "min.insync.replicas": str(settings.kafka.min_insync_replicas),
        "unclean.leader.election.enable": "false",
    }


def ensure_topics(settings: StackSettings) -> list[str]:
    """Create the pipeline's topics when missing, and give every one its configs (also
    to a topic that exists already); returns those created."""
    admin = AdminClient(settings.kafka_admin(log_level=4))
    existing = set(admin.list_topics(timeout=10).topics)
    wanted = {
        getattr(settings.kafka, field): (count, {**config, **topic_configs(settings)})
        for field, (count, config) in TOPICS.items()
    }
    missing = [
        NewTopic(
            name,
            num_partitions=count,
            replication_factor=settings.kafka.replication_factor,
            config=config,
        )
        for name, (count, config) in wanted.items()
        if name not in existing
    ]
    for topic, future in admin.create_topics(missing).items() if missing else []:
        try:
            future.result()
        except KafkaException as exc:
            if "TOPIC_ALREADY_EXISTS" not in str(exc):
                raise
    present = [
        ConfigResource(
            ResourceType.TOPIC,
            name,
            incremental_configs=[
                ConfigEntry(key, value, incremental_operation=AlterConfigOpType.SET)
                for key, value in config.items()
            ],
        )
        for name, (_count, config) in wanted.items()
        if name in existing
    ]
    for future in admin.incremental_alter_configs(present).values() if present else []:
        future.result()
    return [topic.topic for topic in missing]


def describe_topic(settings: StackSettings, name: str) -> dict[str, str]:
    """The broker's view of one topic's configs (for `make status` and the tests)."""
    admin = AdminClient(settings.kafka_admin())
    resource = ConfigResource(ResourceType.TOPIC, name)
    entries = admin.describe_configs([resource])[resource].result()
    return {key: entry.value for key, entry in entries.items()}
