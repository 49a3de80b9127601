"""BentoML service for car prices: `bentoml serve model.service:CarPriceService`.

Routes:
* `POST /predict` - the Kafka transformer's contract: `{"listings": [...]}` in, one
  `{predicted_price, price_low, price_high, model_version}` per listing out, in order.
* `POST /predict_seed` - the seed project's request (columns as JSON arrays, or pandas'
  `DataFrame.to_json()` index objects), answered the way the seed did: a list of prices.
* `POST /model` - the version being served and its holdout metrics (`make deploy-model`
  and `make status` read it).
* `/readyz`, `/livez`, `/metrics` - provided by BentoML.

Every route takes at most `MAX_BATCH` listings, refuses unknown fields with a 400 that
names them, and bodies over `MAX_BODY_BYTES` get 413 before they are read.

The model is $BENTOML_MODEL_TAG if set, else the one `make deploy-model` recorded
(`$BENTOML_HOME/serving-model`), else the newest. The service watches that file and
swaps the model in place when it changes: requests in flight finish on the model they
started with and none is refused, so a deploy needs no restart.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml

from model.api_schema import (
    MAX_BODY_BYTES,
    Listing,
    PredictRequest,
    PricePrediction,
    SeedRequest,
    listings_to_columns,
    seed_columns_to_listings,
)
from model.body_limit import BodyLimitMiddleware
from model.predictor import PricePredictor
from model.settings import ServingSettings
from model.store import served_tag, serving_file

#: How often the worker looks at the serving-model file (one stat call).
WATCH_INTERVAL_S = 0.5

log = logging.getLogger("car_price_service")


@dataclass(frozen=True)
class Served:
    """A loaded model and its tag, swapped as one object so a request sees one of them."""

    predictor: PricePredictor
    version: str
    metrics: dict[str, Any]


def load_served(tag: str) -> Served:
    stored = bentoml.models.get(tag)
    predictor = PricePredictor.load(
        Path(stored.path), n_threads=ServingSettings().car_price_predict_threads
    )
    metrics = dict(stored.info.metadata.get("metrics", {}))
    return Served(predictor, str(stored.tag), metrics)


def _file_stamp() -> tuple[int, int] | None:
    try:
        stat = serving_file().stat()
    except FileNotFoundError:
        return None
    return stat.st_mtime_ns, stat.st_size


@bentoml.service(
    name="car_price_service",
    workers=1,
    traffic={"timeout": 60},
    resources={"cpu": "2"},
)
class CarPriceService:
    """Prices used Ford listings with an 80 % range around each price."""

    # Declared so `bentoml build` packs the served model with the service.
    stored_model = bentoml.models.BentoModel(served_tag())

    def __init__(self) -> None:
        self._stamp = _file_stamp()
        self.served = load_served(str(self.stored_model.tag))
        self._reload_lock = threading.Lock()
        threading.Thread(target=self._watch, name="serving-model-watch", daemon=True).start()

    def _watch(self) -> None:
        while True:
            time.sleep(WATCH_INTERVAL_S)
            self.refresh()

    def refresh(self) -> None:
        """Load the model the serving-model file names, if it changed; never raises."""
        with self._reload_lock:
            stamp = _file_stamp()
            if stamp == self._stamp:
                return
            self._stamp = stamp
            tag = served_tag()
            if tag == self.served.version:
                return
            try:
                self.served = load_served(tag)  # one assignment: requests see old or new
            except Exception:  # a bad tag must not take the service down
                log.exception("cannot load %s; still serving %s", tag, self.served.version)
                return
            log.info("now serving %s", self.served.version)

    def _price(self, listings: list[Listing]) -> list[dict[str, Any]]:
        served = self.served
        estimates = served.predictor.predict(listings_to_columns(listings))
        version = served.version
        return [
            {
                "predicted_price": point,
                "price_low": low,
                "price_high": high,
                "model_version": version,
            }
            for point, low, high in zip(
                estimates.point.tolist(), estimates.low.tolist(), estimates.high.tolist()
            )
        ]

    @bentoml.api(route="/predict")
    def predict(self, body: PredictRequest, /) -> list[PricePrediction]:
        """Price a batch of listings (database field names; tax and mpg may be null)."""
        return self._price(body.listings)  # type: ignore[return-value]

    @bentoml.api(route="/predict_seed")
    def predict_seed(self, body: SeedRequest, /) -> list[float]:
        """Seed-compatible: columns in (arrays or `{"0": ...}`), list of prices out."""
        columns = body.model_dump(exclude={"price"})
        listings = seed_columns_to_listings(columns)
        return [row["predicted_price"] for row in self._price(listings)]

    @bentoml.api(route="/model")
    def serving_model(self) -> dict[str, Any]:
        """The model being served: its tag and its holdout metrics."""
        self.refresh()  # a deploy waiting on this answer sees the switch at once
        served = self.served
        return {"model_version": served.version, "metrics": served.metrics}


CarPriceService.add_asgi_middleware(BodyLimitMiddleware, max_bytes=MAX_BODY_BYTES)
