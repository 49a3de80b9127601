"""Which model the running price service serves, asked over HTTP (`POST /model`).

The one place that lookup lives: `make deploy-model`, `make rescore`, `make status` and the
bench all ask it. Light to import (httpx only), so `make status` stays quick.
"""

from __future__ import annotations

from typing import Any

import httpx


def serving_info(base_url: str, timeout: float = 30) -> dict[str, Any]:
    """What the service says it serves: `{"model_version", "metrics"}`."""
    response = httpx.post(f"{base_url}/model", json={}, timeout=timeout)
    response.raise_for_status()
    return response.json()


def serving_version(base_url: str) -> str:
    """The tag of the model the service serves now (`car_price_xgb:<version>`)."""
    return serving_info(base_url)["model_version"]
