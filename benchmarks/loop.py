"""Loop benchmark: time from drift onset to the new model serving, and the error ratio.

    .venv/bin/python benchmarks/loop.py [--scenario promotion_season] [--rows 50000]
        [--set monitoring:parameters.monitor.retrain.leading_candidates=1 ...]

Runs in its own temporary ZenML store, data folder and ports, so it measures the loop
from a fresh champion trained on the default data, and touches none of your stores:
train (default config) -> deploy -> service + monitor -> normal traffic -> drift, until a
new model serves. Everything talks to 127.0.0.1. Targets: drift onset -> new version
serving in 25 s or less (it was 39.9 s on `make demo` before the warm retrain runner),
and RMSE after / before on the drifted traffic <= 0.8.

It prints where the time went, from the records: the monitor's checks and retrainings
(its database), the ZenML runs and steps, and the service's load time (`/model-info`):
decision (onset -> the check that decided), planning (-> its monitoring run ends), runner
start (-> the retraining run starts), training, registration (promote_candidate, which
registers in MLflow, to the run's end), deployment (-> the hand-over step starts), swap
(-> the service loaded the version), and seen (-> the traffic's client saw it).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 25.0
ANCHOR_SECONDS = 39.9  # `make demo`, quiet machine, before the warm retrain runner
TARGET_RATIO = 0.8
STEP_TIMEOUT_S = 900


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _override(configs: dict[str, dict], setting: str) -> None:
    """Apply one `--set FILE:dotted.key=YAML` to the loaded configs, in place."""
    try:
        target, value = setting.split("=", 1)
        name, dotted = target.split(":", 1)
        node = configs[name]
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
    except (KeyError, ValueError) as exc:
        raise SystemExit(
            f"--set {setting}: expected FILE:dotted.key=VALUE with FILE one of"
            f" {', '.join(configs)} and an existing parent key ({exc})"
        ) from None
    node[leaf] = yaml.safe_load(value)


def _isolated_configs(folder: Path, rows: int, settings: list[str]) -> dict[str, Path]:
    """The shipped configs, pointed at this run's own ports (its serving file: the others
    read the address, event port and log there) and data size, with `--set` applied."""
    port, events = _free_port(), _free_port()
    training = yaml.safe_load((ROOT / "configs" / "training.yaml").read_text())
    training["parameters"]["config"]["data"]["n_rows"] = rows
    serving = yaml.safe_load((ROOT / "configs" / "serving.yaml").read_text())
    serving.update(
        port=port, events={"url": f"http://127.0.0.1:{events}/events", "every_rows": 500}
    )
    paths = {
        name: folder / f"{name}.yaml"
        for name in ("training", "serving", "deployment", "monitoring")
    }
    deployment = yaml.safe_load((ROOT / "configs" / "deployment.yaml").read_text())
    deployment["parameters"]["deploy"]["serving_config"] = str(paths["serving"])
    monitoring = yaml.safe_load((ROOT / "configs" / "monitoring.yaml").read_text())
    monitor = monitoring["parameters"]["monitor"]
    monitor["serving_config"] = str(paths["serving"])
    monitor["retrain"]["deployment_config"] = str(paths["deployment"])
    monitor["retrain"]["training_config"] = str(paths["training"])
    configs = dict(training=training, serving=serving, deployment=deployment, monitoring=monitoring)
    for setting in settings:
        _override(configs, setting)
    for name, content in configs.items():
        paths[name].write_text(yaml.safe_dump(content))
    return paths


DEPLOYMENT_PIPELINE = "deployment_pipeline"
REGISTER_STEP = "promote_candidate"
HANDOVER_STEP = "deploy_to_service"
RECENT_RUNS = 20
WARM_MARK = "warm retrain runner pid"  # the warm runner's first log line


def _epoch(moment: datetime) -> float:
    """ZenML's run times are UTC, without a time zone."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def breakdown(summary: Any, config: Any) -> tuple[list[tuple[str, float]], str]:
    """(stage, seconds) from drift onset to the client seeing the new version, from the
    records, and a note on the runner; nothing when no retraining served. The stages are
    back to back: they sum to the onset -> serving figure."""
    import httpx
    from zenml.client import Client

    from monitoring.state_store import MonitorStore
    from ops.retrain_runner import RUN_PREFIX, retrains_dir

    if not summary.onset_to_serving_s:
        return [], ""
    store = MonitorStore(None)
    retrain = store.recent_retrains(1)[0]
    check = next(c for c in store.recent_checks(RECENT_RUNS) if c["id"] == retrain["check_id"])
    # the deciding check is the retraining's own: an earlier RETRAIN check may have started
    # none (its plan found too few labelled rows since the onset)
    onset = summary.onset_at
    runs = Client().list_pipeline_runs(sort_by="desc:created", size=RECENT_RUNS, hydrate=True)
    training = next(
        r for r in runs.items if r.name.startswith(RUN_PREFIX) and _epoch(r.start_time) >= onset
    )
    monitoring = Client().get_pipeline_run(training.name.removeprefix(RUN_PREFIX))
    deployment = next(
        r
        for r in runs.items
        if r.pipeline.name == DEPLOYMENT_PIPELINE and _epoch(r.start_time) >= onset
    )
    info = httpx.get(f"{config.url}/model-info", timeout=10).json()
    marks = [
        ("decision (onset -> the check that decided is recorded)", None),
        ("planning (-> the monitoring run that planned it ends)", monitoring.end_time),
        ("runner start (-> the retraining run starts)", training.start_time),
        ("training (-> promote_candidate starts)", training.steps[REGISTER_STEP].start_time),
        ("registration (promote_candidate, -> training run ends)", training.end_time),
        ("deployment (-> the hand-over step starts)", deployment.steps[HANDOVER_STEP].start_time),
        ("swap (-> the service loaded the version)", datetime.fromisoformat(info["loaded_at"])),
    ]
    stages, previous = [], onset
    for name, moment in marks:
        at = check["checked_at"] if moment is None else _epoch(moment)
        stages.append((name, at - previous))
        previous = at
    stages.append(
        ("seen (-> the traffic's client sees it)", onset + summary.onset_to_serving_s - previous)
    )
    log = retrains_dir(config.model.name) / f"{monitoring.id}.log"
    runner = "warm" if log.is_file() and WARM_MARK in log.read_text() else "fresh"
    note = f"the retraining's record started {retrain['started_at'] - onset:.1f} s after onset"
    steps = ", ".join(
        f"{name} {(step.end_time - step.start_time).total_seconds():.1f}"
        for name, step in training.steps.items()
        if step.start_time and step.end_time
    )
    return stages, f"retrain runner: {runner}; {note}\ntraining run's steps (s): {steps}"


def format_breakdown(stages: list[tuple[str, float]], note: str, total: float) -> str:
    lines = ["where the time went (seconds after the previous line):"]
    lines += [f"  {seconds:6.1f}  {name}" for name, seconds in stages]
    lines.append(
        f"  {total:6.1f}  drift onset -> new version serving: {total / TARGET_SECONDS:.2f}x the"
        f" {TARGET_SECONDS:.0f} s target, {total / ANCHOR_SECONDS:.2f}x the {ANCHOR_SECONDS} s"
        " before"
    )
    return "\n".join([*lines, note])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="promotion_season")
    parser.add_argument("--rows", type=int, default=50_000, help="training rows (default data)")
    parser.add_argument(
        "--keep", action="store_true", help="keep the run's folder (stores, logs) and print it"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FILE:KEY=VALUE",
        help="change one setting of a shipped config for this run, e.g."
        " training:parameters.config.history.recipes=[all]",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="zenloop-loop-bench-"))
    sys.path.insert(0, str(ROOT))
    from ops.cli import quiet_output
    from zenloop.paths import isolate

    quiet_output()  # as the CLI's `zenloop demo` has it
    isolate(folder)
    paths = _isolated_configs(folder, args.rows, args.set)
    cli = [sys.executable, "-m", "ops.cli"]
    try:
        for step in (
            ["stack", "up", "local"],
            ["train", "-c", str(paths["training"])],
            ["deploy", "-c", str(paths["deployment"])],
        ):
            print("$ zenloop " + " ".join(step), flush=True)
            subprocess.run(cli + step, check=True, timeout=STEP_TIMEOUT_S, capture_output=True)
        from api.settings import load_serving_config
        from ops.demo import format_summary, run_loop
        from ops.monitor_service import monitor_process
        from ops.service import stop_all

        config = load_serving_config(paths["serving"])
        subprocess.run(
            cli + ["monitor", "-c", str(paths["monitoring"]), "--watch", "--detach"],
            check=True,
            timeout=STEP_TIMEOUT_S,
            capture_output=True,
        )
        try:
            summary = run_loop(config.url, args.scenario, None, model_name=config.model.name)
            stages, note = breakdown(summary, config)
        finally:
            monitor_process(config.model.name).stop()
            stop_all(config)
    finally:
        if args.keep:
            print(f"kept: {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)
    print(format_summary(summary))
    onset = summary.onset_to_serving_s
    print("\n" + (format_breakdown(stages, note, onset) if onset else "no new model served"))
    print(
        f"RMSE after / before on drifted traffic: {summary.error_ratio:.2f}"
        f" (target <= {TARGET_RATIO})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
