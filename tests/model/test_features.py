"""Feature building shared by training and serving (model/features.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from model.features import FEATURE_COLUMNS, OTHER, FeatureSpec, with_missing_copies


def _spec() -> FeatureSpec:
    train = pd.DataFrame(
        {
            "model": ["Fiesta"] * 12 + ["Focus"] * 10 + ["Streetka"] * 2,
            "transmission": ["Manual"] * 24,
            "fuelType": ["Petrol"] * 20 + ["Electric"] * 4,
        }
    )
    return FeatureSpec.fit(train, min_rows=10)


def test_rare_categories_share_the_other_bucket() -> None:
    spec = _spec()
    assert spec.categories["model"] == ["Fiesta", "Focus", OTHER]
    assert spec.categories["fuelType"] == ["Petrol", OTHER]
    assert spec.categories["transmission"] == ["Manual", OTHER]


def test_unknown_spaced_and_cased_labels() -> None:
    spec = _spec()
    encoded = spec.encode_category("model", [" Fiesta", "FOCUS", "Zephyr", "Streetka", "other"])
    assert list(encoded) == ["Fiesta", "Focus", OTHER, OTHER, OTHER]
    assert spec.unknown_mask("model", [" fiesta", "Zephyr"]).tolist() == [False, True]


def test_transform_orders_columns_and_fills_missing_optionals() -> None:
    frame = _spec().transform(
        {
            "model": ["Fiesta", "Puma"],
            "year": [2017, 2019],
            "transmission": ["Manual", "CVT"],
            "mileage": [100.0, 2000.0],
            "fuelType": ["Petrol", "Electric"],
            "mpg": [None, 55.4],
            "engineSize": [1.0, 0.0],
        }
    )
    assert tuple(frame.columns) == FEATURE_COLUMNS
    assert np.isnan(frame["tax"]).all()
    assert np.isnan(frame["mpg"].iloc[0]) and frame["mpg"].iloc[1] == 55.4
    assert list(frame["model"]) == ["Fiesta", OTHER]
    assert list(frame["transmission"]) == ["Manual", OTHER]


def test_spec_round_trips_through_metadata() -> None:
    spec = _spec()
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_missing_copies_blank_fields_and_carry_weight() -> None:
    rows = np.arange(10.0)
    features = pd.DataFrame({"tax": rows, "mpg": rows + 50, "mileage": rows * 1000, "year": 2017.0})
    target = rows
    out_x, out_y, weights = with_missing_copies(features, target, fraction=0.2, weight=0.1, seed=1)
    assert len(out_x) == len(out_y) == len(weights) == 10 + 3 * 2
    assert (weights[:10] == 1).all() and np.allclose(weights[10:], 0.1)
    copies = out_x.iloc[10:]
    assert copies["tax"].isna().sum() == 4 and copies["mpg"].isna().sum() == 4
    assert copies["year"].notna().all()
    assert (out_y[10:] == copies["mileage"].to_numpy() / 1000).all(), "each copy keeps its price"
    unchanged = with_missing_copies(features, target, fraction=0, weight=0.1, seed=1)
    assert len(unchanged[0]) == 10
