"""`make watch-dlq` prints both dead-letter topics: the transformer's and the JDBC sink's."""

from __future__ import annotations

import subprocess
import uuid

from confluent_kafka import Producer

from config.settings import REPO_ROOT, StackSettings


def test_watch_dlq_prints_a_record_of_each_dead_letter_topic(
    stack_ready: StackSettings, producer: Producer
) -> None:
    kafka = stack_ready.kafka
    topics = (kafka.dlq_topic, kafka.sink_dlq_topic)
    keys = {topic: f"watch-dlq-test-{uuid.uuid4().hex}" for topic in topics}
    for topic, key in keys.items():
        producer.produce(topic, key=key, value=b'{"test": "make watch-dlq"}')
    assert producer.flush(10) == 0

    watched = subprocess.run(  # the console consumer ends after 10 s without a record
        ["make", "--no-print-directory", "watch-dlq", "WATCH_ARGS=--timeout-ms 10000"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        errors="replace",  # the DLQs keep whatever bytes were refused
        timeout=180,
    )

    missing = [topic for topic, key in keys.items() if key not in watched.stdout]
    assert not missing, f"no record of {missing} in `make watch-dlq`:\n{watched.stderr[-2000:]}"
