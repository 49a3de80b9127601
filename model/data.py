"""Load and validate the Ford used-car CSV, and split it the way the seed project did.

Validation happens before any training so a broken file fails fast with a message a
person can act on (which column, which rows), instead of a pandas traceback or, worse,
a silently wrong model.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

#: Columns of the Ford CSV and the kind of values each must hold.
CSV_COLUMNS: dict[str, str] = {
    "model": "text",
    "year": "integer",
    "price": "number",
    "transmission": "text",
    "mileage": "number",
    "fuelType": "text",
    "tax": "number",
    "mpg": "number",
    "engineSize": "number",
}
TARGET = "price"

#: The seed project's split; kept exactly so the holdout numbers are comparable.
HOLDOUT_FRACTION = 0.2
SPLIT_SEED = 1234

#: Env var that names the CSV when --data is not given.
DATA_ENV_VAR = "FORD_CSV"

_MAX_ROWS_IN_MESSAGE = 10


class DataValidationError(ValueError):
    """The CSV cannot be used for training; the message says which column and rows."""


@dataclass(frozen=True)
class LoadedData:
    """A validated frame plus facts about the file it came from (for the report)."""

    frame: pd.DataFrame
    path: Path
    sha256: str
    warnings: tuple[str, ...] = ()


def resolve_data_path(cli_value: str | None) -> Path:
    """Pick the CSV path: CLI first, then $FORD_CSV; neither set is a clear error."""
    value = cli_value or os.environ.get(DATA_ENV_VAR)
    if not value:
        raise DataValidationError(f"no data file given: pass --data PATH or set {DATA_ENV_VAR}")
    return Path(value)


def file_sha256(path: Path) -> str:
    """Hash of the exact bytes trained on, so a metrics file can be tied to its data."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _row_list(mask: pd.Series) -> str:
    """Human row numbers (1-based data rows, header excluded), shortened when many."""
    rows = [int(i) + 1 for i in np.flatnonzero(mask.to_numpy())]
    shown = ", ".join(str(r) for r in rows[:_MAX_ROWS_IN_MESSAGE])
    more = (
        f" and {len(rows) - _MAX_ROWS_IN_MESSAGE} more" if len(rows) > _MAX_ROWS_IN_MESSAGE else ""
    )
    return f"data row(s) {shown}{more}"


def validate_frame(raw: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """Check columns, types and value ranges; return a clean typed frame and warnings.

    Every problem found is collected so one run reports all of them, not just the first.
    """
    problems: list[str] = []
    missing = [c for c in CSV_COLUMNS if c not in raw.columns]
    if missing:
        raise DataValidationError(
            f"missing column(s) {missing}; expected columns {list(CSV_COLUMNS)}"
        )
    if raw.empty:
        raise DataValidationError("the file has a header but no data rows")

    frame = pd.DataFrame(index=raw.index)
    for column, kind in CSV_COLUMNS.items():
        values = raw[column]
        empty = values.isna() | values.astype("string").str.strip().eq("")
        if empty.any():
            problems.append(f"column '{column}' is empty in {_row_list(empty)}")
        if kind == "text":
            frame[column] = values.astype("string").str.strip().astype(object)
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        not_numeric = numbers.isna() & ~empty
        if not_numeric.any():
            problems.append(
                f"column '{column}' must be a number; bad value in {_row_list(not_numeric)}"
            )
        elif kind == "integer":
            fractional = numbers.notna() & (numbers % 1 != 0)
            if fractional.any():
                problems.append(
                    f"column '{column}' must be a whole number in {_row_list(fractional)}"
                )
        frame[column] = numbers

    if not problems:
        checks = {
            "price": (frame["price"] <= 0, "must be > 0"),
            "mileage": (frame["mileage"] < 0, "must not be negative"),
            "tax": (frame["tax"] < 0, "must not be negative"),
            "mpg": (frame["mpg"] <= 0, "must be > 0"),
            "engineSize": (frame["engineSize"] < 0, "must not be negative"),
        }
        for column, (bad, rule) in checks.items():
            if bad.any():
                problems.append(f"column '{column}' {rule}; violated in {_row_list(bad)}")
    if problems:
        raise DataValidationError("invalid data:\n  - " + "\n  - ".join(problems))

    for column, kind in CSV_COLUMNS.items():
        if kind == "number":
            frame[column] = frame[column].astype("float64")
    frame["year"] = frame["year"].astype("int64")
    warnings: list[str] = []
    this_year = pd.Timestamp.now().year
    future = frame["year"] > this_year
    if future.any():
        # Kept on purpose: dropping rows would change the seed project's split.
        warnings.append(
            f"column 'year' is after {this_year} in {_row_list(future)}; kept so the "
            "reference split stays identical"
        )
    return frame.reset_index(drop=True), warnings


def load_ford_csv(path: Path | str) -> LoadedData:
    """Read, validate and normalise the CSV (leading space stripped from `model`)."""
    path = Path(path)
    if not path.is_file():
        raise DataValidationError(f"data file not found: {path}")
    try:
        raw = pd.read_csv(
            path, dtype=str, keep_default_na=False, na_values=[""], encoding="utf-8-sig"
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataValidationError(f"{path} is not a readable CSV: {exc}") from None
    frame, warnings = validate_frame(raw)
    return LoadedData(frame=frame, path=path, sha256=file_sha256(path), warnings=tuple(warnings))


def split_holdout(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The seed project's 80/20 split; the 20 % is never looked at during fitting."""
    train, holdout = train_test_split(frame, test_size=HOLDOUT_FRACTION, random_state=SPLIT_SEED)
    return train, holdout
