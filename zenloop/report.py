"""The candidate board: every candidate of one training run, ranked, with its plots."""

from __future__ import annotations

from dataclasses import dataclass, field

from zenloop.config import Task
from zenloop.history import HistoryChoice
from zenloop.metrics import Metric, primary_metric
from zenloop.training import CandidateResult

RANKING_SPLIT = "validation"  # candidates are chosen here; test rows judge the choice


@dataclass
class CandidateBoard:
    task: Task
    results: list[CandidateResult]
    comparison_plot: bytes = b""
    metric_name: str | None = None  # the primary metric; None: the task's default
    history: HistoryChoice = field(default_factory=HistoryChoice)
    split: str = ""  # how the rows were split, readably
    out_of_time: bool = False  # validation and test rows come after the training rows

    @property
    def primary(self) -> Metric:
        return primary_metric(self.task, self.metric_name)

    @property
    def metric(self) -> str:
        return self.primary.name

    def ranked(self) -> list[CandidateResult]:
        """Passing candidates first, then by the primary metric on the validation rows: the
        test rows stay unused by the choice, so the winner's test score is an honest one."""
        metric = self.primary
        sign = -1 if metric.higher_is_better else 1

        def key(result: CandidateResult) -> tuple:
            held_out = result.metrics.get(RANKING_SPLIT) or result.metrics["test"]
            return (not result.passed, sign * held_out[metric.name])

        return sorted(self.results, key=key)

    def best_passing(self) -> CandidateResult | None:
        best = self.ranked()[0]
        return best if best.passed else None

    def to_markdown(self) -> str:
        names = list(self.results[0].metrics["test"])
        lines = [
            f"## Candidates ({self.task}, ranked by validation {self.metric})",
            "",
        ]
        if self.split:
            lines += [f"**Split**: {self.split}", ""]
        lines += [self.history.to_markdown(), ""]
        lines += [
            f"| candidate | validation {self.metric} | "
            + " | ".join(f"test {n}" for n in names)
            + " | gap % | gates |",
            "|---" * (len(names) + 4) + "|",
        ]
        for r in self.ranked():
            values = " | ".join(f"{r.metrics['test'][n]:.4f}" for n in names)
            gates = "passed" if r.passed else "; ".join(r.gate_failures)
            held_out = r.metrics.get(RANKING_SPLIT, {}).get(self.metric, float("nan"))
            lines.append(f"| {r.name} | {held_out:.4f} | {values} | {r.gap_pct:.1f} | {gates} |")
        return "\n".join(lines)
