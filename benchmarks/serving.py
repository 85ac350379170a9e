"""Serving benchmark: zenloop's service against the framework's ceiling and MLflow's server.

    .venv/bin/python benchmarks/serving.py [--duration 5] [--repeats 3] [--model zenloop]
    .venv/bin/python benchmarks/serving.py --fresh [--duration 2]   # no `make demo` needed

Needs a registered model (run `make demo` first, or `--fresh` trains the demo's champion
family with its defaults in temporary stores) and `wrk` (`apt-get install wrk`) as the
load generator: it is written in C, so it is not the bottleneck. Everything talks to
127.0.0.1 only. In one run it measures throughput and p50/p99 latency of:
- zenloop with durable acknowledgement (a 200 means the log row is committed, the
  default), with queued acknowledgement, with the log off, and durable with two workers,
  each its own process (`zenloop serve`); and durable as a ZenML pipeline deployment of
  the local stack's deployer (`zenloop serve --detach`): all five up at once and measured
  in turn, cell by cell, `--repeats` times, so a busy machine weighs on each alike; the
  tables give medians;
- a bare FastAPI app that parses the same JSON row and answers a constant (the ceiling);
- MLflow's `/invocations` on the same model version;
- in-process prediction (the compiled path the service runs, and the pandas pipeline).
It prints the tables and the ratios that issues #3, #9 and #10 set as targets.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.settings import ACKNOWLEDGE_ENV  # noqa: E402
from tests.support.serving import free_port  # noqa: E402
from zenloop.compiled import CompiledModel  # noqa: E402
from zenloop.deployment import request_rows  # noqa: E402
from zenloop.paths import isolate, local_tracking_uri  # noqa: E402
from zenloop.tracking import load_bundle  # noqa: E402

CONCURRENCY = (1, 8, 32)
AB_CONCURRENCY = 8  # where issue #9 sets its durable-vs-queued targets
FRESH_MODEL = "zenloop-bench"
FRESH_FAMILY = "random_forest"  # what `make demo` promotes, with the family's defaults
FRESH_ROWS = 50_000
DURABLE, QUEUED, LOG_OFF, DURABLE_WORKERS, DEPLOYED, BARE, MLFLOW = (
    "zenloop (durable)",
    "zenloop (queued)",
    "zenloop (log off)",
    "zenloop (durable, 2 workers)",
    "zenloop deployed (durable)",
    "bare FastAPI (ceiling)",
    "mlflow models serve",
)
ZENLOOP_VARIANTS = {  # label -> (log on, acknowledgement, workers)
    DURABLE: (True, "committed", 1),
    QUEUED: (True, "queued", 1),
    LOG_OFF: (False, "committed", 1),
    DURABLE_WORKERS: (True, "committed", 2),
}
BATCHES = {"single": 1, "batch_1k": 1_000, "batch_10k": 10_000}
ZENLOOP_CELLS = [("single", 1), ("single", 8), ("single", 32), ("batch_1k", 1), ("batch_1k", 8)]
ZENLOOP_CELLS += [("batch_10k", 1)]
BARE_CELLS = [("single", c) for c in CONCURRENCY]
MLFLOW_CELLS = [("single", 1), ("single", 8), ("batch_1k", 1), ("batch_10k", 1)]
START_TIMEOUT_S = 180
IN_PROCESS_REPEATS = 5
WRK_SCRIPT = """
local f = assert(io.open(os.getenv("WRK_BODY"), "rb"))
wrk.method = "POST"
wrk.body = f:read("*a")
f:close()
wrk.headers["Content-Type"] = "application/json"
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "errors": %d, "non2xx": %d, '
    .. '"p50_us": %d, "p99_us": %d}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout, e.status,
    latency:percentile(50), latency:percentile(99)))
end
"""


@contextmanager
def process(command: list[str], ready_url: str, env: dict | None = None):
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, env=env or os.environ.copy()
    )
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{command[0]} exited:\n{log.read().decode()[-3000:]}")
            try:
                if httpx.get(ready_url, timeout=1.0).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.3)
        else:
            raise RuntimeError(f"{command} not ready within {START_TIMEOUT_S}s")
        yield proc
    finally:
        proc.terminate()
        proc.wait(60)
        log.close()


def zenloop_service(
    name: str,
    version: str,
    workdir: Path,
    log_enabled: bool,
    acknowledge: str = "committed",
    workers: int = 1,
    database_url: str | None = None,
):
    """`zenloop serve` on a free port; its log in `database_url` (default: a SQLite file)."""
    port = free_port()
    config = {
        "port": port,
        "workers": workers,
        "model": {"name": name, "version": version},
        "max_batch_rows": max(BATCHES.values()),
        "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
        "log": {
            "enabled": log_enabled,
            "database_url": database_url or f"sqlite:///{workdir / f'log-{port}.db'}",
        },
    }
    path = workdir / f"serving-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "ops.cli", "serve", "-c", str(path)]
    env = {**os.environ, ACKNOWLEDGE_ENV: acknowledge}
    return process(command, f"http://127.0.0.1:{port}/ready", env), f"http://127.0.0.1:{port}"


@contextmanager
def deployed_service(name: str, version: str, workdir: Path):
    """The service as a ZenML pipeline deployment of the local stack's deployer
    (`zenloop serve --detach`), durable acknowledgement, one worker."""
    port = free_port()
    config = {
        "port": port,
        "model": {"name": name, "version": version},
        "max_batch_rows": max(BATCHES.values()),
        "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
        "log": {"database_url": f"sqlite:///{workdir / f'log-{port}.db'}"},
        "events": {"url": None},
    }
    path = workdir / f"serving-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    cli = [sys.executable, "-m", "ops.cli"]
    subprocess.run([*cli, "stack", "up", "local"], check=True, capture_output=True, cwd=ROOT)
    subprocess.run([*cli, "serve", "--detach", "-c", str(path)], check=True, capture_output=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while httpx.get(f"{url}/ready", timeout=5.0).status_code != 200:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the deployment at {url} not ready in {START_TIMEOUT_S}s")
            time.sleep(0.3)
        yield url
    finally:
        subprocess.run([*cli, "serve", "--stop", "-c", str(path)], capture_output=True)


def bare_service():
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "benchmarks.bare_app:create_app"]
    command += ["--app-dir", str(ROOT), "--port", str(port), "--no-access-log"]
    return process(command, f"http://127.0.0.1:{port}/ready"), f"http://127.0.0.1:{port}"


def mlflow_service(name: str, version: str):
    port = free_port()
    command = [
        str(Path(sys.executable).parent / "mlflow"),
        "models",
        "serve",
        "-m",
        f"models:/{name}/{version}",
        "--env-manager",
        "local",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    # it execs `uvicorn` from PATH: make that the one in this environment
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    return process(command, f"http://127.0.0.1:{port}/ping", env), f"http://127.0.0.1:{port}"


def wrk(url: str, body: Path, concurrency: int, duration: float, script: Path) -> dict:
    threads = min(concurrency, 2)
    command = [
        "wrk",
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        "--timeout",
        "60s",
        "-s",
        str(script),
        url,
    ]
    out = subprocess.run(
        command,
        capture_output=True,
        text=True,
        env={**os.environ, "WRK_BODY": str(body)},
        timeout=duration + 120,
    )
    line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result:\n{out.stdout}\n{out.stderr}")
    result = json.loads(line.removeprefix("RESULT "))
    seconds = result["duration_us"] / 1e6
    return {
        "rps": result["requests"] / seconds,
        "p50_ms": result["p50_us"] / 1e3,
        "p99_ms": result["p99_us"] / 1e3,
        "failed": result["errors"] + result["non2xx"],
    }


def in_process(bundle, rows: list[dict]) -> dict[str, float]:
    frame = pd.DataFrame(rows)
    compiled = CompiledModel(bundle)

    def best(fn) -> float:
        timings = []
        for _ in range(IN_PROCESS_REPEATS):
            started = time.perf_counter()
            fn()
            timings.append(time.perf_counter() - started)
        return statistics.median(timings) * 1e3

    return {
        "pipeline_ms": best(lambda: bundle.predict_frame(frame)),
        "compiled_ms": best(lambda: compiled.predict(rows)),
    }


def registered_model(args: argparse.Namespace) -> tuple[str, str, object, pd.DataFrame]:
    """The model to serve (name, version, bundle) and request rows from its holdout."""
    if args.fresh:  # temporary stores: nothing of the user's is touched
        isolate(Path(tempfile.mkdtemp(prefix="zenloop-serving-bench-")))
        from tests.support.serving import register_models
        from zenloop.config import DataConfig

        data = DataConfig(n_rows=args.rows)
        registered = register_models(FRESH_MODEL, data, [FRESH_FAMILY], small=False)
        return FRESH_MODEL, "1", registered.bundles["1"], registered.holdout
    os.environ.setdefault("MLFLOW_TRACKING_URI", local_tracking_uri())
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    version = str(MlflowClient().get_model_version_by_alias(args.model, args.alias).version)
    from steps.deployment import holdout_for
    from steps.registry import linked_version

    holdout = holdout_for(linked_version(args.model, args.alias, version))
    return args.model, version, load_bundle(f"models:/{args.model}/{version}"), holdout


def endpoint(flavour: str, kind: str) -> str:
    if flavour == "mlflow":
        return "/invocations"
    return "/predict" if kind == "single" else "/predict_batch"


def measure(label: str, url: str, body: Path, concurrency: int, args, script: Path) -> dict:
    result = wrk(url, body, concurrency, args.duration, script)
    print(
        f"  {label:28s} {url.rsplit('/', 1)[1]:13s} c={concurrency:<3d} {result['rps']:9.1f} req/s"
        f"  p50 {result['p50_ms']:8.2f} ms  p99 {result['p99_ms']:8.2f} ms"
        f"  failed {result['failed']}",
        flush=True,
    )
    return result


def zenloop_head_to_head(
    name: str, version: str, workdir: Path, bodies: dict, script: Path, args
) -> dict[tuple[str, str, int], list[dict]]:
    """All zenloop variants up at once, measured in turn cell by cell, `repeats` times."""
    results: dict[tuple[str, str, int], list[dict]] = {}
    with ExitStack() as stack:
        urls = {}
        for label, (log_on, acknowledge, workers) in ZENLOOP_VARIANTS.items():
            context, url = zenloop_service(name, version, workdir, log_on, acknowledge, workers)
            stack.enter_context(context)
            urls[label] = url
        urls[DEPLOYED] = stack.enter_context(deployed_service(name, version, workdir))
        for url in urls.values():  # warm-up: every worker compiles and caches
            wrk(url + "/predict", bodies[("zenloop", "single")], 8, 1.0, script)
        for i in range(args.repeats):
            print(f" round {i + 1} of {args.repeats}")
            for kind, concurrency in ZENLOOP_CELLS:
                for label, url in urls.items():
                    body = bodies[("zenloop", kind)]
                    result = measure(
                        label, url + endpoint("zenloop", kind), body, concurrency, args, script
                    )
                    results.setdefault((label, kind, concurrency), []).append(result)
    return results


def measure_once(label, start, flavour, cells, bodies, script, args) -> dict:
    results = {}
    context, url = start()
    with context:
        wrk(url + endpoint(flavour, "single"), bodies[(flavour, "single")], 1, 1.0, script)
        for kind, concurrency in cells:
            body = bodies[(flavour, kind)]
            result = measure(label, url + endpoint(flavour, kind), body, concurrency, args, script)
            results[(label, kind, concurrency)] = [result]
    return results


def median(results: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in results)


def print_table(results: dict[tuple[str, str, int], list[dict]], args) -> None:
    print(
        f"\n| server | request | concurrency | req/s | rows/s | p50 ms | p99 ms | failed |"
        f" vs log off |  (medians of {args.repeats} for zenloop, {args.duration:.0f} s each)"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for (label, kind, concurrency), runs in results.items():
        rps = median(runs, "rps")
        if rps == 0:  # a request slower than the whole window: nothing finished
            print(f"| {label} | {kind} | {concurrency} | n/a (none finished) |")
            continue
        off = results.get((LOG_OFF, kind, concurrency))
        compared = label in (*ZENLOOP_VARIANTS, DEPLOYED) and label != LOG_OFF
        off_rps = median(off, "rps") if off and compared else 0
        versus = f"{rps / off_rps:.2f}" if off_rps else "-"
        failed = sum(r["failed"] for r in runs)
        print(
            f"| {label} | {kind} | {concurrency} | {rps:.0f} | {rps * BATCHES[kind]:.0f}"
            f" | {median(runs, 'p50_ms'):.2f} | {median(runs, 'p99_ms'):.2f} | {failed} |"
            f" {versus} |"
        )


def print_ratios(results, floor: dict[str, dict[str, float]]) -> None:
    def cell(label: str, kind: str = "single", concurrency: int = AB_CONCURRENCY) -> list[dict]:
        return results[(label, kind, concurrency)]

    durable, durable_p99 = median(cell(DURABLE), "rps"), median(cell(DURABLE), "p99_ms")
    workers, workers_p99 = (
        median(cell(DURABLE_WORKERS), "rps"),
        median(cell(DURABLE_WORKERS), "p99_ms"),
    )
    queued, bare = median(cell(QUEUED), "rps"), median(cell(BARE), "rps")
    mlflow_rps = median(cell(MLFLOW), "rps")
    batch = median(cell(DURABLE, "batch_10k", 1), "p50_ms")
    c = AB_CONCURRENCY
    print("\nTargets (single rows at concurrency 8 unless said; medians):")
    print(
        f"  #10 durable, 1 worker:    {durable:7.0f} req/s, p99 {durable_p99:6.2f} ms"
        f"   (target >= 3000 req/s, p99 < 10 ms)"
    )
    print(
        f"  #10 durable, 2 workers:   {workers:7.0f} req/s, p99 {workers_p99:6.2f} ms"
        f"   ({workers / durable:.2f}x one worker)"
    )
    print(
        f"  #10 bare FastAPI ceiling: {bare:7.0f} req/s   (zenloop durable = {durable / bare:.2f}"
        f" of it, 2 workers {workers / bare:.2f})"
    )
    print(
        f"  #10 10k-row batch p50 / compiled in-process: "
        f"{batch / floor['batch_10k']['compiled_ms']:.2f}x   (target <= 2x)"
    )
    print(f"  #9  durable / queued:     {durable / queued:7.2f}   (target >= 0.8)")
    for concurrency in CONCURRENCY:
        deployed = median(cell(DEPLOYED, concurrency=concurrency), "rps")
        own = median(cell(DURABLE, concurrency=concurrency), "rps")
        ceiling = median(cell(BARE, concurrency=concurrency), "rps")
        print(
            f"  deployed (ZenML deployer), c={concurrency:<2d} {deployed:7.0f} req/s:"
            f" {deployed / own:.2f}x the own-process service (target >= 0.9),"
            f" {deployed / ceiling:.2f}x the bare FastAPI ceiling (target >= 0.75)"
        )
    print(f"  #9  durable p99 at c={c}:   {durable_p99:7.2f} ms (target < 20 ms)")
    print(f"  #3  vs mlflow models serve: {durable / mlflow_rps:5.1f}x  (target >= 5x)")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="zenloop")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--fresh", action="store_true", help="train a model in temporary stores")
    parser.add_argument("--rows", type=int, default=FRESH_ROWS, help="training rows with --fresh")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the zenloop variants")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    name, version, bundle, holdout = registered_model(args)
    features = [c for c in bundle.schema.feature_names if c in holdout.columns]
    pool = request_rows(holdout[features])
    rows = (pool * (max(BATCHES.values()) // len(pool) + 1))[: max(BATCHES.values())]
    print(
        f"model {name} v{version} ({bundle.candidate}); "
        f"{args.duration:.0f}s per cell; wrk on 127.0.0.1; {os.cpu_count()} cores"
    )

    workdir = Path(tempfile.mkdtemp(prefix="zenloop-bench-"))
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    bodies: dict[tuple[str, str], Path] = {}
    for kind, n in BATCHES.items():
        ours = rows[0] if n == 1 else {"rows": rows[:n]}
        for server, payload in (("zenloop", ours), ("mlflow", {"dataframe_records": rows[:n]})):
            path = workdir / f"{server}-{kind}.json"
            path.write_text(json.dumps(payload))
            bodies[(server, kind)] = path

    results = zenloop_head_to_head(name, version, workdir, bodies, script, args)
    results |= measure_once(BARE, bare_service, "zenloop", BARE_CELLS, bodies, script, args)
    mlflow_start = lambda: mlflow_service(name, version)  # noqa: E731
    results |= measure_once(MLFLOW, mlflow_start, "mlflow", MLFLOW_CELLS, bodies, script, args)
    floor = {kind: in_process(bundle, rows[:n]) for kind, n in BATCHES.items()}

    print_table(results, args)
    for kind, f in floor.items():
        timings = f"compiled {f['compiled_ms']:.2f}, pipeline {f['pipeline_ms']:.2f}"
        print(f"| in-process | {kind} | - | - | - | {timings} | - | - | - |")
    print_ratios(results, floor)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
