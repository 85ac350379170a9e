"""MLflow runs, models and registry aliases for zenloop (no ZenML here)."""

from __future__ import annotations

import logging
import tempfile
from importlib.metadata import version
from pathlib import Path

import joblib
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.tracking import MlflowClient

from zenloop.bundle import ModelBundle
from zenloop.pyfunc import BUNDLE_ARTIFACT, ZenloopModel
from zenloop.training import CandidateResult

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
SIGNATURE_ROWS = 50
# Declared, not inferred: inference loads the model in a subprocess and costs seconds.
RUNTIME_PACKAGES = ("mlflow", "scikit-learn", "xgboost", "pandas", "numpy", "joblib")


def ensure_experiment(name: str, artifact_root: str) -> str:
    """Create the experiment with an explicit artifact root, never MLflow's ./mlruns."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    return mlflow.create_experiment(name, artifact_location=f"{artifact_root}/{name}")


def log_candidate(result: CandidateResult, bundle: ModelBundle, sample: pd.DataFrame) -> None:
    """Log one candidate as a nested MLflow run with params, metrics, plots and the model."""
    with mlflow.start_run(run_name=result.name, nested=True) as run:
        mlflow.set_tags({"zenloop.candidate": result.name, "zenloop.family": result.family})
        mlflow.log_params({"family": result.family, **result.params})
        for split, values in result.metrics.items():
            mlflow.log_metrics({f"{split}_{k}": v for k, v in values.items()})
        mlflow.log_metrics({"gap_pct": result.gap_pct, "fit_seconds": result.fit_seconds})
        mlflow.set_tag("zenloop.gates", "passed" if result.passed else "; ".join(result.gate_failures))
        features = sample[bundle.schema.feature_names].head(SIGNATURE_ROWS)
        with tempfile.TemporaryDirectory() as tmp:
            plots_dir = Path(tmp) / "plots"
            plots_dir.mkdir()
            for name, png in result.plots.items():
                (plots_dir / f"{name}.png").write_bytes(png)
            mlflow.log_artifacts(str(plots_dir), "plots")
            path = Path(tmp) / "bundle.joblib"
            joblib.dump(bundle, path)
            info = mlflow.pyfunc.log_model(
                name=MODEL_ARTIFACT,
                python_model=ZenloopModel(),
                artifacts={BUNDLE_ARTIFACT: str(path)},
                signature=infer_signature(features, bundle.predict_frame(features)),
                pip_requirements=[f"{p}=={version(p)}" for p in RUNTIME_PACKAGES],
            )
        result.mlflow_run_id = run.info.run_id
        result.model_uri = info.model_uri


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return client.get_model_version_by_alias(name, alias).version
    except MlflowException:
        return None


def load_bundle(model_uri: str) -> ModelBundle:
    return mlflow.pyfunc.load_model(model_uri).unwrap_python_model().bundle


def load_alias_bundle(name: str, alias: str) -> ModelBundle | None:
    """The bundle behind an alias, or None when the alias (or the model) does not exist."""
    if alias_version(MlflowClient(), name, alias) is None:
        return None
    return load_bundle(f"models:/{name}@{alias}")


def apply_aliases(
    client: MlflowClient, name: str, new_version: str, promoted: bool, previous: str | None
) -> None:
    """Winner becomes `champion` and the displaced champion `challenger`; a loser is `challenger`."""
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, new_version)
        if previous is not None:
            client.set_registered_model_alias(name, CHALLENGER, previous)
    else:
        client.set_registered_model_alias(name, CHALLENGER, new_version)
