"""Kafka authenticates every client and authorises each by its ACLs: probes run as the
unprivileged OS user `nobody` (tests/security/as_nobody.py) against the live broker.

Without credentials nothing is produced or read, on the client listener nor on the
controller's; with the transformer's credentials, writing the CDC topic (forging a
listing change) or the sink's topic past its ACLs is refused, while what the transformer
needs (reading the CDC topic's metadata) works: the positive control.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from config.settings import StackSettings
from tests.security.as_nobody import private_file, probe_folder, run_as_nobody

# Produce one record to argv[2] with the client config in argv[1] (a JSON file); print
# whether it was delivered and the error. A short timeout: a refused client never delivers.
PRODUCE = """
import json, sys
from confluent_kafka import Producer
config = json.load(open(sys.argv[1]))
errors = []
producer = Producer({**config, "message.timeout.ms": 8000, "socket.timeout.ms": 4000,
                     "log_level": 0, "error_cb": lambda e: errors.append(str(e))})
delivered = []
producer.produce(sys.argv[2], key=b'{"id":1}', value=b'{"forged":true}',
                 on_delivery=lambda e, m: delivered.append(str(e) if e else "ok"))
producer.flush(15)
print(json.dumps({"delivered": delivered, "errors": errors}))
"""

# Read argv[2] from the beginning with the client config in argv[1]; print what came.
CONSUME = """
import json, sys, time
from confluent_kafka import Consumer, TopicPartition
config = json.load(open(sys.argv[1]))
errors = []
consumer = Consumer({**config, "group.id": "probe-" + sys.argv[2], "log_level": 0,
                     "enable.auto.commit": False, "socket.timeout.ms": 4000,
                     "error_cb": lambda e: errors.append(str(e))})
consumer.assign([TopicPartition(sys.argv[2], p, 0) for p in range(3)])
got, deadline = 0, time.monotonic() + 8
while time.monotonic() < deadline:
    message = consumer.poll(0.5)
    if message is None:
        continue
    if message.error():
        errors.append(str(message.error()))
    else:
        got += 1
print(json.dumps({"records": got, "errors": errors}))
"""

# Ask for the topic list (metadata) with the config in argv[1].
METADATA = """
import json, sys
from confluent_kafka.admin import AdminClient
config = json.load(open(sys.argv[1]))
try:
    topics = sorted(AdminClient({**config, "log_level": 0}).list_topics(timeout=8).topics)
    print(json.dumps({"topics": topics, "error": None}))
except Exception as exc:
    print(json.dumps({"topics": [], "error": str(exc)}))
"""


@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with probe_folder() as path:
        yield path


def _config(folder: Path, name: str, config: dict) -> str:
    return str(private_file(folder, f"{name}.json", json.dumps(config)))


def _anonymous(settings: StackSettings, folder: Path) -> str:
    return _config(folder, "anonymous", {"bootstrap.servers": settings.kafka.bootstrap_servers})


def _transformer(settings: StackSettings, folder: Path) -> str:
    principals = settings.kafka_principals
    return _config(
        folder,
        "transformer",
        {"bootstrap.servers": settings.kafka.bootstrap_servers}
        | principals.sasl(principals.kafka_transformer_user, principals.kafka_transformer_password),
    )


def _reachable_with_credentials(settings: StackSettings, folder: Path) -> None:
    """The control: the same probe, as the same OS user, reaches the brokers once it
    authenticates; so a refusal below is Kafka's, not an unreachable address."""
    control = run_as_nobody(folder, METADATA, _transformer(settings, folder))
    assert control["error"] is None and settings.kafka.cdc_topic in control["topics"], control


def test_without_credentials_nobody_produces(stack_ready: StackSettings, folder: Path) -> None:
    kafka = stack_ready.kafka
    _reachable_with_credentials(stack_ready, folder)
    for topic in (kafka.predictions_topic, kafka.cdc_topic):
        answer = run_as_nobody(folder, PRODUCE, _anonymous(stack_ready, folder), topic)
        assert "ok" not in answer["delivered"], (topic, answer)


def test_without_credentials_nobody_reads_a_listing(
    stack_ready: StackSettings, folder: Path
) -> None:
    _reachable_with_credentials(stack_ready, folder)
    answer = run_as_nobody(
        folder, CONSUME, _anonymous(stack_ready, folder), stack_ready.kafka.cdc_topic
    )
    assert answer["records"] == 0, answer


def test_the_controller_listener_takes_no_client(stack_ready: StackSettings, folder: Path) -> None:
    address = f"127.0.0.1:{stack_ready.kafka.kafka_controller_port}"
    config = _config(folder, "controller", {"bootstrap.servers": address})
    answer = run_as_nobody(folder, METADATA, config)
    assert answer["error"] is not None and not answer["topics"], answer
    answer = run_as_nobody(folder, PRODUCE, config, stack_ready.kafka.predictions_topic)
    assert "ok" not in answer["delivered"], answer


def test_the_transformer_cannot_write_listing_changes(
    stack_ready: StackSettings, folder: Path
) -> None:
    kafka = stack_ready.kafka
    config = _transformer(stack_ready, folder)
    _reachable_with_credentials(stack_ready, folder)

    answer = run_as_nobody(folder, PRODUCE, config, kafka.cdc_topic)
    assert answer["delivered"] and "ok" not in answer["delivered"], answer
    assert "TOPIC_AUTHORIZATION_FAILED" in " ".join(answer["delivered"]), answer
    answer = run_as_nobody(folder, CONSUME, config, kafka.predictions_topic)
    assert answer["records"] == 0, answer
