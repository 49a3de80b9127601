"""Save the price model to, and load it from, the BentoML model store.

The store location follows $BENTOML_HOME (the Makefile points it at .state/bentoml),
so tests can use a throw-away store by setting that variable.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import bentoml

from model.predictor import PricePredictor

MODEL_NAME = "car_price_xgb"
#: Env var that pins the served model; unset means the newest `car_price_xgb`.
MODEL_TAG_ENV_VAR = "BENTOML_MODEL_TAG"


def served_tag() -> str:
    """The tag the service should load: $BENTOML_MODEL_TAG or the latest version."""
    return os.environ.get(MODEL_TAG_ENV_VAR) or f"{MODEL_NAME}:latest"


def save_predictor(
    predictor: PricePredictor, metadata: dict[str, Any], labels: dict[str, str] | None = None
) -> str:
    """Write the predictor as a new model version; returns 'car_price_xgb:<version>'."""
    with bentoml.models.create(MODEL_NAME, metadata=metadata, labels=labels or {}) as stored:
        predictor.save(Path(stored.path))
    return str(stored.tag)


def load_predictor(
    tag: str | None = None, n_threads: int | None = None
) -> tuple[PricePredictor, str, dict[str, Any]]:
    """Load (predictor, resolved tag, metadata) from the store."""
    stored = bentoml.models.get(tag or served_tag())
    predictor = PricePredictor.load(Path(stored.path), n_threads=n_threads)
    return predictor, str(stored.tag), dict(stored.info.metadata)
