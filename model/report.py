"""Holdout metrics, plots and the end-of-training table.

Everything here reads predictions made through `PricePredictor`, i.e. exactly what the
service returns, so the report describes the served model and not a training-time twin.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # headless: CI and servers have no display
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from model.data import TARGET
from model.features import FEATURE_COLUMNS
from model.predictor import PriceEstimates, PricePredictor

#: What the seed project reported on the same split, and what this model must reach.
SEED_REFERENCE = {"mae": 816.0, "mape_pct": 7.21}
TARGETS = {"mae_max": 760.0, "mape_pct_max": 6.5, "coverage_min": 0.78, "coverage_max": 0.82}

PLOT_FILES = {
    "predicted_vs_actual": "predicted_vs_actual.png",
    "residuals_by_model": "residuals_by_model.png",
    "feature_importance": "feature_importance.png",
}


def price_metrics(actual: np.ndarray, estimates: PriceEstimates) -> dict[str, float]:
    """RMSE/MAE/MAPE/R² of the point price, coverage and width of the range."""
    actual = np.asarray(actual, dtype=np.float64)
    error = estimates.point - actual
    inside = (actual >= estimates.low) & (actual <= estimates.high)
    total = float(np.sum((actual - actual.mean()) ** 2))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "mape_pct": float(np.mean(np.abs(error) / actual) * 100.0),
        "r2": float(1.0 - np.sum(error**2) / total) if total > 0 else float("nan"),
        "range_coverage": float(np.mean(inside)),
        "range_mean_width": float(np.mean(estimates.high - estimates.low)),
        "range_median_width": float(np.median(estimates.high - estimates.low)),
    }


def missing_field_metrics(
    predictor: PricePredictor, holdout: pd.DataFrame
) -> dict[str, dict[str, float]]:
    """How the model does when callers omit tax and/or mpg (the service allows it)."""
    results = {}
    for dropped in (("tax",), ("mpg",), ("tax", "mpg")):
        columns = {c: holdout[c] for c in FEATURE_COLUMNS if c not in dropped}
        metrics = price_metrics(holdout[TARGET].to_numpy(), predictor.predict(columns))
        results["without_" + "_and_".join(dropped)] = {
            k: metrics[k] for k in ("mae", "mape_pct", "range_coverage")
        }
    return results


def by_car_model(holdout: pd.DataFrame, estimates: PriceEstimates) -> pd.DataFrame:
    """Per car-model error summary, most common models first."""
    frame = pd.DataFrame(
        {
            "model": holdout["model"].to_numpy(),
            "residual": estimates.point - holdout[TARGET].to_numpy(),
        }
    )
    frame["abs_error"] = frame["residual"].abs()
    summary = frame.groupby("model").agg(
        rows=("residual", "size"), mae=("abs_error", "mean"), median_residual=("residual", "median")
    )
    return summary.sort_values("rows", ascending=False)


def feature_importance(predictor: PricePredictor) -> pd.Series:
    """Share of total split gain per feature, averaged over the point models."""
    shares = []
    for booster in predictor.point_models:
        gains = pd.Series(booster.get_score(importance_type="total_gain"), dtype=float)
        shares.append(gains.reindex(list(FEATURE_COLUMNS)).fillna(0.0) / gains.sum())
    return pd.concat(shares, axis=1).mean(axis=1).sort_values()


def plot_predicted_vs_actual(actual: np.ndarray, estimates: PriceEstimates, path: Path) -> None:
    inside = (actual >= estimates.low) & (actual <= estimates.high)
    fig, ax = plt.subplots(figsize=(7, 7))
    ax.scatter(
        actual[inside], estimates.point[inside], s=5, alpha=0.35, label="true price inside range"
    )
    ax.scatter(
        actual[~inside],
        estimates.point[~inside],
        s=5,
        alpha=0.5,
        color="tab:red",
        label="true price outside range",
    )
    limit = float(max(actual.max(), estimates.point.max())) * 1.05
    ax.plot([0, limit], [0, limit], color="black", linewidth=1, label="perfect prediction")
    ax.set(
        xlim=(0, limit),
        ylim=(0, limit),
        xlabel="actual price (GBP)",
        ylabel="predicted price (GBP)",
        title=f"Holdout: predicted vs actual ({len(actual):,} cars)",
    )
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_residuals_by_model(holdout: pd.DataFrame, estimates: PriceEstimates, path: Path) -> None:
    residual = estimates.point - holdout[TARGET].to_numpy()
    models = holdout["model"].to_numpy()
    order = pd.Series(models).value_counts().index.tolist()
    groups = [residual[models == name] for name in order]
    fig, ax = plt.subplots(figsize=(10, max(4.0, 0.32 * len(order) + 1.5)))
    ax.boxplot(groups, orientation="horizontal", showfliers=False)
    ax.set_yticks(range(1, len(order) + 1), [f"{n} ({len(g)})" for n, g in zip(order, groups)])
    ax.invert_yaxis()
    ax.axvline(0, color="black", linewidth=1)
    ax.set(
        xlabel="predicted - actual (GBP)", title="Holdout residuals by car model (rows in brackets)"
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_feature_importance(importance: pd.Series, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.barh(importance.index, importance.to_numpy() * 100)
    ax.set(xlabel="share of total split gain (%)", title="Feature importance (point models)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    report_dir: Path,
    metrics: dict[str, Any],
    predictor: PricePredictor,
    holdout: pd.DataFrame,
    estimates: PriceEstimates,
) -> list[Path]:
    """Write metrics.json and the PNG plots; returns the files written."""
    report_dir.mkdir(parents=True, exist_ok=True)
    actual = holdout[TARGET].to_numpy(dtype=np.float64)
    paths = {key: report_dir / name for key, name in PLOT_FILES.items()}
    plot_predicted_vs_actual(actual, estimates, paths["predicted_vs_actual"])
    plot_residuals_by_model(holdout, estimates, paths["residuals_by_model"])
    plot_feature_importance(feature_importance(predictor), paths["feature_importance"])
    metrics_path = report_dir / "metrics.json"
    metrics_path.write_text(json.dumps(metrics, indent=2, sort_keys=False) + "\n")
    return [metrics_path, *paths.values()]


def summary_table(metrics: dict[str, Any]) -> str:
    """The short table printed at the end of training."""
    h = metrics["holdout"]
    lo, hi = TARGETS["coverage_min"], TARGETS["coverage_max"]

    def verdict(ok: bool) -> str:
        return "ok" if ok else "MISSED"

    rows = [
        (
            "MAE (GBP)",
            f"{h['mae']:.1f}",
            f"<= {TARGETS['mae_max']:.0f}",
            f"{SEED_REFERENCE['mae']:.0f}",
            verdict(h["mae"] <= TARGETS["mae_max"]),
        ),
        (
            "MAPE (%)",
            f"{h['mape_pct']:.2f}",
            f"<= {TARGETS['mape_pct_max']}",
            f"{SEED_REFERENCE['mape_pct']}",
            verdict(h["mape_pct"] <= TARGETS["mape_pct_max"]),
        ),
        ("RMSE (GBP)", f"{h['rmse']:.1f}", "", "", ""),
        ("R2", f"{h['r2']:.4f}", "", "", ""),
        (
            "80% range coverage",
            f"{h['range_coverage']:.1%}",
            f"{lo:.0%}-{hi:.0%}",
            "",
            verdict(lo <= h["range_coverage"] <= hi),
        ),
        ("80% range mean width (GBP)", f"{h['range_mean_width']:.0f}", "", "", ""),
        ("training seconds", f"{metrics['training_seconds']:.1f}", "", "", ""),
    ]
    header = ("holdout metric", "value", "target", "seed project", "")
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths).rstrip())
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    counts = metrics["rows"]
    lines.append(
        f"rows: train {counts['train']:,} (served range model fit on {counts['range_fit']:,}, "
        f"margin from {counts['calibration']:,} out-of-fold scores), "
        f"holdout {counts['holdout']:,}"
    )
    return "\n".join(lines)
