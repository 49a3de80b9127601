"""`python -m operations.watchdog`: the supervised program that heals what the components
cannot heal alone.

- A connector or task that ends FAILED (e.g. the sink after its flush retries ran out
  during a long database outage) is restarted through the Connect REST API
  (`restart?includeTasks=true&onlyFailed=true`), with a backoff per connector that rises
  to a cap and resets once it runs again — the way Strimzi auto-restarts connectors.
- Every RECONCILE_INTERVAL_S, listings without a prediction of their latest state are
  sent through the pipeline again (operations.reconcile).

Every action is one log line; `make status` shows the connectors' states.
"""

from __future__ import annotations

import logging
import signal
import time
from dataclasses import dataclass, field

import httpx

from config.settings import StackSettings
from operations import connectors
from operations.reconcile import reconcile

log = logging.getLogger("watchdog")

CHECK_INTERVAL_S = 5.0
RESTART_BACKOFF_S = (5.0, 300.0)  # first delay, cap
RECONCILE_INTERVAL_S = 60.0
RECONCILE_GRACE_S = 300.0  # far beyond any recovery: only what the pipeline lost


@dataclass
class Backoff:
    """Per-connector restart schedule: the delay doubles after each restart, up to the cap."""

    first_s: float
    cap_s: float
    next_at: dict[str, float] = field(default_factory=dict)
    delay: dict[str, float] = field(default_factory=dict)

    def due(self, name: str, now: float) -> bool:
        return now >= self.next_at.get(name, 0.0)

    def restarted(self, name: str, now: float) -> float:
        delay = self.delay.get(name, self.first_s)
        self.next_at[name] = now + delay
        self.delay[name] = min(delay * 2, self.cap_s)
        return delay

    def healthy(self, name: str) -> None:
        self.next_at.pop(name, None)
        self.delay.pop(name, None)


def heal_connectors(settings: StackSettings, backoff: Backoff, now: float) -> None:
    for state in connectors.all_states(settings.connect):
        if not state.failed:
            if state.running:
                backoff.healthy(state.name)
            continue
        if not backoff.due(state.name, now):
            continue
        with httpx.Client(
            base_url=settings.connect.url, auth=settings.connect.rest_auth, timeout=10
        ) as client:
            client.post(
                f"/connectors/{state.name}/restart",
                params={"includeTasks": "true", "onlyFailed": "true"},
            ).raise_for_status()
        delay = backoff.restarted(state.name, now)
        trace = (state.trace or "").strip().splitlines()[:1]
        log.warning(
            "restarted FAILED connector %s (%s); next restart no sooner than %.0fs; cause: %s",
            state.name,
            state.line().split(None, 2)[-1],
            delay,
            trace[0] if trace else "unknown",
        )


def run(settings: StackSettings) -> None:
    stopping = False

    def stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    backoff = Backoff(*RESTART_BACKOFF_S)
    next_reconcile = time.monotonic() + RECONCILE_INTERVAL_S
    unreachable = False
    log.info(
        "watching connectors every %.0fs, reconciling every %.0fs",
        CHECK_INTERVAL_S,
        RECONCILE_INTERVAL_S,
    )
    while not stopping:
        now = time.monotonic()
        try:
            heal_connectors(settings, backoff, now)
            if unreachable:
                log.info("Connect answers again")
            unreachable = False
        except (httpx.HTTPError, OSError) as exc:
            if not unreachable:  # one line per outage, not one every CHECK_INTERVAL_S
                log.info("Connect not reachable (%s); supervisor restarts it if it died", exc)
            unreachable = True
        if now >= next_reconcile:
            next_reconcile = now + RECONCILE_INTERVAL_S
            try:
                repaired = reconcile(settings, RECONCILE_GRACE_S)
                if repaired:
                    log.warning(
                        "reconcile: re-sent %d listings without a prediction of their "
                        "latest state (first ids %s)",
                        len(repaired),
                        repaired[:10],
                    )
            except Exception as exc:  # noqa: BLE001 - the database may be down; try later
                log.info("reconcile skipped: %s", exc)
        deadline = time.monotonic() + CHECK_INTERVAL_S
        while not stopping and time.monotonic() < deadline:
            time.sleep(0.2)
    log.info("stopped")


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    run(StackSettings())
