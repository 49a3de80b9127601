"""Save the price model to, and load it from, the BentoML model store.

The store location follows $BENTOML_HOME (the Makefile points it at .state/bentoml),
so tests can use a throw-away store by setting that variable. What the service reads
at start is declared once, in `ServingSettings` (the bento ships model/ only, so the
class lives here rather than in stack/settings.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from model.predictor import PricePredictor

MODEL_NAME = "car_price_xgb"


class ServingSettings(BaseSettings):
    """BENTOML_MODEL_TAG pins the served model (unset: the newest `car_price_xgb`);
    CAR_PRICE_PREDICT_THREADS: XGBoost threads per prediction (2 cores are shared with
    Kafka on the dev box)."""

    model_config = SettingsConfigDict(extra="ignore")

    bentoml_model_tag: str = ""
    car_price_predict_threads: int = Field(2, ge=1)


def served_tag() -> str:
    """The tag the service should load: $BENTOML_MODEL_TAG or the latest version."""
    return ServingSettings().bentoml_model_tag or f"{MODEL_NAME}:latest"


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
