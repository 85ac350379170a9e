"""The loop's health as one chart: the primary metric on labelled traffic over time.

Every check that saw labelled rows records its `performance` (monitoring.drift_report's
PerformanceCheck): the metric of the served version on them (`window_value`), the same
version's test figure (`test_value`) and, where there were enough rows, a naive
baseline's figure on them. A line per served version shows whether a model decays; its
test figure (dotted) is what it promised; the baseline is what a forecast with no model
would do. Vertical marks say what the loop did meanwhile: drift seen, a retraining
started, a promotion, a rollback. Pure functions of the records, so they are unit-tested.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from plotly.colors import qualitative

HEALTH_GRAPH_HEIGHT = 360
VERSION_COLOURS = qualitative.Plotly
BASELINE_COLOUR = "#616161"
MARK_AXIS = "y2"  # the marks' own hidden axis, 0..1: a mark spans the plot's height
MARK_TOP = 1.0
# kind -> (legend name, colour, dash) of the vertical marks
MARK_STYLE = {
    "drift": ("drift seen", "#ef6c00", "dot"),
    "retrain": ("retraining started", "#6a1b9a", "dash"),
    "promotion": ("promotion", "#1565c0", "solid"),
    "rollback": ("rollback", "#c62828", "solid"),
}
NO_DATA = "no check has seen labelled traffic yet"


@dataclass(frozen=True)
class Mark:
    """A moment the loop acted or saw something: drawn as a vertical line."""

    kind: str  # a key of MARK_STYLE
    at: float  # epoch seconds
    label: str


def _time(at: float) -> datetime:
    return datetime.fromtimestamp(at, UTC)


def _version_key(version: str) -> tuple[int, int | str]:
    """Registry versions are numbers as text: v10 after v9 (anything else after them)."""
    return (0, int(version)) if version.isdigit() else (1, version)


def labelled_checks(checks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The checks (oldest first) whose performance was measured, all on the newest metric:
    a change of the configured metric would otherwise mix scales on one axis."""
    measured = [c for c in checks if c.get("performance")]
    if not measured:
        return []
    metric = measured[-1]["performance"]["metric"]
    return [c for c in measured if c["performance"]["metric"] == metric]


def health_marks(checks: list[dict[str, Any]], retrains: list[dict[str, Any]]) -> list[Mark]:
    """Drift (a counted check that saw drift, whether or not it triggered), retrainings
    started, promotions (a promoted retraining's end) and rollbacks, oldest first."""
    marks = [
        Mark("drift", c["checked_at"], f"v{c['model_version']}: {c['reason']}")
        for c in checks
        if c["drift"] and c["decision"] != "not counted"
    ]
    for r in retrains:
        marks.append(Mark("retrain", r["started_at"], f"retraining #{r['id']} started"))
        if r["promoted"] and r["finished_at"] is not None:
            version = r["deployed_version"] or "?"
            marks.append(Mark("promotion", r["finished_at"], f"v{version} promoted"))
        if r.get("rolled_back_at") is not None:
            version = r["deployed_version"] or "?"
            marks.append(Mark("rollback", r["rolled_back_at"], f"v{version} rolled back"))
    return sorted(marks, key=lambda m: m.at)


def health_figure(checks: list[dict[str, Any]], retrains: list[dict[str, Any]]) -> go.Figure:
    """The primary metric on labelled traffic per served version (oldest first), each
    version's test figure dotted, the naive baseline, and the loop's marks."""
    figure = go.Figure()
    measured = labelled_checks(checks)
    by_version: dict[str, list[dict[str, Any]]] = {}
    for check in measured:
        by_version.setdefault(check["model_version"], []).append(check)
    for index, version in enumerate(sorted(by_version, key=_version_key)):
        own = by_version[version]
        colour = VERSION_COLOURS[index % len(VERSION_COLOURS)]
        metric = own[0]["performance"]["metric"]
        figure.add_scatter(
            x=[_time(c["checked_at"]) for c in own],
            y=[c["performance"]["window_value"] for c in own],
            mode="lines+markers",
            line={"color": colour},
            name=f"v{version} {metric}",
            text=[f"{c['performance']['labelled_rows']} labelled rows" for c in own],
        )
        test_value = own[-1]["performance"]["test_value"]
        figure.add_scatter(
            x=[_time(own[0]["checked_at"]), _time(own[-1]["checked_at"])],
            y=[test_value, test_value],
            mode="lines",
            line={"color": colour, "dash": "dot"},
            name=f"v{version} test",
        )
    with_baseline = [c for c in measured if c["performance"].get("baseline_value") is not None]
    if with_baseline:
        baseline_name = with_baseline[-1]["performance"].get("baseline_name") or "naive"
        figure.add_scatter(
            x=[_time(c["checked_at"]) for c in with_baseline],
            y=[c["performance"]["baseline_value"] for c in with_baseline],
            mode="lines+markers",
            line={"color": BASELINE_COLOUR, "dash": "dash"},
            marker={"symbol": "x"},
            name=f"baseline ({baseline_name})",
        )
    marks = health_marks(checks, retrains)
    for kind, (name, colour, dash) in MARK_STYLE.items():
        chosen = [m for m in marks if m.kind == kind]
        if not chosen:
            continue
        xs: list[datetime | None] = []
        ys: list[float | None] = []
        labels: list[str] = []
        for mark in chosen:  # one vertical segment each, separated by gaps
            xs += [_time(mark.at), _time(mark.at), None]
            ys += [0.0, MARK_TOP, None]
            labels += [mark.label, mark.label, ""]
        figure.add_scatter(
            x=xs, y=ys, mode="lines", yaxis=MARK_AXIS, name=name, text=labels,
            line={"color": colour, "dash": dash, "width": 1}, hoverinfo="x+text",
        )  # fmt: skip
    metric = measured[-1]["performance"]["metric"] if measured else "metric"
    figure.update_layout(
        height=HEALTH_GRAPH_HEIGHT,
        margin={"t": 10, "b": 30, "l": 50, "r": 10},
        yaxis={"title": {"text": f"{metric} on labelled traffic"}},
        yaxis2={"overlaying": "y", "range": [0, MARK_TOP], "visible": False},
        legend={"orientation": "h", "y": -0.15},
    )
    if not measured:
        figure.add_annotation(
            text=NO_DATA, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5
        )
    return figure
