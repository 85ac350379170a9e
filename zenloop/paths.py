"""Where zenloop keeps its local state: one data folder per project checkout."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
DATA_DIR_ENV = "ZENLOOP_DATA_DIR"
MLFLOW_DB = "mlflow.db"
MLFLOW_ARTIFACTS = "mlartifacts"


def project_path(path: str | Path) -> Path:
    """A path as given if it exists (or is absolute), else relative to the checkout."""
    candidate = Path(path)
    return candidate if candidate.is_absolute() or candidate.exists() else PROJECT_ROOT / path


def data_dir() -> Path:
    path = Path(os.environ.get(DATA_DIR_ENV, PROJECT_ROOT / "data")).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def model_dir(model_name: str) -> Path:
    """One model's loop files (its monitor's pid, heartbeat and log, its retrainings' logs),
    beside its prediction log: many models run their loops from one checkout."""
    path = data_dir() / model_name
    path.mkdir(parents=True, exist_ok=True)
    return path


def local_tracking_uri() -> str:
    """MLflow on SQLite in the data folder (MLflow >= 3.13 refuses the file store)."""
    return f"sqlite:///{data_dir() / MLFLOW_DB}"


def local_artifact_root() -> str:
    path = data_dir() / MLFLOW_ARTIFACTS
    path.mkdir(parents=True, exist_ok=True)
    return path.as_uri()


def isolate(folder: Path) -> None:
    """Point ZenML, MLflow and zenloop at fresh stores inside `folder` (tests, benchmarks).

    Set before ZenML is imported; nothing of the user's own stores is touched afterwards.
    """
    (folder / "repo").mkdir(parents=True, exist_ok=True)
    os.environ.update(
        ZENML_CONFIG_PATH=str(folder / "zenml"),
        ZENML_REPOSITORY_PATH=str(folder / "repo"),
        ZENLOOP_DATA_DIR=str(folder / "data"),
        MLFLOW_TRACKING_URI=f"sqlite:///{folder / 'data' / MLFLOW_DB}",
        ZENML_ANALYTICS_OPT_IN="false",
    )
