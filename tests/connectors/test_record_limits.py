"""Column limits, Connect's max.request.size and the topics' max.message.bytes agree:
the source connector cannot meet a row the table accepts that it could not produce."""

from __future__ import annotations

import psycopg
from confluent_kafka.admin import AdminClient, ConfigResource, ConfigSource, ResourceType

from config.settings import StackSettings
from model import listing_rules as rules
from stack.kafka import TOPICS
from stack.render import template_values
from tests.support import end_offsets, json_or_none, read_until

#: A listing the table accepts is this many times smaller than the record limit, at least.
HEADROOM = 64


def test_every_topic_has_the_record_limit_set(stack_ready: StackSettings) -> None:
    kafka = stack_ready.kafka
    admin = AdminClient(stack_ready.kafka_admin())
    topics = [getattr(kafka, field) for field in TOPICS]
    resources = [ConfigResource(ResourceType.TOPIC, topic) for topic in topics]
    for resource, future in admin.describe_configs(resources).items():
        entry = future.result(timeout=10)["max.message.bytes"]
        assert entry.value == str(kafka.kafka_max_message_bytes), resource.name
        assert entry.source == ConfigSource.DYNAMIC_TOPIC_CONFIG.value, (
            f"{resource.name}: set explicitly, not a broker default"
        )


def test_connect_producers_use_the_same_limit(stack_ready: StackSettings) -> None:
    rendered = (stack_ready.conf_dir / "connect-distributed.properties").read_text()
    assert f"producer.max.request.size={stack_ready.kafka.kafka_max_message_bytes}\n" in rendered
    assert template_values(stack_ready)["kafka_max_message_bytes"] == str(
        stack_ready.kafka.kafka_max_message_bytes
    )


def test_the_largest_listing_the_table_accepts_is_far_below_the_limit(
    stack_ready: StackSettings, db: psycopg.Connection
) -> None:
    """Worst case: every text at its length limit in characters JSON escapes to 6 bytes
    (`\\u0001`), every number at its bound; its update event is measured too."""
    kafka = stack_ready.kafka
    start = end_offsets(stack_ready, kafka.cdc_topic)
    widest = {column: rules.RANGES[column].high for column in rules.RANGES}
    car_id = db.execute(
        "INSERT INTO tbl_car_price (model, year, price, transmission, mileage, fuel_type, tax, "
        "mpg, engine_size) VALUES (%s, %s, %s, 'Semi-Auto', %s, 'Electric', %s, %s, %s) "
        "RETURNING id",
        (
            "\x01" * rules.TEXT_MAX_CHARS["model"],
            rules.latest_year(),
            widest["price"],
            widest["mileage"],
            widest["tax"],
            widest["mpg"] - 0.123456789,
            widest["engine_size"],
        ),
    ).fetchone()[0]
    try:
        db.execute(
            "UPDATE tbl_car_price SET model = %s WHERE id = %s",
            ("\x02" * rules.TEXT_MAX_CHARS["model"], car_id),
        )

        def ours(seen: list) -> list[bytes]:
            return [m.value() for m in seen if json_or_none(m.key()) == {"id": car_id}]

        events = ours(read_until(stack_ready, start, lambda seen: len(ours(seen)) >= 2))
        assert len(events) == 2
        assert "\\u0001" in events[0].decode(), "the worst case really is escaped"
        assert max(map(len, events)) * HEADROOM < kafka.kafka_max_message_bytes, [
            len(event) for event in events
        ]
    finally:
        db.execute("DELETE FROM tbl_car_price WHERE id = %s", (car_id,))
