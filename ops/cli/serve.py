"""`zenloop serve` and `zenloop status`: the prediction service."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from ops.cli.options import SERVING_CONFIG, config_option, given, json_option, port_option


@click.command()
@config_option(SERVING_CONFIG, "service configuration")
@port_option("the config's port")
@click.option(
    "--detach",
    is_flag=True,
    help="Deploy it through the active stack's deployer (a ZenML pipeline deployment).",
)
@click.option(
    "--stop",
    is_flag=True,
    help="Deprovision the deployment of -c/--port, or every zenloop service deployment.",
)
def serve(config_path: Path, port: int | None, detach: bool, stop: bool) -> None:
    """Serve predictions: in this process, or with --detach as a ZenML deployment.

    The deployment is the inference pipeline deployed as `<model>-<port>` by the active
    stack's deployer (a process on `local` and `server`, a container on `docker`):
    `zenml deployment list`, `describe`, `logs` and the dashboard show it.
    """
    from api.settings import load_serving_config
    from ops import service

    if detach and stop:
        raise click.UsageError("--detach and --stop exclude each other")
    config = load_serving_config(config_path)
    if port is not None:
        config = config.model_copy(update={"port": port})
    if stop:  # the one asked for, else every one: whatever config it was started with
        stopped = service.stop_all(config if given("config_path") else None, port)
        for name in stopped:
            click.echo(f"stopped service {name}")
        if not stopped:
            click.echo("no service is running")
        return
    if detach:
        deployment = service.deploy(config)
        click.echo(f"service deployed: {deployment.name} at {deployment.url}")
        click.echo(
            f"  zenml deployment logs {deployment.name}   stop: zenloop serve --stop"
            + (f" -c {config_path}" if given("config_path") else "")
        )
    else:
        service.serve_foreground(config)


def stop_all(processes: list, what: str) -> None:
    """Stop each process, saying which; that none runs is said too."""
    stopped = [pid for process in processes if (pid := process.stop()) is not None]
    if not stopped:
        click.echo(f"no {what} is running")
    for pid in stopped:
        click.echo(f"stopped {what} pid {pid}")


@click.command()
@config_option(SERVING_CONFIG, "service configuration")
@port_option("the config's port")
@json_option("JSON (docs/operations-page.md)")
def status(config_path: Path, port: int | None, as_json: bool) -> None:
    """Show whether the service is up, what it serves, and what the loop did last: of -c's
    model, or of every loop in this checkout (without -c and --port).

    Exits 1 when -c's service is not ready; without -c, when there is no loop here.
    """
    from api.settings import load_serving_config
    from ops.loops import Loop, loops_here
    from ops.monitor_service import read_heartbeat

    single = given("config_path") or port is not None
    if single:
        config = load_serving_config(config_path)
        if port is not None:
            config = config.model_copy(update={"port": port})
        loops = [Loop(config.model.name, config, read_heartbeat(config.model.name))]
    else:
        loops = loops_here()
    documents = [loop_document(loop) for loop in loops]
    if as_json:
        shown = documents[0] if single else {"loops": documents}
        click.echo(json.dumps(shown, default=str))
    elif not documents:
        click.echo("no loop here: no service was deployed and no monitor ran from this folder")
    for document in [] if as_json else documents:
        print_loop(document, titled=not single)
    if not documents or (single and not (documents[0]["service"] or {}).get("ready")):
        raise click.exceptions.Exit(1)


def loop_document(loop) -> dict:
    """What `status --json` prints for one model's loop (an `ops.loops.Loop`): its service,
    its monitor's last heartbeat and its latest check and retraining, as stored."""
    from ops import service
    from ui.records import Records
    from zenloop.pids import alive

    beat, config = loop.heartbeat, loop.serving
    document: dict = {
        "model": loop.model,
        "service": None,
        "monitor": None if beat is None else {**beat, "running": alive(beat["pid"])},
        "last_check": None,
        "last_retrain": None,
    }
    if config is None:
        return document
    state = service.status(config)
    deployment = state.deployment
    document["service"] = {
        "url": state.url,
        "ready": state.ready,
        "model": state.model,
        "deployment": None
        if deployment is None
        else {"name": deployment.name, "status": str(deployment.status), "pid": state.pid},
    }
    records = Records(config.log.database_url)
    checks, retrains = records.checks(1), records.retrains(1)
    document["last_check"] = checks[0] if checks else None
    document["last_retrain"] = retrains[0] if retrains else None
    return document


def print_loop(document: dict, titled: bool) -> None:
    """One loop as text; `titled`: under its model's name (one of a list)."""
    if titled:
        click.echo(f"{document['model']}:")
    served = document["service"]
    if served is None:
        click.echo("service: no serving config known (zenloop status -c SERVING)")
    else:
        deployment = served["deployment"]
        where = (
            f"deployment {deployment['name']} ({deployment['status']}"
            + (f", pid {deployment['pid']}" if deployment["pid"] else "")
            + ")"
            if deployment is not None
            else "no deployment"
        )
        click.echo(f"service: {where} at {served['url']}")
        if model := served["model"]:
            click.echo(
                f"  serving {model['name']} v{model['version']} (loaded {model['loaded_at']})"
            )
        else:
            click.echo("  not ready (no answer, or no model loaded)")
    print_monitor(document["monitor"])
    print_history(document["last_check"], document["last_retrain"])


def print_monitor(beat: dict | None) -> None:
    """The monitor's own last word: alive or not, checks, failures and the last error."""
    if beat is None:
        click.echo("  monitor: never started here")
        return
    state = f"running, {beat.get('role', 'active')}" if beat["running"] else "not running"
    click.echo(
        f"  monitor: {state} (pid {beat['pid']}), {beat['checks']} checks,"
        f" {beat.get('failed_checks', 0)} failed, last beat {_when(beat['at'])}"
    )
    if error := beat.get("last_error"):
        click.echo(f"  last failed check: {_when(error['at'])}: {error['error']}")


def print_history(check: dict | None, retrain: dict | None) -> None:
    """The loop's latest records, read from the log database: they outlive every process."""
    if check:
        click.echo(
            f"  last check: #{check['id']} at {_when(check['checked_at'])} on"
            f" v{check['model_version']}, drifted share {check['drifted_share']:.0%}:"
            f" {check['decision']} ({check['reason']})"
        )
        if performance := check["performance"]:
            click.echo(
                f"    {performance['metric']} on {performance['labelled_rows']} labelled rows:"
                f" {_score(performance['window_value'])} (test {_score(performance['test_value'])})"
            )
        if alert := check["baseline_alert"]:
            click.echo(f"  ALERT: {alert}")
    else:
        click.echo("  last check: none recorded")
    if retrain:
        onset = retrain["onset_to_serving_s"]
        took = f"; drift onset to serving {onset:.0f} s" if onset is not None else ""
        click.echo(
            f"  last retraining: started {_when(retrain['started_at'])}: {retrain['outcome']}"
            f" ({retrain['summary'] or 'running'}){took}"
        )
        for line in judgement_lines(retrain):
            click.echo(f"    {line}")


def judgement_lines(retrain: dict) -> list[str]:
    """What a retraining learned from and how it was judged: on the newest labelled rows
    it held out, and, after a promotion, both versions on the same later rows."""
    lines = []
    if retrain["history"]:
        scores = ", ".join(f"{k} {_score(v)}" for k, v in retrain["history_scores"].items())
        lines.append(
            f"history: {retrain['history']}" + (f" (backtest: {scores})" if scores else "")
        )
    if retrain["error_metric"]:
        baseline = ""
        if retrain["error_baseline"] is not None:
            baseline = f", naive '{retrain['baseline_name']}' {_score(retrain['error_baseline'])}"
        lines.append(
            f"{retrain['error_metric']} on the newest {retrain['error_rows']} labelled rows,"
            f" held out: {_score(retrain['error_before'])} (champion) ->"
            f" {_score(retrain['error_after'])} (retrained){baseline}"
        )
    if retrain["later_rows"]:
        naive = retrain["later_baseline"]
        lines.append(
            f"{retrain['error_metric']} on the same {retrain['later_rows']} later rows:"
            f" v{retrain['replaced_version']} {_score(retrain['later_before'])} ->"
            f" v{retrain['deployed_version']} {_score(retrain['later_after'])}"
            + (f", naive {_score(naive)}" if naive is not None else "")
        )
    if retrain["review"]:
        lines.append(f"review: {retrain['review']}")
    return lines


def _score(value: float | None) -> str:
    return "-" if value is None else f"{value:.4g}"


def _when(timestamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))
