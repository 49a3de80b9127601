"""The trained price model as one object: point price plus an 80 % price range.

Training evaluates the holdout through this class and the service answers requests
through it, so the metrics in `metrics.json` are the served model's metrics.
Everything is stored as XGBoost's own model files plus a JSON file - no pickles - so a
model saved by one Python process loads safely in another.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from model.features import FeatureSpec

PREDICTOR_FILE = "predictor.json"
#: Prices are rounded to pennies; training and serving round the same way.
PRICE_DECIMALS = 2


@dataclass(frozen=True)
class PriceEstimates:
    """Column-wise predictions in GBP; `low <= point <= high` for every row."""

    point: np.ndarray
    low: np.ndarray
    high: np.ndarray


@dataclass
class PricePredictor:
    """Boosters trained on log(price) plus the conformal margin for the range.

    * `point_models` are averaged in log space (a small ensemble of XGBoost regressors
      with different losses: lower cross-validated error than either alone);
    * `range_model` predicts the 10th and 90th percentile of log(price);
    * `range_margin` widens (or narrows, if negative) that band by a constant in log
      space, chosen out-of-fold on the training part (conformalised
      quantile regression) so about 80 % of true prices fall inside.
    """

    spec: FeatureSpec
    point_models: list[xgb.Booster]
    range_model: xgb.Booster
    range_margin: float
    range_level: float

    def predict_frame(self, features: pd.DataFrame) -> PriceEstimates:
        """Predict from an already-built feature frame (see `FeatureSpec.transform`)."""
        if features.empty:
            empty = np.empty(0)
            return PriceEstimates(empty, empty, empty)
        # A plain float matrix (category codes as numbers) is much cheaper for XGBoost to
        # ingest than a DataFrame; the boosters know which columns are categorical.
        matrix = np.column_stack(
            [
                features[c].cat.codes.to_numpy()
                if isinstance(features[c].dtype, pd.CategoricalDtype)
                else features[c].to_numpy()
                for c in features.columns
            ]
        ).astype(np.float32)
        # float64 before exp/round, so prices are exact pennies once serialised to JSON
        log_point = np.mean(
            [np.asarray(b.inplace_predict(matrix), dtype=np.float64) for b in self.point_models],
            axis=0,
        )
        bands = np.asarray(self.range_model.inplace_predict(matrix), dtype=np.float64)
        bands = bands.reshape(len(features), -1)
        log_low = np.minimum(bands[:, 0], bands[:, -1]) - self.range_margin
        log_high = np.maximum(bands[:, 0], bands[:, -1]) + self.range_margin
        point = np.round(np.exp(log_point), PRICE_DECIMALS)
        # The range must contain the point price it is shown next to.
        low = np.minimum(np.round(np.exp(log_low), PRICE_DECIMALS), point)
        high = np.maximum(np.round(np.exp(log_high), PRICE_DECIMALS), point)
        return PriceEstimates(point=point, low=low, high=high)

    def predict(self, columns: Mapping[str, Any]) -> PriceEstimates:
        """Predict from column-wise raw listing values (CSV field names)."""
        return self.predict_frame(self.spec.transform(columns))

    def save(self, directory: Path) -> None:
        """Write booster files and `predictor.json` into `directory`."""
        directory.mkdir(parents=True, exist_ok=True)
        point_files = []
        for i, booster in enumerate(self.point_models):
            name = f"point_{i}.ubj"
            booster.save_model(directory / name)
            point_files.append(name)
        self.range_model.save_model(directory / "range.ubj")
        manifest = {
            "feature_spec": self.spec.to_dict(),
            "point_model_files": point_files,
            "range_model_file": "range.ubj",
            "range_margin": self.range_margin,
            "range_level": self.range_level,
            "target": "log(price)",
        }
        (directory / PREDICTOR_FILE).write_text(json.dumps(manifest, indent=2))

    @classmethod
    def load(cls, directory: Path, n_threads: int | None = None) -> PricePredictor:
        """Inverse of `save`; `n_threads` caps XGBoost's threads for serving."""
        manifest = json.loads((directory / PREDICTOR_FILE).read_text())

        def booster(name: str) -> xgb.Booster:
            loaded = xgb.Booster(model_file=str(directory / name))
            if n_threads:
                loaded.set_param({"nthread": n_threads})
            return loaded

        return cls(
            spec=FeatureSpec.from_dict(manifest["feature_spec"]),
            point_models=[booster(name) for name in manifest["point_model_files"]],
            range_model=booster(manifest["range_model_file"]),
            range_margin=float(manifest["range_margin"]),
            range_level=float(manifest["range_level"]),
        )
