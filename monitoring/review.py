"""The review of a promotion: the new champion and the version it replaced, on the same
labelled rows that came after the promotion.

The comparison that promoted a version was made on rows the candidate did not learn from,
but before it served. The rows that come next are the real test. The replaced version is
scored offline on the rows the new one served (their logged features, so serving pays
nothing), beside a naive baseline. Once enough rows are in, a new version that is worse,
with the configured confidence, is rolled back (by the monitor service).
"""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel

from monitoring.scoring import (
    Labelled,
    Outputs,
    against_baseline,
    judgeable,
    served_score,
    worse_probability,
)
from zenloop.config import DriftConfig, RollbackConfig
from zenloop.metrics import score
from zenloop.schema import FeatureSchema


class Verdict(StrEnum):
    NONE = "none"  # the champion was not put in place by a retraining (or was reviewed out)
    WAITING = "waiting"  # fewer labelled rows than the review needs
    KEPT = "kept"  # not worse with confidence: it stays (final)
    ROLLBACK = "rollback"  # worse with confidence: the replaced version comes back


class PromotionReview(BaseModel):
    """One look at a promotion on the labelled rows after it."""

    model_name: str
    version: str
    replaced_version: str | None = None
    retrain_id: int | None = None
    metric: str | None = None
    rows: int = 0
    after: float | None = None  # the new version, as served
    before: float | None = None  # the replaced version, offline, on the same rows
    baseline_name: str | None = None
    baseline: float | None = None  # the naive baseline, on the rows it could forecast
    worse_probability: float | None = None
    verdict: Verdict = Verdict.NONE
    reason: str

    def summary(self) -> str:
        """`rmse v1 12.3 -> v2 9.8 on 400 later rows`, or why there is nothing to show."""
        if self.after is None or self.before is None:
            return self.reason
        return (
            f"{self.metric} v{self.replaced_version} {self.before:.4g} -> v{self.version} "
            f"{self.after:.4g} on the same {self.rows:,} later rows"
        )

    def to_markdown(self) -> str:
        lines = [f"## Review of `{self.model_name}` v{self.version}: {self.verdict.value}", ""]
        lines += [self.reason, ""]
        if self.after is not None and self.before is not None:
            lines += [
                f"| model | {self.metric} on the same {self.rows:,} later labelled rows |",
                "|---|---|",
                f"| v{self.version} (champion, as served) | {self.after:.4f} |",
                f"| v{self.replaced_version} (replaced, scored offline) | {self.before:.4f} |",
            ]
            if self.baseline is not None:
                lines.append(f"| naive baseline '{self.baseline_name}' | {self.baseline:.4f} |")
        return "\n".join(lines) + "\n"


def review(
    model_name: str,
    version: str,
    promotion: dict,
    labelled: Labelled,
    replaced: Outputs,
    schema: FeatureSchema,
    rollback: RollbackConfig,
    drift: DriftConfig,
) -> PromotionReview:
    """Score both versions on the same later rows; decide once `after_rows` are in.

    `labelled` are the first `after_rows` labelled rows the new version served (fewer
    while they come in), so the verdict does not depend on when the checks run; after a
    verdict, the newest rows. `promotion` is the retraining's record; a verdict already
    made (kept) stands, and the figures go on being updated.
    """
    metric = schema.primary_metric
    base = dict(
        model_name=model_name,
        version=version,
        replaced_version=promotion["replaced_version"],
        retrain_id=promotion["id"],
        metric=metric.name,
        rows=len(labelled),
    )
    if not judgeable(labelled, metric):
        return PromotionReview(
            **base,
            verdict=Verdict.WAITING,
            reason=f"no labelled rows to judge v{version} on yet (ROC-AUC needs both classes)",
        )
    after = served_score(labelled, metric)
    proba = replaced[1]
    before = score(metric, labelled.y, replaced[0], proba)
    comparison = against_baseline(
        labelled, schema, metric, drift.baseline_window_rows, drift.baseline_min_history
    )
    figures = dict(
        after=after,
        before=before,
        baseline_name=comparison.name if comparison else None,
        baseline=comparison.baseline if comparison else None,
    )
    shown = (
        f"{metric.name} v{promotion['replaced_version']} {before:.4g} -> v{version} {after:.4g} "
        f"on the same {len(labelled):,} later rows"
    )
    previous = promotion.get("review") or ""
    if previous.startswith(Verdict.KEPT.value):
        return PromotionReview(**base, **figures, verdict=Verdict.KEPT, reason=previous)
    if len(labelled) < rollback.after_rows:
        return PromotionReview(
            **base,
            **figures,
            verdict=Verdict.WAITING,
            reason=f"waiting: {shown}; judged at {rollback.after_rows} rows",
        )
    new = (labelled.predicted, labelled.proba)
    worse = worse_probability(
        metric, labelled.y, new, replaced, rollback.bootstrap_rounds, rollback.margin
    )
    figures["worse_probability"] = worse
    if rollback.enabled and worse >= rollback.confidence:
        return PromotionReview(
            **base,
            **figures,
            verdict=Verdict.ROLLBACK,
            reason=(
                f"rolled back: {shown}: v{version} is worse with {worse:.0%} confidence "
                f"(>= {rollback.confidence:.0%}); v{promotion['replaced_version']} is the "
                "champion again"
            ),
        )
    off = "" if rollback.enabled else " (rollback is off)"
    only = " only" if worse < rollback.confidence else ""
    return PromotionReview(
        **base,
        **figures,
        verdict=Verdict.KEPT,
        reason=f"kept{off}: {shown}; worse with {worse:.0%} confidence{only}",
    )
