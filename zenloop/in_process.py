"""The training pipeline's path in one process, for benchmarks and tests that judge what
the pipeline would register: profile the frame, split it, choose how much history to learn
from, fit every enabled candidate, rank them on the board, fit the naive baselines. The
pipeline runs the same functions as ZenML steps."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from zenloop.baselines import NaiveBaseline, fit_baselines
from zenloop.bundle import ModelBundle
from zenloop.config import TrainingConfig
from zenloop.data.loading import source_label, target_column
from zenloop.models import supports
from zenloop.report import CandidateBoard
from zenloop.schema import FeatureSchema, infer_schema
from zenloop.time_order import describe_split
from zenloop.training import backtest_history, fit_candidate, split_in_order


@dataclass
class TrainedInProcess:
    schema: FeatureSchema
    splits: dict[str, pd.DataFrame]
    board: CandidateBoard
    bundles: dict[str, ModelBundle]  # candidate name -> its fitted bundle
    baselines: list[NaiveBaseline]

    def best(self) -> ModelBundle | None:
        """The best candidate that passed the gates: the one promotion would register."""
        best = self.board.best_passing()
        return None if best is None else self.bundles[best.name]


def profile(frame: pd.DataFrame, config: TrainingConfig) -> FeatureSchema:
    data = config.data
    return infer_schema(
        frame,
        target_column(data),
        data.task,
        config.profile,
        config.features,
        source_label(data),
        time_column=data.time_column,
        metric=config.metric,
    )


def baselines_for(
    splits: dict[str, pd.DataFrame], schema: FeatureSchema, config: TrainingConfig, ordered: bool
) -> list[NaiveBaseline]:
    """Naive baselines fitted on every row before the test rows, as the models were."""
    history = pd.concat([splits["train"], splits["validation"]], ignore_index=True)
    return fit_baselines(history, schema, config.history.window(len(history)), ordered)


def train_in_process(frame: pd.DataFrame, config: TrainingConfig) -> TrainedInProcess:
    schema = profile(frame, config)
    train, validation, test, order = split_in_order(frame, schema, config.split)
    splits = {"train": train, "validation": validation, "test": test}
    ordered = order != "random"
    enabled = [c for c in config.candidates if c.enabled and supports(c.family, schema.task)]
    history, probe = backtest_history(
        enabled, schema, config.features, splits, config.split.seed, config.history, ordered
    )
    fitted = [
        fit_candidate(
            c,
            schema,
            config.features,
            config.gates,
            splits,
            config.split.seed,
            history=history,
            ordered=ordered,
            probe=probe,
        )
        for c in enabled
    ]
    board = CandidateBoard(
        task=schema.task,
        results=[result for _, result in fitted],
        metric_name=schema.metric,
        history=history,
        split=describe_split(splits, order, schema.time_column),
        out_of_time=ordered,
    )
    bundles = {result.name: bundle for bundle, result in fitted}
    return TrainedInProcess(
        schema, splits, board, bundles, baselines_for(splits, schema, config, ordered)
    )
