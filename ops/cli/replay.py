"""`zenloop replay`: send your own rows to the service as live traffic, with their truth.

The served model says what it takes (`/model-info`: its columns and target), so any
CSV or Parquet file with those columns can be replayed; missing values go as null.
With --feedback, each batch's ground truth follows it to `/feedback`, which is what the
monitor learns from when it retrains.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import click
import httpx

from ops.cli.options import SERVING_CONFIG, config_option, port_option

PROBE_TIMEOUT_S = 10.0
PROGRESS_LOGGER = "zenloop.progress"  # where zenloop.progress logs when there is no bar
RETRAINS_SHOWN = 20


@contextmanager
def plain_progress_lines() -> Iterator[None]:
    """Without a terminal there is no bar: the replay's progress is written as plain,
    timestamped lines to stderr (nothing else configures a handler for them)."""
    if sys.stderr.isatty():
        yield
        return
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    log = logging.getLogger(PROGRESS_LOGGER)
    level, propagate = log.level, log.propagate
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    log.propagate = False  # once, whatever a library configured above it
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = propagate


def served_model(url: str) -> dict:
    """The served model's `/model-info`, or a one-line reason why there is none."""
    try:
        response = httpx.get(f"{url}/model-info", timeout=PROBE_TIMEOUT_S)
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"no service answers at {url} ({type(exc).__name__}): start it with zenloop serve "
            "or zenloop deploy"
        ) from exc
    if response.status_code != 200:
        raise click.ClickException(f"{url} serves no model yet ({response.status_code})")
    return response.json()


def same_rows(log_database_url: str | None, model_name: str) -> list[str]:
    """Each reviewed promotion: the version it replaced and the new one on the same later
    labelled rows (the monitor scores the replaced one offline, from the log)."""
    from sqlalchemy.exc import SQLAlchemyError

    from monitoring.state_store import MonitorStore

    try:
        retrains = MonitorStore(log_database_url).recent_retrains(RETRAINS_SHOWN, model_name)
    except SQLAlchemyError:
        return []
    return [
        f"same rows: {r['error_metric']} v{r['replaced_version']} {r['later_before']:.4g} -> "
        f"v{r['deployed_version']} {r['later_after']:.4g} on {r['later_rows']:,} later rows"
        + (" (rolled back)" if r["rolled_back_at"] else "")
        for r in reversed(retrains)
        if r["later_rows"] and r["later_before"] is not None and r["later_after"] is not None
    ]


@click.command()
@config_option(SERVING_CONFIG, "the service's configuration (its address and admin token)")
@port_option("the config's port")
@click.option(
    "--data",
    "data_path",
    required=True,
    help="CSV or Parquet file (a local path or an fsspec URI) with the served model's columns",
)
@click.option(
    "--feedback",
    is_flag=True,
    help="send each row's ground truth (the model's target column) to /feedback",
)
@click.option(
    "--rate", type=click.FloatRange(min=0, min_open=True), default=None,
    help="rows per second  [default: as fast as the service answers]",
)  # fmt: skip
@click.option("--batch-rows", type=click.IntRange(1), default=100, show_default=True)
@click.option("--limit", type=click.IntRange(1), default=None, help="send only the first N rows")
@click.option(
    "--max-seconds", type=click.FloatRange(min=0, min_open=True), default=3600.0,
    show_default=True, help="stop after this long",
)  # fmt: skip
def replay(
    config_path: Path,
    port: int | None,
    data_path: str,
    feedback: bool,
    rate: float | None,
    batch_rows: int,
    limit: int | None,
    max_seconds: float,
) -> None:
    """Send rows of a file to the service as traffic, with their truth as feedback.

    Prints each served version's primary metric (the one it was trained and is judged
    by) as it goes and at the end; where the monitor reviewed a promotion, both versions
    on the same later rows.
    """
    from api.settings import load_serving_config
    from ops.replay import replay as send
    from zenloop.admin_token import resolve_admin_token
    from zenloop.data.loading import DataValidationError, read_file

    config = load_serving_config(config_path)
    if port is not None:
        config = config.model_copy(update={"port": port})
    model = served_model(config.url)
    frame = read_file(data_path)
    if limit is not None:
        frame = frame.head(limit)
    target = model["target"]
    columns = [c["name"] for c in model["feature_schema"]]
    missing = [c["name"] for c in model["feature_schema"] if c["name"] not in frame.columns]
    if absent := [
        c["name"] for c in model["feature_schema"] if c["required"] and c["name"] in missing
    ]:
        raise DataValidationError(
            f"{data_path}: columns {absent} that {model['name']} v{model['version']} "
            f"requires are missing; columns are {list(frame.columns)}"
        )
    if target not in frame.columns:
        if feedback:
            raise DataValidationError(
                f"{data_path}: --feedback sends the target column {target!r}, which is missing"
            )
        frame = frame.assign(**{target: float("nan")})
    token = resolve_admin_token(config.admin_token)
    if feedback and token is None:
        raise click.ClickException(
            "--feedback needs the service's admin token: set ZENLOOP_ADMIN_TOKEN (or admin_token "
            "in the serving config) as the service has it"
        )
    unused = sorted(set(frame.columns) - set(columns) - {target})
    click.echo(
        f"replaying {len(frame):,} rows of {data_path} to {model['name']} v{model['version']} "
        f"at {config.url}" + (f", {rate:g} rows/s" if rate else "")
    )
    if unused:
        click.echo(f"  not sent (the model does not use them): {', '.join(unused)}")
    if missing:
        click.echo(f"  optional columns missing from the file, sent as null: {', '.join(missing)}")
    try:
        with plain_progress_lines():
            result = send(
                config.url,
                frame[[c for c in columns if c in frame.columns] + [target]],
                target,
                token,
                batch_rows=batch_rows,
                max_seconds=max_seconds,
                metric=model["metric"],
                classes=model["classes"],
                rate=rate,
                feedback=feedback,
            )
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"the service at {config.url} stopped answering ({type(exc).__name__}: {exc})"
        ) from exc
    click.echo(
        f"sent {result.sent:,} rows in {result.seconds:.1f} s ({result.failed:,} refused)"
        + (f", feedback stored for {result.feedback:,}" if feedback else "")
    )
    if result.served:
        click.echo(f"  each version on the rows it served: {result.summary()}")
    compared = same_rows(config.log.database_url, model["name"])
    if len(result.served) > 1 and not compared:
        click.echo(
            "  (different rows, so not a comparison: the monitor scores both versions on the"
            " same later rows once it has reviewed a promotion; see zenloop status)"
        )
    for line in compared:
        click.echo(f"  {line}")
    if result.failed:
        raise click.exceptions.Exit(1)
