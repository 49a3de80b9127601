"""Talk to supervisord: start it with a secret-free environment, read process states.

supervisord.conf expands %(ENV_...)s; stack/environments.py decides what supervisord
and each program see.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import xmlrpc.client
from dataclasses import dataclass

import psutil
from supervisor.xmlrpc import Faults, SupervisorTransport

from config.settings import StackSettings
from config.waiting import wait_until
from stack import adminer_dir, environments
from stack.environments import VENV_BIN, program_environment, supervisord_environment

LIVE_CONFIGS = {"scale-out.conf", "prometheus.yml"}
INSTANCE_CONFIG = re.compile(r"connect-\d+\.properties")
ALIVE = {"RUNNING", "STARTING", "BACKOFF"}  # states a stop applies to

__all__ = ["VENV_BIN", "ProcessState", "Supervisor", "stack_environment"]


@dataclass(frozen=True)
class ProcessState:
    name: str
    state: str  # RUNNING, STARTING, STOPPED, FATAL, BACKOFF, EXITED
    pid: int
    description: str


def stack_environment(settings: StackSettings) -> dict[str, str]:
    """Ours plus the STACK_* values and BentoML's settings: for the one-shot commands
    `make` runs (training), never for a supervised program."""
    bentoml = program_environment(settings, "bentoml")
    return {**os.environ, **supervisord_environment(settings), **bentoml}


class Supervisor:
    def __init__(self, settings: StackSettings) -> None:
        self.settings = settings
        self.socket = settings.state_dir / "supervisor.sock"
        self.pidfile = settings.state_dir / "supervisord.pid"

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(VENV_BIN / "supervisorctl"), "-c", str(self.settings.supervisor_conf), *args],
            env=supervisord_environment(self.settings),
            text=True,
            capture_output=True,
            check=check,
        )

    @property
    def _rpc(self) -> xmlrpc.client.ServerProxy:
        transport = SupervisorTransport(None, None, f"unix://{self.socket}")
        return xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)

    def daemon_pid(self) -> int | None:
        """supervisord's pid when it is running and answering, else None."""
        if not self.socket.exists():
            return None
        try:
            return int(self._rpc.supervisor.getPID())
        except (OSError, xmlrpc.client.Fault):
            return None

    def _config_digest(self) -> str:
        """Of the configs running programs read: not those `up` applies live (instances by
        `supervisorctl update`, Prometheus' targets by SIGHUP), so scaling restarts nothing."""
        digest = hashlib.sha256(self.settings.supervisor_conf.read_bytes())
        for path in sorted(self.settings.conf_dir.glob("*")):
            if path.name in LIVE_CONFIGS or INSTANCE_CONFIG.fullmatch(path.name):
                continue
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        return digest.hexdigest()

    def start(self) -> str:
        """Start supervisord, or start whatever it has that is not running. A supervisord
        started with other settings (ports, paths: its environment) is restarted first, so
        a changed `.env` or a supervisord.conf naming new settings takes effect; so does a
        changed supervisord.conf or rendered config (`.state/conf/`: e.g. the broker's SASL
        listeners after an upgrade), compared by digest."""
        environments.write_program_environments(self.settings)
        adminer_dir.prepare(self.settings)
        env = supervisord_environment(self.settings)
        ours = {k: v for k, v in env.items() if k not in environments.OS_BASICS}
        ours["config_digest"] = self._config_digest()
        stamp, restarted = self.settings.state_dir / "supervisord.env.json", ""
        if self.daemon_pid() is not None and (
            not stamp.exists() or json.loads(stamp.read_text()) != ours
        ):
            self.shutdown()
            restarted = "settings changed: stopped every program; "
        if self.daemon_pid() is None:
            self.settings.log_dir.mkdir(parents=True, exist_ok=True)
            conf = str(self.settings.supervisor_conf)
            subprocess.run([str(VENV_BIN / "supervisord"), "-c", conf], env=env, check=True)
            stamp.write_text(json.dumps(ours))
            self._wait_for_daemon()
            return f"{restarted}started supervisord"
        self._ctl("update")  # picks up programs added to supervisord.conf
        stopped = [p.name for p in self.processes() if p.state not in {"RUNNING", "STARTING"}]
        for name in stopped:
            self._ctl("start", name, check=False)
        started = f"started {stopped}" if stopped else "every program is running"
        return f"supervisord already running; {started}"

    def _wait_for_daemon(self, timeout: float = 20) -> None:
        wait_until(
            self.daemon_pid,
            timeout=timeout,
            interval=0.2,
            message=lambda _: f"supervisord did not answer on {self.socket}",
        )

    def processes(self) -> list[ProcessState]:
        return [
            ProcessState(p["name"], p["statename"], p["pid"], p["description"])
            for p in self._rpc.supervisor.getAllProcessInfo()
        ]

    def stop_program(self, name: str) -> None:
        self._rpc.supervisor.stopProcess(name)

    def stop_program_if_running(self, name: str) -> None:
        """Stop it in whatever live state it is (e.g. restarting after a crash). One that
        exits between the look and the stop (just killed) is no error: it is not running."""
        if self._rpc.supervisor.getProcessInfo(name)["statename"] in ALIVE:
            try:
                self._rpc.supervisor.stopProcess(name)
            except xmlrpc.client.Fault as fault:
                if fault.faultCode != Faults.NOT_RUNNING:
                    raise

    def _stop_brokers_together(self, timeout: float) -> None:
        """Several brokers (KAFKA_BROKERS=3) stop at the same time, after every program
        that uses them (supervisord's order: highest priority number first). One by one,
        as supervisord stops a priority's programs, the last broker would wait minutes for
        a controller quorum that is gone to approve its controlled shutdown."""
        rpc = self._rpc.supervisor
        configs = {c["name"]: c["process_prio"] for c in rpc.getAllConfigInfo()}
        brokers = [name for name in configs if name.split("-")[0] == "kafka"]
        if len(brokers) < 2:
            return
        level = max(configs[name] for name in brokers)
        clients = [name for name in configs if configs[name] > level]
        for name in sorted(clients, key=configs.__getitem__, reverse=True):
            self.stop_program_if_running(name)
        for name in brokers:
            if rpc.getProcessInfo(name)["statename"] in ALIVE:
                rpc.stopProcess(name, False)  # no wait: the next one's SIGTERM goes at once
        wait_until(
            lambda: [n for n in brokers if rpc.getProcessInfo(n)["statename"] == "STOPPING"],
            lambda stopping: not stopping,
            timeout=timeout,
            interval=0.2,
            message=lambda stopping: f"brokers {stopping} still stopping after {timeout}s",
        )

    def start_program(self, name: str) -> None:
        self._rpc.supervisor.startProcess(name)

    def restart(self, name: str) -> None:
        """Stop (with the program's stop signal) and start one program, with the
        environment `.env` says now."""
        environments.write_program_environments(self.settings)
        rpc = self._rpc.supervisor
        if rpc.getProcessInfo(name)["statename"] in {"RUNNING", "STARTING", "BACKOFF"}:
            rpc.stopProcess(name)
        rpc.startProcess(name)

    def shutdown(self, timeout: float = 120) -> bool:
        """Stop every program (each with its stop signal) and supervisord itself."""
        pid = self.daemon_pid()
        if pid is None:
            return False
        self._stop_brokers_together(timeout)
        self._rpc.supervisor.shutdown()
        wait_until(
            lambda: not psutil.pid_exists(pid),
            timeout=timeout,
            interval=0.2,
            message=lambda _: f"supervisord (pid {pid}) still running after {timeout}s",
        )
        return True
