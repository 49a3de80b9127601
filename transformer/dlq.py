"""Dead-letter records: park a message we can never predict, and say why.

The DLQ keeps the original key/value bytes untouched (so a fixed message can be
replayed onto the CDC topic as-is) and explains itself in headers: the reason
(a small fixed vocabulary, also the metrics label), the error text, and where
the message came from (topic/partition/offset). Parking is what keeps one bad
row from blocking its partition forever.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from transformer import events, predictor_client
from transformer.consumed import SourceMessage
from transformer.records import OutputRecord

KNOWN_REASONS: tuple[str, ...] = (
    events.REASON_INVALID_JSON,
    events.REASON_INVALID_KEY,
    events.REASON_INVALID_ENVELOPE,
    events.REASON_UNSUPPORTED_OP,
    events.REASON_INVALID_LISTING,
    predictor_client.REASON_REJECTED_BY_MODEL,
    predictor_client.REASON_INVALID_PREDICTION,
)

HEADER_REASON = "dlq.reason"
HEADER_ERROR = "dlq.error"
HEADER_SOURCE_TOPIC = "dlq.source.topic"
HEADER_SOURCE_PARTITION = "dlq.source.partition"
HEADER_SOURCE_OFFSET = "dlq.source.offset"
HEADER_SOURCE_TIMESTAMP = "dlq.source.timestamp"
HEADER_FAILED_AT = "dlq.failed_at"
HEADER_CAR_ID = "dlq.car_id"

MAX_ERROR_CHARS = 2000
# librdkafka's TIMESTAMP_NOT_AVAILABLE
_NO_TIMESTAMP = 0


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """Decision: this message goes to the DLQ, for this reason."""

    message: SourceMessage
    reason: str
    error: str
    car_id: int | None = None


def utc_now() -> datetime:
    return datetime.now(UTC)


def dlq_headers(letter: DeadLetter, failed_at: datetime) -> list[tuple[str, bytes]]:
    """Original headers first (kept for replay), then ours; all values UTF-8 text."""
    message = letter.message
    headers: list[tuple[str, bytes]] = [
        (name, value if value is not None else b"") for name, value in (message.headers() or [])
    ]
    error = (
        letter.error
        if len(letter.error) <= MAX_ERROR_CHARS
        else letter.error[:MAX_ERROR_CHARS] + "..."
    )
    ours: list[tuple[str, str]] = [
        (HEADER_REASON, letter.reason),
        (HEADER_ERROR, error),
        (HEADER_SOURCE_TOPIC, str(message.topic())),
        (HEADER_SOURCE_PARTITION, str(message.partition())),
        (HEADER_SOURCE_OFFSET, str(message.offset())),
        (HEADER_FAILED_AT, failed_at.astimezone(UTC).isoformat(timespec="milliseconds")),
    ]
    timestamp_type, timestamp_ms = message.timestamp()
    if timestamp_type != _NO_TIMESTAMP:
        ours.append((HEADER_SOURCE_TIMESTAMP, str(timestamp_ms)))
    if letter.car_id is not None:
        ours.append((HEADER_CAR_ID, str(letter.car_id)))
    headers.extend((name, value.encode("utf-8")) for name, value in ours)
    return headers


def dead_letter_record(
    topic: str, letter: DeadLetter, now: Callable[[], datetime] = utc_now
) -> OutputRecord:
    return OutputRecord(
        topic=topic,
        key=letter.message.key(),
        value=letter.message.value(),
        headers=dlq_headers(letter, now()),
    )
