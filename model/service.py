"""BentoML service for car prices: `bentoml serve model.service:CarPriceService`.

Routes:
* `POST /predict` - the Kafka transformer's contract: `{"listings": [...]}` in, one
  `{predicted_price, price_low, price_high, model_version}` per listing out, in order.
* `POST /predict_seed` - the seed project's request (pandas column-oriented JSON),
  answered the way the seed did: a JSON list of prices.
* `/readyz`, `/livez`, `/metrics` - provided by BentoML.

The model (`car_price_xgb:latest`, or $BENTOML_MODEL_TAG) is loaded once per worker.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import bentoml

from model.api_schema import (
    Listing,
    Listings,
    PricePrediction,
    listings_to_columns,
    seed_columns_to_listings,
)
from model.predictor import PricePredictor
from model.store import ServingSettings, served_tag

ColumnOf = dict[str, Any] | None


@bentoml.service(
    name="car_price_service",
    workers=1,
    traffic={"timeout": 60},
    resources={"cpu": "2"},
)
class CarPriceService:
    """Prices used Ford listings with an 80 % range around each price."""

    stored_model = bentoml.models.BentoModel(served_tag())

    def __init__(self) -> None:
        self.predictor = PricePredictor.load(
            Path(self.stored_model.path), n_threads=ServingSettings().car_price_predict_threads
        )
        self.model_version = str(self.stored_model.tag)

    def _price(self, listings: list[Listing]) -> list[dict[str, Any]]:
        estimates = self.predictor.predict(listings_to_columns(listings))
        version = self.model_version
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
    def predict(self, listings: Listings) -> list[PricePrediction]:
        """Price a batch of listings (database field names; tax and mpg may be null)."""
        return self._price(listings)  # type: ignore[return-value]

    @bentoml.api(route="/predict_seed")
    def predict_seed(
        self,
        model: dict[str, Any],
        year: dict[str, Any],
        transmission: dict[str, Any],
        mileage: dict[str, Any],
        fuelType: dict[str, Any],
        engineSize: dict[str, Any],
        tax: ColumnOf = None,
        mpg: ColumnOf = None,
        price: ColumnOf = None,
    ) -> list[float]:
        """Seed-compatible: `DataFrame.to_json()` body in, list of prices out (`price` ignored)."""
        listings = seed_columns_to_listings(
            {
                "model": model,
                "year": year,
                "transmission": transmission,
                "mileage": mileage,
                "fuelType": fuelType,
                "engineSize": engineSize,
                "tax": tax,
                "mpg": mpg,
            }
        )
        return [row["predicted_price"] for row in self._price(listings)]
