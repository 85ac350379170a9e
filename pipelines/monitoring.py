"""Monitoring: logged traffic -> Evidently drift check -> decision -> retraining plan; and
the review of the champion's promotion on the labelled rows after it."""

from zenml import pipeline

from pipelines.docker_settings import docker_settings
from steps.monitoring import (
    check_window_drift,
    decide_retraining,
    load_window,
    plan_retraining,
    plot_drift_history,
    review_promotion,
)
from zenloop.config import MonitorConfig


@pipeline(
    enable_cache=False,
    settings={"docker": docker_settings()},  # used where steps run in containers
)
def monitoring_pipeline(monitor: MonitorConfig | None = None) -> None:
    # the service's log and event address, read here on the client where its config is
    monitor = (monitor or MonitorConfig()).with_service()
    window, reference, champion = load_window(monitor)
    review = review_promotion(champion, monitor)
    check = check_window_drift(window, reference, champion, monitor)
    decision = decide_retraining(check, window, review, monitor)
    plan_retraining(decision, champion, window, monitor)
    plot_drift_history(decision, monitor)
