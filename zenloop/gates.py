"""Quality gates and the champion comparison: the rules that decide what may serve."""

from __future__ import annotations

from dataclasses import dataclass

from zenloop.config import GateConfig, Task
from zenloop.metrics import Metric, improvement


def gate_failures(
    test: dict[str, float], gap: float, task: Task, gates: GateConfig, early_stopped: bool = False
) -> list[str]:
    """Every gate the test metrics fail, as readable reasons; empty means it passes.

    The gap of an early-stopped model is not judged unless the config asks for it: its
    rounds were already chosen where more of them stopped helping on held-out rows.
    """
    checks: list[tuple[float | None, str, bool]] = (
        [(gates.min_r2, "r2", True), (gates.max_rmse, "rmse", False)]
        if task == "regression"
        else [(gates.min_f1, "f1", True), (gates.min_roc_auc, "roc_auc", True)]
    )
    reasons = []
    for limit, metric, is_minimum in checks:
        if limit is None:
            continue
        value = test[metric]
        if (value < limit) if is_minimum else (value > limit):
            bound = "min" if is_minimum else "max"
            reasons.append(f"test {metric} {value:.4f} violates {bound}_{metric} {limit}")
    judge_gap = not early_stopped or gates.gap_applies_to_early_stopped
    if gates.max_gap_pct is not None and judge_gap and gap > gates.max_gap_pct:
        reasons.append(f"train/test gap {gap:.1f}% exceeds max_gap_pct {gates.max_gap_pct}")
    return reasons


@dataclass(frozen=True)
class Verdict:
    promote: bool
    reason: str
    improvement: float | None = None


def judge_against_baselines(
    candidate_score: float, baselines: dict[str, float], metric: Metric, evaluated_on: str
) -> Verdict:
    """A candidate must beat every naive baseline on the same rows to be promoted."""
    if not baselines:
        return Verdict(True, "no naive baseline to beat")
    best = metric.best(baselines)
    detail = (
        f"{metric.name} on {evaluated_on}: candidate {candidate_score:.4f} vs naive "
        f"baseline '{best}' {baselines[best]:.4f}"
    )
    if metric.better(candidate_score, baselines[best]):
        return Verdict(True, f"beats the naive baselines: {detail}")
    return Verdict(False, f"not promoted, it does not beat a naive baseline: {detail}")


def judge_against_champion(
    candidate_score: float,
    champion_score: float | None,
    metric: Metric,
    min_improvement: float,
    evaluated_on: str,
) -> Verdict:
    """Promote when there is no champion, or when the candidate beats it by the margin."""
    if champion_score is None:
        return Verdict(True, "no champion yet: the best passing candidate is promoted")
    gain = improvement(candidate_score, champion_score, metric.higher_is_better)
    detail = (
        f"{metric.name} on {evaluated_on}: candidate {candidate_score:.4f} vs champion "
        f"{champion_score:.4f} ({gain:+.2%}, required > {min_improvement:.2%})"
    )
    if gain > min_improvement:
        return Verdict(True, f"candidate beats champion: {detail}", gain)
    return Verdict(False, f"champion stays: {detail}", gain)
