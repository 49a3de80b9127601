"""One micro-batch, from consumed messages to the records to produce. No Kafka here.

Order of decisions:
1. parse every message; unparseable ones become dead letters right away (they
   don't take part in dedupe, so a garbage update can't hide an earlier valid one);
2. keep only the newest valid event per listing id;
3. one /predict call for all upserts (the caller's `predict` handles retries and
   400 isolation); rejected listings become dead letters;
4. build one prediction record per upserted listing and one tombstone per deleted
   listing.

Debezium tombstones: a delete event and the tombstone after it both map to a
prediction tombstone for that id. Inside one batch dedupe collapses them to one
record; across batches the second one is a harmless repeated delete for the sink.
We keep it on purpose: if the CDC topic is ever compacted, the tombstone can be
the only trace of a delete left, and it must still remove the prediction.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from transformer import events
from transformer.batching import latest_per_key
from transformer.consumed import SourceMessage, partition_key
from transformer.dlq import DeadLetter, dead_letter_record, utc_now
from transformer.events import ChangeEvent, InvalidEvent, ListingUpserted
from transformer.predictor_client import Prediction, Rejection
from transformer.records import OutputRecord, prediction_record, tombstone_record

PredictListings = Callable[[list[dict[str, Any]]], list[Prediction | Rejection]]

EVENT_KINDS = ("create", "read", "update", "delete", "tombstone", "invalid")
_OP_KIND = {"c": "create", "r": "read", "u": "update"}


@dataclass(frozen=True, slots=True)
class ParsedMessage:
    message: SourceMessage
    event: ChangeEvent


@dataclass(slots=True)
class BatchResult:
    """Records to produce for a batch, and counts for the log line and metrics."""

    records: list[OutputRecord] = field(default_factory=list)
    events_by_kind: Counter[str] = field(default_factory=Counter)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    superseded: int = 0
    listings_sent: int = 0
    predictions: int = 0
    tombstones: int = 0
    predict_seconds: float = 0.0

    @property
    def dlq_by_reason(self) -> Counter[str]:
        return Counter(letter.reason for letter in self.dead_letters)


def event_kind(event: ChangeEvent) -> str:
    if isinstance(event, ListingUpserted):
        return _OP_KIND[event.op]
    if isinstance(event, events.ListingDeleted):
        return "delete"
    return "tombstone"


def transform_batch(
    messages: Sequence[SourceMessage],
    *,
    predict: PredictListings,
    predictions_topic: str,
    dlq_topic: str,
    now: Callable[[], datetime] = utc_now,
) -> BatchResult:
    result = BatchResult()
    parsed: list[ParsedMessage] = []
    for message in messages:
        try:
            event = events.parse_change_event(message.key(), message.value())
        except InvalidEvent as invalid:
            result.events_by_kind["invalid"] += 1
            result.dead_letters.append(
                DeadLetter(message, invalid.reason, invalid.detail, invalid.car_id)
            )
            continue
        result.events_by_kind[event_kind(event)] += 1
        parsed.append(ParsedMessage(message, event))

    latest = latest_per_key(
        parsed,
        key=lambda item: item.event.car_id,
        position=lambda item: (partition_key(item.message), int(item.message.offset() or 0)),
    )
    result.superseded = len(parsed) - len(latest)

    upserts = [item for item in latest if isinstance(item.event, ListingUpserted)]
    answers: dict[int, Prediction | Rejection] = {}
    if upserts:
        result.listings_sent = len(upserts)
        started = time.perf_counter()
        outcomes = predict([item.event.listing.as_request() for item in upserts])  # type: ignore[union-attr]
        result.predict_seconds = time.perf_counter() - started
        if len(outcomes) != len(upserts):
            raise AssertionError("predict must return one outcome per listing")
        answers = {id(item): outcome for item, outcome in zip(upserts, outcomes, strict=True)}

    output: list[OutputRecord] = []
    for item in latest:
        event = item.event
        if isinstance(event, ListingUpserted):
            outcome = answers[id(item)]
            if isinstance(outcome, Rejection):
                result.dead_letters.append(
                    DeadLetter(item.message, outcome.reason, outcome.detail, event.car_id)
                )
                continue
            output.append(
                prediction_record(predictions_topic, event.car_id, outcome, event.source_ts_ms)
            )
            result.predictions += 1
        else:
            output.append(tombstone_record(predictions_topic, event.car_id))
            result.tombstones += 1

    result.records = [dead_letter_record(dlq_topic, letter, now) for letter in result.dead_letters]
    result.records.extend(output)
    return result
