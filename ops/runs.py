"""The one place that starts pipeline runs and reads their outputs.

The CLI, the monitor service and the retrain runner all run pipelines through here, so a
run is always started the same way: from a run-config file, on the active stack.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from zenml.models import PipelineRunResponse

from zenloop.config import (
    DeploymentConfig,
    MonitorConfig,
    load_pipeline_parameter,
    load_training_config,
)


def output(run: PipelineRunResponse, step: str, name: str) -> Any:
    """The loaded value of one step output of a finished run."""
    return run.steps[step].outputs[name][0].load()


def train(config_path: Path | str) -> PipelineRunResponse:
    load_training_config(config_path)  # fail fast, naming the field, before ZenML starts
    from pipelines.training import training_pipeline

    return training_pipeline.with_options(config_path=str(config_path))()


def deploy(config_path: Path | str) -> PipelineRunResponse:
    load_pipeline_parameter(config_path, "deploy", DeploymentConfig)
    from pipelines.deployment import deployment_pipeline

    return deployment_pipeline.with_options(config_path=str(config_path))()


def monitor(config_path: Path | str) -> PipelineRunResponse:
    load_pipeline_parameter(config_path, "monitor", MonitorConfig)
    from pipelines.monitoring import monitoring_pipeline

    return monitoring_pipeline.with_options(config_path=str(config_path))()
