"""`zenloop demo`: the whole loop on the embedded data, start to finish, then clean up."""

from __future__ import annotations

import click

from ops.cli.options import DEPLOYMENT_CONFIG, MONITORING_CONFIG, SERVING_CONFIG, TRAINING_CONFIG
from ops.cli.ui import UI_CONFIG
from zenloop.config import DEFAULT_MODEL_NAME
from zenloop.data.generator import SCENARIOS

DEFAULT_SCENARIO = "promotion_season"


@click.command()
@click.option(
    "--stack",
    "stack_name",
    default="local",
    show_default=True,
    help="the stack to run on (configs/stacks/NAME.yaml)",
)
@click.option(
    "--scenario",
    type=click.Choice(sorted(SCENARIOS)),
    default=DEFAULT_SCENARIO,
    show_default=True,
    help="the drift the replayed traffic brings",
)
def demo(stack_name: str, scenario: str) -> None:
    """Run the whole loop on the embedded data.

    Stack up, train, deploy, serve, watch; then normal traffic, drift, retraining and
    the new model served without a restart. Stops what it started.
    """
    from api.settings import load_serving_config
    from ops import demo as driver
    from ops import monitor_service, runs, service
    from ops.cli.champion import print_champion
    from ops.cli.ui import page_process, page_url, start_background
    from ops.stacks import stack_up, use_stack_tracking
    from ui.config import load_ui_config
    from zenloop.config import load_monitor_config

    stack = stack_up(stack_name)
    for line in stack.changed or [f"stack '{stack_name}' is set up"]:
        click.echo(f"  {line}")
    click.echo(f"training run: {runs.train(TRAINING_CONFIG).status}")
    print_champion(DEFAULT_MODEL_NAME)
    config = load_serving_config(SERVING_CONFIG)
    if (deployed := service.ensure_running(config)) is not None:
        click.echo(f"service deployed: {deployed.name} at {deployed.url} (zenml deployment list)")
    click.echo(f"deployment run: {runs.deploy(DEPLOYMENT_CONFIG).status}")
    url = service.status(config).url
    click.echo(f"\nSample requests to {url}:")
    for line in driver.sample_requests(url):
        click.echo(f"  {line}")
    monitor = monitor_service.monitor_process(DEFAULT_MODEL_NAME)
    page_config = load_ui_config(UI_CONFIG)
    page = page_process(page_config)
    page_url = page_url(page_config)
    page_started = False
    try:
        page_started = bool(start_background(UI_CONFIG))
        click.echo(f"\nOperations page (live while the demo runs): {page_url}")
    except RuntimeError as exc:  # the loop does not need the page
        click.echo(f"the operations page did not start: {exc}", err=True)
    try:
        monitor_service.start_background(MONITORING_CONFIG)
        click.echo(f"\nReplaying normal traffic, then '{scenario}' drift, until a new model serves")
        monitor_config = load_monitor_config(MONITORING_CONFIG)
        summary = driver.run_loop(url, scenario, monitor_config.log_database_url)
        click.echo("\nLoop summary:")
        click.echo("  " + driver.format_summary(summary).replace("\n", "\n  "))
    finally:
        started = [("monitor", monitor.stop)]
        started += [("service", lambda: service.stop_all(config))]
        if page_started:  # a page the user had running before stays
            started.insert(0, ("operations page", page.stop))
        for name, stop in started:
            try:
                stop()
            except RuntimeError as exc:  # still stop the other one
                click.echo(f"could not stop the {name}: {exc}", err=True)
        click.echo("\nstopped the operations page, the monitor and the service this demo started")
    click.echo("\nWhere to look:")
    tracking = use_stack_tracking()
    if tracking.startswith("http"):
        click.echo(f"  MLflow UI:        {tracking}")
        click.echo(f"  ZenML dashboard:  {stack.dashboard_url}")
        click.echo(f"  Stop the servers: zenloop stack down {stack_name}")
    else:
        click.echo(f"  MLflow UI:        mlflow ui --backend-store-uri {tracking}")
        click.echo("  ZenML dashboard:  zenml login --local   (then open http://127.0.0.1:8237)")
    click.echo(f"  Model versions:   zenml model version list --model={DEFAULT_MODEL_NAME}")
    click.echo("  Run it yourself:  zenloop serve --detach; zenloop monitor --watch --detach")
    click.echo(
        "  Operations page:  zenloop serve --detach; zenloop ui   (history stays in the log DB)"
    )
    click.echo(f"\nOperations page: {page_url}")
