"""Builders for the transformer's unit tests: real `confluent_kafka.Message`s carrying
Debezium events as the source connector writes them (schemas.enable=false)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import Message

from tests.support import CDC_TOPIC, FIESTA_LISTING, MessageOf, key_of
from transformer.settings import Settings


@pytest.fixture()
def message() -> MessageOf:
    """A consumed CDC message; `value` None is a tombstone."""

    def build(
        value: bytes | None,
        key: bytes | None = None,
        *,
        partition: int = 0,
        offset: int = 0,
        headers: list[tuple[str, bytes]] | None = None,
    ) -> Message:
        return Message(
            topic=CDC_TOPIC,
            partition=partition,
            offset=offset,
            key=key,
            value=value,
            headers=headers,
            timestamp=(1, 1_700_000_000_000),
        )

    return build


@pytest.fixture()
def change(message: MessageOf) -> MessageOf:
    """A Debezium change event for listing `car_id`: op c/r/u/d, listing fields overridable."""

    def build(
        op: str, car_id: int, *, partition: int = 0, offset: int = 0, lsn: int = 0, **row: Any
    ) -> Message:
        after = {"id": car_id, **FIESTA_LISTING, "price": 9995, **row}
        envelope = {
            "op": op,
            "before": after if op == "d" else None,
            "after": None if op == "d" else after,
            "source": {
                "ts_ms": 1_700_000_000_000 + car_id,
                "table": "tbl_car_price",
                "lsn": lsn or 5_000_000 + car_id,
            },
            "ts_ms": 1_700_000_000_500,
        }
        return message(
            json.dumps(envelope).encode(), key_of(car_id), partition=partition, offset=offset
        )

    return build


@pytest.fixture()
def config() -> Callable[..., Settings]:
    """Settings as the code would read them, without the repository's .env."""
    return lambda **fields: Settings(_env_file=None, **fields)
