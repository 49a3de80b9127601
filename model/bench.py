"""Latency/throughput benchmark of a running price service: `python -m model.bench`.

Not a test: it prints numbers for people. It targets
http://$BENTOML_HOST:$BENTOML_PORT (default 127.0.0.1:3000), refuses anything that is
not a loopback address, sends a bounded number of sequential requests over one
keep-alive connection, and uses generated listings (never the real data).
"""

from __future__ import annotations

import argparse
import ipaddress
import socket
import statistics
import sys
import time
from dataclasses import dataclass

import httpx
import numpy as np

from config.settings import BentoMLSettings

MODELS = [
    "Fiesta",
    "Focus",
    "Kuga",
    "EcoSport",
    "C-MAX",
    "Ka+",
    "Mondeo",
    "B-MAX",
    "S-MAX",
    "Galaxy",
]
FUELS = ["Petrol", "Diesel", "Hybrid"]
TRANSMISSIONS = ["Manual", "Automatic", "Semi-Auto"]


def make_listings(n: int, seed: int = 0) -> list[dict[str, object]]:
    """Plausible random listings in the /predict contract's field names."""
    rng = np.random.default_rng(seed)
    return [
        {
            "model": str(rng.choice(MODELS)),
            "year": int(rng.integers(2008, 2021)),
            "transmission": str(rng.choice(TRANSMISSIONS)),
            "mileage": float(rng.integers(0, 120_000)),
            "fuel_type": str(rng.choice(FUELS)),
            "tax": float(rng.choice([0, 20, 125, 145, 150, 200])),
            "mpg": float(np.round(rng.uniform(35, 75), 1)),
            "engine_size": float(rng.choice([1.0, 1.2, 1.5, 2.0])),
        }
        for _ in range(n)
    ]


def ensure_loopback(host: str) -> None:
    """The benchmark only ever talks to this machine."""
    address = ipaddress.ip_address(socket.gethostbyname(host))
    if not address.is_loopback:
        raise SystemExit(f"refusing to benchmark non-loopback host {host} ({address})")


@dataclass(frozen=True)
class Result:
    batch: int
    requests: int
    p50_ms: float
    p99_ms: float
    rows_per_s: float


def measure(client: httpx.Client, batch: int, requests: int, warmup: int = 5) -> Result:
    """Time `requests` sequential POST /predict calls carrying `batch` listings each."""
    body = {"listings": make_listings(batch, seed=batch)}
    for _ in range(warmup):
        client.post("/predict", json=body).raise_for_status()
    timings = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.post("/predict", json=body)
        timings.append(time.perf_counter() - started)
        response.raise_for_status()
        if len(response.json()) != batch:
            raise SystemExit(f"expected {batch} predictions, got {len(response.json())}")
    ms = [t * 1000 for t in timings]
    return Result(
        batch,
        requests,
        float(np.percentile(ms, 50, method="inverted_cdf")),  # nearest rank: a measured value
        float(np.percentile(ms, 99, method="inverted_cdf")),
        batch / statistics.fmean(timings),
    )


def format_table(results: list[Result]) -> str:
    header = f"{'listings/request':>16} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'rows/s':>9}"
    lines = [header, "-" * len(header)]
    lines += [
        f"{r.batch:>16} {r.requests:>8} {r.p50_ms:>8.1f} {r.p99_ms:>8.1f} {r.rows_per_s:>9,.0f}"
        for r in results
    ]
    return "\n".join(lines)


# (listings per request, requests): 1 and 500 answer the latency question; 100/500/2000
# the throughput one. Counts are bounded so a run takes well under a minute.
PLAN = ((1, 300), (100, 100), (500, 60), (2000, 20))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m model.bench", description=__doc__.split("\n")[0]
    )
    service = BentoMLSettings()
    parser.add_argument("--host", default=service.bentoml_host)
    parser.add_argument("--port", type=int, default=service.bentoml_port)
    parser.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply request counts (0.1 for a smoke run, max 3)",
    )
    args = parser.parse_args(argv)
    ensure_loopback(args.host)
    scale = min(max(args.scale, 0.01), 3.0)
    base_url = f"http://{args.host}:{args.port}"
    with httpx.Client(base_url=base_url, timeout=60) as client:
        try:
            client.get("/readyz").raise_for_status()
        except httpx.HTTPError as exc:
            print(f"service at {base_url} is not ready: {exc}", file=sys.stderr)
            return 1
        version = client.post("/predict", json={"listings": make_listings(1)}).json()[0][
            "model_version"
        ]
        print(f"benchmarking {base_url} ({version}); sequential requests, one connection")
        results = [measure(client, batch, max(3, int(n * scale))) for batch, n in PLAN]
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
