"""`zenloop init`: a ready training config for a user's CSV or Parquet file.

It reads the file once, infers the task and every column's role, and writes them as
editable `column_roles`, with the reason for each flagged column beside it. Nothing in
the written config names the embedded orders, so it runs as it is.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from zenloop.config import DEFAULT_MODEL_NAME

TASKS = ("auto", "regression", "classification")
DEFAULT_OUTPUT = Path("configs/mine.yaml")
INDENT = "  "


def _flow(value: Any) -> str:
    import yaml

    text = yaml.safe_dump(value, default_flow_style=True, width=1_000, sort_keys=False)
    return text.strip().removesuffix("...").strip()


def _dump(value: Any, depth: int) -> list[str]:
    """A mapping as YAML lines at `depth`, each scalar and list in flow style."""
    lines = []
    for key, item in value.items():
        prefix = INDENT * depth + f"{key}:"
        if isinstance(item, dict) and item:
            lines.append(prefix)
            lines.extend(_dump(item, depth + 1))
        elif isinstance(item, list) and item and all(isinstance(x, dict) for x in item):
            lines.append(prefix)
            lines.extend(INDENT * (depth + 1) + f"- {_flow(entry)}" for entry in item)
        else:
            lines.append(f"{prefix} {_flow(item)}")
    return lines


def render_config(
    data: dict[str, Any], schema: Any, task_reason: str, model_name: str, defaults: Any
) -> str:
    """The run configuration as YAML text, with comments that say what was inferred."""
    roles = []
    for spec in schema.columns:
        note = "; ".join(f"{f.kind.value}: {f.reason}" for f in spec.flags)
        roles.append(
            INDENT * 4 + f"{spec.name}: {spec.role.value}" + (f"   # {note}" if note else "")
        )
    features = defaults.features.model_dump(
        mode="json", exclude={"preset", "bins", "ratios", "interactions"}
    )
    candidates = [
        c.model_dump(mode="json", exclude_defaults=True, exclude_none=True)
        for c in defaults.candidates
    ]
    sections = {
        "split": defaults.split.model_dump(mode="json"),
        "candidates": candidates,
        "gates": defaults.gates.model_dump(mode="json", exclude_none=True),
    }
    header = [
        f"# Training run configuration for {data['path']}, written by `zenloop init`.",
        "#   zenloop train -c <this file>",
        f"# Task {data['task']}: the target {data['target']!r} is {task_reason}.",
        "# Column roles were inferred from the values: edit any of them (numeric,",
        "# categorical, high_cardinality, text, datetime, ignore). Flagged row numbers,",
        "# counters and keys are ignored; give them another role to use them.",
        "# Every other option is documented in zenloop.config.TrainingConfig.",
        "model:",
        f"{INDENT}name: {model_name}",
        f"{INDENT}description: a tabular model of {data['target']}, one version per run",
        f"{INDENT}tags: [zenloop]",
        "",
        "settings:",
        f"{INDENT}experiment_tracker:",
        f"{INDENT * 2}experiment_name: zenloop",
        "",
        "parameters:",
        f"{INDENT}config:",
        f"{INDENT * 2}data:",
        *_dump(data, 3),
        f"{INDENT * 2}profile:",
        f"{INDENT * 3}column_roles:",
        *roles,
        f"{INDENT * 2}features:",
        *_dump(features, 3),
        *_dump(sections, 2),
    ]
    return "\n".join(header) + "\n"


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
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_OUTPUT,
    show_default=True,
    help="where to write the training config",
)
@click.option("--model-name", default=DEFAULT_MODEL_NAME, show_default=True)
@click.option("--force", is_flag=True, help="overwrite an existing output file")
def init(
    data_path: str, target: str, task: str, output: Path, model_name: str, force: bool
) -> None:
    """Write a training config for your data file: task, column roles, default candidates."""
    from zenloop.config import (
        DataConfig,
        FeatureConfig,
        ProfileConfig,
        TrainingConfig,
        load_training_config,
    )
    from zenloop.data.loading import DataValidationError, read_file, validate_frame
    from zenloop.schema import infer_schema, infer_task

    if output.exists() and not force:
        raise click.ClickException(f"{output} exists; pass --force to overwrite it")
    frame = read_file(data_path)
    if target not in frame.columns:
        raise DataValidationError(
            f"{data_path}: target column {target!r} is missing; columns are {list(frame.columns)}"
        )
    inferred, reason = infer_task(frame[target])
    chosen = inferred if task == "auto" else task
    if task != "auto":
        reason = f"{reason}; --task {task} was given"
    data = DataConfig(source="file", path=data_path, target=target, task=chosen)
    validate_frame(frame, data)
    schema = infer_schema(frame, target, chosen, ProfileConfig(), FeatureConfig(), str(data_path))
    text = render_config(
        data.model_dump(mode="json", include={"source", "path", "target", "task"}),
        schema,
        reason,
        model_name,
        TrainingConfig(data=data),
    )
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text)
    load_training_config(output)  # what `zenloop train` will read: it must accept it
    ignored = schema.ignored_index_columns()
    click.echo(f"wrote {output}: {chosen} on {target!r} ({reason}), {len(frame):,} rows")
    click.echo(f"  roles: {_role_counts(schema)}")
    if ignored:
        click.echo(f"  ignored as row numbers or keys: {', '.join(ignored)}")
    for leak in schema.suspected_leaks():
        click.echo(f"  suspected leak: {leak}")
    click.echo(f"next: zenloop train -c {output}")


def _role_counts(schema: Any) -> str:
    counts: dict[str, int] = {}
    for spec in schema.columns:
        counts[spec.role.value] = counts.get(spec.role.value, 0) + 1
    return ", ".join(f"{n} {role}" for role, n in counts.items())
