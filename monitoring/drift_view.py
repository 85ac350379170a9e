"""A drift report as one static HTML page, for dashboards that run no scripts.

ZenML's dashboard shows HTML visualizations in a sandboxed iframe that blocks scripts,
so Evidently's report (all script) is a blank panel there. This page has no script, no
external resource and no link: CSS in one style element and plots as data: URIs.
"""

from __future__ import annotations

import base64
import html
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pandas as pd

from zenloop import plots

if TYPE_CHECKING:
    from monitoring.drift_report import ColumnDrift, DriftReport, PerformanceCheck

MAX_PLOTTED_COLUMNS = 6  # plots of more columns make the page slow and say little more
SCORE_FORMAT = "{:.4g}"  # p-values can be tiny: keep their exponent
TIME_FORMAT = "%Y-%m-%d %H:%M:%S UTC"
HEADERS = ("column", "kind", "method", "score", "threshold", "verdict")
NUMERIC_CELLS = {HEADERS.index("score"), HEADERS.index("threshold")}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2933;
       margin: 16px; font-size: 14px; }
h1 { font-size: 20px; margin: 0 0 8px; }
h2 { font-size: 16px; margin: 24px 0 8px; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; color: #fff;
         font-size: 13px; vertical-align: middle; }
.badge.drift { background: #c0392b; } .badge.ok { background: #1e8449; }
.reason { background: #f4f6f8; border-left: 4px solid #7b8794; padding: 8px 12px; }
.reason.drift { border-left-color: #c0392b; }
dl { display: grid; grid-template-columns: max-content auto; gap: 4px 16px; }
dt { color: #616e7c; } dd { margin: 0; }
table { border-collapse: collapse; min-width: 60%; }
th, td { border: 1px solid #d9e2ec; padding: 4px 10px; text-align: left; }
th { background: #f0f4f8; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.drift td { background: #fdecea; font-weight: 600; }
tr.extra td:first-child { font-style: italic; }
figure { margin: 16px 0; } figure img { max-width: 100%; height: auto; }
figcaption { color: #616e7c; font-size: 12px; }
"""


def column_plots(
    report: DriftReport, current: pd.DataFrame, baseline: pd.DataFrame
) -> dict[str, bytes]:
    """PNG plots of the drifted columns (the prediction first: it matters most), capped."""
    drifted = [c for c in report.rows() if c.drifted and c.column in current]
    drifted.sort(key=lambda c: c is not report.prediction)
    return {
        c.column: plots.distribution_shift(
            c.column,
            c.kind,
            current[c.column],
            baseline[c.column],
            f"{c.method} {SCORE_FORMAT.format(c.score)}, threshold {c.threshold}",
        )
        for c in drifted[:MAX_PLOTTED_COLUMNS]
    }


def _text(value: object) -> str:
    return html.escape(str(value))


def _span(report: DriftReport) -> str:
    rows = f"{report.window_rows:,} rows"
    if report.window_start is None or report.window_end is None:
        return rows  # a window without timestamps (a frame, not the prediction log)
    start, end = (
        datetime.fromtimestamp(stamp, UTC).strftime(TIME_FORMAT)
        for stamp in (report.window_start, report.window_end)
    )
    return f"{rows} logged from {start} to {end}"


def _row(cells: list[str], numeric: set[int], drifted: bool, extra: bool) -> str:
    """A table row; drifted rows are highlighted, rows that are no feature set apart."""
    css = " ".join(name for name, on in (("drift", drifted), ("extra", extra)) if on)
    tds = "".join(
        f'<td class="num">{cell}</td>' if i in numeric else f"<td>{cell}</td>"
        for i, cell in enumerate(cells)
    )
    return f'<tr class="{css}">{tds}</tr>'


def _column_row(column: ColumnDrift, label: str, extra: bool) -> str:
    cells = [
        _text(label),
        _text(column.kind),
        _text(column.method),
        SCORE_FORMAT.format(column.score),
        _text(column.threshold),
        "DRIFT" if column.drifted else "ok",
    ]
    return _row(cells, NUMERIC_CELLS, column.drifted, extra)


def _performance_row(check: PerformanceCheck) -> str:
    cells = [
        f"performance ({_text(check.metric)})",
        f"{check.labelled_rows:,} labelled rows",
        f"error ratio: window {check.window_value:.4g} vs test {check.test_value:.4g}",
        f"{check.ratio:.3f}",
        "-" if check.max_ratio is None else _text(check.max_ratio),
        "DEGRADED" if check.degraded else "ok",
    ]
    return _row(cells, NUMERIC_CELLS, check.degraded, extra=True)


def _table(report: DriftReport) -> str:
    if not report.columns and report.prediction is None and report.performance is None:
        return "<p>No column was compared.</p>"
    rows = [_column_row(c, c.column, extra=False) for c in report.columns]
    if report.prediction is not None:
        rows.append(_column_row(report.prediction, "prediction (model output)", extra=True))
    if report.performance is not None:
        rows.append(_performance_row(report.performance))
    head = "".join(f"<th>{h}</th>" for h in HEADERS)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _facts(report: DriftReport) -> str:
    facts = {
        "window": _span(report),
        "compared": (
            f"all {report.compared_rows:,} window rows"
            if report.compared_rows == report.window_rows
            else f"{report.compared_rows:,} of {report.window_rows:,} window rows"
        )
        + f" (both sides sampled to the same cap, seed {report.sample_seed})",
        "reference": f"{report.reference_rows:,} rows of the champion's reference sample",
        "drifted columns": f"{report.drifted_count} of {len(report.columns)} "
        f"({report.drifted_share:.0%})",
        "check took": f"{report.seconds:.2f} s",
    }
    items = "".join(f"<dt>{_text(k)}</dt><dd>{_text(v)}</dd>" for k, v in facts.items())
    return f"<dl>{items}</dl>"


def _figures(report: DriftReport, pngs: dict[str, bytes]) -> str:
    drifted = sum(c.drifted for c in report.rows())
    if not pngs:
        return "<p>No column drifted: nothing to plot.</p>"
    shown = f"{len(pngs)} of {drifted} drifted columns" if drifted > len(pngs) else "all"
    figures = "".join(
        f'<figure><img alt="distribution of {_text(column)}: window vs reference" '
        f'src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'
        f"<figcaption>{_text(column)}: the compared window sample against the reference "
        f"sample</figcaption></figure>"
        for column, png in pngs.items()
    )
    return f"<p>Shown: {shown}.</p>{figures}"


def render_static_page(report: DriftReport, pngs: dict[str, bytes]) -> str:
    """The whole report as one self-contained page: verdict, facts, table and plots."""
    verdict = "drift" if report.drift else "ok"
    title = f"Drift check of {report.model_name} v{report.model_version}"
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en"><head><meta charset="utf-8"><title>{_text(title)}</title>'
        f"<style>{STYLE}</style></head><body>"
        f'<h1>{_text(title)} <span class="badge {verdict}">'
        f"{'DRIFT' if report.drift else 'no drift'}</span></h1>"
        f'<p class="reason {verdict}">{_text(report.reason)}</p>'
        f"{_facts(report)}"
        f"<h2>Columns</h2>{_table(report)}"
        f"<h2>Distributions of the drifted columns</h2>{_figures(report, pngs)}"
        "</body></html>\n"
    )
