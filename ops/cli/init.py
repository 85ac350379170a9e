"""`zenloop init`: every config one model needs, for a user's CSV or Parquet file.

It reads the file once, infers the task and every column's role, and writes a training,
serving, deployment, monitoring and page config that all name the same model and point
at the same service; then it prints the commands that run the whole loop on them.
"""

from __future__ import annotations

from pathlib import Path

import click

TASKS = ("auto", "regression", "classification")
CONFIGS_ROOT = Path("configs")
DEFAULT_PORTS = {"service": 8000, "events": 8090, "page": 8050}


@click.command()
@click.option(
    "--data",
    "data_path",
    required=True,
    help="CSV or Parquet file: a local path or an fsspec URI (s3://, gs://, https://)",
)
@click.option("--target", required=True, help="the column to predict")
@click.option("--task", type=click.Choice(TASKS), default="auto", show_default=True)
@click.option(
    "--name",
    default=None,
    help="the model (ZenML model, MLflow registered model and experiment)  "
    "[default: from the data file's name]",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="the folder for the config files  [default: configs/NAME]",
)
@click.option(
    "--port", type=click.IntRange(1, 65535), default=DEFAULT_PORTS["service"], show_default=True,
    help="the prediction service's port",
)  # fmt: skip
@click.option(
    "--events-port", type=click.IntRange(1, 65535), default=DEFAULT_PORTS["events"],
    show_default=True, help="where the monitor takes the service's events",
)  # fmt: skip
@click.option(
    "--ui-port", type=click.IntRange(1, 65535), default=DEFAULT_PORTS["page"],
    show_default=True, help="the operations page's port",
)  # fmt: skip
@click.option(
    "--time-column",
    default=None,
    help="the column that orders rows in time (validation and test are then the latest "
    "rows)  [default: found from the values: dates, years, a period index]",
)
@click.option("--no-time-column", is_flag=True, help="the rows have no time order: split at random")
@click.option(
    "--drop",
    multiple=True,
    metavar="COLUMN",
    help="leave a column out of the model (a suspected leak, say); repeat for more",
)
@click.option(
    "--keep",
    multiple=True,
    metavar="COLUMN",
    help="use a column flagged as a key or row number as a feature; repeat for more",
)
@click.option("--force", is_flag=True, help="overwrite existing config files")
def init(
    data_path: str,
    target: str,
    task: str,
    name: str | None,
    output: Path | None,
    port: int,
    events_port: int,
    ui_port: int,
    time_column: str | None,
    no_time_column: bool,
    drop: tuple[str, ...],
    keep: tuple[str, ...],
    force: bool,
) -> None:
    """Write every config for your data file: training, serving, deployment, monitoring, ui.

    All of them name the same model and the same service; the commands that run the whole
    loop on them are printed at the end.
    """
    from api.settings import load_serving_config
    from ops import config_files
    from zenloop.config import (
        DataConfig,
        FeatureConfig,
        ProfileConfig,
        load_deployment_config,
        load_monitor_config,
        load_training_config,
    )
    from zenloop.data.loading import DataValidationError, read_file, validate_frame
    from zenloop.schema import infer_schema, infer_task
    from zenloop.time_order import find_time_column

    if len({port, events_port, ui_port}) < 3:
        raise click.UsageError("--port, --events-port and --ui-port must differ")
    if "://" not in data_path:  # a local file: the configs work from any folder
        data_path = str(Path(data_path).resolve())
    name = name or config_files.model_name_for(data_path)
    if not config_files.VALID_NAME.fullmatch(name):
        raise click.BadParameter(
            f"{name!r}: use letters, digits, '_', '-' and '.', starting with a letter or "
            "digit, at most 64 characters",
            param_hint="--name",
        )
    ports = config_files.Ports(service=port, events=events_port, page=ui_port)
    folder = (output or CONFIGS_ROOT / name).resolve()
    configs = config_files.ConfigSet(folder, name, ports)
    existing = [str(path) for path in configs.paths.values() if path.exists()]
    if existing and not force:
        raise click.ClickException(f"{', '.join(existing)} exist; pass --force to overwrite")
    frame = read_file(data_path)
    if target not in frame.columns:
        raise DataValidationError(
            f"{data_path}: target column {target!r} is missing; columns are {list(frame.columns)}"
        )
    inferred, reason = infer_task(frame[target])
    chosen = inferred if task == "auto" else task
    if task != "auto":
        reason = f"{reason}; --task {task} was given"
    named = [c for c in (*drop, *keep, *([time_column] if time_column else [])) if c]
    if unknown := [c for c in named if c not in frame.columns or c == target]:
        raise click.BadParameter(
            f"{', '.join(map(repr, unknown))} not among the columns {list(frame.columns)} "
            f"(the target {target!r} excepted)",
            param_hint="--time-column, --drop or --keep",
        )
    if both := set(drop) & set(keep):
        raise click.BadParameter(f"{sorted(both)} both dropped and kept", param_hint="--drop")
    found = None
    if time_column is None and not no_time_column:
        found = find_time_column(frame, target, ProfileConfig())
        time_column = found.name if found else None
    if no_time_column:
        time_column = None
    data = DataConfig(
        source="file", path=data_path, target=target, task=chosen, time_column=time_column
    )
    validate_frame(frame, data, ignored=drop)
    schema = infer_schema(
        frame, target, chosen, ProfileConfig(), FeatureConfig(), str(data_path), time_column
    )
    roles = config_files.chosen_roles(schema, frame, drop, keep)
    if roles:
        profile = ProfileConfig(column_roles=roles)
        schema = infer_schema(
            frame, target, chosen, profile, FeatureConfig(), str(data_path), time_column
        )
    fields = {"source", "path", "target", "task", "time_column"}
    texts = {
        "training": config_files.training_file(
            configs, data.model_dump(mode="json", include=fields), schema, reason,
        ),
        "serving": config_files.serving_file(configs),
        "deployment": config_files.deployment_file(configs),
        "monitoring": config_files.monitoring_file(configs),
        "ui": config_files.ui_file(configs),
        "inference": config_files.inference_file(configs),
    }  # fmt: skip
    configs.folder.mkdir(parents=True, exist_ok=True)
    for kind, text in texts.items():
        configs.path(kind).write_text(text)
    # what the commands will read: each file must load as it is
    load_training_config(configs.path("training"))
    load_serving_config(configs.path("serving"))
    load_deployment_config(configs.path("deployment"))
    load_monitor_config(configs.path("monitoring"))
    click.echo(
        f"wrote {config_files.shown(folder)}/: "
        + ", ".join(path.name for path in configs.paths.values())
    )
    click.echo(f"  model {name}: {chosen} on {target!r} ({reason}), {len(frame):,} rows")
    click.echo(f"  roles: {_role_counts(schema)}")
    if time_column is None:
        click.echo(
            "  time: no column orders the rows in time, so validation is a random split "
            "(--time-column NAME if one does)"
        )
    else:
        why = f" ({found.reason})" if found else " (--time-column)"
        click.echo(
            f"  time: rows are ordered by {time_column!r}{why}: validation and test are the "
            "latest rows"
        )
    if ignored := schema.ignored_index_columns():
        click.echo(
            f"  ignored as row numbers or keys: {', '.join(ignored)} (--keep COLUMN uses one)"
        )
        for column in ignored:
            spec = schema.column(column)
            click.echo(f"    {column}: {'; '.join(f.reason for f in spec.flags)}")
    for spec in schema.columns:
        if spec.role.value == "ignore" or not any(f.kind == "target_proxy" for f in spec.flags):
            continue
        reason = next(f.reason for f in spec.flags if f.kind == "target_proxy")
        click.echo(
            f"  SUSPECTED LEAK: {spec.name} {reason}. If it is only known after the outcome, "
            f"drop it: --drop {spec.name} (kept for now)"
        )
    click.echo(
        f"  service http://127.0.0.1:{port}, monitor events on {events_port}, "
        f"operations page http://127.0.0.1:{ui_port}"
    )
    others = sorted(folder.parent.glob("*/serving.yaml")) + [CONFIGS_ROOT / "serving.yaml"]
    for note in config_files.port_clashes(configs, others):
        click.echo(f"  note: {note}")
    click.echo("\nThe whole loop on it:")
    for command in config_files.loop_commands(configs):
        click.echo(f"  {command}")


def _role_counts(schema) -> str:
    counts: dict[str, int] = {}
    for spec in schema.columns:
        counts[spec.role.value] = counts.get(spec.role.value, 0) + 1
    return ", ".join(f"{n} {role}" for role, n in counts.items())
