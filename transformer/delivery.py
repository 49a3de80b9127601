"""Bookkeeping for producer delivery reports.

Offsets may only be committed once every record of the batch is acknowledged
(acks=all). The tracker counts in-flight records from the delivery callbacks and
remembers failed ones so exactly those can be produced again; every prediction
key appears once per batch, so re-sending a failed one cannot reorder a key.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from transformer.records import OutputRecord


class DeliveryError(Protocol):
    def fatal(self) -> bool: ...
    def str(self) -> str: ...


class DeliveryTracker:
    def __init__(self) -> None:
        self._in_flight: dict[int, OutputRecord] = {}
        self._failed: list[tuple[OutputRecord, str]] = []
        self._next_token = 0
        self.delivered = 0
        self.fatal_error: str | None = None

    def track(self, record: OutputRecord) -> tuple[int, Callable[[Any, Any], None]]:
        """Register a record about to be produced; returns (token, on_delivery callback)."""
        token = self._next_token
        self._next_token += 1
        self._in_flight[token] = record

        def on_delivery(err: DeliveryError | None, _msg: Any) -> None:
            done = self._in_flight.pop(token, None)
            if done is None:
                return  # duplicate report: ignore
            if err is None:
                self.delivered += 1
                return
            if err.fatal():
                self.fatal_error = err.str()
            self._failed.append((done, err.str()))

        return token, on_delivery

    def forget(self, token: int) -> None:
        """Drop a registration whose produce() raised: no report will ever come for it."""
        self._in_flight.pop(token, None)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    @property
    def has_failures(self) -> bool:
        return bool(self._failed)

    def take_failed(self) -> list[tuple[OutputRecord, str]]:
        failed, self._failed = self._failed, []
        return failed

    @property
    def all_delivered(self) -> bool:
        return not self._in_flight and not self._failed and self.fatal_error is None
