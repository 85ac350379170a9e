"""The `zenloop` command line: set up stacks and run the pipelines."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from zenloop.config import ConfigError
from zenloop.paths import PROJECT_ROOT

DEFAULT_TRAINING_CONFIG = PROJECT_ROOT / "configs" / "training.yaml"
DEFAULT_SERVING_CONFIG = PROJECT_ROOT / "configs" / "serving.yaml"
DEFAULT_DEPLOY_CONFIG = PROJECT_ROOT / "configs" / "deployment.yaml"
DEFAULT_MONITOR_CONFIG = PROJECT_ROOT / "configs" / "monitoring.yaml"
MONITOR_START_TIMEOUT_S = 120.0
MODEL_NAME = "zenloop"
DEMO_SAMPLE_ROWS = 5
DEMO_SAMPLE_SEED = 2026


def _stack_up(args: argparse.Namespace) -> int:
    from zenloop.stack import stack_up_local

    summary = stack_up_local()
    for line in summary.changed or ["nothing to change"]:
        print(f"  {line}")
    print(f"stack '{summary.name}' is active; MLflow tracking URI: {summary.tracking_uri}")
    return 0


def _train(args: argparse.Namespace) -> int:
    from zenloop.config import load_training_config

    load_training_config(args.config)  # fail fast, before ZenML starts anything
    from pipelines.training import training_pipeline

    run = training_pipeline.with_options(config_path=str(args.config))()
    print(f"training run {run.name}: {run.status}")
    return 0


def _deploy(args: argparse.Namespace) -> int:
    from zenloop.config import DeploymentConfig, read_run_config

    DeploymentConfig.model_validate(
        read_run_config(args.deploy_config).get("parameters", {}).get("deploy", {})
    )
    from pipelines.deployment import deployment_pipeline

    run = deployment_pipeline.with_options(config_path=str(args.deploy_config))()
    print(f"deployment run {run.name}: {run.status}")
    return 0


def _send_samples(serving_config: Path) -> None:
    """A few real requests against the running service, printed as a client sees them."""
    import json

    import httpx

    from api.server import base_url
    from zenloop.config import load_serving_config
    from zenloop.data.generator import generate_orders
    from zenloop.deployment import request_rows

    url = base_url(load_serving_config(serving_config))
    orders = generate_orders(DEMO_SAMPLE_ROWS, seed=DEMO_SAMPLE_SEED)
    rows = request_rows(orders.drop(columns=["order_total", "is_returned"]))
    print(f"\nSample requests to {url}:")
    for row, truth in zip(rows[:3], orders["order_total"], strict=False):
        answer = httpx.post(f"{url}/predict", json=row, timeout=10).json()
        print(
            f"  POST /predict {row['category']}/{row['sub_category']} x{row['quantity']}"
            f" -> {json.dumps(answer)}  (true total {truth:.2f})"
        )
    batch = httpx.post(f"{url}/predict_batch", json={"rows": rows}, timeout=10).json()
    values = [round(p["prediction"], 2) for p in batch["predictions"]]
    print(f"  POST /predict_batch ({len(rows)} rows) -> v{batch['model_version']}: {values}")


def _monitor(args: argparse.Namespace) -> int:
    from monitoring.watcher import Watcher, monitor_process, read_heartbeat
    from zenloop.config import MonitorConfig, load_pipeline_parameter

    config = load_pipeline_parameter(args.config, "monitor", MonitorConfig)
    process = monitor_process()
    if args.stop:
        pid = process.stop()
        print(f"stopped monitor pid {pid}" if pid else "no monitor is running")
        return 0
    if args.watch and args.detach:
        cli = ["monitor", "-c", str(args.config), "--watch"]
        if args.max_seconds:
            cli += ["--max-seconds", str(args.max_seconds)]
        before = (read_heartbeat() or {}).get("started_at", 0)
        started = lambda: (read_heartbeat() or {}).get("started_at", 0) > before  # noqa: E731
        pid = process.start(cli, started, MONITOR_START_TIMEOUT_S)
        print(f"monitor watching in the background: pid {pid}; stop: zenloop monitor --stop")
        return 0
    if args.watch:
        process.claim()
        try:
            Watcher(args.config, config, args.max_seconds).run()
        finally:
            process.release()
        return 0
    from pipelines.monitoring import monitoring_pipeline

    run = monitoring_pipeline.with_options(config_path=str(args.config))()
    decision = run.steps["decide_retraining"].outputs["decision"][0].load()
    print(f"monitoring run {run.name}: {decision.reason}")
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from monitoring.policy import RetrainLock
    from monitoring.retraining import run_plan

    outcome = run_plan(args.plan, RetrainLock(args.stale_lock_s))
    print(outcome.summary)
    return 0


def _print_champion(model_name: str) -> None:
    import mlflow

    from zenloop.paths import local_tracking_uri
    from zenloop.tracking import champion_summary

    mlflow.set_tracking_uri(local_tracking_uri())
    summary = champion_summary(model_name)
    if summary is None:
        print(f"no champion for model '{model_name}' yet")
        return
    metrics = ", ".join(f"{k}={v:.4f}" for k, v in sorted(summary["test_metrics"].items()))
    print(f"champion: {summary['name']} v{summary['version']} ({summary['candidate']})")
    print(f"  test metrics: {metrics}")
    print(f"  MLflow run:   {summary['run_id']}")


def _champion(args: argparse.Namespace) -> int:
    _print_champion(args.model)
    return 0


def _demo(args: argparse.Namespace) -> int:
    """The whole loop: train, deploy, serve, watch, drift, retrain, serve the new model."""
    from api import server
    from monitoring.loop_run import format_summary, run_loop
    from monitoring.watcher import monitor_process
    from zenloop.config import load_serving_config
    from zenloop.paths import local_tracking_uri

    _stack_up(args)
    _train(args)
    _print_champion(args.model)
    _deploy(args)
    _send_samples(DEFAULT_SERVING_CONFIG)
    url = server.base_url(load_serving_config(DEFAULT_SERVING_CONFIG))
    monitor = argparse.Namespace(
        config=DEFAULT_MONITOR_CONFIG, stop=False, watch=True, detach=True, max_seconds=None
    )
    try:
        _monitor(monitor)
        print(
            f"\nReplaying normal traffic, then '{args.scenario}' drift, until a new model serves..."
        )
        summary = run_loop(url, args.scenario)
        print("\nLoop summary:")
        print("  " + format_summary(summary).replace("\n", "\n  "))
    finally:
        for name, process in (
            ("monitor", monitor_process()),
            ("service", server.service_process(load_serving_config(DEFAULT_SERVING_CONFIG))),
        ):
            try:
                process.stop()
            except RuntimeError as exc:  # still stop the other one
                print(f"could not stop the {name}: {exc}", file=sys.stderr)
        print("\nstopped the monitor and the service this demo started")
    print("\nWhere to look:")
    print(f"  MLflow UI:        mlflow ui --backend-store-uri {local_tracking_uri()}")
    print("  ZenML dashboard:  zenml login --local   (then open http://127.0.0.1:8237)")
    print(f"  Model versions:   zenml model version list {args.model}")
    print("  Run it yourself:  zenloop serve --detach; zenloop monitor --watch --detach")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from api import server
    from zenloop.config import load_serving_config

    config = load_serving_config(args.config)
    if args.stop:
        pid = server.service_process(config).stop()
        print(f"stopped service pid {pid}" if pid else "no service is running")
        return 0
    if args.detach:
        pid = server.serve_background(args.config, config)
        print(f"service started in the background: pid {pid}, {server.base_url(config)}")
        print(f"  log: {server.service_process(config).log_file}   stop: zenloop serve --stop")
        return 0
    server.serve_foreground(config)
    return 0


def _status(args: argparse.Namespace) -> int:
    from api import server
    from zenloop.config import load_serving_config

    state = server.status(load_serving_config(args.config))
    process = f"running, pid {state.pid}" if state.pid else "no pid file"
    print(f"service: {process} at {state.url}")
    if state.model:
        model = state.model
        print(f"  serving {model['name']} v{model['version']} (loaded {model['loaded_at']})")
    else:
        print("  not ready (no answer, or no model loaded)")
    return 0 if state.ready else 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="zenloop", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    stack = commands.add_parser("stack", help="ZenML stacks")
    stack_commands = stack.add_subparsers(dest="stack_command", required=True)
    up = stack_commands.add_parser("up", help="register and activate a stack (idempotent)")
    up.add_argument("name", choices=["local"])
    up.set_defaults(handler=_stack_up)
    train = commands.add_parser("train", help="run the training pipeline")
    train.add_argument("-c", "--config", type=Path, default=DEFAULT_TRAINING_CONFIG)
    train.set_defaults(handler=_train)
    serve = commands.add_parser("serve", help="run the prediction service")
    serve.add_argument("-c", "--config", type=Path, default=DEFAULT_SERVING_CONFIG)
    mode = serve.add_mutually_exclusive_group()
    mode.add_argument("--detach", action="store_true", help="run in the background")
    mode.add_argument("--stop", action="store_true", help="stop the background service")
    serve.set_defaults(handler=_serve)
    status = commands.add_parser("status", help="is the service up, and what does it serve")
    status.add_argument("-c", "--config", type=Path, default=DEFAULT_SERVING_CONFIG)
    status.set_defaults(handler=_status)
    deploy = commands.add_parser("deploy", help="run the deployment pipeline")
    deploy.add_argument(
        "-c", "--config", dest="deploy_config", type=Path, default=DEFAULT_DEPLOY_CONFIG
    )
    deploy.set_defaults(handler=_deploy)
    monitor = commands.add_parser("monitor", help="check drift once, or watch (--watch)")
    monitor.add_argument("-c", "--config", type=Path, default=DEFAULT_MONITOR_CONFIG)
    monitor.add_argument("--watch", action="store_true", help="run as a service reacting to events")
    monitor.add_argument("--detach", action="store_true", help="with --watch: in the background")
    monitor.add_argument("--stop", action="store_true", help="stop the background monitor")
    monitor.add_argument("--max-seconds", type=float, default=None, help="with --watch: stop after")
    monitor.set_defaults(handler=_monitor)
    retrain = commands.add_parser("retrain", help="run a retraining plan (started by the monitor)")
    retrain.add_argument("--plan", type=Path, required=True)
    retrain.add_argument("--stale-lock-s", type=float, default=1800.0)
    retrain.set_defaults(handler=_retrain)
    champion = commands.add_parser("champion", help="show the model behind the champion alias")
    champion.add_argument("--model", default=MODEL_NAME)
    champion.set_defaults(handler=_champion)
    demo = commands.add_parser("demo", help="set up the local stack, train and show the result")
    demo.add_argument("-c", "--config", type=Path, default=DEFAULT_TRAINING_CONFIG)
    demo.add_argument("--model", default=MODEL_NAME)
    demo.add_argument("--deploy-config", type=Path, default=DEFAULT_DEPLOY_CONFIG)
    demo.add_argument("--scenario", default="promotion_season", help="the drift to replay")
    demo.set_defaults(handler=_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per request is noise here
    args = build_parser().parse_args(argv)
    try:
        return args.handler(args)
    except (ConfigError, ValueError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
