"""Drift checks with Evidently: logged traffic against the champion's reference sample.

Column types come from the champion's feature schema and are given to Evidently
explicitly, for both frames; ids, text, timestamps and request ids are never compared.
Both sides are sampled (seeded) to a cap, so a check costs about the same for any window.
"""

from __future__ import annotations

import logging
import math
import time

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import DriftedColumnsCount, ValueDrift

from monitoring.drift_report import ColumnDrift, DriftCheck, DriftReport, PerformanceCheck
from monitoring.drift_view import column_plots, render_static_page
from monitoring.scoring import (
    against_baseline,
    error_ratio,
    judgeable,
    labelled_rows,
    served_score,
)
from zenloop.bundle import PREDICTION_COLUMN
from zenloop.config import ColumnRole, DriftConfig
from zenloop.features import MISSING_TOKEN
from zenloop.schema import FeatureSchema

logger = logging.getLogger(__name__)

MIN_ROWS_TO_COMPARE = 2
# A column the window has no value in cannot go to a statistical test (Evidently refuses an
# empty column); that it went missing is itself drift: its missing share, 1.0, is the verdict.
ALL_MISSING = "missing share"


def monitored_columns(
    schema: FeatureSchema, reference: pd.DataFrame, max_categories: int
) -> tuple[list[str], list[str]]:
    """Numerical and categorical columns worth comparing; id-like columns are left out."""

    def has_values(column: str) -> bool:
        return column in reference and bool(reference[column].notna().any())

    numerical = [c for c in schema.names(ColumnRole.NUMERIC) if has_values(c)]
    categorical = [
        c
        for c in schema.names(ColumnRole.CATEGORICAL, ColumnRole.HIGH_CARDINALITY)
        if has_values(c) and reference[c].nunique() <= max_categories
    ]
    return numerical, categorical


def missing_columns(current: pd.DataFrame, kinds: dict[str, str]) -> dict[str, ColumnDrift]:
    """Verdicts for the columns the window holds no value in (all drifted, see ALL_MISSING)."""
    return {
        column: ColumnDrift(
            column=column, kind=kind, method=ALL_MISSING, score=1.0, threshold=1.0, drifted=True
        )
        for column, kind in kinds.items()
        if not current[column].notna().any()
    }


def drifted(method: str, score: float, threshold: float) -> bool:
    """Evidently's rule: a p-value drifts below its threshold, a distance at or above it."""
    if math.isnan(score):
        return False
    return score < threshold if "p_value" in method else score >= threshold


def _sample(frame: pd.DataFrame, cap: int, seed: int) -> pd.DataFrame:
    return frame.sample(cap, random_state=seed) if len(frame) > cap else frame


def _category_text(value: object) -> str:
    """A category as text pandas' hash tables count faithfully: NUL characters and lone
    surrogates escaped. Unescaped, `unique()` merges values that `value_counts()` keeps
    apart ('b' and 'b\\x00'), and the chi-square test's counts no longer add up."""
    text = str(value)
    if "\x00" in text:
        text = text.replace("\x00", "\\x00")
    if not text.isascii():
        text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    return text


def _align(frame: pd.DataFrame, numerical: list[str], categorical: list[str]) -> pd.DataFrame:
    """The same dtypes on both sides: numbers as floats, categories as text, a missing
    category as a category of its own (as the model encodes it): a change in how often a
    value is missing is drift."""
    out = pd.DataFrame(index=frame.index)
    for column in numerical:
        out[column] = pd.to_numeric(frame.get(column), errors="coerce").astype(float)
    for column in categorical:
        values = frame.get(column)
        if values is None:
            out[column] = MISSING_TOKEN
            continue
        out[column] = values.astype(object).where(values.notna(), MISSING_TOKEN).map(_category_text)
    return out


def _run_evidently(
    reference: pd.DataFrame, current: pd.DataFrame, numerical: list[str], categorical: list[str]
):
    definition = DataDefinition(numerical_columns=numerical, categorical_columns=categorical)
    columns = numerical + categorical
    report = Report(
        [DriftedColumnsCount(columns=columns)] + [ValueDrift(column=c) for c in columns]
    )
    return report.run(
        current_data=Dataset.from_pandas(current, data_definition=definition),
        reference_data=Dataset.from_pandas(reference, data_definition=definition),
    )


def column_verdicts(snapshot, kinds: dict[str, str]) -> dict[str, ColumnDrift]:
    """Per-column results of every ValueDrift metric in an Evidently snapshot."""
    verdicts = {}
    for metric in snapshot.dict()["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        score, method, threshold = float(metric["value"]), config["method"], config["threshold"]
        verdicts[config["column"]] = ColumnDrift(
            column=config["column"],
            kind=kinds[config["column"]],
            method=method,
            score=score,
            threshold=threshold,
            drifted=drifted(method, score, threshold),
        )
    return verdicts


def _performance(
    window: pd.DataFrame, schema: FeatureSchema, test_metrics: dict[str, float], config: DriftConfig
) -> PerformanceCheck | None:
    """The model's primary metric on the window's labelled rows against its test value,
    and against a naive baseline on the same rows."""
    metric = schema.primary_metric
    labelled = labelled_rows(window, schema)
    if len(labelled) < config.min_labelled_rows or not judgeable(labelled, metric):
        return None
    if metric.name not in test_metrics:
        return None  # a model trained before this metric was recorded
    value = served_score(labelled, metric)
    test_value = test_metrics[metric.name]
    ratio = error_ratio(metric, value, test_value)
    check = PerformanceCheck(
        metric=metric.name,
        window_value=value,
        test_value=test_value,
        ratio=ratio,
        labelled_rows=len(labelled),
        degraded=ratio > config.max_error_ratio,
        max_ratio=config.max_error_ratio,
    )
    baseline = against_baseline(
        labelled, schema, metric, config.baseline_window_rows, config.baseline_min_history
    )
    if baseline is None:
        return check
    return check.model_copy(
        update={
            "baseline_name": baseline.name,
            "baseline_value": baseline.baseline,
            "model_on_baseline_rows": baseline.model,
            "baseline_rows": baseline.rows,
            "behind_baseline": baseline.behind,
        }
    )


def check_drift(
    model_name: str,
    model_version: str,
    window: pd.DataFrame,
    reference: pd.DataFrame,
    schema: FeatureSchema,
    test_metrics: dict[str, float],
    config: DriftConfig,
    with_html: bool = True,
) -> DriftCheck:
    started = time.perf_counter()
    if len(window) < MIN_ROWS_TO_COMPARE:
        reason = f"window has {len(window)} rows: nothing to compare yet"
        report = DriftReport(
            model_name=model_name,
            model_version=model_version,
            window_start=None,
            window_end=None,
            window_rows=len(window),
            compared_rows=0,
            reference_rows=len(reference),
            sample_seed=config.sample_seed,
            columns=[],
            drifted_count=0,
            drifted_share=0.0,
            prediction=None,
            performance=None,
            drift=False,
            reason=reason,
            seconds=time.perf_counter() - started,
        )
        static_html = render_static_page(report, {}) if with_html else ""
        return DriftCheck(report=report, html="", static_html=static_html)
    numerical, categorical = monitored_columns(schema, reference, config.max_categories)
    prediction_kind = "numerical" if schema.task == "regression" else "categorical"
    kinds = {c: "numerical" for c in numerical} | {c: "categorical" for c in categorical}
    kinds[PREDICTION_COLUMN] = prediction_kind
    num = numerical + ([PREDICTION_COLUMN] if prediction_kind == "numerical" else [])
    cat = categorical + ([PREDICTION_COLUMN] if prediction_kind == "categorical" else [])
    sampled = _sample(window, config.sample_rows, config.sample_seed)
    missing = missing_columns(sampled.reindex(columns=list(kinds)), kinds)
    current = _align(sampled, num, cat)
    baseline = _align(_sample(reference, config.sample_rows, config.sample_seed), num, cat)
    num, cat = [c for c in num if c not in missing], [c for c in cat if c not in missing]
    snapshot = _run_evidently(baseline, current, num, cat)
    verdicts = column_verdicts(snapshot, kinds) | missing
    prediction = verdicts.pop(PREDICTION_COLUMN, None)
    columns = list(verdicts.values())
    count = sum(c.drifted for c in columns)
    share = count / max(len(columns), 1)
    performance = _performance(window, schema, test_metrics, config)
    reasons = []
    if share >= config.drift_share:
        names = ", ".join(c.column for c in columns if c.drifted)
        reasons.append(
            f"{count}/{len(columns)} columns drifted "
            f"({share:.0%} >= {config.drift_share:.0%}: {names})"
        )
    if prediction is not None and prediction.drifted and config.prediction_drift_triggers:
        reasons.append(f"predictions drifted ({prediction.method} {prediction.score:.3f})")
    if performance is not None and performance.degraded:
        reasons.append(
            f"{performance.metric} on {performance.labelled_rows} labelled rows is "
            f"{performance.ratio:.2f}x its test value"
        )
    if performance is not None and (alert := performance.baseline_alert()):
        reasons.append(alert)
    stamps = window["logged_at"] if "logged_at" in window else pd.Series(dtype=float)
    report = DriftReport(
        model_name=model_name,
        model_version=model_version,
        window_start=float(stamps.min()) if len(stamps) else None,
        window_end=float(stamps.max()) if len(stamps) else None,
        window_rows=len(window),
        compared_rows=len(current),
        reference_rows=len(reference),
        sample_seed=config.sample_seed,
        columns=columns,
        drifted_count=count,
        drifted_share=share,
        prediction=prediction,
        performance=performance,
        drift=bool(reasons),
        reason="; ".join(reasons) or f"no drift: {count}/{len(columns)} columns drifted",
        seconds=time.perf_counter() - started,
    )
    logger.info("drift check v%s: %s (%.2fs)", model_version, report.reason, report.seconds)
    if not with_html:  # benchmarks and tests: the verdict only, without any rendering
        return DriftCheck(report=report, html="")
    return DriftCheck(
        report=report,
        html=snapshot.get_html_str(as_iframe=False),
        static_html=render_static_page(report, column_plots(report, current, baseline)),
    )
