"""MLflow runs, models and registry aliases for zenloop (no ZenML here)."""

from __future__ import annotations

import logging
import tempfile
from importlib.metadata import version
from pathlib import Path
from urllib.parse import urlsplit

import joblib
import mlflow
import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import ModelSignature
from mlflow.tracking import MlflowClient
from mlflow.types.schema import AnyType, ColSpec, DataType, Schema

from zenloop.bundle import PREDICTION_COLUMN, PROBA_PREFIX, ModelBundle
from zenloop.config import DEFAULT_ALIAS, ColumnRole
from zenloop.metrics import GAP_METRIC
from zenloop.promotion import PromotionDecision
from zenloop.pyfunc import BUNDLE_ARTIFACT
from zenloop.report import CandidateBoard
from zenloop.schema import FeatureSchema
from zenloop.training import CandidateResult

logger = logging.getLogger(__name__)

CHAMPION = DEFAULT_ALIAS  # the winner's alias, and the one services follow by default
ZENML_VERSION_TAG = "zenml_model_version_id"  # links a registry version to its ZenML one
CHALLENGER = "challenger"
MODEL_ARTIFACT = "model"
SCHEMA_ARTIFACT = "feature_schema.json"
PYFUNC_SOURCE = str(Path(__file__).with_name("pyfunc.py"))  # MLflow "models from code"
# The model carries zenloop's own code (the bundle pickles its classes), so it loads in a
# process, or a fresh environment, that never installed zenloop.
CODE_PACKAGE = str(Path(__file__).resolve().parent)
# Declared, not inferred: inference loads the model in a subprocess and costs seconds.
# Everything the unpickled bundle imports (zenloop's core imports pydantic, yaml, fsspec).
RUNTIME_PACKAGES = (
    "mlflow",
    "scikit-learn",
    "xgboost",
    "pandas",
    "numpy",
    "joblib",
    "pydantic",
    "PyYAML",
    "fsspec",
    "matplotlib",
)
STRING_DTYPES = ("object", "string", "str", "category")
EXAMPLE_NUMBER = 1.0
# the training run's comparison, logged on the parent run beside its nested candidate runs
WINNER_TAG = "zenloop.winner"
SERVED_SCHEMES = ("http", "https")  # a tracking server keeps artifacts where it chooses
WINNER_PASSED_TAG = "zenloop.winner_passed"
BEST_METRIC_PREFIX = "best_test_"
BOARD_DIR = "board"
BOARD_MARKDOWN = "candidates.md"
BOARD_CSV = "candidates.csv"
BOARD_TABLE = "candidates.json"  # MLflow's table artifact, shown in its artifact view
COMPARISON_PNG = "train_vs_test.png"
# the judgement, as tags on the training run and the registered version
LEAKS_TAG = "zenloop.suspected_leaks"
BEATS_BASELINES_TAG = "zenloop.beats_naive_baselines"
OUT_OF_TIME_TAG = "zenloop.out_of_time"
SPLIT_TAG = "zenloop.split"
HISTORY_TAG = "zenloop.history"
MAX_TAG_CHARS = 5_000  # MLflow keeps tag values up to 8,000 characters


def ensure_experiment(name: str, artifact_root: str | None) -> str:
    """Create the experiment once; on a local store with an explicit artifact root.

    A local store would otherwise put artifacts in ./mlruns; a tracking server chooses
    its own root (artifacts it serves over HTTP), so `artifact_root` is ignored there.
    """
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    served = urlsplit(mlflow.get_tracking_uri()).scheme in SERVED_SCHEMES
    location = f"{artifact_root}/{name}" if artifact_root and not served else None
    return mlflow.create_experiment(name, artifact_location=location)


def model_signature(schema: FeatureSchema) -> ModelSignature:
    """Inputs from the feature schema, as permissive as the bundle's own coercion.

    Every column is optional (a missing value or column is imputed). Numeric and other
    non-text columns are `any`: MLflow refuses int64 -> double, and JSON integers arrive
    as int64; the bundle's FrameCoercer converts them. Text columns are strings.
    """
    columns = [
        ColSpec(
            DataType.string if spec.dtype in STRING_DTYPES else AnyType(),
            spec.name,
            required=False,
        )
        for spec in schema.columns
        if spec.name in schema.feature_names
    ]
    if schema.task == "classification":
        outputs = [ColSpec(AnyType(), PREDICTION_COLUMN)] + [
            ColSpec(DataType.double, f"{PROBA_PREFIX}{c}") for c in schema.classes or []
        ]
    else:
        outputs = [ColSpec(DataType.double, PREDICTION_COLUMN)]
    return ModelSignature(inputs=Schema(columns), outputs=Schema(outputs))


def input_example(schema: FeatureSchema) -> pd.DataFrame:
    """Two rows from the schema alone: typical values, then every value missing."""
    typical: dict[str, object] = {}
    for spec in schema.columns:
        if spec.name not in schema.feature_names:
            continue
        if spec.categories:
            typical[spec.name] = spec.categories[0]
        elif spec.role == ColumnRole.DATETIME:
            typical[spec.name] = "2024-01-01T00:00:00"
        elif spec.dtype in STRING_DTYPES:
            typical[spec.name] = "example"
        else:
            typical[spec.name] = EXAMPLE_NUMBER
    missing = dict.fromkeys(typical)
    return pd.DataFrame([typical, missing], columns=list(typical))


def log_candidate(result: CandidateResult, bundle: ModelBundle) -> None:
    """Log one candidate as a nested MLflow run with params, metrics, plots and the model.

    In its parent's experiment: MLflow would otherwise put a nested run in the active
    experiment, which outside a tracked step is the Default one (artifacts in ./mlruns).
    """
    parent = mlflow.active_run()
    experiment_id = parent.info.experiment_id if parent is not None else None
    with mlflow.start_run(run_name=result.name, nested=True, experiment_id=experiment_id) as run:
        mlflow.set_tags({"zenloop.candidate": result.name, "zenloop.family": result.family})
        mlflow.log_params({"family": result.family, **result.params})
        for split, values in result.metrics.items():
            mlflow.log_metrics({f"{split}_{k}": v for k, v in values.items()})
        mlflow.log_metrics({"gap_pct": result.gap_pct, "fit_seconds": result.fit_seconds})
        mlflow.set_tag(
            "zenloop.gates", "passed" if result.passed else "; ".join(result.gate_failures)
        )
        mlflow.log_dict(bundle.schema.model_dump(mode="json"), SCHEMA_ARTIFACT)
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
                python_model=PYFUNC_SOURCE,
                artifacts={BUNDLE_ARTIFACT: str(path)},
                code_paths=[CODE_PACKAGE],
                pip_requirements=[f"{p}=={version(p)}" for p in RUNTIME_PACKAGES],
                signature=model_signature(bundle.schema),
                input_example=input_example(bundle.schema),
            )
        result.mlflow_run_id = run.info.run_id
        result.model_uri = info.model_uri


def board_frame(board: CandidateBoard) -> pd.DataFrame:
    """One row per candidate, best first: ranks, test metrics, gates and the run to open."""
    rows = []
    for rank, result in enumerate(board.ranked(), start=1):
        rows.append(
            {
                "rank": rank,
                "candidate": result.name,
                "family": result.family,
                **{f"test_{k}": v for k, v in result.metrics["test"].items()},
                **{f"train_{k}": v for k, v in result.metrics["train"].items()},
                "gap_pct": result.gap_pct,
                "fit_seconds": result.fit_seconds,
                "gates": "passed" if result.passed else "; ".join(result.gate_failures),
                "mlflow_run_id": result.mlflow_run_id,
            }
        )
    return pd.DataFrame(rows)


def log_board(board: CandidateBoard) -> None:
    """Log the comparison on the active (parent) run, so MLflow shows it without ZenML.

    The candidates are nested runs; the parent gets the winner (tag and test metrics),
    the board as a table, markdown and CSV, and the train-vs-test chart.
    """
    if mlflow.active_run() is None:
        logger.warning("no active MLflow run: the candidate board is not logged")
        return
    winner = board.ranked()[0]
    mlflow.set_tags({WINNER_TAG: winner.name, WINNER_PASSED_TAG: str(winner.passed).lower()})
    history = board.history
    mlflow.log_params(
        {
            "task": board.task,
            "n_candidates": len(board.results),
            "rank_metric": f"validation_{board.metric}",
            "gap_metric": GAP_METRIC[board.task],
            "history_recipe": history.recipe,
            "history_window": history.window,
        }
    )
    mlflow.set_tags(
        {
            OUT_OF_TIME_TAG: str(board.out_of_time).lower(),
            SPLIT_TAG: board.split[:MAX_TAG_CHARS],
            HISTORY_TAG: history.reason[:MAX_TAG_CHARS],
        }
    )
    if history.scores:
        mlflow.log_metrics(
            {f"history_{name}_validation_{history.metric}": v for name, v in history.scores.items()}
        )
    mlflow.log_metrics(
        {f"{BEST_METRIC_PREFIX}{k}": v for k, v in winner.metrics["test"].items()}
        | {"best_gap_pct": winner.gap_pct, "n_passed": sum(r.passed for r in board.results)}
    )
    frame = board_frame(board)
    mlflow.log_table(frame, f"{BOARD_DIR}/{BOARD_TABLE}")
    mlflow.log_text(frame.to_csv(index=False), f"{BOARD_DIR}/{BOARD_CSV}")
    mlflow.log_text(board.to_markdown(), f"{BOARD_DIR}/{BOARD_MARKDOWN}")
    if board.comparison_plot:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / COMPARISON_PNG
            path.write_bytes(board.comparison_plot)
            mlflow.log_artifact(str(path), BOARD_DIR)


def log_judgement(decision: PromotionDecision) -> None:
    """The promotion's judgement on the active run: the naive baselines on the same rows as
    the models, whether the candidate beat them, and the suspected leaks (a tag MLflow's
    run list can filter on). The registered version gets the same tags."""
    if mlflow.active_run() is None:
        return
    metrics = {
        f"baseline_{_metric_key(name)}_{where}_{decision.metric}": value
        for name, sets in decision.baselines.items()
        for where, value in sets.items()
    }
    if metrics:
        mlflow.log_metrics(metrics)
    mlflow.set_tags(judgement_tags(decision))


def judgement_tags(decision: PromotionDecision) -> dict[str, str]:
    return {
        LEAKS_TAG: "; ".join(decision.suspected_leaks)[:MAX_TAG_CHARS] or "none",
        BEATS_BASELINES_TAG: str(decision.beats_baselines).lower(),
        OUT_OF_TIME_TAG: str(decision.out_of_time).lower(),
        HISTORY_TAG: (decision.history.recipe if decision.history else "all"),
    }


def _metric_key(name: str) -> str:
    """A baseline's name as an MLflow metric key: letters, digits and underscores."""
    return "_".join(name.split())


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
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
    """The winner becomes `champion`, the displaced one `challenger`; a loser is `challenger`."""
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, new_version)
        if previous is not None:
            client.set_registered_model_alias(name, CHALLENGER, previous)
    else:
        client.set_registered_model_alias(name, CHALLENGER, new_version)


def champion_summary(name: str) -> dict[str, object] | None:
    """What serves now: version, run, and the test metrics it was promoted with."""
    client = MlflowClient()
    version = alias_version(client, name, CHAMPION)
    if version is None:
        return None
    model_version = client.get_model_version(name, version)
    run = client.get_run(model_version.run_id)
    test = {
        k.removeprefix("test_"): v for k, v in run.data.metrics.items() if k.startswith("test_")
    }
    return {
        "name": name,
        "version": version,
        "candidate": run.data.tags.get("zenloop.candidate"),
        "run_id": model_version.run_id,
        "test_metrics": test,
    }
