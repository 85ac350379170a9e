"""How much history a model learns from: all rows, rows weighted by age, or a recent window.

When the relation between features and target moves, old rows teach the wrong lesson; when
it holds, they are more data. Which is true is measured, not assumed: an out-of-time
backtest fits one model per recipe on the training rows and scores it on the validation
rows that follow them (`zenloop.training.backtest_history`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pydantic import BaseModel

from zenloop.config import HistoryConfig, HistoryRecipe

HALF = 0.5
MEANING: dict[str, str] = {
    "all": "every training row alike",
    "weighted": "rows weigh half as much every {window:,} rows further back",
    "recent": "only the latest {window:,} training rows",
}


class HistoryChoice(BaseModel):
    """The recipe a training run learned with, and the backtest that chose it."""

    recipe: HistoryRecipe = "all"
    window: int | None = None  # the recent window and the half-life, in training rows
    metric: str | None = None
    scores: dict[str, float] = {}  # recipe -> the probe's validation score
    rows: dict[str, int] = {}  # recipe -> training rows it learned from
    probe: str | None = None  # the candidate fitted per recipe
    reason: str = "one recipe: every training row alike"

    def meaning(self) -> str:
        return MEANING[self.recipe].format(window=self.window or 0)

    def to_markdown(self) -> str:
        lines = [f"**History**: {self.recipe}, {self.meaning()}. {self.reason}"]
        if self.scores:
            lines += ["", f"| recipe | training rows | validation {self.metric} |", "|---|---|---|"]
            lines += [
                f"| {name}{' (chosen)' if name == self.recipe else ''} | {self.rows[name]:,} "
                f"| {value:.4f} |"
                for name, value in self.scores.items()
            ]
        return "\n".join(lines) + "\n"


def recipes_to_try(config: HistoryConfig, ordered: bool, training_rows: int) -> list[HistoryRecipe]:
    """The recipes worth a backtest: with an order and a window that differs from all rows
    and is large enough to learn from; otherwise all rows only."""
    if not ordered:
        return ["all"]
    window = config.window(training_rows)
    usable = [
        recipe
        for recipe in config.recipes
        if recipe == "all" or (config.min_recent_rows <= window < training_rows)
    ]
    return usable or [config.recipes[0] if config.recipes[0] == "all" else "all"]


def apply_recipe(
    train: pd.DataFrame, recipe: HistoryRecipe, window: int
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """The training rows (oldest first) a recipe learns from, and their weights (None: alike)."""
    if recipe == "recent":
        return train.iloc[-window:].reset_index(drop=True), None
    if recipe == "weighted":
        age = np.arange(len(train))[::-1]  # 0 for the newest row
        return train, HALF ** (age / max(window, 1))
    return train, None
