"""What a drift check found: the typed report and its views, without Evidently.

The report travels as an artifact and is read by the policy, the materializers and the
operations page; none of them needs the statistics library that produced it.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel


class ColumnDrift(BaseModel):
    column: str
    kind: str  # numerical | categorical
    method: str
    score: float
    threshold: float
    drifted: bool


class PerformanceCheck(BaseModel):
    metric: str
    window_value: float
    test_value: float
    ratio: float  # > 1 means worse than at test time
    labelled_rows: int
    degraded: bool
    max_ratio: float | None = None  # the configured limit; None in reports made before it
    # the naive baseline, forecasting each labelled row from the ones before it, and the
    # champion on the same rows; None in reports made before it, or with too few rows
    baseline_name: str | None = None
    baseline_value: float | None = None
    model_on_baseline_rows: float | None = None
    baseline_rows: int = 0
    behind_baseline: bool = False

    def baseline_alert(self) -> str | None:
        """What to tell a person when the champion does worse than a naive forecast."""
        if not self.behind_baseline:
            return None
        return (
            f"the champion is behind the naive baseline '{self.baseline_name}' on the last "
            f"{self.baseline_rows} labelled rows: {self.metric} {self.model_on_baseline_rows:.4g} "
            f"vs {self.baseline_value:.4g}"
        )


class DriftReport(BaseModel):
    model_name: str
    model_version: str
    window_start: float | None
    window_end: float | None
    window_rows: int
    compared_rows: int
    reference_rows: int
    sample_seed: int
    columns: list[ColumnDrift]
    drifted_count: int
    drifted_share: float
    prediction: ColumnDrift | None
    performance: PerformanceCheck | None
    drift: bool
    reason: str
    seconds: float

    def rows(self) -> list[ColumnDrift]:
        """The feature columns, then the prediction: the order every view lists them in."""
        return self.columns + ([self.prediction] if self.prediction else [])

    def _performance_line(self) -> str:
        check = self.performance
        if check is None:
            return ""
        baseline = ""
        if check.baseline_name is not None:
            baseline = (
                f"- naive baseline '{check.baseline_name}': {check.baseline_value:.4g} vs the "
                f"champion's {check.model_on_baseline_rows:.4g} on {check.baseline_rows} rows: "
                f"{'BEHIND' if check.behind_baseline else 'ahead'}\n"
            )
        return (
            f"- performance: {check.metric} {check.window_value:.4g} on {check.labelled_rows} "
            f"labelled rows vs {check.test_value:.4g} at test ({check.ratio:.2f}x): "
            f"{'DEGRADED' if check.degraded else 'ok'}\n{baseline}"
        )

    def to_markdown(self) -> str:
        rows = "\n".join(
            f"| {c.column} | {c.kind} | {c.method} | {c.score:.4f} | {c.threshold} | "
            f"{'DRIFT' if c.drifted else 'ok'} |"
            for c in self.rows()
        )
        return (
            f"## Drift check of `{self.model_name}` v{self.model_version}: "
            f"{'DRIFT' if self.drift else 'no drift'}\n\n{self.reason}\n\n"
            f"- window: {self.window_rows} rows (compared {self.compared_rows}, seed "
            f"{self.sample_seed}); reference: {self.reference_rows} rows\n"
            f"- drifted columns: {self.drifted_count} ({self.drifted_share:.0%})\n"
            f"{self._performance_line()}\n"
            f"| column | kind | method | score | threshold | verdict |\n|---|---|---|---|---|---|\n"
            f"{rows}\n"
        )


@dataclass
class DriftCheck:
    """The typed report plus its views for the dashboard.

    `static_html` renders in ZenML's sandboxed iframe (no scripts: a table and PNG plots);
    `html` is Evidently's interactive report, all script, kept for download.
    """

    report: DriftReport
    html: str
    static_html: str = ""
