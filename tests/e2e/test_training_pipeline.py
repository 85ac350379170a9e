"""The real training pipeline on the real local stack (temp ZenML store, MLflow on SQLite)."""

import copy
import os
import subprocess

import mlflow
import pytest
from mlflow.tracking import MlflowClient

from ops.retrain_runner import champion_leaders, narrow_candidates
from tests.support.data import other_schema_frame
from tests.support.pipelines import BIN, MODEL, RUN_TIMEOUT, run_command, run_config, stack_up
from zenloop.data.generator import generate_orders

SMALL = {
    "data": {"n_rows": 3000, "seed": 7, "time_column": "order_ts"},
    "candidates": [
        {"name": "xgboost", "family": "xgboost", "params": {"n_estimators": 80}},
        {"name": "linear", "family": "linear"},
    ],
    "gates": {"min_r2": 0.8, "max_gap_pct": 30},
    "reference": {"sample_size": 500},
}
WEAK = {
    **SMALL,
    "candidates": [{"name": "weak_linear", "family": "linear", "params": {"alpha": 50000.0}}],
    "gates": {"min_r2": 0.0, "max_gap_pct": None},
}


@pytest.fixture(scope="module")
def stack():
    first = stack_up()
    assert "registered stack local" in first.stdout or "nothing to change" in first.stdout
    again = stack_up()
    assert "nothing to change" in again.stdout, "stack up must be idempotent"
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    return MlflowClient()


def _champion(client: MlflowClient, name: str = MODEL):
    return client.get_model_version_by_alias(name, "champion")


def test_train_register_promote_and_keep_champion_against_weak_model(stack, tmp_path):
    client = stack
    run_command(
        str(BIN / "zenml"),
        "pipeline",
        "run",
        "pipelines.training.training_pipeline",
        "-c",
        str(run_config(tmp_path / "small.yaml", SMALL)),
    )
    champion = _champion(client)
    run = client.get_run(champion.run_id)
    assert run.data.metrics["test_r2"] >= 0.8
    assert run.data.metrics["gap_pct"] <= 30
    assert run.data.tags["zenloop.candidate"] == "xgboost"

    model = mlflow.pyfunc.load_model(f"models:/{MODEL}@champion")
    rows = generate_orders(20, seed=99).drop(columns=["order_total", "is_returned"])
    predictions = model.predict(rows)
    assert len(predictions) == 20 and (predictions["prediction"] > 0).all()

    from zenml.client import Client
    from zenml.enums import ModelStages

    zenml_champion = Client().get_model_version(MODEL, ModelStages.PRODUCTION)
    assert champion.tags["zenml_model_version_id"] == str(zenml_champion.id)
    # judged out-of-time: the test rows are the latest orders, and so are the baselines'
    promotion = zenml_champion.run_metadata["promotion"]
    assert promotion["out_of_time"] is True and "out-of-time on 'order_ts'" in promotion["split"]
    assert promotion["beats_baselines"] is True
    assert set(promotion["baselines"]) == {"recent mean", "recent median"}
    candidate_rmse = promotion["scores"]["candidate"]["test"]
    assert all(candidate_rmse < sets["test"] for sets in promotion["baselines"].values())
    assert promotion["history"]["recipe"] in ("all", "weighted", "recent")
    assert set(promotion["history"]["scores"]) == {"all", "weighted", "recent"}
    assert champion.tags["zenloop.out_of_time"] == "true"
    assert champion.tags["zenloop.beats_naive_baselines"] == "true"
    train = zenml_champion.get_artifact("train").load()
    test = zenml_champion.get_artifact("test").load()
    assert train["order_ts"].max() <= test["order_ts"].min(), "tested on later orders"
    assert "reference_data" in zenml_champion.data_artifact_ids
    reference = zenml_champion.get_artifact("reference_data").load()
    assert len(reference) == 500 and "prediction" in reference.columns

    # a retraining trains the candidates that led the champion's board (here: xgboost)
    leaders = champion_leaders(MODEL, 1)
    assert list(leaders) == ["xgboost"] and leaders["xgboost"]["n_estimators"] == 80
    assert champion_leaders("no-such-model", 2) == {}, "no board: every candidate is kept"
    params = {"candidates": copy.deepcopy(SMALL["candidates"])}
    narrow_candidates(params, leaders)
    assert [c.get("enabled", True) for c in params["candidates"]] == [True, False]
    defaults: dict = {}  # the default candidates; the searched one keeps its pick
    narrow_candidates(defaults, {"xgboost": {"target_transform": "log"}, "random_forest": {}})
    enabled = {c["name"]: c for c in defaults["candidates"] if c.get("enabled", True)}
    assert list(enabled) == ["xgboost", "random_forest"] and len(defaults["candidates"]) == 5
    assert enabled["xgboost"]["params"] == {"target_transform": "log"}
    assert "search" not in enabled["xgboost"]
    untouched = {"candidates": copy.deepcopy(SMALL["candidates"])}
    narrow_candidates(untouched, {"a_family_no_longer_configured": {}})
    assert untouched["candidates"] == SMALL["candidates"]

    run_command(str(BIN / "zenloop"), "train", "-c", str(run_config(tmp_path / "weak.yaml", WEAK)))
    assert _champion(client).version == champion.version, "a weaker model took the champion"
    challenger = client.get_model_version_by_alias(MODEL, "challenger")
    assert int(challenger.version) > int(champion.version)
    latest = Client().get_model_version(MODEL, ModelStages.LATEST)
    assert latest.stage == ModelStages.STAGING
    assert latest.run_metadata["promotion"]["promoted"] is False
    assert "champion stays" in latest.run_metadata["promotion"]["reason"]


def test_bad_data_stops_before_anything_is_registered(stack, tmp_path):
    client = stack
    before = len(client.search_model_versions(f"name='{MODEL}'"))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n3,4\n")
    config = {"data": {"source": "file", "path": str(bad), "target": "price"}}
    result = subprocess.run(
        [str(BIN / "zenloop"), "train", "-c", str(run_config(tmp_path / "bad.yaml", config))],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    assert result.returncode != 0
    assert "target column 'price' is missing" in result.stdout + result.stderr
    assert len(client.search_model_versions(f"name='{MODEL}'")) == before


def test_bring_your_own_classification_file_end_to_end(stack, tmp_path):
    client = stack
    path = tmp_path / "rentals.parquet"
    other_schema_frame(1_500, "classification").to_parquet(path)
    config = {
        "data": {"source": "file", "path": str(path), "target": "tier", "task": "classification"},
        "candidates": [
            {"name": "forest", "family": "random_forest", "params": {"n_estimators": 30}}
        ],
        "gates": {"min_f1": 0.5, "min_roc_auc": 0.7, "max_gap_pct": 40},
        "reference": {"sample_size": 200},
    }
    run_command(
        str(BIN / "zenloop"),
        "train",
        "-c",
        str(run_config(tmp_path / "byo.yaml", config, "rentals")),
    )
    model = mlflow.pyfunc.load_model("models:/rentals@champion")
    out = model.predict(other_schema_frame(10, "classification", seed=3).drop(columns="tier"))
    assert set(out["prediction"]) <= {"low", "mid", "high"}
    assert {"proba_low", "proba_mid", "proba_high"} <= set(out.columns)
    assert str(_champion(client, "rentals").version) == "1"
