"""The connector JSON files: declarative, and never holding a secret."""

from __future__ import annotations

import re

from config.settings import KafkaSettings
from operations.connectors import load_connector_files

# a credential written inside another value, e.g. a JDBC URL's `?user=x&password=y`
INLINE_CREDENTIAL = re.compile(r"(password|passwd|secret|user)\s*[=:]\s*(?!\$\{)", re.IGNORECASE)


def test_connector_files_hold_no_literal_secret() -> None:
    for connector in load_connector_files():
        for key, value in connector["config"].items():
            where = (connector["name"], key)
            if "password" in key or "user" in key:
                assert re.fullmatch(r"\$\{(env|file):[^}]+\}", value), where
            assert not INLINE_CREDENTIAL.search(str(value)), where
            for reference in re.findall(r"\$\{([^}]*)\}", str(value)):
                assert reference.startswith(("env:", "file:")), where


def test_source_and_sink_follow_the_contract() -> None:
    by_class = {
        c["config"]["connector.class"].rsplit(".", 1)[-1]: c["config"]
        for c in load_connector_files()
    }
    source, sink = by_class["PostgresConnector"], by_class["JdbcSinkConnector"]
    assert source["plugin.name"] == "pgoutput"
    assert source["topic.prefix"] == "car_database"
    assert source["table.include.list"] == "public.tbl_car_price"
    assert source["value.converter"].endswith("JsonConverter")
    assert sink["topics"] == "car_price_predictions"
    assert sink["collection.name.format"] == "tbl_price_prediction"
    assert (
        sink["insert.mode"],
        sink["primary.key.mode"],
        sink["delete.enabled"],
        sink["schema.evolution"],
    ) == ("upsert", "record_key", "true", "none")


def test_the_sink_has_its_own_dead_letter_topic() -> None:
    """Not the transformer's: the two hold different record formats."""
    [sink] = [
        c["config"]
        for c in load_connector_files()
        if c["config"]["connector.class"].endswith("JdbcSinkConnector")
    ]
    kafka = KafkaSettings()
    assert sink["errors.deadletterqueue.topic.name"] == kafka.sink_dlq_topic
    assert kafka.sink_dlq_topic != kafka.dlq_topic
