"""Decide whether the best new candidate replaces the champion, and record why."""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel

from zenloop.bundle import ModelBundle
from zenloop.gates import judge_against_champion
from zenloop.report import CandidateBoard
from zenloop.training import evaluate

TEST_SET, RECENT_SET = "test", "recent"  # the evaluation sets: the test split, recent rows


class PromotionDecision(BaseModel):
    model_name: str
    metric: str
    candidate: str | None = None
    registered_version: str | None = None
    champion_before: str | None = None
    champion_after: str | None = None
    promoted: bool = False
    reason: str
    improvement: float | None = None
    scores: dict[str, dict[str, float]] = {}  # model -> evaluation set -> primary metric
    evaluation_rows: dict[str, int] = {}  # evaluation set -> rows scored
    # flagged columns of the candidate's schema: its scores may not hold on new rows
    suspected_leaks: list[str] = []
    ignored_index_columns: list[str] = []

    def to_markdown(self) -> str:
        rows = "\n".join(
            f"| {who} | " + " | ".join(f"{k}: {v:.4f}" for k, v in sets.items()) + " |"
            for who, sets in self.scores.items()
        )
        outcome = "PROMOTED" if self.promoted else "not promoted"
        leaks = "".join(f"- {leak}\n" for leak in self.suspected_leaks)
        leaks = f"**Suspected leaks**: check them before trusting the scores.\n\n{leaks}\n"
        ignored = ", ".join(self.ignored_index_columns)
        return (
            f"## Promotion of `{self.model_name}`: {outcome}\n\n"
            f"{self.reason}\n\n"
            + (leaks if self.suspected_leaks else "")
            + f"- candidate: {self.candidate} (registry version {self.registered_version})\n"
            f"- champion before: {self.champion_before}, after: {self.champion_after}\n"
            + (f"- ignored as row numbers or keys: {ignored}\n" if ignored else "")
            + f"\n| model | {self.metric} |\n|---|---|\n{rows}\n"
        )


def compatible(champion: ModelBundle, candidate: ModelBundle) -> bool:
    """A champion trained for another target or task cannot be compared, only replaced."""
    return (champion.schema.target, champion.schema.task) == (
        candidate.schema.target,
        candidate.schema.task,
    )


def decide(
    model_name: str,
    board: CandidateBoard,
    candidate: ModelBundle,
    champion: ModelBundle | None,
    champion_version: str | None,
    evaluation_sets: dict[str, pd.DataFrame],
    min_improvement: float,
) -> PromotionDecision:
    """Score candidate and champion on the same sets; the last set given decides."""
    best = board.best_passing()
    leaks = candidate.schema.suspected_leaks()
    base = dict(
        model_name=model_name,
        metric=board.metric,
        champion_before=champion_version,
        suspected_leaks=leaks,
        ignored_index_columns=candidate.schema.ignored_index_columns(),
    )
    warning = f"; suspected leaks: {'; '.join(leaks)}" if leaks else ""
    if best is None:
        failures = "; ".join(f"{r.name}: {', '.join(r.gate_failures)}" for r in board.results)
        return PromotionDecision(
            **base,
            champion_after=champion_version,
            reason=f"no candidate passed the quality gates ({failures}){warning}",
        )
    scores = {
        "candidate": {k: evaluate(candidate, f)[board.metric] for k, f in evaluation_sets.items()}
    }
    if champion is not None and not compatible(champion, candidate):
        champion = None
    if champion is not None:
        scores["champion"] = {
            k: evaluate(champion, f)[board.metric] for k, f in evaluation_sets.items()
        }
    deciding = list(evaluation_sets)[-1]
    verdict = judge_against_champion(
        scores["candidate"][deciding],
        scores["champion"][deciding] if champion is not None else None,
        board.task,
        min_improvement,
        deciding,
    )
    return PromotionDecision(
        **base,
        candidate=best.name,
        promoted=verdict.promote,
        reason=verdict.reason + warning,
        improvement=verdict.improvement,
        scores=scores,
        evaluation_rows={k: len(f) for k, f in evaluation_sets.items()},
        champion_after=None if verdict.promote else champion_version,
    )
