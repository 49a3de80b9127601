"""Helpers for the model tests: generated Ford-like data, training through the real CLI
into a throw-away BentoML store, and a real `bentoml serve` subprocess.

Training and serving run as subprocesses with their own $BENTOML_HOME, so no test ever
touches the developer's store in .state/bentoml, and BentoML's import-time settings in
the pytest process do not matter.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[2]
PYTHON = sys.executable
BENTOML = str(Path(sys.executable).with_name("bentoml"))

# (name, share of rows, base price) - a few rare names exercise the "Other" bucket.
_CAR_MODELS = [
    ("Fiesta", 0.35, 16000),
    ("Focus", 0.25, 21000),
    ("Kuga", 0.15, 27000),
    ("EcoSport", 0.1, 19000),
    ("Mondeo", 0.08, 24000),
    ("Galaxy", 0.065, 30000),
    ("Streetka", 0.005, 6000),
]


def make_ford_like(n_rows: int, seed: int = 0) -> pd.DataFrame:
    """Synthetic listings with the Ford CSV's columns and quirks (leading space in `model`).

    Prices follow a simple depreciation rule plus noise, so a model has something to learn.
    """
    rng = np.random.default_rng(seed)
    names, shares, bases = zip(*_CAR_MODELS)
    pick = rng.choice(len(names), size=n_rows, p=np.array(shares) / sum(shares))
    year = rng.integers(2010, 2021, size=n_rows)
    age = 2021 - year
    mileage = np.maximum(0, rng.normal(8000 * age, 3000 * np.sqrt(age))).round()
    engine = rng.choice([1.0, 1.5, 2.0], size=n_rows, p=[0.5, 0.3, 0.2])
    fuel = rng.choice(["Petrol", "Diesel", "Hybrid"], size=n_rows, p=[0.6, 0.37, 0.03])
    transmission = rng.choice(["Manual", "Automatic", "Semi-Auto"], size=n_rows, p=[0.8, 0.1, 0.1])
    base = np.array(bases)[pick] * (1 + 0.25 * (engine - 1.0))
    price = base * 0.86**age * np.exp(-mileage / 250_000) * rng.lognormal(0, 0.06, size=n_rows)
    return pd.DataFrame(
        {
            "model": [" " + names[i] for i in pick],
            "year": year,
            "price": np.maximum(price.round(), 300).astype(int),
            "transmission": transmission,
            "mileage": mileage.astype(int),
            "fuelType": fuel,
            "tax": np.where(year >= 2017, 145, rng.choice([0, 20, 125, 160], size=n_rows)),
            "mpg": (70 - 12 * (engine - 1.0) + rng.normal(0, 2, size=n_rows)).round(1),
            "engineSize": engine,
        }
    )


def subprocess_env(bentoml_home: Path) -> dict[str, str]:
    """Environment for CLI subprocesses: private store, no model pin, no telemetry."""
    env = dict(os.environ)
    env.pop("BENTOML_MODEL_TAG", None)
    env.update(
        {
            "BENTOML_HOME": str(bentoml_home),
            "BENTOML_DO_NOT_TRACK": "True",
            "PYTHONPATH": str(REPO_ROOT),
        }
    )
    return env


@dataclass(frozen=True)
class TrainedModel:
    bentoml_home: Path
    report_dir: Path
    data_path: Path
    result: subprocess.CompletedProcess[str]


def run_training(
    data_path: Path, bentoml_home: Path, report_dir: Path, *extra: str, timeout: float = 1200
) -> subprocess.CompletedProcess[str]:
    """`python -m model.train` exactly as a person or the Makefile runs it."""
    return subprocess.run(
        [
            PYTHON,
            "-m",
            "model.train",
            "--data",
            str(data_path),
            "--report-dir",
            str(report_dir),
            "--quiet",
            *extra,
        ],
        check=False,
        cwd=REPO_ROOT,
        env=subprocess_env(bentoml_home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def train_or_fail(data_path: Path, root: Path) -> TrainedModel:
    home, reports = root / "bentoml", root / "reports"
    result = run_training(data_path, home, reports)
    assert result.returncode == 0, f"training failed:\n{result.stdout}\n{result.stderr}"
    return TrainedModel(bentoml_home=home, report_dir=reports, data_path=data_path, result=result)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def bentoml_serve(bentoml_home: Path, log_path: Path, timeout: float = 120) -> Iterator[str]:
    """Run the real `bentoml serve` on a free loopback port; yields the base URL.

    The server gets its own process group so teardown stops it and its workers, and
    only them.
    """
    port = free_port()
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            BENTOML,
            "serve",
            "model.service:CarPriceService",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=subprocess_env(bentoml_home),
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base_url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited early:\n{log_path.read_text()[-4000:]}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"bentoml serve not ready in {timeout}s:\n{log_path.read_text()[-4000:]}"
                )
            time.sleep(0.5)
        yield base_url
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=10)
        log.close()


def raw_request(base_url: str, head: bytes, body_chunks: list[bytes]) -> tuple[bytes, float]:
    """Send a request over a plain socket; returns (response head, seconds to answer)."""
    host, port = base_url.removeprefix("http://").split(":")
    started = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=20) as sock:
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except OSError:
            pass  # the server may hang up once it has answered 413
        answer = b""
        while b"\r\n\r\n" not in answer:
            data = sock.recv(65536)
            if not data:
                break
            answer += data
    return answer, time.monotonic() - started
