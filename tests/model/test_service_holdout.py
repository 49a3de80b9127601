"""The served model's holdout metrics equal the ones training wrote to metrics.json.

Uses the real Ford CSV (never copied): FORD_CSV as every program reads it (config/settings.py:
the environment, then `.env`, then the default next to the repo). A missing file is a
FAILURE, not a skip - this is the check that the numbers we report are the numbers the
service produces.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest

from config.settings import StackSettings
from model.data import load_ford_csv, split_holdout
from model.predictor import PriceEstimates
from model.report import price_metrics
from tests.model.support import bentoml_serve, train_or_fail

CHUNK = 2000


@pytest.mark.slow
def test_served_holdout_metrics_match_metrics_json(tmp_path: Path) -> None:
    data_path = StackSettings().ford_csv_path.resolve()
    if not data_path.is_file():
        pytest.fail(
            f"real Ford data not found at {data_path}: set FORD_CSV to the CSV "
            "(see README 'Get the data'); this test needs it and does not skip"
        )

    trained = train_or_fail(data_path, tmp_path)
    written = json.loads((trained.report_dir / "metrics.json").read_text())
    _, holdout = split_holdout(load_ford_csv(data_path).frame)
    assert len(holdout) == written["rows"]["holdout"]
    body = holdout.rename(columns={"fuelType": "fuel_type", "engineSize": "engine_size"}).drop(
        columns=["price"]
    )
    records = json.loads(body.to_json(orient="records"))

    answers = []
    serve_log = tmp_path / "serve.log"
    with (
        bentoml_serve(trained.bentoml_home, serve_log) as base_url,
        httpx.Client(base_url=base_url, timeout=120) as client,
    ):
        for start in range(0, len(records), CHUNK):
            chunk = records[start : start + CHUNK]
            response = client.post("/predict", json={"listings": chunk})
            assert response.status_code == 200, response.text
            answers += response.json()

    assert {a["model_version"] for a in answers} == {written["model_tag"]}
    served = PriceEstimates(
        point=np.array([a["predicted_price"] for a in answers]),
        low=np.array([a["price_low"] for a in answers]),
        high=np.array([a["price_high"] for a in answers]),
    )
    measured = price_metrics(holdout["price"].to_numpy(), served)
    for name, value in measured.items():
        assert value == pytest.approx(written["holdout"][name], rel=1e-9, abs=1e-9), name
