"""Serving benchmark: zenloop's service vs `mlflow models serve` on the same model version.

    .venv/bin/python benchmarks/serving.py [--duration 5] [--model zenloop] [--alias champion]
    .venv/bin/python benchmarks/serving.py --fresh [--duration 2]   # no `make demo` needed

Needs a registered model (run `make demo` first, or `--fresh` trains the demo's champion
family with its defaults in temporary stores) and `wrk` (`apt-get install wrk`) as the
load generator: it is written in C, so it is not the bottleneck. Everything talks to
127.0.0.1 only. In one run it measures, for single rows and batches of 1,000 and 10,000:
- throughput and p50/p99 latency at concurrency 1, 8 and 32;
- zenloop with durable acknowledgement (a 200 means the log row is committed, the
  default), with queued acknowledgement, with the log off, and MLflow's `/invocations`;
- in-process prediction, as the floor;
- durable vs queued head to head: both services up at once, single rows at concurrency
  8, alternated `--repeats` times, so a busy machine weighs on both alike (medians).
It prints a table and the ratios that issues #3 and #9 set as targets.
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
from contextlib import contextmanager
from pathlib import Path

import httpx
import mlflow
import pandas as pd
import yaml
from mlflow.tracking import MlflowClient

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api.settings import ACKNOWLEDGE_ENV  # noqa: E402
from tests.serving_support import free_port  # noqa: E402
from zenloop.compiled import CompiledModel  # noqa: E402
from zenloop.deployment import request_rows  # noqa: E402
from zenloop.paths import isolate, local_tracking_uri  # noqa: E402
from zenloop.tracking import load_bundle  # noqa: E402

CONCURRENCY = (1, 8, 32)
AB_CONCURRENCY = 8  # where issue #9 sets its durable-vs-queued targets
FRESH_MODEL = "zenloop-bench"
FRESH_FAMILY = "random_forest"  # what `make demo` promotes, with the family's defaults
FRESH_ROWS = 50_000
DURABLE, QUEUED, LOG_OFF, MLFLOW = (
    "zenloop (durable)",
    "zenloop (queued)",
    "zenloop (log off)",
    "mlflow models serve",
)
BATCHES = {"single": 1, "batch_1k": 1_000, "batch_10k": 10_000}
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
    name: str, version: str, workdir: Path, log_enabled: bool, acknowledge: str = "committed"
):
    port = free_port()
    config = {
        "port": port,
        "model": {"name": name, "version": version},
        "max_batch_rows": max(BATCHES.values()),
        "tracking_uri": os.environ["MLFLOW_TRACKING_URI"],
        "log": {"enabled": log_enabled, "database_url": f"sqlite:///{workdir / f'log-{port}.db'}"},
    }
    path = workdir / f"serving-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "ops.cli", "serve", "-c", str(path)]
    env = {**os.environ, ACKNOWLEDGE_ENV: acknowledge}
    return process(command, f"http://127.0.0.1:{port}/ready", env), f"http://127.0.0.1:{port}"


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
        from tests.serving_support import register_models
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


def head_to_head(
    name: str, version: str, workdir: Path, body: Path, script: Path, duration: float, repeats: int
) -> dict[str, list[dict]]:
    """Durable and queued services up at once, measured in turn: machine load hits both."""
    durable, durable_url = zenloop_service(name, version, workdir, True, "committed")
    queued, queued_url = zenloop_service(name, version, workdir, True, "queued")
    results: dict[str, list[dict]] = {DURABLE: [], QUEUED: []}
    with durable, queued:
        for url in (durable_url, queued_url):
            wrk(url + "/predict", body, AB_CONCURRENCY, 1.0, script)  # warm-up
        for i in range(repeats):
            for label, url in ((DURABLE, durable_url), (QUEUED, queued_url)):
                result = wrk(url + "/predict", body, AB_CONCURRENCY, duration, script)
                results[label].append(result)
                print(
                    f"  head to head #{i + 1} {label:18s} c={AB_CONCURRENCY} {result['rps']:8.1f}"
                    f" req/s  p99 {result['p99_ms']:7.2f} ms  failed {result['failed']}"
                )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="zenloop")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--fresh", action="store_true", help="train a model in temporary stores")
    parser.add_argument("--rows", type=int, default=FRESH_ROWS, help="training rows with --fresh")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="durable/queued alternations")
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
        f"{args.duration:.0f}s per cell; wrk on 127.0.0.1"
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

    results: dict[tuple[str, str, int], dict] = {}
    servers = [
        (DURABLE, "zenloop", lambda: zenloop_service(name, version, workdir, True, "committed")),
        (QUEUED, "zenloop", lambda: zenloop_service(name, version, workdir, True, "queued")),
        (LOG_OFF, "zenloop", lambda: zenloop_service(name, version, workdir, False)),
        (MLFLOW, "mlflow", lambda: mlflow_service(name, version)),
    ]
    for label, flavour, start in servers:
        context, base = start()
        path = "/invocations" if flavour == "mlflow" else None
        with context:
            for kind in BATCHES:
                endpoint = path or ("/predict" if kind == "single" else "/predict_batch")
                wrk(base + endpoint, bodies[(flavour, kind)], 1, 1.0, script)  # warm-up
                for concurrency in CONCURRENCY:
                    result = wrk(
                        base + endpoint, bodies[(flavour, kind)], concurrency, args.duration, script
                    )
                    results[(label, kind, concurrency)] = result
                    print(
                        f"  {label:20s} {kind:9s} c={concurrency:<3d} {result['rps']:9.1f} req/s"
                        f"  p50 {result['p50_ms']:8.2f} ms  p99 {result['p99_ms']:8.2f} ms"
                        f"  failed {result['failed']}"
                    )
    single = bodies[("zenloop", "single")]
    ab = head_to_head(name, version, workdir, single, script, args.duration, args.repeats)
    floor = {kind: in_process(bundle, rows[:n]) for kind, n in BATCHES.items()}

    print("\n| server | request | concurrency | req/s | rows/s | p50 ms | p99 ms | failed |")
    print("|---|---|---|---|---|---|---|---|")
    for (label, kind, concurrency), r in results.items():
        if r["rps"] == 0:  # a request slower than the whole window: nothing finished
            window = f"n/a (none finished in {args.duration:.0f}s)"
            print(f"| {label} | {kind} | {concurrency} | {window} |")
            continue
        print(
            f"| {label} | {kind} | {concurrency} | {r['rps']:.1f} | {r['rps'] * BATCHES[kind]:.0f}"
            f" | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['failed']} |"
        )
    for kind, f in floor.items():
        timings = f"pipeline {f['pipeline_ms']:.2f}, compiled {f['compiled_ms']:.2f}"
        print(f"| in-process | {kind} | - | - | - | {timings} | - | - |")

    c = AB_CONCURRENCY
    single_ratio = results[(DURABLE, "single", c)]["rps"] / results[(MLFLOW, "single", c)]["rps"]
    log_ratio = results[(DURABLE, "single", c)]["rps"] / results[(LOG_OFF, "single", c)]["rps"]
    batch_ratio = results[(DURABLE, "batch_10k", 1)]["p50_ms"] / floor["batch_10k"]["pipeline_ms"]
    durable_rps = statistics.median(r["rps"] for r in ab[DURABLE])
    queued_rps = statistics.median(r["rps"] for r in ab[QUEUED])
    durable_p99 = statistics.median(r["p99_ms"] for r in ab[DURABLE])
    print("\nRatios (targets from issues #3 and #9; head to head: medians of alternated runs):")
    print(f"  single-row throughput vs mlflow at c=8:   {single_ratio:6.2f}x   (target >= 5x)")
    print(f"  durable single-row p99 at c=8:            {durable_p99:6.2f} ms (target < 20 ms)")
    print(
        f"  durable / queued throughput at c=8:       {durable_rps / queued_rps:6.2f}    "
        f"(target >= 0.8; {durable_rps:.0f} vs {queued_rps:.0f} req/s)"
    )
    print(f"  durable log / log off throughput at c=8:  {log_ratio:6.2f}")
    print(f"  10k-row batch p50 / in-process predict:   {batch_ratio:6.2f}x   (target <= 2x)")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
