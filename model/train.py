"""Train the car price model: `python -m model.train [--data PATH] [--report-dir DIR]`.

Loads and validates the Ford CSV, splits it exactly like the seed project, fits on the
80 % part, measures the untouched 20 % holdout, writes the report folder and saves the
model to the BentoML store as `car_price_xgb:<version>`.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from model.data import (
    DATA_ENV_VAR,
    HOLDOUT_FRACTION,
    SPLIT_SEED,
    TARGET,
    DataValidationError,
    load_ford_csv,
    resolve_data_path,
    split_holdout,
)
from model.features import CATEGORICAL, DB_TO_CSV, FEATURE_COLUMNS, OPTIONAL
from model.fitting import FitProgress, TrainingConfig, fit_predictor
from model.report import (
    SEED_REFERENCE,
    TARGETS,
    by_car_model,
    missing_field_metrics,
    price_metrics,
    summary_table,
    write_report,
)
from model.settings import MODEL_NAME
from model.store import save_predictor

DEFAULT_REPORT_DIR = Path("reports/model")
_LIBRARIES = ("xgboost", "scikit-learn", "pandas", "numpy", "bentoml")


def library_versions() -> dict[str, str]:
    """Versions the model was built with; a mismatch at serving time is then visible."""
    return {"python": platform.python_version(), **{name: version(name) for name in _LIBRARIES}}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m model.train", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--data", help=f"Ford CSV path (default: ${DATA_ENV_VAR})")
    parser.add_argument(
        "--report-dir",
        type=Path,
        default=DEFAULT_REPORT_DIR,
        help=f"where metrics.json and plots go (default: {DEFAULT_REPORT_DIR})",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=TrainingConfig.seed,
        help="seed for boosting and the calibration folds (the holdout split is fixed)",
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=TrainingConfig.n_jobs,
        help="XGBoost threads (default: %(default)s)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines while fitting")
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train, evaluate, report and save; returns the metrics written to metrics.json."""
    path = resolve_data_path(args.data)
    loaded = load_ford_csv(path)
    for warning in loaded.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    train, holdout = split_holdout(loaded.frame)
    print(
        f"data: {path} ({len(loaded.frame):,} rows, sha256 {loaded.sha256[:12]}...); "
        f"train {len(train):,} / holdout {len(holdout):,}",
        file=sys.stderr,
    )

    config = replace(TrainingConfig(), seed=args.seed, n_jobs=args.n_jobs)
    started = time.perf_counter()
    fitted = fit_predictor(train, config, progress=None if args.quiet else FitProgress)
    training_seconds = time.perf_counter() - started

    predictor = fitted.predictor
    estimates = predictor.predict({c: holdout[c] for c in FEATURE_COLUMNS})
    holdout_metrics = price_metrics(holdout[TARGET].to_numpy(), estimates)
    spec = predictor.spec
    unseen = {c: int(spec.unknown_mask(c, holdout[c]).sum()) for c in CATEGORICAL}
    metrics: dict[str, Any] = {
        "model_name": MODEL_NAME,
        "holdout": holdout_metrics,
        "holdout_missing_fields": missing_field_metrics(predictor, holdout),
        "holdout_rows_in_other_bucket": unseen,
        "holdout_by_car_model": by_car_model(holdout, estimates)
        .round(2)
        .reset_index()
        .to_dict(orient="records"),
        "range_level": config.range_level,
        "range_margin_log": predictor.range_margin,
        "rows": {
            "total": len(loaded.frame),
            "train": len(train),
            "holdout": len(holdout),
            "range_fit": fitted.range_fit_rows,
            "calibration": fitted.calibration_rows,
        },
        "split": {"test_size": HOLDOUT_FRACTION, "random_state": SPLIT_SEED},
        "data": {"path": str(path), "sha256": loaded.sha256},
        "training_seconds": round(training_seconds, 2),
        "targets": TARGETS,
        "seed_reference": SEED_REFERENCE,
        "training_config": config.to_dict(),
        "library_versions": library_versions(),
    }
    metadata = {
        "metrics": {
            **holdout_metrics,
            "training_seconds": metrics["training_seconds"],
            "rows": metrics["rows"],
            "data_sha256": loaded.sha256,
        },
        "feature_schema": {
            **spec.to_dict(),
            "request_fields": DB_TO_CSV,
            "optional_request_fields": [k for k, v in DB_TO_CSV.items() if v in OPTIONAL],
            "target": "price (GBP), modelled as log(price)",
        },
        "category_lists": spec.categories,
        "library_versions": metrics["library_versions"],
        "training_config": metrics["training_config"],
    }
    tag = save_predictor(predictor, metadata, labels={"data_sha256": loaded.sha256[:16]})
    metrics["model_tag"] = tag
    files = write_report(args.report_dir, metrics, predictor, holdout, estimates)

    print(summary_table(metrics))
    print(f"model: {tag}")
    print(f"report: {', '.join(str(f) for f in files)}")
    return metrics


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        run(args)
    except DataValidationError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
