"""Loading, validation and splitting of the Ford CSV (model/data.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import train_test_split

from model.data import DataValidationError, load_ford_csv, resolve_data_path, split_holdout
from tests.model.support import make_ford_like


def write(df: pd.DataFrame, tmp_path: Path, name: str = "ford.csv") -> Path:
    path = tmp_path / name
    df.to_csv(path, index=False)
    return path


def test_load_strips_model_and_types_columns(tmp_path: Path) -> None:
    path = write(make_ford_like(50), tmp_path)
    loaded = load_ford_csv(path)
    frame = loaded.frame
    assert len(frame) == 50
    assert not frame["model"].str.startswith(" ").any()
    assert frame["year"].dtype == np.int64
    assert frame["mileage"].dtype.kind == "f" and frame["price"].dtype.kind == "f"
    assert len(loaded.sha256) == 64
    assert loaded.warnings == ()


@pytest.mark.parametrize(
    ("column", "rows", "value", "expected"),
    [
        (
            "mileage",
            [3, 7],
            -5,
            "column 'mileage' must not be negative; violated in data row(s) 4, 8",
        ),
        ("price", [0], 0, "column 'price' must be > 0; violated in data row(s) 1"),
        ("year", [2], "twenty", "column 'year' must be a number; bad value in data row(s) 3"),
        ("year", [5], 2017.5, "column 'year' must be a whole number in data row(s) 6"),
        ("engineSize", [9], "", "column 'engineSize' is empty in data row(s) 10"),
    ],
)
def test_bad_values_name_column_and_rows(
    tmp_path: Path, column: str, rows: list[int], value: object, expected: str
) -> None:
    df = make_ford_like(20).astype(object)
    for row in rows:
        df.loc[row, column] = value
    with pytest.raises(DataValidationError) as error:
        load_ford_csv(write(df, tmp_path))
    assert expected in str(error.value)


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = write(make_ford_like(10).drop(columns=["fuelType"]), tmp_path)
    with pytest.raises(DataValidationError, match=r"missing column\(s\) \['fuelType'\]"):
        load_ford_csv(path)


def test_all_problems_reported_at_once(tmp_path: Path) -> None:
    df = make_ford_like(10).astype(object)
    df.loc[1, "tax"] = "abc"
    df.loc[2, "mpg"] = "n/a"
    with pytest.raises(DataValidationError) as error:
        load_ford_csv(write(df, tmp_path))
    assert "'tax'" in str(error.value) and "'mpg'" in str(error.value)


def test_unreadable_and_absent_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataValidationError, match="not a readable CSV"):
        load_ford_csv(empty)
    with pytest.raises(DataValidationError, match="data file not found"):
        load_ford_csv(tmp_path / "nope.csv")


def test_future_year_is_kept_with_a_warning(tmp_path: Path) -> None:
    df = make_ford_like(10)
    df.loc[4, "year"] = 2060
    loaded = load_ford_csv(write(df, tmp_path))
    assert len(loaded.frame) == 10
    assert any("data row(s) 5" in w for w in loaded.warnings)


def test_path_from_cli_then_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORD_CSV", "/from/env.csv")
    assert resolve_data_path("/from/cli.csv") == Path("/from/cli.csv")
    assert resolve_data_path(None) == Path("/from/env.csv")
    monkeypatch.delenv("FORD_CSV")
    with pytest.raises(DataValidationError, match="--data PATH or set FORD_CSV"):
        resolve_data_path(None)


def test_split_matches_seed_project(tmp_path: Path) -> None:
    frame = load_ford_csv(write(make_ford_like(200), tmp_path)).frame
    train, holdout = split_holdout(frame)
    seed_train, seed_holdout = train_test_split(frame, test_size=0.2, random_state=1234)
    assert list(train.index) == list(seed_train.index)
    assert list(holdout.index) == list(seed_holdout.index)
    assert (len(train), len(holdout)) == (160, 40)
