"""The drift check's static view renders without scripts, and ZenML stores it first."""

import os
import re
from pathlib import Path

import pandas as pd
import pytest
from zenml import save_artifact
from zenml.client import Client
from zenml.enums import VisualizationType

import materializers  # noqa: F401  (registers our materializers)
from monitoring.drift import check_drift
from monitoring.drift_report import DriftCheck
from monitoring.drift_view import MAX_PLOTTED_COLUMNS
from tests.support.data import schema_for
from zenloop.config import DataConfig, DriftConfig
from zenloop.data.generator import generate_orders
from zenloop.data.loading import load_frame
from zenloop.schema import FeatureSchema

REFERENCE_ROWS = 3_000
WINDOW_ROWS = 2_000
ARTIFACT = "drift_check_view"
PNG_URI = "data:image/png;base64,"


@pytest.fixture(scope="module")
def reference() -> tuple[FeatureSchema, pd.DataFrame]:
    """Training rows with the (here: perfect) model's predictions, as tests/unit/test_drift.py."""
    data = DataConfig(n_rows=REFERENCE_ROWS, seed=1)
    train = load_frame(data)
    schema = schema_for(train, data)
    return schema, train.drop(columns=schema.target).assign(prediction=train[schema.target])


def _window(seed: int, scenario: str | None) -> pd.DataFrame:
    frame = generate_orders(WINDOW_ROWS, seed=seed, scenario=scenario)
    return frame.drop(columns=["is_returned", "order_total"]).assign(
        prediction=frame["order_total"]
    )


@pytest.fixture(scope="module")
def drifted_check(reference) -> DriftCheck:
    """A real check of a new-market window against the reference."""
    schema, frame = reference
    return check_drift("zenloop", "1", _window(7, "new_market"), frame, schema, {}, DriftConfig())


def test_static_view_has_the_table_and_plots_and_no_script(drifted_check):
    page, report = drifted_check.static_html, drifted_check.report
    assert report.drift
    assert "<script" not in page.lower() and "<link" not in page.lower()
    assert "<table>" in page and "prediction (model output)" in page
    for column in report.columns:
        assert f"<td>{column.column}</td>" in page
    drifted_rows = re.findall(r'<tr class="drift[^"]*"><td>([^<]+)</td>', page)
    assert set(drifted_rows) == {c.column for c in report.rows() if c.drifted}
    plotted = page.count(PNG_URI)
    assert 1 <= plotted <= MAX_PLOTTED_COLUMNS
    assert "<script" in drifted_check.html, "Evidently's own report is still kept"


def test_without_html_nothing_is_rendered(reference):
    """Benchmarks ask for the verdict only; rendering would cost them seconds."""
    schema, frame = reference
    window = _window(8, "new_market")
    check = check_drift("m", "1", window, frame, schema, {}, DriftConfig(), with_html=False)
    assert check.report.drift and check.html == "" and check.static_html == ""


def test_materializer_registers_the_static_view_first_and_round_trips(drifted_check):
    save_artifact(drifted_check, name=ARTIFACT)
    artifact = Client().get_artifact_version(ARTIFACT)
    views = [(Path(v.uri).name, v.type) for v in artifact.visualizations]
    assert views == [
        ("drift.html", VisualizationType.HTML),
        ("report.md", VisualizationType.MARKDOWN),
        ("evidently.html", VisualizationType.HTML),
    ]
    loaded = artifact.load()
    assert loaded.report == drifted_check.report
    assert loaded.static_html == drifted_check.static_html
    assert loaded.html == drifted_check.html

    # an artifact stored before the static view existed still loads, without it
    os.remove(os.path.join(artifact.uri, "drift.html"))
    assert artifact.load().static_html == ""
