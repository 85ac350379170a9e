"""Loop benchmark: time from drift onset to the new model serving, and the error ratio.

    .venv/bin/python benchmarks/loop.py [--scenario promotion_season] [--rows 50000]

Runs in its own temporary ZenML store, data folder and ports, so it measures the loop
from a fresh champion trained on the default data, and touches none of your stores:
train (default config) -> deploy -> service + monitor -> normal traffic -> drift, until a
new model serves. Everything talks to 127.0.0.1. Targets (issue #10): 45 s or less, and
RMSE after / before on the drifted traffic <= 0.8.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
TARGET_SECONDS = 45.0
TARGET_RATIO = 0.8
STEP_TIMEOUT_S = 900


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _isolated_configs(folder: Path, rows: int) -> dict[str, Path]:
    """The shipped configs, pointed at this run's own ports (its serving file: the others
    read the address, event port and log there) and data size."""
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
    for name, content in (
        ("training", training),
        ("serving", serving),
        ("deployment", deployment),
        ("monitoring", monitoring),
    ):
        paths[name].write_text(yaml.safe_dump(content))
    return paths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="promotion_season")
    parser.add_argument("--rows", type=int, default=50_000, help="training rows (default data)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="zenloop-loop-bench-"))
    sys.path.insert(0, str(ROOT))
    from zenloop.paths import isolate

    isolate(folder)
    paths = _isolated_configs(folder, args.rows)
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
            summary = run_loop(config.url, args.scenario, None)
        finally:
            monitor_process().stop()
            stop_all(config)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    print(format_summary(summary))
    onset = summary.onset_to_serving_s
    print(
        f"\ndrift onset -> new model serving: {onset:.1f} s (target <= {TARGET_SECONDS:.0f} s)"
        if onset
        else "\nno new model served"
    )
    print(
        f"RMSE after / before on drifted traffic: {summary.error_ratio:.2f}"
        f" (target <= {TARGET_RATIO})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
