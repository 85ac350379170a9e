"""ZenML's messages that never apply to zenloop are dropped, and only those: a real warning
on the same logger still comes through (steps/log_filters.py). A stack without containers
gets no docker settings, a container stack keeps them (pipelines/docker_settings.py)."""

import logging
from types import SimpleNamespace

import pytest
from zenml.enums import StackComponentType

import pipelines.docker_settings as docker_settings
from pipelines.docker_settings import for_active_stack, runs_containers
from pipelines.training import training_pipeline
from steps.log_filters import ADVERT_LOGGERS, AUTOLOG_FAILED, AUTOLOG_LOGGER

# ZenML 0.98's words (zenml/orchestrators/step_run_utils.py, pipelines/pipeline_definition.py)
PRO_ADVERT = (
    "Models can be viewed in the dashboard using ZenML Pro. Sign up for a free trial at "
    "https://www.zenml.io/pro/"
)
DASHBOARD_ADVERT = (
    "You can visualize your pipeline runs in the `ZenML Dashboard`. In order to try it "
    "locally, please run `zenml login --local`."
)


def _passed(logger_name: str, message: str, caplog: pytest.LogCaptureFixture) -> bool:
    """Whether `message`, logged on `logger_name`, reaches the handlers."""
    caplog.clear()
    with caplog.at_level(logging.INFO, logger=logger_name):
        logging.getLogger(logger_name).warning(message)
    return any(record.getMessage() == message for record in caplog.records)


def test_the_adverts_are_dropped_and_a_dashboard_url_is_kept(caplog):
    for name in ADVERT_LOGGERS:
        assert not _passed(name, PRO_ADVERT, caplog)
        assert not _passed(name, DASHBOARD_ADVERT, caplog)
        assert _passed(name, "Dashboard URL for Pipeline Run: http://127.0.0.1:8237/r", caplog)


def test_autologging_is_dropped_only_for_frameworks_mlflow_does_not_ship(caplog):
    assert not _passed(AUTOLOG_LOGGER, f"{AUTOLOG_FAILED}['fastai'].", caplog)
    # a framework MLflow has, that failed for a real reason, is still reported
    assert _passed(AUTOLOG_LOGGER, f"{AUTOLOG_FAILED}['sklearn'].", caplog)
    assert _passed(AUTOLOG_LOGGER, f"{AUTOLOG_FAILED}['fastai', 'xgboost'].", caplog)
    assert _passed(AUTOLOG_LOGGER, "Run with id 1 not found in MLflow tracking server.", caplog)


def _stack(**flavors: str) -> SimpleNamespace:
    """A stack model with one component of each given type and flavor."""
    return SimpleNamespace(
        components={
            StackComponentType(kind): [SimpleNamespace(flavor_name=flavor)]
            for kind, flavor in flavors.items()
        }
    )


def test_only_a_stack_that_runs_containers_uses_docker_settings():
    assert not runs_containers(_stack(orchestrator="local", deployer="local"))
    assert not runs_containers(_stack(orchestrator="local"))
    assert runs_containers(_stack(orchestrator="local_docker", deployer="docker"))
    assert runs_containers(_stack(orchestrator="kubernetes"))
    assert runs_containers(_stack(orchestrator="local", deployer="docker"))
    assert runs_containers(_stack(orchestrator="local", step_operator="kubernetes"))


@pytest.mark.parametrize(("orchestrator", "kept"), [("local", False), ("local_docker", True)])
def test_a_run_carries_docker_settings_only_where_containers_run(monkeypatch, orchestrator, kept):
    stack = _stack(orchestrator=orchestrator)
    monkeypatch.setattr(
        docker_settings, "Client", lambda: SimpleNamespace(active_stack_model=stack)
    )
    run = for_active_stack(training_pipeline)
    assert ("docker" in run.configuration.settings) is kept
    assert "docker" in training_pipeline.configuration.settings  # the definition is untouched
