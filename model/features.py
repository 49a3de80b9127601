"""Turn listings into the feature frame the XGBoost models read.

The same code runs at training time and in the service, driven by a `FeatureSpec`
saved with the model, so serving can never drift from training. Two serving-time
realities are handled here:

* unknown categories (a model name or fuel type never seen, or seen too rarely to
  learn from) map to the ``Other`` bucket, which the trees learned from the rare
  training rows - so every listing still gets a price;
* tax and mpg may be missing: they stay NaN and XGBoost routes them down the
  default branch it learned from training copies with those fields blanked
  (see `with_missing_copies`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: Model input columns (CSV names), in the order the boosters expect.
FEATURE_COLUMNS: tuple[str, ...] = (
    "model",
    "year",
    "transmission",
    "mileage",
    "fuelType",
    "tax",
    "mpg",
    "engineSize",
)
CATEGORICAL: tuple[str, ...] = ("model", "transmission", "fuelType")
NUMERIC: tuple[str, ...] = ("year", "mileage", "tax", "mpg", "engineSize")
#: Fields a caller may leave out; XGBoost's missing-value branches price them.
OPTIONAL: tuple[str, ...] = ("tax", "mpg")

#: Field names used by the database / Kafka contract -> CSV names used in training.
DB_TO_CSV: dict[str, str] = {
    "model": "model",
    "year": "year",
    "transmission": "transmission",
    "mileage": "mileage",
    "fuel_type": "fuelType",
    "tax": "tax",
    "mpg": "mpg",
    "engine_size": "engineSize",
}

#: Bucket for rare and never-seen category values.
OTHER = "Other"
#: A category needs this many training rows to get its own bucket.
MIN_CATEGORY_ROWS = 10


def normalise_label(value: Any) -> str:
    """Listing text as typed by people: ' Fiesta', 'fiesta ' and 'FIESTA' are one model."""
    return str(value).strip().casefold()


@dataclass(frozen=True)
class FeatureSpec:
    """Category lists learned from the training rows; saved in the model's metadata."""

    categories: dict[str, list[str]]

    @classmethod
    def fit(cls, train: pd.DataFrame, min_rows: int = MIN_CATEGORY_ROWS) -> FeatureSpec:
        """Keep categories with enough rows to learn from; the rest share `OTHER`."""
        categories: dict[str, list[str]] = {}
        for column in CATEGORICAL:
            counts = train[column].astype(str).str.strip().value_counts()
            kept = sorted(name for name, n in counts.items() if n >= min_rows and name != OTHER)
            categories[column] = [*kept, OTHER]
        return cls(categories=categories)

    def to_dict(self) -> dict[str, Any]:
        return {
            "categories": self.categories,
            "columns": list(FEATURE_COLUMNS),
            "numeric": list(NUMERIC),
            "optional": list(OPTIONAL),
            "other_bucket": OTHER,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureSpec:
        return cls(categories={k: list(v) for k, v in data["categories"].items()})

    def _lookup(self, column: str) -> dict[str, int]:
        return {normalise_label(name): code for code, name in enumerate(self.categories[column])}

    def encode_category(self, column: str, values: Iterable[Any]) -> pd.Categorical:
        """Map raw labels to the fixed category list; unknown -> `OTHER`."""
        lookup = self._lookup(column)
        other = lookup[normalise_label(OTHER)]
        codes = np.fromiter((lookup.get(normalise_label(v), other) for v in values), dtype=np.int32)
        return pd.Categorical.from_codes(codes, categories=self.categories[column])

    def unknown_mask(self, column: str, values: Iterable[Any]) -> np.ndarray:
        """True where a label falls into `OTHER` (rare or never seen) - for the report."""
        lookup = self._lookup(column)
        return np.array([normalise_label(v) not in lookup for v in values], dtype=bool)

    def transform(self, columns: Mapping[str, Any]) -> pd.DataFrame:
        """Build the model frame from column-wise values (CSV names); None/NaN = missing.

        Only `OPTIONAL` columns may be absent; request validation guarantees the rest.
        """
        n_rows = len(columns["model"])
        data: dict[str, Any] = {}
        for column in FEATURE_COLUMNS:
            if column in CATEGORICAL:
                data[column] = self.encode_category(column, columns[column])
            elif column in columns:
                data[column] = np.asarray(columns[column], dtype=np.float64)
            else:
                data[column] = np.full(n_rows, np.nan)
        return pd.DataFrame(data, columns=list(FEATURE_COLUMNS))


def with_missing_copies(
    features: pd.DataFrame, target: np.ndarray, fraction: float, weight: float, seed: int
) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Append down-weighted copies of some rows with tax, mpg or both blanked.

    The Ford data has no missing tax/mpg, so without this XGBoost's default branch for
    a missing value is arbitrary (holdout MAE roughly doubles when tax is dropped).
    Seeing blanked copies teaches it where such listings belong; the small weight keeps
    the copies from pulling the fit for complete listings. Returns features, target
    and per-row sample weights.
    """
    weights = np.ones(len(features))
    if fraction <= 0:
        return features, target, weights
    rng = np.random.default_rng(seed)
    n = len(features)
    pieces, targets, all_weights = [features], [target], [weights]
    for blanked in (("tax",), ("mpg",), ("tax", "mpg")):
        rows = rng.choice(n, size=max(1, int(n * fraction)), replace=False)
        copy = features.iloc[rows].copy()
        for column in blanked:
            copy[column] = np.nan
        pieces.append(copy)
        targets.append(target[rows])
        all_weights.append(np.full(len(rows), weight))
    return (
        pd.concat(pieces, ignore_index=True),
        np.concatenate(targets),
        np.concatenate(all_weights),
    )
