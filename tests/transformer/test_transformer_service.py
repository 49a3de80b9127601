"""`python -m transformer` as a process: exit codes, signals, /metrics, JSON logs
(transformer/service.py).

Kafka is pointed at a closed port (127.0.0.1:1): the process runs its loop without ever
reaching a broker, and configuration errors fail fast.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

from transformer.service import JSON_LINES

REPO = Path(__file__).resolve().parents[2]


def start(tmp_path: Path, **env: str) -> subprocess.Popen[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KAFKA_", "BENTOML_", "TRANSFORMER_"))
    }
    base |= {
        "PYTHONPATH": str(REPO),
        "KAFKA_HOST": "127.0.0.1",
        "KAFKA_PORT": "1",
        "BENTOML_PORT": "1",
        "TRANSFORMER_METRICS_PORT": "0",
        "TRANSFORMER_GROUP_ID": "unit-test-never-joins",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "transformer"],
        cwd=tmp_path,
        env=base | env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_invalid_configuration_exits_2_with_a_structured_error(tmp_path: Path) -> None:
    process = start(tmp_path, TRANSFORMER_BATCH_SIZE="0")

    _, stderr = process.communicate(timeout=30)

    assert process.returncode == 2
    assert "invalid_settings" in [line.get("event") for line in json_lines(stderr)]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_signal_stops_the_service_cleanly_with_exit_0(tmp_path: Path, signum: int) -> None:
    process = start(tmp_path)
    try:
        assert process.stderr is not None
        metrics_url, started, deadline = None, False, time.monotonic() + 30
        while not started and time.monotonic() < deadline:
            line = process.stderr.readline()
            if not line:
                break
            if line.startswith("{"):
                parsed = json.loads(line)
                metrics_url = parsed.get("metrics", metrics_url)
                started = parsed.get("event") == "started"
        assert started and metrics_url, "service did not start"
        assert "transformer_events_consumed_total" in httpx.get(metrics_url, timeout=5).text

        process.send_signal(signum)
        _, rest = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()

    assert process.returncode == 0
    events = {line.get("event"): line for line in json_lines(rest)}
    assert "shutdown_requested" in events and events["stopped"]["exit_code"] == 0


def test_log_lines_are_json_with_their_fields_on_top() -> None:
    record = logging.makeLogRecord(
        {"name": "transformer", "levelname": "INFO", "msg": "batch committed"}
    )
    record.__dict__ |= {"event": "batch", "messages": 3}

    line = json.loads(JSON_LINES.format(record))

    assert line["msg"] == "batch committed" and (line["event"], line["messages"]) == ("batch", 3)
    assert line["ts"].endswith("+00:00") and line["level"] == "INFO"


def test_an_identical_kafka_line_passes_once_per_interval() -> None:
    from transformer.service import OncePer

    once = OncePer(interval_s=30)

    def record(message: str, created: float) -> logging.LogRecord:
        made = logging.makeLogRecord({"msg": message})
        made.created = created
        return made

    assert once.filter(record("broker down", 100.0))
    assert not once.filter(record("broker down", 110.0))
    assert once.filter(record("other line", 110.0))
    assert once.filter(record("broker down", 131.0))


class OneWriterAtATime(io.StringIO):
    """Like stderr's BufferedWriter, which raises "reentrant call" when a signal handler
    writes while the main thread is inside a write; this one is signalled from within it."""

    def __init__(self) -> None:
        super().__init__()
        self.writing, self.signalled = False, False

    def write(self, text: str) -> int:
        if self.writing:
            raise RuntimeError("reentrant call inside OneWriterAtATime")
        self.writing = True
        try:
            if not self.signalled:
                self.signalled = True
                os.kill(os.getpid(), signal.SIGTERM)  # its handler runs before kill returns
            return super().write(text)
        finally:
            self.writing = False


def test_a_signal_arriving_while_a_log_line_is_written_still_stops(monkeypatch) -> None:
    from transformer.service import configure_logging, stop_on_signals

    stream = OneWriterAtATime()
    monkeypatch.setattr(sys, "stderr", stream)  # logging's StreamHandler and handleError
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    root, kafka, http = (logging.getLogger(n) for n in ("", "transformer.kafka", "httpx"))
    kept = root.handlers[:], root.level, kafka.filters[:], http.level
    stop = threading.Event()
    try:
        configure_logging("INFO")  # the service's own: a handler on stderr
        received = stop_on_signals(stop)
        logging.getLogger("transformer").info("batch committed")
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)
        root.handlers[:], root.level, kafka.filters[:], http.level = kept

    assert stream.signalled and stop.is_set(), stream.getvalue()
    assert received == ["SIGTERM"]
