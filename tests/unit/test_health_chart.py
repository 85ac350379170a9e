"""The loop-health chart from the records the page reads: a line per served version on
labelled traffic, each version's test figure, the naive baseline, and the loop's marks."""

from datetime import UTC, datetime

from ui.health import MARK_AXIS, NO_DATA, health_figure, health_marks

T0 = 1_800_000_000.0
STEP = 60.0


def _check(i: int, version: str, value: float | None, decision: str = "no drift", **perf):
    performance = (
        None
        if value is None
        else {"metric": "rmse", "labelled_rows": 100, "window_value": value,
              "test_value": {"1": 10.0, "2": 8.0}[version], **perf}
    )  # fmt: skip
    return {
        "id": i,
        "checked_at": T0 + i * STEP,
        "model_version": version,
        "drift": decision in ("drift", "retrain"),
        "decision": decision,
        "reason": decision,
        "performance": performance,
    }


CHECKS = [
    _check(0, "1", 10.5, baseline_value=20.0, baseline_name="last value"),
    _check(1, "1", None),  # no labelled rows yet: not on the chart
    _check(2, "1", 14.0, "drift", baseline_value=19.0, baseline_name="last value"),
    _check(3, "1", 15.0, "retrain"),
    _check(4, "1", 16.0, "not counted"),  # drifted but not counted: no mark
    _check(5, "2", 8.5, baseline_value=18.0, baseline_name="last value"),
    _check(6, "2", 8.2),
]
CHECKS[4]["drift"] = True
RETRAINS = [
    {"id": 1, "started_at": T0 + 3.5 * STEP, "finished_at": T0 + 4.5 * STEP, "promoted": True,
     "deployed_version": "2", "rolled_back_at": None},
    {"id": 2, "started_at": T0 + 7 * STEP, "finished_at": T0 + 8 * STEP, "promoted": True,
     "deployed_version": "3", "rolled_back_at": T0 + 9 * STEP},
    {"id": 3, "started_at": T0 + 10 * STEP, "finished_at": T0 + 11 * STEP, "promoted": False,
     "deployed_version": None, "rolled_back_at": None},
]  # fmt: skip


def _at(*steps: float) -> list[datetime]:
    return [datetime.fromtimestamp(T0 + s * STEP, UTC) for s in steps]


def _traces(figure) -> dict[str, object]:
    return {trace.name: trace for trace in figure.data}


def test_one_line_per_version_with_its_test_figure_and_the_baseline():
    traces = _traces(health_figure(CHECKS, RETRAINS))
    v1, v2 = traces["v1 rmse"], traces["v2 rmse"]
    assert list(v1.x) == _at(0, 2, 3, 4) and list(v1.y) == [10.5, 14.0, 15.0, 16.0]
    assert list(v2.x) == _at(5, 6) and list(v2.y) == [8.5, 8.2]
    test_v1, test_v2 = traces["v1 test"], traces["v2 test"]
    assert list(test_v1.y) == [10.0, 10.0] and list(test_v1.x) == _at(0, 4)
    assert list(test_v2.y) == [8.0, 8.0] and list(test_v2.x) == _at(5, 6)
    assert test_v1.line.dash == "dot" and test_v1.line.color == v1.line.color
    assert v1.line.color != v2.line.color
    baseline = traces["baseline (last value)"]
    assert list(baseline.x) == _at(0, 2, 5) and list(baseline.y) == [20.0, 19.0, 18.0]


def test_marks_at_drift_retraining_promotion_and_rollback():
    marks = health_marks(CHECKS, RETRAINS)
    kinds = {kind: [m.at for m in marks if m.kind == kind] for kind in {m.kind for m in marks}}
    assert kinds == {
        "drift": [T0 + 2 * STEP, T0 + 3 * STEP],  # counted drifted checks only
        "retrain": [T0 + 3.5 * STEP, T0 + 7 * STEP, T0 + 10 * STEP],
        "promotion": [T0 + 4.5 * STEP, T0 + 8 * STEP],  # the unpromoted one is not
        "rollback": [T0 + 9 * STEP],
    }
    traces = _traces(health_figure(CHECKS, RETRAINS))
    rollback = traces["rollback"]
    assert rollback.yaxis == MARK_AXIS and list(rollback.y) == [0.0, 1.0, None]
    assert list(rollback.x) == [*_at(9, 9), None]
    assert [x for x in traces["promotion"].x if x is not None] == _at(4.5, 4.5, 8, 8)
    assert traces["drift seen"].x[0] == _at(2)[0]


def test_only_the_newest_metric_is_drawn_and_no_data_is_said():
    other = _check(7, "2", 0.9)
    other["performance"]["metric"] = "mae"
    traces = _traces(health_figure([*CHECKS, other], []))
    assert "v2 mae" in traces and "v1 rmse" not in traces and "v2 rmse" not in traces
    empty = health_figure([_check(0, "1", None)], [])
    assert [a.text for a in empty.layout.annotations] == [NO_DATA]
    assert [t for t in empty.data if t.yaxis != MARK_AXIS] == []
