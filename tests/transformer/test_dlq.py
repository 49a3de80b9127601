"""Dead-letter records and their headers (transformer/dlq.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from transformer_fakes import CDC_TOPIC, FakeMessage, key_bytes

from transformer import dlq
from transformer.dlq import DeadLetter, dead_letter_record, dlq_headers

FAILED_AT = datetime(2024, 10, 27, 3, 33, 20, 123456, tzinfo=UTC)


def headers_dict(headers: list[tuple[str, bytes]]) -> dict[str, str]:
    return {name: value.decode() for name, value in headers}


def test_record_keeps_the_original_bytes_and_explains_itself() -> None:
    message = FakeMessage(
        b"{not json", key_bytes(42), partition=2, offset=1234, timestamp=(1, 1_730_000_000_500)
    )

    record = dead_letter_record(
        "car_price_predictions.dlq",
        DeadLetter(
            message, "invalid_json", "value is not JSON: Expecting property name", car_id=42
        ),
        now=lambda: FAILED_AT,
    )

    assert record.topic == "car_price_predictions.dlq"
    assert record.key == key_bytes(42)
    assert record.value == b"{not json"
    assert headers_dict(record.headers or []) == {
        "dlq.reason": "invalid_json",
        "dlq.error": "value is not JSON: Expecting property name",
        "dlq.source.topic": CDC_TOPIC,
        "dlq.source.partition": "2",
        "dlq.source.offset": "1234",
        "dlq.source.timestamp": "1730000000500",
        "dlq.failed_at": "2024-10-27T03:33:20.123+00:00",
        "dlq.car_id": "42",
    }


def test_original_headers_come_first_and_are_preserved() -> None:
    message = FakeMessage(b"x", None, headers=[("traceparent", b"00-abc-01"), ("empty", None)])  # type: ignore[list-item]

    headers = dlq_headers(DeadLetter(message, "invalid_json", "boom"), FAILED_AT)

    assert headers[:2] == [("traceparent", b"00-abc-01"), ("empty", b"")]
    assert [name for name, _ in headers[2:]][:1] == ["dlq.reason"]


def test_unknown_id_and_missing_timestamp_are_left_out() -> None:
    message = FakeMessage(None, b"garbage", timestamp=(0, -1))

    names = [
        name for name, _ in dlq_headers(DeadLetter(message, "invalid_key", "no id"), FAILED_AT)
    ]

    assert "dlq.car_id" not in names
    assert "dlq.source.timestamp" not in names
    assert dead_letter_record("dlq", DeadLetter(message, "invalid_key", "no id")).value is None


def test_failed_at_is_utc_whatever_the_clock_zone() -> None:
    local = FAILED_AT.astimezone(timezone(timedelta(hours=2)))

    headers = headers_dict(dlq_headers(DeadLetter(FakeMessage(b"x"), "r", "e"), local))

    assert headers["dlq.failed_at"] == "2024-10-27T03:33:20.123+00:00"


def test_long_errors_are_truncated() -> None:
    letter = DeadLetter(FakeMessage(b"x"), "rejected_by_model", "e" * 10_000)

    error = headers_dict(dlq_headers(letter, FAILED_AT))["dlq.error"]

    assert len(error) == dlq.MAX_ERROR_CHARS + 3 and error.endswith("...")


def test_every_reason_the_code_can_produce_is_known_for_metrics() -> None:
    assert set(dlq.KNOWN_REASONS) == {
        "invalid_json",
        "invalid_key",
        "invalid_envelope",
        "unsupported_op",
        "invalid_listing",
        "rejected_by_model",
        "invalid_prediction",
    }
