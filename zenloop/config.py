"""Validated configuration for every stage of zenloop.

The YAML files under `configs/` are ZenML run configurations; their `parameters`
sections are parsed into these models, so a typo or a bad value fails before any
work starts, naming the field.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from zenloop.errors import UserError
from zenloop.paths import project_path

Task = Literal["regression", "classification"]
# the ZenML model and MLflow registered model, unless a config names another
DEFAULT_MODEL_NAME = "zenloop"
# the MLflow experiment every stack sets up (with its artifact root): training runs log there
DEFAULT_EXPERIMENT = "zenloop"
DEFAULT_ALIAS = "champion"
DEFAULT_SERVING_CONFIG = "configs/serving.yaml"  # the service the other configs point at
DEFAULT_PORTS = {"http": 80, "https": 443}  # of a URL that names none
DEFAULT_SERVICE_HOST, DEFAULT_SERVICE_PORT = "127.0.0.1", 8000
DEFAULT_EVENTS_URL = "http://127.0.0.1:8090/events"  # the monitor takes events there


class ConfigError(UserError, ValueError):
    """A configuration file or value is invalid; the message names the field."""


class StrictModel(BaseModel):
    """Rejects unknown keys so a misspelt option is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid")


class ColumnRole(StrEnum):
    NUMERIC = "numeric"
    CATEGORICAL = "categorical"
    HIGH_CARDINALITY = "high_cardinality"
    TEXT = "text"
    DATETIME = "datetime"
    IGNORE = "ignore"


class DataConfig(StrictModel):
    """Where the rows come from: the embedded generator or a user's CSV/Parquet file."""

    source: Literal["generator", "file", "artifact"] = "generator"
    path: str | None = Field(
        default=None, description="a local path or an fsspec URI (s3://, gs://, https://)"
    )
    artifact_id: str | None = Field(
        default=None, description="with source 'artifact': a ZenML artifact version id"
    )
    target: str | None = Field(
        default=None,
        description="Target column; the generator defaults to order_total or is_returned.",
    )
    task: Task = "regression"
    n_rows: int = Field(default=50_000, ge=100, le=1_000_000)
    seed: int = 42
    scenario: str | None = None
    scenario_strength: float = Field(default=1.0, ge=0.0, le=5.0)
    max_missing_fraction: float = Field(default=0.6, gt=0.0, le=1.0)
    time_column: str | None = Field(
        default=None,
        description="the column that orders rows in time (a date, a year, a period index): "
        "validation and test are then the latest rows; null: no time order is known",
    )

    @model_validator(mode="after")
    def _sources_need_their_fields(self) -> DataConfig:
        if self.source == "file" and not self.path:
            raise ValueError("data.path is required when data.source is 'file'")
        if self.source == "artifact" and not self.artifact_id:
            raise ValueError("data.artifact_id is required when data.source is 'artifact'")
        if self.source != "generator" and not self.target:
            raise ValueError(f"data.target is required when data.source is '{self.source}'")
        return self


class ProfileConfig(StrictModel):
    """Thresholds for inferring column roles, plus explicit overrides."""

    column_roles: dict[str, ColumnRole] = Field(default_factory=dict)
    max_onehot_cardinality: int = Field(default=30, ge=2)
    id_unique_ratio: float = Field(default=0.95, gt=0.0, le=1.0)
    text_min_mean_words: float = Field(default=3.0, gt=0.0)
    datetime_parse_fraction: float = Field(default=0.95, gt=0.0, le=1.0)
    ignore_index_columns: bool = Field(
        default=True,
        description="ignore row numbers, counters and unique keys unless column_roles names them",
    )
    leak_threshold: float | None = Field(
        default=0.9,
        gt=0.0,
        le=1.0,
        description="held-out R² (regression) or ROC-AUC (classification) of one column alone "
        "from which it is flagged as a suspected target leak; null=off",
    )
    leak_margin: float | None = Field(
        default=0.05,
        ge=0.0,
        le=1.0,
        description="after training, a column whose score alone is within this of the whole "
        "model's (same metric, test rows) is flagged too; null=off",
    )
    leak_margin_min_skill: float = Field(
        default=0.5,
        ge=0.0,
        le=1.0,
        description="the margin rule applies to columns at least this good alone (R², or "
        "ROC-AUC as Gini): in a weak model every useful column is near the whole",
    )
    key_unique_ratio: float = Field(
        default=0.5,
        gt=0.0,
        le=1.0,
        description="a code column (text, or integers without order) with at least this share "
        "of distinct values is flagged as a key and ignored unless column_roles names it",
    )


# Feature options written for the embedded orders (zenloop/data/generator.py). A config
# that names the preset runs on anyone's data: the preset's options that name columns the
# data lacks are dropped with a warning. Options written out by hand stay strict.
FEATURE_PRESETS: dict[str, dict[str, Any]] = {
    "orders": {
        "bins": {"customer_tenure_days": 8},
        "ratios": [("shipping_cost", "unit_price")],
        "interactions": [("unit_price", "quantity")],
    }
}


@dataclass(frozen=True)
class ResolvedFeatures:
    """Feature options that apply to one dataset, and the preset options that did not."""

    config: FeatureConfig
    skipped: list[str]


class FeatureConfig(StrictModel):
    """How the feature pipeline turns raw columns into model inputs."""

    preset: Literal["orders"] | None = Field(
        default=None,
        description="extra bins/ratios/interactions for the embedded orders; the ones that "
        "name absent or non-numeric columns are skipped with a warning",
    )
    log_skew_threshold: float | None = Field(
        default=1.0, description="|skew| above which a numeric column is log-transformed; null=off"
    )
    bins: dict[str, int] = Field(default_factory=dict, description="column -> number of bins")
    ratios: list[tuple[str, str]] = Field(default_factory=list)
    interactions: list[tuple[str, str]] = Field(default_factory=list)
    high_cardinality_encoding: Literal["target", "hash"] = "target"
    hash_features: int = Field(default=32, ge=2)
    text_hash_features: int = Field(default=64, ge=2)
    onehot_min_frequency: int = Field(default=5, ge=1)

    def referenced_columns(self) -> set[str]:
        """Columns named by options written in the config (not the preset's)."""
        pairs = [*self.ratios, *self.interactions]
        return set(self.bins) | {c for pair in pairs for c in pair}

    def resolve(self, numeric_columns: Collection[str]) -> ResolvedFeatures:
        """The options to build the pipeline with: the written ones plus the preset's that fit."""
        if self.preset is None:
            return ResolvedFeatures(self, [])
        preset = FEATURE_PRESETS[self.preset]
        available = set(numeric_columns)
        bins, ratios, interactions = dict(self.bins), list(self.ratios), list(self.interactions)
        skipped = []
        for column, n_bins in preset["bins"].items():
            if column in available:
                bins.setdefault(column, n_bins)
            else:
                skipped.append(f"bins on {column!r}")
        for kind, written, pairs in (
            ("ratio", ratios, preset["ratios"]),
            ("interaction", interactions, preset["interactions"]),
        ):
            for pair in pairs:
                if set(pair) <= available:
                    written.append(tuple(pair))
                else:
                    skipped.append(f"{kind} {pair[0]!r}/{pair[1]!r}")
        notes = [
            f"features.preset {self.preset!r}: {item} skipped (no such numeric column)"
            for item in skipped
        ]
        resolved = self.model_copy(
            update={"preset": None, "bins": bins, "ratios": ratios, "interactions": interactions}
        )
        return ResolvedFeatures(resolved, notes)


SplitOrder = Literal["auto", "random", "time", "file"]


class SplitConfig(StrictModel):
    """How rows are split into train, validation and test.

    `order`: `time` sorts by `data.time_column` and keeps the latest rows for validation and
    test (out-of-time); `file` takes the file's own order as time order (a retraining's
    data: older rows first); `random` is a seeded shuffle (stratified for classes); `auto`
    is `time` when the data names a time column, else `random`. `test_rows` and
    `validation_rows` ask for exact counts instead of shares.
    """

    order: SplitOrder = "auto"
    test_size: float = Field(default=0.2, gt=0.0, lt=0.5)
    validation_size: float = Field(default=0.1, gt=0.0, lt=0.5)
    test_rows: int | None = Field(default=None, ge=1)
    validation_rows: int | None = Field(default=None, ge=1)
    seed: int = 42

    def resolved_order(self, time_column: str | None) -> SplitOrder:
        if self.order != "auto":
            return self.order
        return "time" if time_column else "random"


HistoryRecipe = Literal["all", "weighted", "recent"]


class HistoryConfig(StrictModel):
    """How much history a model learns from, chosen by an out-of-time backtest.

    With an ordered split, each recipe is fitted with the first enabled candidate (the
    probe) on the training rows and scored on the validation rows, which come after them;
    the best recipe is used by every candidate. `all`: every training row alike;
    `weighted`: rows weigh half as much every `recent_rows` rows further back; `recent`:
    only the latest `recent_rows` training rows. With a random split, or one recipe, all
    rows are used as they are.
    """

    recipes: list[HistoryRecipe] = Field(default_factory=lambda: ["all", "weighted", "recent"])
    recent_rows: int | None = Field(
        default=None,
        ge=1,
        description="the recent window and the weights' half-life; default: recent_share of "
        "the training rows (a retraining sets it to the labelled traffic it learns from)",
    )
    recent_share: float = Field(default=0.3, gt=0.0, le=1.0)
    min_recent_rows: int = Field(
        default=200, ge=10, description="a smaller recent window is not tried"
    )

    @model_validator(mode="after")
    def _some_recipe(self) -> HistoryConfig:
        if not self.recipes:
            raise ValueError("history.recipes: name at least one of all, weighted, recent")
        if len(set(self.recipes)) != len(self.recipes):
            raise ValueError(f"history.recipes: each recipe once, got {self.recipes}")
        return self

    def window(self, training_rows: int) -> int:
        """The recent window, in training rows."""
        rows = self.recent_rows or round(self.recent_share * training_rows)
        return max(1, min(training_rows, rows))


class SearchConfig(StrictModel):
    """Hyperparameter search on the training split.

    With `param_distributions`, a seeded randomized search over them; without, the
    family's portfolio: a fixed list of settings known to work, tried in order. Each
    trial is scored on the validation split, or by cross-validation when `cv` is set.

    `budget` caps the work so that a rerun tries the same settings: the search stops
    before a trial when the work spent plus an average trial would pass it. Work is
    training rows x encoded features x boosting rounds (a fit without rounds counts 100),
    so small tables get the whole portfolio and large ones keep the first setting. The
    first trial always runs. `max_seconds` adds a wall-clock cap, which a slower or busier
    machine reaches sooner.
    """

    n_iter: int = Field(default=8, ge=1)
    cv: int | None = Field(default=None, ge=2, description="folds; null = the validation split")
    param_distributions: dict[str, list[Any]] = Field(
        default_factory=dict, description="empty = the family's portfolio, in order"
    )
    budget: float | None = Field(
        default=None, gt=0, description="rows x features x rounds; null = n_iter trials"
    )
    max_seconds: float | None = Field(default=None, gt=0)

    def allows(self, spent: float, elapsed_s: float, done: int) -> bool:
        """Whether another trial fits after `done` trials spent `spent` work in `elapsed_s`."""
        if done >= self.n_iter:
            return False
        if self.budget is not None and spent + spent / done > self.budget:
            return False
        return self.max_seconds is None or elapsed_s + elapsed_s / done <= self.max_seconds


ModelFamily = Literal["xgboost", "hist_gradient_boosting", "random_forest", "linear", "trend"]


class CandidateConfig(StrictModel):
    """One model to train. What each family is for each task (zenloop/models.py):

    - xgboost: XGBRegressor / XGBClassifier, early-stopped on the validation split;
    - hist_gradient_boosting: scikit-learn's HistGradientBoosting{Regressor,Classifier},
      early-stopped on the validation split;
    - random_forest: RandomForest{Regressor,Classifier};
    - linear: Ridge (`alpha`) for regression, LogisticRegression (`C`, or `alpha` read as
      1/C) for classification, on scaled features;
    - trend (regression only): Ridge on scaled features, then gradient boosting on what it
      leaves; the linear part follows a trend past the range of the training rows.

    `params` override the defaults, which adapt to the row count and class balance;
    `target_transform: log` fits a regressor on log1p of the target.
    """

    name: str
    family: ModelFamily
    enabled: bool = True
    params: dict[str, Any] = Field(default_factory=dict)
    search: SearchConfig | None = None
    refit: bool = Field(
        default=True,
        description="after early stopping, refit on training + validation rows with the "
        "chosen rounds scaled to them",
    )


# The default search budget, in rows x encoded features x boosting rounds: about 10-40 s
# of boosting on 2 cores. A 7,000-row table gets the whole portfolio; the 50,000 orders
# (150 encoded features) get the first setting.
DEFAULT_SEARCH_BUDGET = 1.2e9


def default_candidates() -> list[CandidateConfig]:
    return [
        CandidateConfig(
            name="xgboost",
            family="xgboost",
            search=SearchConfig(budget=DEFAULT_SEARCH_BUDGET),
        ),
        CandidateConfig(name="hist_gradient_boosting", family="hist_gradient_boosting"),
        CandidateConfig(name="random_forest", family="random_forest"),
        # its portfolio (penalties, a log target) costs little: every setting is tried
        CandidateConfig(name="linear", family="linear", search=SearchConfig()),
        CandidateConfig(name="trend", family="trend"),
    ]


class GateConfig(StrictModel):
    """Quality gates a candidate must pass before it may become champion.

    The floors only stop models that learned (almost) nothing: how good a model can be
    depends on the data, and the champion comparison decides the rest. The train/test gap
    is reported for every candidate, and judged only for those whose capacity was not
    chosen on held-out rows: an early-stopped booster has already been stopped where more
    rounds stopped helping on the validation split.
    """

    min_r2: float | None = 0.05
    max_rmse: float | None = None
    min_f1: float | None = Field(
        default=None, description="F1 at the argmax threshold depends on the class balance"
    )
    min_roc_auc: float | None = 0.6
    max_gap_pct: float | None = Field(
        default=30.0, description="max relative train/test gap of the primary metric, percent"
    )
    gap_applies_to_early_stopped: bool = False


class PromotionConfig(StrictModel):
    """When a registered candidate replaces the champion.

    A candidate must also beat every naive baseline (the recent mean and median, or the
    class prior; the last period's mean where there is a time column) on the same test
    rows: one that does not has learned nothing a constant could not do.
    """

    min_improvement: float = Field(
        default=0.0,
        ge=0.0,
        description="relative improvement of the primary metric required to promote",
    )
    must_beat_baselines: bool = True
    recent_data: DataConfig | None = Field(
        default=None, description="optional recent rows; both models are also scored on them"
    )


class ReferenceConfig(StrictModel):
    sample_size: int = Field(default=5_000, ge=100)
    seed: int = 42


MetricName = Literal["rmse", "mae", "roc_auc", "log_loss"]
METRIC_TASK: dict[str, Task] = {
    "rmse": "regression",
    "mae": "regression",
    "roc_auc": "classification",
    "log_loss": "classification",
}


class TrainingConfig(StrictModel):
    data: DataConfig = Field(default_factory=DataConfig)
    metric: MetricName | None = Field(
        default=None,
        description="the primary metric: it ranks candidates, gates promotion, and is the "
        "figure of the drift check, status, the page and replay; default rmse (regression) "
        "or roc_auc (classification); log_loss judges probabilities",
    )
    profile: ProfileConfig = Field(default_factory=ProfileConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)
    history: HistoryConfig = Field(default_factory=HistoryConfig)
    candidates: list[CandidateConfig] = Field(default_factory=default_candidates)
    gates: GateConfig = Field(default_factory=GateConfig)
    promotion: PromotionConfig = Field(default_factory=PromotionConfig)
    reference: ReferenceConfig = Field(default_factory=ReferenceConfig)

    @model_validator(mode="after")
    def _some_candidate_enabled(self) -> TrainingConfig:
        if not any(c.enabled for c in self.candidates):
            raise ValueError("candidates: at least one candidate must be enabled")
        names = [c.name for c in self.candidates]
        if len(names) != len(set(names)):
            raise ValueError(f"candidates: names must be unique, got {names}")
        if self.metric is not None and METRIC_TASK[self.metric] != self.data.task:
            raise ValueError(
                f"metric: {self.metric!r} is a {METRIC_TASK[self.metric]} metric, the task is "
                f"{self.data.task}"
            )
        if self.split.order == "time" and not self.data.time_column:
            raise ValueError("split.order: 'time' needs data.time_column")
        return self


def format_validation_error(error: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid configuration"]
    for item in error.errors():
        field = ".".join(str(part) for part in item["loc"]) or "(root)"
        lines.append(f"  - {field}: {item['msg']}")
    return "\n".join(lines)


def read_run_config(path: str | Path) -> dict[str, Any]:
    """Read a ZenML run-config YAML file, failing with the file name on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if not isinstance(content, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return content


def load_pipeline_parameter(path: str | Path, key: str, model: type[BaseModel]) -> Any:
    """Validate the `parameters.<key>` section of a ZenML run config with `model`."""
    params = read_run_config(path).get("parameters", {}) or {}
    try:
        return model.model_validate(params.get(key, {}) or {})
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, f"{path} parameters.{key}")) from exc


def load_training_config(path: str | Path) -> TrainingConfig:
    return load_pipeline_parameter(path, "config", TrainingConfig)


class LinkedLog(BaseModel):
    model_config = ConfigDict(extra="ignore")
    database_url: str | None = None


class LinkedEvents(BaseModel):
    model_config = ConfigDict(extra="ignore")
    url: str | None = DEFAULT_EVENTS_URL


class ServiceLink(BaseModel):
    """What the other configs read from the service's config file: where the service
    listens, where it logs predictions, where it sends events. The rest of that file is
    the service's own (api.settings.ServingConfig validates all of it)."""

    model_config = ConfigDict(extra="ignore")
    host: str = DEFAULT_SERVICE_HOST
    port: int = DEFAULT_SERVICE_PORT
    log: LinkedLog = Field(default_factory=LinkedLog)
    events: LinkedEvents = Field(default_factory=LinkedEvents)

    @property
    def url(self) -> str:
        """Where clients reach the service."""
        return f"http://{self.host}:{self.port}"


def linked_serving(path: str | None) -> ServiceLink:
    """The service a deployment, monitoring or page config points at: its serving file
    decides the address, the monitor's event port and the prediction log; the others
    read it there. Relative paths are taken from the checkout (or the working folder)."""
    if path is None:
        return ServiceLink()
    resolved = project_path(path)
    try:
        return ServiceLink.model_validate(read_run_config(resolved))
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, str(resolved))) from exc


def _serving_config_field() -> Any:
    return Field(
        default=DEFAULT_SERVING_CONFIG,
        description="the service's config: its address, event URL and prediction log are "
        "read there unless set here; null: the serving defaults",
    )


class DeploymentConfig(StrictModel):
    """What the deployment pipeline deploys, how it checks it, and where the service runs."""

    model_name: str = DEFAULT_MODEL_NAME
    alias: str = DEFAULT_ALIAS
    version: str | None = Field(
        default=None, description="deploy this version instead of the alias"
    )
    service_url: str | None = Field(
        default=None,
        description="the service the version is handed to; default: serving_config's address",
    )
    serving_config: str | None = _serving_config_field()
    handover_timeout_s: float = Field(
        default=120.0, gt=0.0, description="retries with back-off until this deadline"
    )
    holdout_rows: int = Field(default=500, ge=10)
    latency_samples: int = Field(default=200, ge=10)
    max_p50_latency_ms: float = Field(
        default=20.0, gt=0.0, description="single-row median; a smoke check robust to busy hosts"
    )

    def with_service(self) -> DeploymentConfig:
        """`service_url` filled in from the serving config when it is not set."""
        if self.service_url is not None:
            return self
        return self.model_copy(update={"service_url": linked_serving(self.serving_config).url})


class WindowConfig(StrictModel):
    """The current window: the last N logged rows, or the last N seconds, of the champion."""

    last_rows: int | None = Field(default=2_000, ge=1)
    seconds: float | None = Field(default=None, gt=0.0)

    @model_validator(mode="after")
    def _one_bound(self) -> WindowConfig:
        if (self.last_rows is None) == (self.seconds is None):
            raise ValueError("window: set exactly one of last_rows or seconds")
        return self


class DriftConfig(StrictModel):
    drift_share: float = Field(default=0.25, gt=0.0, le=1.0, description="drifted column share")
    prediction_drift_triggers: bool = True
    sample_rows: int = Field(default=10_000, ge=100, description="cap on rows compared per side")
    sample_seed: int = 0
    max_categories: int = Field(
        default=100, ge=2, description="categorical columns with more values (ids) are skipped"
    )
    min_labelled_rows: int = Field(default=100, ge=1)
    max_error_ratio: float = Field(
        default=1.5, gt=1.0, description="window error / test error above which performance drifts"
    )
    baseline_window_rows: int = Field(
        default=500,
        ge=10,
        description="the naive baseline predicts each labelled row from this many labelled "
        "rows before it (their mean, or class shares; the last period's where there is a "
        "time column)",
    )
    baseline_min_history: int = Field(
        default=50, ge=1, description="rows scored against the baseline have this many before them"
    )


class PolicyConfig(StrictModel):
    min_window_rows: int = Field(default=500, ge=1)
    min_new_rows: int = Field(
        default=100, ge=1, description="rows logged since the last check for a window to count"
    )
    consecutive_windows: int = Field(default=2, ge=1)
    performance_confirms: bool = Field(
        default=True,
        description="a window whose labelled rows show the champion degraded, or behind a "
        "naive forecast, confirms drift by itself: no consecutive windows to wait for",
    )
    cooldown_rows: int = Field(
        default=500,
        ge=0,
        description="after a retraining that kept the champion (or a rollback to it), this "
        "many more labelled rows must come in before it triggers again: a retraining that "
        "lost needs more of the new traffic to learn from",
    )
    cooldown_s: float = Field(
        default=0.0, ge=0.0, description="and this long must pass, in seconds"
    )
    lease_timeout_s: float = Field(
        default=300.0,
        gt=0.0,
        description="a retrain lease not renewed for this long may be taken over",
    )


class RetrainConfig(StrictModel):
    training_config: str = "configs/training.yaml"
    deployment_config: str = "configs/deployment.yaml"
    reference_rows: int = Field(
        default=10_000,
        ge=100,
        description="the latest rows of the champion's data (train, validation and test, in "
        "order) a retraining may learn from; its history backtest decides how much it does",
    )
    min_labelled_rows: int = Field(default=500, ge=10)
    recent_holdout: float = Field(
        default=0.3,
        gt=0.0,
        lt=1.0,
        description="the newest share of the labelled rows, never learned from: the candidate, "
        "the champion and the naive baselines are compared on them",
    )
    recent_validation: float = Field(
        default=0.2,
        gt=0.0,
        lt=1.0,
        description="the share of the labelled rows just before the holdout that validates: "
        "early stopping, the search and the history backtest",
    )
    fallback: DataConfig | None = Field(
        default=None, description="labelled data to use when too few logged rows have feedback"
    )
    leading_candidates: int | None = Field(
        default=2,
        ge=1,
        description="retrain only the candidates that ranked best on the champion's board "
        "(the families that suit this data), for a faster loop; null: every candidate",
    )
    with_trend_candidate: bool = Field(
        default=True,
        description="with leading_candidates: also the best candidate that can follow a trend "
        "past its training rows (linear, trend), so a retraining is never trees only",
    )

    @model_validator(mode="after")
    def _room_to_learn(self) -> RetrainConfig:
        if self.recent_holdout + self.recent_validation >= 1.0:
            raise ValueError(
                "retrain: recent_holdout + recent_validation must leave labelled rows to learn from"
            )
        return self


class RollbackConfig(StrictModel):
    """After a promotion, the new champion and the version it replaced are scored on the same
    later labelled rows (offline, from the log). Once `after_rows` of them are in, a new
    champion that is worse with `confidence` (a paired bootstrap of the primary metric) by
    more than `margin` (relative) is rolled back: the replaced version is champion again."""

    enabled: bool = True
    after_rows: int = Field(default=300, ge=30)
    confidence: float = Field(default=0.95, gt=0.5, lt=1.0)
    margin: float = Field(default=0.0, ge=0.0, description="relative worsening tolerated")
    bootstrap_rounds: int = Field(default=400, ge=50, le=10_000)
    max_rows: int = Field(default=20_000, ge=100, description="the latest labelled rows scored")


class MonitorConfig(StrictModel):
    model_name: str = DEFAULT_MODEL_NAME
    alias: str = DEFAULT_ALIAS
    serving_config: str | None = _serving_config_field()
    log_database_url: str | None = Field(
        default=None,
        description="the prediction log (and the monitor's records); default: the service's",
    )
    window: WindowConfig = Field(default_factory=WindowConfig)
    drift: DriftConfig = Field(default_factory=DriftConfig)
    policy: PolicyConfig = Field(default_factory=PolicyConfig)
    retrain: RetrainConfig = Field(default_factory=RetrainConfig)
    rollback: RollbackConfig = Field(default_factory=RollbackConfig)
    events_host: str | None = Field(
        default=None, description="where events are taken; default: the service's events.url"
    )
    events_port: int | None = Field(default=None, ge=1, le=65535)
    backstop_interval_s: float = Field(default=60.0, gt=0.0)
    heartbeat_interval_s: float = Field(default=5.0, gt=0.0)
    active_lease_timeout_s: float = Field(
        default=30.0,
        gt=0.0,
        description="monitors on one log: the checking one, not heard from for this long, "
        "is replaced by one that stood by",
    )

    def with_service(self) -> MonitorConfig:
        """The log and the event address the service uses, where this config sets none."""
        if None not in (self.log_database_url, self.events_host, self.events_port):
            return self
        serving = linked_serving(self.serving_config)
        events = urlsplit(serving.events.url or DEFAULT_EVENTS_URL)
        port = events.port or DEFAULT_PORTS[events.scheme]
        return self.model_copy(
            update={
                "log_database_url": self.log_database_url or serving.log.database_url,
                "events_host": self.events_host or events.hostname,
                "events_port": self.events_port or port,
            }
        )


def load_deployment_config(path: str | Path) -> DeploymentConfig:
    return load_pipeline_parameter(path, "deploy", DeploymentConfig).with_service()


def load_monitor_config(path: str | Path) -> MonitorConfig:
    return load_pipeline_parameter(path, "monitor", MonitorConfig).with_service()
