"""The training pipeline's path in one process, for benchmarks and tests that judge what
the pipeline would register: profile the frame, split it, fit every enabled candidate,
rank them on the board. The pipeline runs the same functions as ZenML steps."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from zenloop.bundle import ModelBundle
from zenloop.config import TrainingConfig
from zenloop.data.loading import source_label, target_column
from zenloop.report import CandidateBoard
from zenloop.schema import FeatureSchema, infer_schema
from zenloop.training import fit_candidate, split_frame


@dataclass
class TrainedInProcess:
    schema: FeatureSchema
    splits: dict[str, pd.DataFrame]
    board: CandidateBoard
    bundles: dict[str, ModelBundle]  # candidate name -> its fitted bundle

    def best(self) -> ModelBundle | None:
        """The best candidate that passed the gates: the one promotion would register."""
        best = self.board.best_passing()
        return None if best is None else self.bundles[best.name]


def train_in_process(frame: pd.DataFrame, config: TrainingConfig) -> TrainedInProcess:
    data = config.data
    schema = infer_schema(
        frame, target_column(data), data.task, config.profile, config.features, source_label(data)
    )
    train, validation, test = split_frame(frame, schema, config.split)
    splits = {"train": train, "validation": validation, "test": test}
    fitted = [
        fit_candidate(c, schema, config.features, config.gates, splits, config.split.seed)
        for c in config.candidates
        if c.enabled
    ]
    board = CandidateBoard(task=schema.task, results=[result for _, result in fitted])
    bundles = {result.name: bundle for bundle, result in fitted}
    return TrainedInProcess(schema, splits, board, bundles)
