"""Wire settings, Kafka clients, the BentoML client and metrics into a running service.

`run()` is what `python -m transformer` executes. It returns a process exit code:
0 after a requested shutdown (SIGTERM/SIGINT), 1 on a fatal Kafka error (restart
and replay is the recovery), 2 on invalid configuration.
"""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from confluent_kafka import Consumer, Producer
from pydantic import ValidationError

from transformer.logs import KAFKA_LOGGER, configure_logging, log_event
from transformer.metrics import TransformerMetrics, serve_metrics
from transformer.pipeline import (
    FatalKafkaError,
    KafkaErrorMonitor,
    Pipeline,
    consumer_config,
    producer_config,
)
from transformer.predictor_client import PredictorClient
from transformer.settings import Settings

log = logging.getLogger("transformer")

_metrics: TransformerMetrics | None = None


def _default_metrics() -> TransformerMetrics:
    """One metrics set per process: the default registry refuses duplicates."""
    global _metrics
    if _metrics is None:
        _metrics = TransformerMetrics()
    return _metrics


def install_signal_handlers(stop: threading.Event) -> None:
    """First SIGTERM/SIGINT asks for a clean stop; a second one kills immediately."""

    def handle(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            return
        stop.set()
        log_event(
            log,
            logging.INFO,
            "shutdown_requested",
            f"{name}: finishing the current batch",
            signal=name,
        )
        signal.signal(signum, signal.SIG_DFL)

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)


def run(
    settings: Settings | None = None,
    *,
    stop: threading.Event | None = None,
    handle_signals: bool = True,
) -> int:
    if settings is None:
        try:
            settings = Settings()
        except ValidationError as exc:
            configure_logging("INFO")
            log_event(
                log,
                logging.CRITICAL,
                "invalid_settings",
                "invalid configuration",
                errors=exc.errors(include_url=False, include_context=False),
            )
            return 2
    configure_logging(settings.log_level)
    stop = stop or threading.Event()
    if handle_signals:
        install_signal_handlers(stop)

    metrics = _default_metrics()
    try:
        metrics_server = serve_metrics(
            settings.metrics_host, settings.metrics_port, metrics.registry
        )
    except OSError as exc:
        log_event(
            log,
            logging.CRITICAL,
            "metrics_unavailable",
            "cannot serve /metrics",
            host=settings.metrics_host,
            port=settings.metrics_port,
            error=str(exc),
        )
        return 2
    log_event(
        log,
        logging.INFO,
        "config",
        "transformer starting",
        kafka=settings.bootstrap_servers,
        cdc_topic=settings.cdc_topic,
        predictions_topic=settings.predictions_topic,
        dlq_topic=settings.dlq_topic,
        bentoml=settings.bentoml_url,
        group_id=settings.group_id,
        metrics=f"http://{settings.metrics_host}:{metrics_server.server_address[1]}/metrics",
    )

    kafka_log = logging.getLogger(KAFKA_LOGGER)
    predictor = PredictorClient(
        settings.bentoml_url,
        timeout_s=settings.request_timeout_ms / 1000,
        on_request=metrics.observe_request,
    )
    errors = KafkaErrorMonitor()
    consumer: Consumer | None = None
    exit_code = 0
    try:
        consumer = Consumer(consumer_config(settings, error_cb=errors, logger=kafka_log))
        producer = Producer(producer_config(settings, error_cb=errors, logger=kafka_log))
        Pipeline(
            settings,
            consumer=consumer,
            producer=producer,
            predict=predictor.predict,
            metrics=metrics,
            stop=stop,
            errors=errors,
        ).run()
        # Normally empty: a batch only ends after all its records were acknowledged.
        remaining = producer.flush(1.0)
        if remaining:
            log_event(
                log,
                logging.WARNING,
                "flush_incomplete",
                "records still unacknowledged at exit; their batch was not committed",
                remaining=remaining,
            )
    except FatalKafkaError as exc:
        log_event(
            log,
            logging.CRITICAL,
            "fatal",
            "fatal Kafka error; exiting for a restart",
            error=str(exc),
        )
        exit_code = 1
    finally:
        if consumer is not None:
            try:
                consumer.close()  # leaves the group now instead of after session timeout
            except Exception as exc:  # noqa: BLE001 - best effort on the way out
                log.warning("consumer close failed: %s", exc)
        predictor.close()
        metrics_server.shutdown()
    log_event(log, logging.INFO, "stopped", "transformer stopped", exit_code=exit_code)
    return exit_code
