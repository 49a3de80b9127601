"""One-line JSON logs (transformer/logs.py)."""

from __future__ import annotations

import json
import logging

from transformer.logs import JsonFormatter, log_event


def test_structured_fields_become_top_level_json_keys() -> None:
    logger = logging.getLogger("transformer.test_logs")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[method-assign]
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        log_event(
            logger,
            logging.INFO,
            "batch",
            "batch committed",
            messages=3,
            dlq_reasons={"invalid_json": 1},
        )
        log_event(logger, logging.DEBUG, "noise", "not emitted")
    finally:
        logger.removeHandler(handler)

    assert len(records) == 1
    line = JsonFormatter().format(records[0])
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["event"] == "batch"
    assert parsed["msg"] == "batch committed"
    assert parsed["level"] == "INFO"
    assert parsed["messages"] == 3
    assert parsed["dlq_reasons"] == {"invalid_json": 1}
    assert parsed["ts"].endswith("+00:00")


def test_exceptions_stay_on_one_line() -> None:
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        record = logging.LogRecord("t", logging.ERROR, __file__, 1, "failed", None, exc_info=True)
        import sys

        record.exc_info = sys.exc_info()

    line = JsonFormatter().format(record)

    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exc"]


def test_repeated_library_lines_are_let_through_once_per_interval() -> None:
    from transformer.logs import RepeatFilter

    now = [0.0]
    repeat = RepeatFilter(interval_s=30, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("transformer.kafka", logging.ERROR, __file__, 1, msg, None, None)

    passed = []
    for t, msg in [
        (0, "broker down"),
        (1, "broker down"),
        (2, "other"),
        (29, "broker down"),
        (31, "broker down"),
    ]:
        now[0] = t
        passed.append(repeat.filter(record(msg)))

    assert passed == [True, False, True, False, True]
