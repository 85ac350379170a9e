"""Train every enabled candidate as its own MLflow run and rank them."""

from typing import Annotated

import pandas as pd
from zenml import ArtifactConfig, log_metadata, step
from zenml.config import CachePolicy
from zenml.enums import ArtifactType

import materializers  # noqa: F401  (registers our materializers)
from steps.registry import tracking_store
from zenloop import plots
from zenloop.bundle import ModelBundle
from zenloop.config import CandidateConfig, FeatureConfig, GateConfig, HistoryConfig
from zenloop.history import HistoryChoice
from zenloop.metrics import GAP_METRIC
from zenloop.models import supports
from zenloop.progress import progress
from zenloop.report import CandidateBoard
from zenloop.schema import FeatureSchema
from zenloop.time_order import SplitInfo
from zenloop.tracking import log_board, log_candidate
from zenloop.training import backtest_history, fit_candidate


def _enabled(candidates: list[CandidateConfig], schema: FeatureSchema) -> list[CandidateConfig]:
    """The enabled candidates this task can fit (`trend` is for regression only)."""
    return [c for c in candidates if c.enabled and supports(c.family, schema.task)]


@step
def choose_training_history(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    schema: FeatureSchema,
    split: SplitInfo,
    features: FeatureConfig,
    candidates: list[CandidateConfig],
    history: HistoryConfig,
    seed: int,
) -> tuple[
    Annotated[HistoryChoice, "history_choice"],
    Annotated[
        ModelBundle | None, ArtifactConfig(name="history_probe", artifact_type=ArtifactType.DATA)
    ],
]:
    """All rows, rows weighted by age, or a recent window: an out-of-time backtest of the
    first candidate decides, on the validation rows that follow the training rows.

    Also the probe as fitted on the chosen rows (None without a backtest): the same fit
    `train_candidates` would make for that candidate, which it reuses.
    """
    splits = {"train": train, "validation": validation}
    choice, probe = backtest_history(
        _enabled(candidates, schema), schema, features, splits, seed, history, split.out_of_time
    )
    log_metadata({"history": choice.model_dump(mode="json")})
    return choice, probe


# cached per MLflow store: its outputs name runs and logged models of the tracker it ran with
@step(experiment_tracker=True, cache_policy=CachePolicy(cache_func=tracking_store))
def train_candidates(
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    schema: FeatureSchema,
    split: SplitInfo,
    history: HistoryChoice,
    features: FeatureConfig,
    candidates: list[CandidateConfig],
    gates: GateConfig,
    seed: int,
    history_probe: ModelBundle | None = None,
) -> tuple[
    Annotated[CandidateBoard, "candidate_board"],
    Annotated[ModelBundle, ArtifactConfig(name="model", artifact_type=ArtifactType.MODEL)],
]:
    """Returns the board and the top-ranked bundle (a gate failure is recorded, not raised).

    Each candidate learns from the rows its history recipe keeps and is ranked on the
    validation rows. Each is a nested MLflow run; the step's own run (the parent) gets the
    board, the history backtest and the split.
    """
    splits = {"train": train, "validation": validation, "test": test}
    enabled = _enabled(candidates, schema)
    results, bundles = [], {}
    with progress("training candidates", len(enabled)) as tracker:
        for candidate in enabled:
            tracker.advance(0, f"{candidate.name} ({candidate.family})")
            bundle, result = fit_candidate(
                candidate,
                schema,
                features,
                gates,
                splits,
                seed,
                lambda n: tracker.advance(0, n),
                history=history,
                ordered=split.out_of_time,
                probe=history_probe,
            )
            log_candidate(result, bundle)
            results.append(result)
            bundles[candidate.name] = bundle
            tracker.advance(1, f"{candidate.name} done in {result.fit_seconds:.1f}s")
    gap_metric = GAP_METRIC[schema.task]
    comparison = plots.train_vs_test(
        {r.name: {s: r.metrics[s][gap_metric] for s in ("train", "test")} for r in results},
        gap_metric,
    )
    board = CandidateBoard(
        task=schema.task,
        results=results,
        comparison_plot=comparison,
        metric_name=schema.metric,
        history=history,
        split=split.description,
        out_of_time=split.out_of_time,
    )
    log_board(board)  # the parent MLflow run shows the comparison of its nested candidates
    log_metadata(
        {r.name: {**r.metrics["test"], "gap_pct": r.gap_pct, "passed": r.passed} for r in results}
    )
    return board, bundles[board.ranked()[0].name]
