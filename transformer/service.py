"""`python -m transformer`: settings, JSON logs, signals, /metrics and the clients around
the pipeline. Exits 0 after SIGTERM/SIGINT, 1 on a fatal Kafka error (a restart replays
from the last commit), 2 on invalid configuration."""

import logging
import signal
import threading
from typing import Any

import httpx
from confluent_kafka import Consumer, KafkaException, Producer
from prometheus_client import start_http_server
from pydantic import ValidationError
from pythonjsonlogger.json import JsonFormatter

from transformer.bentoml_client import BentoMLClient
from transformer.metrics import Metrics
from transformer.pipeline import Pipeline
from transformer.settings import Settings

log = logging.getLogger("transformer")
NAMES = {"levelname": "level", "name": "logger", "message": "msg", "exc_info": "exc"}
JSON_LINES = JsonFormatter(  # one object per line; the `extra=` fields are top-level keys
    "{levelname}{name}{message}", style="{", timestamp="ts", rename_fields=NAMES
)


class OncePer(logging.Filter):
    """Let an identical message through once per interval: while a broker is down,
    librdkafka reports every reconnect attempt, from each client, and error_cb repeats it."""

    def __init__(self, interval_s: float = 30.0) -> None:
        super().__init__()
        self.interval_s, self.last = interval_s, {}

    def filter(self, record: logging.LogRecord) -> bool:
        message, now = record.getMessage(), record.created
        if now - self.last.get(message, float("-inf")) < self.interval_s:
            return False
        self.last = {m: t for m, t in self.last.items() if now - t < self.interval_s}  # bounded
        self.last[message] = now
        return True


def configure_logging(level: str) -> None:
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(JSON_LINES)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request is too many
    logging.getLogger("transformer.kafka").addFilter(OncePer())


def stop_on_signals(stop: threading.Event) -> list[str]:
    """SIGTERM/SIGINT: finish the current batch, then stop; a second one kills at once.

    The handler only sets `stop` and notes the signal; the main loop logs it. A handler
    runs between two bytecodes of the main thread, maybe halfway through writing a log
    line to stderr: a log call in it raised "reentrant call inside BufferedWriter",
    logging swallowed that, and the stop was lost (supervisord SIGKILLed us 30 s later)."""
    received: list[str] = []

    def handle(signum: int, _frame: Any) -> None:
        stop.set()
        received.append(signal.Signals(signum).name)
        signal.signal(signum, signal.SIG_DFL)

    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, handle)
    return received


def run() -> int:
    try:
        settings = Settings()
    except ValidationError as exc:
        configure_logging("INFO")
        errors = exc.errors(include_url=False, include_context=False)
        log.critical("invalid configuration", extra={"event": "invalid_settings", "errors": errors})
        return 2
    configure_logging(settings.transformer_log_level)
    stop, metrics = threading.Event(), Metrics()
    received = stop_on_signals(stop)
    host, port = settings.transformer_metrics_host, settings.transformer_metrics_port
    try:
        server, _ = start_http_server(port, host, metrics.registry)
    except OSError as exc:
        log.critical(f"cannot serve /metrics: {exc}", extra={"event": "metrics_unavailable"})
        return 2
    url = f"http://{host}:{server.server_address[1]}/metrics"
    log.info("transformer starting", extra={"event": "config", "metrics": url})
    timeout_s = settings.transformer_request_timeout_ms / 1000
    http = httpx.Client(base_url=settings.bentoml_url, timeout=timeout_s)
    seconds = metrics.bentoml_request_seconds
    bentoml = BentoMLClient(http, lambda took, outcome: seconds.labels(outcome).observe(took))
    pipeline = Pipeline(settings, bentoml.predict, metrics, stop)
    callbacks = {"error_cb": pipeline.on_error, "logger": logging.getLogger("transformer.kafka")}
    pipeline.consumer = Consumer(settings.consumer_config() | callbacks)
    pipeline.producer = Producer(settings.producer_config() | callbacks)
    exit_code = 0
    try:
        pipeline.run()  # returns once `stop` is set
        signals = ", ".join(received)
        log.info(f"{signals}: batch finished, stopping", extra={"event": "shutdown_requested"})
    except KafkaException as exc:  # fatal: the client is unusable
        log.critical(f"fatal Kafka error, exiting: {exc}", extra={"event": "fatal"})
        exit_code = 1
    finally:
        pipeline.consumer.close()  # leaves the group now, not after the session timeout
        http.close()
        server.shutdown()
    log.info("transformer stopped", extra={"event": "stopped", "exit_code": exit_code})
    return exit_code
