"""The drift history as a typed artifact and a PNG, for the monitoring run's dashboard.

Built from the monitor's stored checks and retrainings (plain dicts here: the core
does not know the database), so each monitoring run shows the whole recent story, not
only its own check: drifted share per check, decisions marked, versions going live.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from zenloop.plots import _figure, _legend_below, _png, _title

# decision -> (colour, marker); the same colours as the operations page
DECISION_MARKERS = {
    "no drift": ("tab:green", "o"),
    "drift": ("tab:orange", "D"),
    "retrain": ("tab:red", "*"),
}
LINE_COLOR = "tab:gray"
LIVE_COLOR = "tab:blue"
MARKER_SIZE = 80
MAX_SHARE = 1.05


@dataclass
class HistoryCheck:
    id: int
    checked_at: float
    model_version: str
    drifted_share: float
    decision: str  # no drift | drift | retrain
    reason: str


@dataclass
class DriftHistory:
    """The recent checks (oldest first), the versions that went live, and the figure."""

    model_name: str
    checks: list[HistoryCheck]
    went_live: list[tuple[float, str]] = field(default_factory=list)  # (time, version)
    png: bytes = b""

    def to_markdown(self) -> str:
        rows = "\n".join(
            f"| {c.id} | {_when(c.checked_at)} | v{c.model_version} | {c.drifted_share:.0%} |"
            f" {c.decision} | {c.reason} |"
            for c in reversed(self.checks)
        )
        live = "".join(f"- v{version} live at {_when(at)}\n" for at, version in self.went_live)
        return (
            f"## Drift history of `{self.model_name}`: {len(self.checks)} checks\n\n{live}\n"
            "| check | time | version | drifted share | decision | reason |\n"
            f"|---|---|---|---|---|---|\n{rows}\n"
        )


def _when(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _decision(check: dict[str, Any]) -> str:
    if check["retrain"]:
        return "retrain"
    return "drift" if check["drift"] else "no drift"


def build_drift_history(
    model_name: str, checks: list[dict[str, Any]], retrains: list[dict[str, Any]]
) -> DriftHistory:
    """From the monitor store's rows (any order); draws the figure too."""
    points = [
        HistoryCheck(
            c["id"], c["checked_at"], c["model_version"], c["drifted_share"], _decision(c),
            c["reason"],
        )
        for c in sorted(checks, key=lambda c: c["id"])
    ]  # fmt: skip
    live = sorted(
        (r["finished_at"], r["deployed_version"])
        for r in retrains
        if r["finished_at"] is not None and r["deployed_version"]
    )
    history = DriftHistory(model_name, points, live)
    history.png = drift_history_png(history)
    return history


def drift_history_png(history: DriftHistory) -> bytes:
    fig, ax = _figure()
    times = [datetime.fromtimestamp(c.checked_at, UTC) for c in history.checks]
    ax.plot(times, [c.drifted_share for c in history.checks], color=LINE_COLOR, linewidth=1)
    for decision, (color, marker) in DECISION_MARKERS.items():
        chosen = [c for c in history.checks if c.decision == decision]
        ax.scatter(
            [datetime.fromtimestamp(c.checked_at, UTC) for c in chosen],
            [c.drifted_share for c in chosen],
            color=color, marker=marker, s=MARKER_SIZE, label=decision, zorder=3,
        )  # fmt: skip
    for at, version in history.went_live:
        ax.axvline(datetime.fromtimestamp(at, UTC), color=LIVE_COLOR, linestyle="--")
        ax.annotate(
            f"v{version} live", (datetime.fromtimestamp(at, UTC), MAX_SHARE * 0.95),
            color=LIVE_COLOR,
        )  # fmt: skip
    ax.set(ylabel="drifted share of columns", xlabel="check time (UTC)", ylim=(0, MAX_SHARE))
    fig.autofmt_xdate()
    _title(ax, f"Drift checks of {history.model_name}: drifted share and decisions")
    _legend_below(fig, ax, columns=len(DECISION_MARKERS))
    return _png(fig)
