"""`make rolling-restart` (`python -m operations.rolling_restart`): restart the brokers of a
KAFKA_BROKERS=3 cluster one at a time, so clients never lose a leader for long and no
acknowledged write is lost (docs/cluster.md).

Before each broker stops, every partition must have its full in-sync replica set (ISR):
stopping one more broker then leaves each partition with at least min.insync.replicas
copies and an in-sync leader. Each stop is a SIGTERM, i.e. Kafka's controlled shutdown
(leadership moves off the broker before it exits); the active controller goes last, so
the quorum elects a new leader once. At the end a preferred-leader election spreads the
leaders over the brokers again.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from collections.abc import Callable

from confluent_kafka import ElectionType, KafkaException
from confluent_kafka.admin import AdminClient

from config.settings import StackSettings
from config.waiting import wait_until
from operations import replicas
from stack import readiness
from stack.render import instance_name
from stack.supervisor import Supervisor

# how long one broker may take to stop, start and be caught up again (a 2-core machine
# under load starts a broker in ~10 s and catches up in seconds)
STEP_TIMEOUT_S = 300


def quorum_leader(settings: StackSettings) -> int | None:
    """The active controller's node id, as Kafka's `kafka-metadata-quorum describe --status`
    reports it (asked through the brokers, as the admin); None when it cannot tell."""
    tool = subprocess.run(
        [
            "java",
            "-cp",
            f"{settings.jvm_dir}/kafka/libs/*",
            f"-Dlog4j2.configurationFile={settings.conf_dir / 'log4j2.properties'}",
            "org.apache.kafka.tools.MetadataQuorumCommand",
            "--bootstrap-server",
            settings.kafka.bootstrap_servers,
            "--command-config",
            str(settings.admin_client_properties),
            "describe",
            "--status",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    found = re.search(r"^LeaderId:\s*(\d+)", tool.stdout, re.MULTILINE)
    return int(found.group(1)) if found else None


def restart_order(brokers: range, leader: int | None) -> list[int]:
    """Every broker once, the active controller last."""
    return sorted(brokers, key=lambda node: (node == leader, node))


def _wait(what: str, check: Callable[[], object], timeout: float = STEP_TIMEOUT_S) -> float:
    """Poll `check()` (None/empty = done) until done; returns the seconds it took."""
    started = time.monotonic()
    wait_until(
        check,
        lambda reason: not reason,
        timeout=timeout,
        interval=0.5,
        message=lambda reason: f"{what}: not after {timeout:.0f}s ({reason})",
    )
    return time.monotonic() - started


def fully_replicated(settings: StackSettings) -> str | None:
    """None once every broker is in the metadata and every partition's ISR is complete."""
    missing = readiness.kafka_ready(settings)
    if missing:
        return missing
    try:
        behind = replicas.under_replicated(settings)
    except KafkaException as exc:  # metadata not answered this time (a broker stopping)
        return f"no metadata: {exc}"
    if not behind:
        return None
    return f"{len(behind)} under-replicated partitions: {', '.join(behind[:5])}"


def rolling_restart(settings: StackSettings, say: Callable[[str], None] = print) -> None:
    """Restart each broker in turn, waiting for a complete ISR before each stop and after
    each start; raise TimeoutError (and stop there) when the cluster does not get there."""
    if settings.kafka.kafka_brokers < 3:
        raise SystemExit(
            "make rolling-restart needs a cluster (KAFKA_BROKERS=3): a single broker cannot "
            "restart without a pause; `make restart P=kafka` restarts it"
        )
    supervisor = Supervisor(settings)
    leader = quorum_leader(settings)
    order = restart_order(settings.kafka.brokers, leader)
    say(f"rolling restart of brokers {order} (active controller: {leader or 'unknown'}, last)")
    started = time.monotonic()
    for node in order:
        name = instance_name("kafka", node)
        waited = _wait(f"before stopping {name}", lambda: fully_replicated(settings))
        stop_at = time.monotonic()
        supervisor.stop_program(name)  # SIGTERM: controlled shutdown, then exit
        stopped = time.monotonic() - stop_at
        supervisor.start_program(name)
        back = _wait(f"{name} back", lambda node=node: readiness.broker_ready(settings, node))
        synced = _wait(f"{name} in sync", lambda: fully_replicated(settings))
        say(
            f"  {name}: in sync before stop after {waited:.1f}s, stopped in {stopped:.1f}s, "
            f"back in the metadata after {back:.1f}s, every ISR complete after {synced:.1f}s"
        )
    try:  # per-partition answers (ELECTION_NOT_NEEDED, ...) come back in a dict: fine
        admin = AdminClient(settings.kafka_admin(log_level=0))
        admin.elect_leaders(ElectionType.PREFERRED).result()
    except KafkaException as exc:  # the restart is done; Kafka rebalances within 5 min
        say(f"preferred leader election not done now: {exc}")
    say(f"done: every broker restarted, every ISR complete ({time.monotonic() - started:.0f}s)")


def main() -> int:
    def say(message: str) -> None:
        print(f"[rolling-restart] {message}", flush=True)

    try:
        rolling_restart(StackSettings(), say)
    except TimeoutError as exc:
        say(f"stopped: {exc}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
