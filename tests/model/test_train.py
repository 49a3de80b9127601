"""Training end to end on generated data (model/train.py, fitting.py, report.py, store.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from bentoml._internal.models.model import ModelStore

from model.data import load_ford_csv, split_holdout
from model.features import FEATURE_COLUMNS
from model.fitting import TrainingConfig, conformal_margin, fit_predictor
from model.predictor import PricePredictor
from model.report import PLOT_FILES
from tests.model.support import TrainedModel, make_ford_like, run_training

HOLDOUT_KEYS = {"rmse", "mae", "mape_pct", "r2", "range_coverage", "range_mean_width"}


def stored_model(home: Path):
    return ModelStore(home / "models").get("car_price_xgb:latest")


def test_training_writes_model_metadata_and_report(synthetic_model: TrainedModel) -> None:
    metrics = json.loads((synthetic_model.report_dir / "metrics.json").read_text())
    assert HOLDOUT_KEYS <= set(metrics["holdout"])
    assert metrics["rows"] == {
        "total": 900,
        "train": 720,
        "holdout": 180,
        "range_fit": 540,
        "calibration": 720,
    }
    assert len(metrics["data"]["sha256"]) == 64
    assert metrics["training_seconds"] > 0
    assert metrics["holdout"]["r2"] > 0.5, "generated prices are learnable; R² should show it"

    for name in PLOT_FILES.values():
        png = synthetic_model.report_dir / name
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"

    model = stored_model(synthetic_model.bentoml_home)
    assert str(model.tag) == metrics["model_tag"]
    meta = model.info.metadata
    assert meta["metrics"]["mae"] == pytest.approx(metrics["holdout"]["mae"])
    assert meta["category_lists"]["model"][-1] == "Other"
    assert "Fiesta" in meta["category_lists"]["model"]
    assert "Streetka" not in meta["category_lists"]["model"], (
        "5 rows is too rare for its own bucket"
    )
    assert meta["feature_schema"]["optional_request_fields"] == ["tax", "mpg"]
    assert {"xgboost", "pandas", "numpy", "bentoml", "scikit-learn"} <= set(
        meta["library_versions"]
    )

    table = synthetic_model.result.stdout
    assert "MAE (GBP)" in table and "80% range coverage" in table and metrics["model_tag"] in table


def test_same_data_and_seed_give_same_metrics(
    synthetic_csv: Path, synthetic_model: TrainedModel, tmp_path: Path
) -> None:
    again = run_training(synthetic_csv, tmp_path / "bentoml", tmp_path / "reports")
    assert again.returncode == 0, again.stderr
    first = json.loads((synthetic_model.report_dir / "metrics.json").read_text())
    second = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert first["holdout"] == second["holdout"]
    assert first["range_margin_log"] == second["range_margin_log"]


@pytest.mark.slow  # runs the training command
def test_malformed_csv_fails_with_column_and_rows(tmp_path: Path) -> None:
    bad = make_ford_like(30).astype(object)
    bad.loc[[2, 11], "mileage"] = -1
    path = tmp_path / "bad.csv"
    bad.to_csv(path, index=False)
    result = run_training(path, tmp_path / "bentoml", tmp_path / "reports")
    assert result.returncode != 0
    assert "column 'mileage' must not be negative; violated in data row(s) 3, 12" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "reports" / "metrics.json").exists()


def test_missing_data_argument_is_explained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FORD_CSV", raising=False)
    from model.train import main

    assert main(["--report-dir", str(tmp_path)]) == 2


@pytest.mark.slow
def test_predictor_round_trip_and_range_properties(tmp_path: Path) -> None:
    path = tmp_path / "ford.csv"
    make_ford_like(600, seed=3).to_csv(path, index=False)
    train, holdout = split_holdout(load_ford_csv(path).frame)
    fitted = fit_predictor(train, TrainingConfig(n_jobs=1))
    columns = {c: holdout[c] for c in FEATURE_COLUMNS}
    before = fitted.predictor.predict(columns)
    fitted.predictor.save(tmp_path / "saved")
    after = PricePredictor.load(tmp_path / "saved", n_threads=1).predict(columns)
    np.testing.assert_array_equal(before.point, after.point)
    np.testing.assert_array_equal(before.low, after.low)
    np.testing.assert_array_equal(before.high, after.high)
    assert (before.low <= before.point).all() and (before.point <= before.high).all()
    assert (before.point > 0).all()

    no_tax = fitted.predictor.predict(
        {c: holdout[c] for c in FEATURE_COLUMNS if c not in ("tax", "mpg")}
    )
    assert np.isfinite(no_tax.point).all() and (no_tax.point > 0).all()


def test_conformal_margin_uses_finite_sample_rank() -> None:
    scores = np.arange(1.0, 11.0)  # 10 calibration scores
    # ceil((10 + 1) * 0.8) = 9 -> the 9th smallest
    assert conformal_margin(scores, 0.8) == 9.0
    assert conformal_margin(scores, 0.99) == 10.0
    assert conformal_margin(pd.Series([-0.2, 0.1]).to_numpy(), 0.5) == 0.1
