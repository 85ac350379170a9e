"""The one place that starts pipeline runs and reads their outputs.

The CLI, the monitor service and the retrain runner all run pipelines through here, so a
run is always started the same way: from a run-config file, on the active stack. A
failed run is reported with its failing steps' own errors, not only "a step failed".
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path
from typing import Any

from zenml.client import Client
from zenml.enums import ExecutionStatus
from zenml.models import PipelineRunResponse
from zenml.pipelines.pipeline_definition import Pipeline

from pipelines.docker_settings import for_active_stack
from zenloop.config import load_deployment_config, load_monitor_config, load_training_config
from zenloop.errors import UserError


class RunFailed(UserError, RuntimeError):
    """A pipeline run failed; the message carries the failing steps' errors."""

    def __init__(self, message: str, run: PipelineRunResponse):
        super().__init__(message)
        self.run = run


def output(run: PipelineRunResponse, step: str, name: str) -> Any:
    """The loaded value of one step output of a finished run."""
    return run.steps[step].outputs[name][0].load()


def stored_output(run: PipelineRunResponse, step: str, name: str) -> Any | None:
    """The output, when the step completed and stored it (e.g. in a run that failed later)."""
    found = run.steps.get(step)
    if found is None or found.status != ExecutionStatus.COMPLETED:
        return None
    return output(run, step, name)


def get(run_id: str) -> PipelineRunResponse:
    return Client().get_pipeline_run(run_id)


def step_errors(run: PipelineRunResponse, raised: BaseException | None = None) -> list[str]:
    """`step: message` for every failed step of a run.

    ZenML records no message for a step that failed after its code returned (e.g. while
    storing an output): then the error the run raised here is that step's, when the steps
    ran in this process, and otherwise the step's logs have it.
    """
    errors = []
    for name, step in run.steps.items():
        if step.status != ExecutionStatus.FAILED:
            continue
        if step.exception_info is not None:
            message = step.exception_info.message
        elif raised is not None and not isinstance(raised, RunFailed):
            message = f"{type(raised).__name__}: {raised}".strip()
        else:
            message = "no message recorded: see the step's logs in the dashboard"
        errors.append(f"{name}: {message}")
    return errors


def _latest_run(pipeline_name: str) -> PipelineRunResponse | None:
    pipeline = Client().get_pipeline(pipeline_name)
    found = Client().list_pipeline_runs(pipeline_id=pipeline.id, sort_by="desc:created", size=1)
    return found.items[0] if found.items else None


def _run(
    definition: Pipeline, config_path: Path | str, run_name: str | None = None
) -> PipelineRunResponse:
    options = {"config_path": str(config_path)} | ({"run_name": run_name} if run_name else {})
    try:
        return for_active_stack(definition).with_options(**options)()
    except Exception as exc:
        latest = _latest_run(definition.name)
        errors = step_errors(latest, exc) if latest is not None else []
        if errors:
            raise RunFailed(f"{definition.name} failed: " + "; ".join(errors), latest) from exc
        raise


# pipeline name -> the validator of its run configuration; the pipeline itself is
# `pipelines.<name>.<name>_pipeline`
PIPELINE_CONFIGS = {
    "training": load_training_config,
    "deployment": load_deployment_config,
    "monitoring": load_monitor_config,
}


def pipeline(name: str, config_path: Path | str) -> Pipeline:
    """Pipeline `name`, once its run configuration is valid: a wrong field fails here,
    named, before ZenML starts."""
    if name not in PIPELINE_CONFIGS:
        raise UserError(f"no pipeline {name!r}; pipelines are {', '.join(PIPELINE_CONFIGS)}")
    PIPELINE_CONFIGS[name](config_path)
    return getattr(import_module(f"pipelines.{name}"), f"{name}_pipeline")


def train(config_path: Path | str, run_name: str | None = None) -> PipelineRunResponse:
    """A training run; `run_name` overrides the config's (retrainings say what caused them)."""
    return _run(pipeline("training", config_path), config_path, run_name)


def deploy(config_path: Path | str) -> PipelineRunResponse:
    return _run(pipeline("deployment", config_path), config_path)


def monitor(config_path: Path | str) -> PipelineRunResponse:
    return _run(pipeline("monitoring", config_path), config_path)
