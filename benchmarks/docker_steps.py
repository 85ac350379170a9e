"""Where a step's time goes on the docker stack: each step in its container against the
same step in process, on the same servers.

    .venv/bin/python benchmarks/docker_steps.py [--config configs/training.yaml]

Needs Docker (`make containers`). In stores of its own (nothing of the user's is touched)
it brings up the `server` stack and runs the training pipeline there, steps in process;
then `docker` (the same ZenML and MLflow servers, a container per step) and runs it again.
Caching is off in both runs. Per step it prints the in-process duration (as ZenML records
it) and, for the container, where the time went:
- start: the container created -> started (Docker);
- boot: started -> the step begins (the interpreter, imports, the ZenML client and its
  server round trips, loading the inputs);
- step: as ZenML records it (the step function, saving outputs and visualizations);
- exit: the step ends -> the container exits (publishing, logs, shutdown);
and the ratio of the container's whole life to the in-process step.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.pipelines import BIN, stack_up  # noqa: E402
from tests.support.stacks import isolated_stack  # noqa: E402

TRAINING_PIPELINE = "pipelines.training.training_pipeline"
STEP_NAME_FLAG = "--step_name"


def _utc(stamp: str | datetime) -> datetime:
    """Docker's RFC 3339 stamps (nanoseconds) and ZenML's datetimes, as aware UTC."""
    if isinstance(stamp, datetime):
        return stamp if stamp.tzinfo else stamp.replace(tzinfo=UTC)
    head, _, fraction = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(fraction + '000000')[:6]}+00:00")


def containers() -> set[str]:
    listed = subprocess.run(["docker", "ps", "-aq", "--no-trunc"], capture_output=True, text=True)
    return set(listed.stdout.split())


def container_times(ids: set[str]) -> dict[str, dict[str, datetime]]:
    """step name -> its container's created / started / finished times."""
    found = {}
    for info in json.loads(subprocess.check_output(["docker", "inspect", *ids]) or b"[]"):
        args = info.get("Args", [])
        if STEP_NAME_FLAG not in args:
            continue
        step = args[args.index(STEP_NAME_FLAG) + 1]
        found[step] = {
            "created": _utc(info["Created"]),
            "started": _utc(info["State"]["StartedAt"]),
            "finished": _utc(info["State"]["FinishedAt"]),
        }
    return found


def run_training(config: Path, env: dict[str, str]) -> tuple[str, float]:
    """The training pipeline on the active stack; the run's id and its wall time."""
    started = time.monotonic()
    command = [str(BIN / "zenml"), "pipeline", "run", TRAINING_PIPELINE, "-c", str(config)]
    subprocess.run(command, env=env, check=True, cwd=ROOT, capture_output=True)
    wall = time.monotonic() - started
    from zenml.client import Client

    run = Client().list_pipeline_runs(sort_by="desc:created", size=1).items[0]
    return str(run.id), wall


def step_times(run_id: str) -> dict[str, tuple[datetime, datetime]]:
    from zenml.client import Client

    run = Client().get_pipeline_run(run_id)
    return {
        name: (_utc(step.start_time), _utc(step.end_time))
        for name, step in run.steps.items()
        if step.start_time and step.end_time
    }


def report(
    local: dict[str, tuple[datetime, datetime]],
    docker: dict[str, tuple[datetime, datetime]],
    lives: dict[str, dict[str, datetime]],
    walls: tuple[float, float],
) -> None:
    header = "step | in process s | container: start | boot | step | exit | whole s | ratio"
    print(f"\n| {header} |")
    print("|---|---|---|---|---|---|---|---|")
    totals = [0.0] * 6
    for name, (begin, end) in docker.items():
        life = lives.get(name)
        if life is None:
            continue
        in_process = (local[name][1] - local[name][0]).total_seconds() if name in local else 0.0
        parts = [
            (life["started"] - life["created"]).total_seconds(),
            (begin - life["started"]).total_seconds(),
            (end - begin).total_seconds(),
            (life["finished"] - end).total_seconds(),
        ]
        whole = (life["finished"] - life["created"]).total_seconds()
        totals = [t + v for t, v in zip(totals, [in_process, *parts, whole], strict=True)]
        ratio = whole / in_process if in_process > 0 else float("nan")
        cells = " | ".join(f"{v:.1f}" for v in parts)
        print(f"| {name} | {in_process:.1f} | {cells} | {whole:.1f} | {ratio:.1f}x |")
    cells = " | ".join(f"{v:.1f}" for v in totals[1:5])
    print(
        f"| all steps | {totals[0]:.1f} | {cells} | {totals[5]:.1f} | "
        f"{totals[5] / max(totals[0], 1e-9):.1f}x |"
    )
    print(
        f"\ntraining run wall time: in process {walls[0]:.0f} s, docker {walls[1]:.0f} s "
        f"({walls[1] / walls[0]:.1f}x); containers: {len(lives)} steps, "
        f"{totals[5] / max(len(lives), 1):.1f} s each on average"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--config", type=Path, default=ROOT / "configs" / "training.yaml")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="zenloop-docker-steps-"))
    stack = isolated_stack(folder, "docker")
    os.environ.update(stack.env)  # this process reads the runs from the same store
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    config = yaml.safe_load(args.config.read_text())
    config["enable_cache"] = False
    uncached = folder / "training.yaml"
    uncached.write_text(yaml.safe_dump(config))
    try:
        stack_up("server", stack.env)
        local_id, local_wall = run_training(uncached, stack.env)
        stack_up("docker", stack.env)  # builds the step images (not timed below)
        before = containers()
        docker_id, docker_wall = run_training(uncached, stack.env)
        lives = container_times(containers() - before)
        report(step_times(local_id), step_times(docker_id), lives, (local_wall, docker_wall))
    finally:
        stack.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
