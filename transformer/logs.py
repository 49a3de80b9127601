"""One-line JSON logs, so batch lines can be grepped and parsed by tests and tools.

Use `log_event(logger, level, "batch", events=.., ...)`: `event` names the kind of
line, the keyword fields become top-level JSON keys.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

_FIELDS_ATTR = "structured_fields"
KAFKA_LOGGER = "transformer.kafka"  # librdkafka's own log lines (config "logger")


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, _FIELDS_ATTR, {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class RepeatFilter(logging.Filter):
    """Let an identical message through once per interval.

    librdkafka logs every reconnect attempt while a broker is down; one line per
    interval says the same without flooding the log.
    """

    def __init__(
        self, interval_s: float = 30.0, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__()
        self._interval = interval_s
        self._clock = clock
        self._last: dict[tuple[int, str], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.levelno, record.getMessage())
        now = self._clock()
        if now - self._last.get(key, float("-inf")) < self._interval:
            return False
        if len(self._last) > 1000:  # bounded memory for ever-changing messages
            self._last.clear()
        self._last[key] = now
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # httpx logs every request at INFO; one line per batch is ours to write.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    kafka = logging.getLogger(KAFKA_LOGGER)
    if not any(isinstance(f, RepeatFilter) for f in kafka.filters):
        kafka.addFilter(RepeatFilter())


def log_event(logger: logging.Logger, level: int, event: str, msg: str = "", **fields: Any) -> None:
    if logger.isEnabledFor(level):
        logger.log(level, msg or event, extra={_FIELDS_ATTR: {"event": event, **fields}})
