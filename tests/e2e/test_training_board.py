"""A training run's parent MLflow run carries the candidate comparison, not only its children."""

import os

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from tests.support.pipelines import BIN, run_command, run_config, stack_up
from zenloop.tracking import (
    BOARD_CSV,
    BOARD_DIR,
    BOARD_MARKDOWN,
    BOARD_TABLE,
    COMPARISON_PNG,
    WINNER_TAG,
)

MODEL = "zenloop_board"  # its own registered model: the champion of other tests stays theirs
LONG_NAME = "hist_gradient_boosting"
CONFIG = {
    "data": {"n_rows": 2000, "seed": 3},
    "candidates": [
        {"name": LONG_NAME, "family": "hist_gradient_boosting", "params": {"max_iter": 40}},
        {"name": "linear", "family": "linear"},
    ],
    "gates": {"min_r2": 0.0, "max_gap_pct": None},
    "reference": {"sample_size": 200},
}


def test_parent_run_has_the_winner_and_the_board(tmp_path):
    stack_up()
    run_command(
        str(BIN / "zenloop"), "train", "-c", str(run_config(tmp_path / "b.yaml", CONFIG, MODEL))
    )
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    client = MlflowClient()
    experiment = client.get_experiment_by_name("zenloop")
    candidates = client.search_runs(
        [experiment.experiment_id],
        f"tags.`zenloop.candidate` = '{LONG_NAME}'",
        order_by=["attributes.start_time DESC"],
        max_results=1,
    )
    child = candidates[0]
    parent = client.get_run(child.data.tags["mlflow.parentRunId"])

    winner = parent.data.tags[WINNER_TAG]
    (winner_run,) = client.search_runs(
        [experiment.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent.info.run_id}' "
        f"and tags.`zenloop.candidate` = '{winner}'",
    )
    tested = {k: v for k, v in winner_run.data.metrics.items() if k.startswith("test_")}
    assert "test_rmse" in tested
    assert {k: parent.data.metrics[f"best_{k}"] for k in tested} == pytest.approx(tested)
    assert parent.data.params["n_candidates"] == "2"
    assert parent.data.params["task"] == "regression"

    logged = {a.path for a in client.list_artifacts(parent.info.run_id, BOARD_DIR)}
    expected = {BOARD_CSV, BOARD_MARKDOWN, BOARD_TABLE, COMPARISON_PNG}
    assert {f"{BOARD_DIR}/{name}" for name in expected} <= logged
    csv = mlflow.artifacts.load_text(f"runs:/{parent.info.run_id}/{BOARD_DIR}/{BOARD_CSV}")
    assert csv.splitlines()[1].split(",")[1] == winner, "the board lists the winner first"
    assert LONG_NAME in csv and child.info.run_id in csv
