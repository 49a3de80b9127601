"""The prediction record contract after issue 9, as the JDBC sink and the table accept it.

The transformer produces these (key `car_id`); the sink tests build them here. A record is
its payload only: the sink's JsonConverters hold these schemas as `schema.content`.
`status` is 'priced', 'refused' or 'deleted' (a deletion: the database keeps only its
position, see migration 0003); `source_lsn` is Debezium's `source.lsn` of the listing
change the record answers.
"""

from __future__ import annotations

import json
from typing import Any

KEY_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "car_price_predictions.Key",
    "optional": False,
    "fields": [{"field": "car_id", "type": "int64", "optional": False}],
}


def _field(field: str, kind: str, optional: bool = True, **extra: Any) -> dict[str, Any]:
    return {"field": field, "type": kind, "optional": optional, **extra}


VALUE_SCHEMA: dict[str, Any] = {
    "type": "struct",
    "name": "car_price_predictions.Value",
    "optional": False,
    "fields": [
        _field("car_id", "int64", optional=False),
        _field("status", "string", optional=False),
        _field("predicted_price", "double"),
        _field("price_low", "double"),
        _field("price_high", "double"),
        _field("model_version", "string"),
        _field("reason", "string"),
        _field("refused_field", "string"),
        _field("source_lsn", "int64"),
        *(
            _field(name, "int64", name="org.apache.kafka.connect.data.Timestamp", version=1)
            for name in ("source_committed_at", "consumed_at", "replied_at")
        ),
    ],
}


def _dumps(document: Any) -> bytes:
    return json.dumps(document, separators=(",", ":"), allow_nan=False).encode()


def key(car_id: int) -> bytes:
    return _dumps({"car_id": car_id})


def value(
    car_id: int,
    status: str,
    lsn: int | None,
    price: float | None = None,
    reason: str | None = None,
    refused_field: str | None = None,
    committed_ms: int | None = None,
) -> bytes:
    prices = (
        {
            "predicted_price": price,
            "price_low": price * 0.9,
            "price_high": price * 1.1,
            "model_version": "car_price_xgb:test",
        }
        if price is not None
        else dict.fromkeys(("predicted_price", "price_low", "price_high", "model_version"))
    )
    return _dumps(
        {
            "car_id": car_id,
            "status": status,
            **prices,
            "reason": reason,
            "refused_field": refused_field,
            "source_lsn": lsn,
            "source_committed_at": committed_ms,
        }
    )
