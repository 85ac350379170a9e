"""Retraining plans: the data a retraining learns from and the run configs it follows.

The monitoring pipeline writes a plan; it starts nothing. The monitor service (operations
layer) launches the retrain runner on it, which trains and, when promoted, deploys.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pandas as pd
import yaml
from pydantic import BaseModel

from monitoring.drift import GROUND_TRUTH_COLUMN
from monitoring.policy import monitor_dir, write_json
from zenloop.config import ColumnRole, RetrainConfig, read_run_config
from zenloop.data.loading import load_frame
from zenloop.paths import project_path
from zenloop.schema import FeatureSchema

logger = logging.getLogger(__name__)

PLAN_FILE = "plan.json"


class RetrainPlan(BaseModel):
    """What the monitor service launches; `plan` is None when there is nothing to run."""

    reason: str
    plan: str | None = None
    recent_source: str | None = None
    training_rows: int = 0
    recent_rows: int = 0

    @property
    def ready(self) -> bool:
        return self.plan is not None

    def to_markdown(self) -> str:
        if not self.ready:
            return f"## No retraining\n\n{self.reason}\n"
        return (
            f"## Retraining planned\n\n{self.reason}\n\n"
            f"- training rows: {self.training_rows} (recent labelled data from "
            f"{self.recent_source})\n- recent evaluation rows: {self.recent_rows}\n"
            f"- plan: `{self.plan}`\n"
        )


def _like(frame: pd.DataFrame, template: pd.DataFrame, schema: FeatureSchema) -> pd.DataFrame:
    """Logged rows (JSON types) cast to the training data's column types."""
    out = frame.reindex(columns=template.columns)
    for spec in schema.columns:
        if spec.name not in out:
            continue
        if spec.role == ColumnRole.NUMERIC:
            out[spec.name] = pd.to_numeric(out[spec.name], errors="coerce")
        elif spec.role == ColumnRole.DATETIME:
            out[spec.name] = pd.to_datetime(out[spec.name], errors="coerce", format="mixed")
    target = template[schema.target]
    out[schema.target] = out[schema.target].astype(target.dtype) if len(out) else out[schema.target]
    return out


def recent_labelled(
    logged: pd.DataFrame, schema: FeatureSchema, config: RetrainConfig
) -> tuple[pd.DataFrame, str]:
    """Logged rows with ground truth; the configured fallback when there are too few."""
    labelled = logged[logged[GROUND_TRUTH_COLUMN].notna()] if len(logged) else logged
    if len(labelled) >= config.min_labelled_rows:
        rows = labelled.rename(columns={GROUND_TRUTH_COLUMN: schema.target})
        return rows, f"{len(rows)} logged predictions with feedback"
    if config.fallback is None:
        return labelled.iloc[0:0], (
            f"only {len(labelled)} logged rows have feedback (< {config.min_labelled_rows}) "
            "and no fallback is configured"
        )
    rows = load_frame(config.fallback)
    return rows, (
        f"fallback data ({config.fallback.source}, scenario {config.fallback.scenario}): only "
        f"{len(labelled)} logged rows had feedback"
    )


def build_training_sets(
    champion_train: pd.DataFrame,
    recent: pd.DataFrame,
    schema: FeatureSchema,
    config: RetrainConfig,
    seed: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Old training rows (sampled) plus recent rows; part of the recent rows held out."""
    recent = _like(recent, champion_train, schema).sample(frac=1.0, random_state=seed)
    n_holdout = max(1, int(len(recent) * config.recent_holdout))
    holdout, recent_train = recent.iloc[:n_holdout], recent.iloc[n_holdout:]
    old = champion_train.sample(min(config.reference_rows, len(champion_train)), random_state=seed)
    train = pd.concat([old, recent_train], ignore_index=True)
    return train, holdout.reset_index(drop=True)


def write_plan(
    train: pd.DataFrame,
    holdout: pd.DataFrame,
    schema: FeatureSchema,
    config: RetrainConfig,
    model_name: str,
    stale_lock_s: float,
) -> Path:
    """Data files and run configs for one retraining, in its own folder."""
    folder = monitor_dir() / "retrains" / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    train_path, holdout_path = folder / "train.parquet", folder / "recent.parquet"
    train.to_parquet(train_path)
    holdout.to_parquet(holdout_path)
    run_config = read_run_config(project_path(config.training_config))
    run_config.setdefault("model", {})["name"] = model_name
    params = run_config.setdefault("parameters", {}).setdefault("config", {})
    data = {"source": "file", "target": schema.target, "task": schema.task}
    params["data"] = {**data, "path": str(train_path)}
    params.setdefault("promotion", {})["recent_data"] = {**data, "path": str(holdout_path)}
    training_yaml = folder / "training.yaml"
    training_yaml.write_text(yaml.safe_dump(run_config))
    plan = folder / PLAN_FILE
    write_json(
        plan,
        {
            "training_config": str(training_yaml),
            "deployment_config": str(project_path(config.deployment_config)),
            "model_name": model_name,
            "stale_lock_s": stale_lock_s,
        },
    )
    return plan
