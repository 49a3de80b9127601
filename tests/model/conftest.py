"""Fixtures for the model tests (helpers live in tests/model/support.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.model.support import TrainedModel, make_ford_like, train_or_fail


@pytest.fixture(scope="module")
def synthetic_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small generated Ford-like CSV (the real file never enters the repo or fixtures)."""
    path = tmp_path_factory.mktemp("data") / "ford_synthetic.csv"
    make_ford_like(900, seed=7).to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def synthetic_model(synthetic_csv: Path, tmp_path_factory: pytest.TempPathFactory) -> TrainedModel:
    """One training run on generated data in a throw-away BentoML store."""
    return train_or_fail(synthetic_csv, tmp_path_factory.mktemp("synthetic_model"))
