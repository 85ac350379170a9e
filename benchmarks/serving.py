"""Serving benchmark: zenloop's service vs `mlflow models serve` on the same model version.

    .venv/bin/python benchmarks/serving.py [--duration 5] [--model zenloop] [--alias champion]

Needs a registered model (run `make demo` first) and `wrk` (`apt-get install wrk`) as the
load generator: it is written in C, so it is not the bottleneck. Everything talks to
127.0.0.1 only. In one run it measures, for single rows and batches of 1,000 and 10,000:
- throughput and p50/p99 latency at concurrency 1, 8 and 32;
- zenloop with the prediction log on, zenloop with it off, and MLflow's `/invocations`;
- in-process prediction, as the floor.
It prints a table and the ratios that issue #3 sets as targets.
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

from tests.serving_support import free_port  # noqa: E402
from zenloop.compiled import CompiledModel  # noqa: E402
from zenloop.deployment import request_rows  # noqa: E402
from zenloop.paths import local_tracking_uri  # noqa: E402
from zenloop.tracking import ZENML_VERSION_TAG, load_bundle  # noqa: E402

CONCURRENCY = (1, 8, 32)
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


def zenloop_service(name: str, version: str, workdir: Path, log_enabled: bool):
    port = free_port()
    config = {
        "port": port,
        "model": {"name": name, "version": version},
        "max_batch_rows": max(BATCHES.values()),
        "log": {"enabled": log_enabled, "database_url": f"sqlite:///{workdir / f'log-{port}.db'}"},
    }
    path = workdir / f"serving-{port}.yaml"
    path.write_text(yaml.safe_dump(config))
    command = [sys.executable, "-m", "ops.cli", "serve", "-c", str(path)]
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


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="zenloop")
    parser.add_argument("--alias", default="champion")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    os.environ.setdefault("MLFLOW_TRACKING_URI", local_tracking_uri())
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    version = str(MlflowClient().get_model_version_by_alias(args.model, args.alias).version)
    bundle = load_bundle(f"models:/{args.model}/{version}")
    from steps.deployment import holdout_for

    tags = MlflowClient().get_model_version(args.model, version).tags
    holdout = holdout_for(args.model, tags.get(ZENML_VERSION_TAG))
    features = [c for c in bundle.schema.feature_names if c in holdout.columns]
    pool = request_rows(holdout[features])
    rows = (pool * (max(BATCHES.values()) // len(pool) + 1))[: max(BATCHES.values())]
    print(
        f"model {args.model} v{version} ({bundle.candidate}); "
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
        (
            "zenloop (log on)",
            "zenloop",
            lambda: zenloop_service(args.model, version, workdir, True),
        ),
        (
            "zenloop (log off)",
            "zenloop",
            lambda: zenloop_service(args.model, version, workdir, False),
        ),
        ("mlflow models serve", "mlflow", lambda: mlflow_service(args.model, version)),
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

    on, off, ml = "zenloop (log on)", "zenloop (log off)", "mlflow models serve"
    single_ratio = results[(on, "single", 8)]["rps"] / results[(ml, "single", 8)]["rps"]
    log_ratio = results[(on, "single", 8)]["rps"] / results[(off, "single", 8)]["rps"]
    p99 = results[(on, "single", 8)]["p99_ms"]
    batch_ratio = results[(on, "batch_10k", 1)]["p50_ms"] / floor["batch_10k"]["pipeline_ms"]
    print("\nRatios (targets from issue #3):")
    print(f"  single-row throughput vs mlflow at c=8:   {single_ratio:6.2f}x   (target >= 5x)")
    print(f"  single-row p99 at c=8:                    {p99:6.2f} ms (target < 20 ms)")
    print(f"  logging on / off throughput at c=8:       {log_ratio:6.2f}    (target >= 0.9)")
    print(f"  10k-row batch p50 / in-process predict:   {batch_ratio:6.2f}x   (target <= 2x)")
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
