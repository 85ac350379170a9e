"""The candidate board: every candidate of one training run, ranked, with its plots."""

from __future__ import annotations

from dataclasses import dataclass

from zenloop.config import Task
from zenloop.metrics import PRIMARY_METRIC
from zenloop.training import CandidateResult


@dataclass
class CandidateBoard:
    task: Task
    results: list[CandidateResult]
    comparison_plot: bytes = b""

    @property
    def metric(self) -> str:
        return PRIMARY_METRIC[self.task][0]

    def ranked(self) -> list[CandidateResult]:
        """Passing candidates first, then by the primary test metric."""
        metric, higher_is_better = PRIMARY_METRIC[self.task]
        sign = -1 if higher_is_better else 1
        return sorted(self.results, key=lambda r: (not r.passed, sign * r.metrics["test"][metric]))

    def best_passing(self) -> CandidateResult | None:
        best = self.ranked()[0]
        return best if best.passed else None

    def to_markdown(self) -> str:
        names = list(self.results[0].metrics["test"])
        lines = [
            f"## Candidates ({self.task}, ranked by test {self.metric})",
            "",
            "| candidate | " + " | ".join(f"test {n}" for n in names) + " | gap % | gates |",
            "|---" * (len(names) + 3) + "|",
        ]
        for r in self.ranked():
            values = " | ".join(f"{r.metrics['test'][n]:.4f}" for n in names)
            gates = "passed" if r.passed else "; ".join(r.gate_failures)
            lines.append(f"| {r.name} | {values} | {r.gap_pct:.1f} | {gates} |")
        return "\n".join(lines)
