"""Decide whether the best new candidate replaces the champion, and record why.

A candidate is promoted only when it beats every naive baseline and the champion on the
same rows, which neither of them learned from: the test split, the latest rows when the
data has a time order (a retraining's test rows are the newest labelled traffic).
"""

from __future__ import annotations

import pandas as pd
from pydantic import BaseModel

from zenloop.baselines import NaiveBaseline, score_baselines
from zenloop.bundle import ModelBundle
from zenloop.config import ProfileConfig
from zenloop.gates import judge_against_baselines, judge_against_champion
from zenloop.history import HistoryChoice
from zenloop.metrics import GAP_METRIC
from zenloop.report import CandidateBoard
from zenloop.schema import near_full_model
from zenloop.training import evaluate

TEST_SET, RECENT_SET = "test", "recent"  # the evaluation sets: the test split, recent rows
NO_TIME_ORDER = (
    "validated on a random split: no column orders the rows in time, so the scores do not "
    "say how the model holds up on later rows (set data.time_column if one does)"
)


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
    # naive baseline -> evaluation set -> primary metric, on the same rows as the models
    baselines: dict[str, dict[str, float]] = {}
    beats_baselines: bool | None = None
    # flagged columns of the candidate's schema: its scores may not hold on new rows
    suspected_leaks: list[str] = []
    ignored_index_columns: list[str] = []
    time_column: str | None = None
    out_of_time: bool = False  # validation and test are later rows than the training rows
    split: str = ""  # how train, validation and test were cut
    history: HistoryChoice | None = None

    @property
    def validation_note(self) -> str:
        return self.split if self.out_of_time else f"{NO_TIME_ORDER}. {self.split}"

    def to_markdown(self) -> str:
        rows = "\n".join(
            f"| {who} | " + " | ".join(f"{k}: {v:.4f}" for k, v in sets.items()) + " |"
            for who, sets in {**self.scores, **self.baselines}.items()
        )
        outcome = "PROMOTED" if self.promoted else "not promoted"
        leaks = "".join(f"- {leak}\n" for leak in self.suspected_leaks)
        leaks = f"**Suspected leaks**: check them before trusting the scores.\n\n{leaks}\n"
        ignored = ", ".join(self.ignored_index_columns)
        history = self.history.to_markdown() + "\n" if self.history else ""
        return (
            f"## Promotion of `{self.model_name}`: {outcome}\n\n"
            f"{self.reason}\n\n"
            + (leaks if self.suspected_leaks else "")
            + f"**Validation**: {self.validation_note}\n\n"
            + history
            + f"- candidate: {self.candidate} (registry version {self.registered_version})\n"
            f"- champion before: {self.champion_before}, after: {self.champion_after}\n"
            + (f"- ignored as row numbers or keys: {ignored}\n" if ignored else "")
            + f"\n| model or naive baseline | {self.metric} |\n|---|---|\n{rows}\n"
        )


def compatible(champion: ModelBundle, candidate: ModelBundle) -> bool:
    """A champion trained for another target or task cannot be compared, only replaced."""
    return (champion.schema.target, champion.schema.task) == (
        candidate.schema.target,
        candidate.schema.task,
    )


def leaks_of(candidate: ModelBundle, profile: ProfileConfig) -> list[str]:
    """Flagged columns the model uses, and columns that alone come close to the whole model
    on the test rows."""
    schema = candidate.schema
    full = candidate.metrics.get("test", {}).get(GAP_METRIC[schema.task])
    near = near_full_model(schema, full, profile) if full is not None else []
    named = {spec.name for spec in near}
    kept = schema.model_copy(
        update={"columns": [c for c in schema.columns if c.name not in named] + near}
    )
    return kept.suspected_leaks()


def decide(
    model_name: str,
    board: CandidateBoard,
    candidate: ModelBundle,
    champion: ModelBundle | None,
    champion_version: str | None,
    evaluation_sets: dict[str, pd.DataFrame],
    min_improvement: float,
    baselines: list[NaiveBaseline] | None = None,
    must_beat_baselines: bool = True,
    profile: ProfileConfig | None = None,
) -> PromotionDecision:
    """Score candidate, champion and naive baselines on the same sets; the last set given
    decides. Promoted: beats every baseline (when required) and the champion."""
    best = board.best_passing()
    leaks = leaks_of(candidate, profile or ProfileConfig())
    base = dict(
        model_name=model_name,
        metric=board.metric,
        champion_before=champion_version,
        suspected_leaks=leaks,
        ignored_index_columns=candidate.schema.ignored_index_columns(),
        time_column=candidate.schema.time_column,
        out_of_time=board.out_of_time,
        split=board.split,
        history=board.history,
    )
    warning = f"; suspected leaks: {'; '.join(leaks)}" if leaks else ""
    if best is None:
        failures = "; ".join(f"{r.name}: {', '.join(r.gate_failures)}" for r in board.results)
        return PromotionDecision(
            **base,
            champion_after=champion_version,
            reason=f"no candidate passed the quality gates ({failures}){warning}",
        )
    metric = board.primary
    scores = {
        "candidate": {k: evaluate(candidate, f)[metric.name] for k, f in evaluation_sets.items()}
    }
    if champion is not None and not compatible(champion, candidate):
        champion = None
    if champion is not None:
        scores["champion"] = {
            k: evaluate(champion, f)[metric.name] for k, f in evaluation_sets.items()
        }
    baseline_scores: dict[str, dict[str, float]] = {}
    for name, frame in evaluation_sets.items():
        for baseline, value in score_baselines(
            baselines or [], frame, candidate.schema, metric
        ).items():
            baseline_scores.setdefault(baseline, {})[name] = value
    deciding = list(evaluation_sets)[-1]
    against_baselines = judge_against_baselines(
        scores["candidate"][deciding],
        {name: sets[deciding] for name, sets in baseline_scores.items()},
        metric,
        deciding,
    )
    verdict = judge_against_champion(
        scores["candidate"][deciding],
        scores["champion"][deciding] if champion is not None else None,
        metric,
        min_improvement,
        deciding,
    )
    blocked = must_beat_baselines and not against_baselines.promote
    promote = verdict.promote and not blocked
    reason = against_baselines.reason if blocked else verdict.reason
    if baseline_scores and not blocked:
        reason = f"{reason}; {against_baselines.reason}"
    return PromotionDecision(
        **base,
        candidate=best.name,
        promoted=promote,
        reason=reason + warning,
        improvement=verdict.improvement,
        scores=scores,
        evaluation_rows={k: len(f) for k, f in evaluation_sets.items()},
        baselines=baseline_scores,
        beats_baselines=against_baselines.promote if baseline_scores else None,
        champion_after=None if promote else champion_version,
    )
