"""Scale-out benchmark: single-row predictions through nginx to 1 and 2 replicas of the
service on one PostgreSQL prediction log, against the same service on SQLite.

    .venv/bin/pip install -e '.[bench]'   # psycopg, for the replicas' PostgreSQL log
    .venv/bin/python benchmarks/scale.py [--duration 5] [--repeats 3] [--rows 50000]

Needs Docker (`make containers`) and `wrk` (`apt-get install wrk`). PostgreSQL and nginx
run from the compose images (docker/postgres.Dockerfile, docker/balancer.Dockerfile,
built here when missing), on the host network; the replicas are `zenloop serve`
processes with durable acknowledgement (a 200 means the row is committed). Three set-ups
are up at once, each behind its own balancer, and measured in turn, cell by cell,
`--repeats` times; the tables give medians. The anchor is the service on SQLite (one
replica: a SQLite file cannot span hosts); the ratios say what PostgreSQL keeps of it.
Everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from contextlib import ExitStack, contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.serving import (  # noqa: E402
    FRESH_FAMILY,
    WRK_SCRIPT,
    median,
    wrk,
    zenloop_service,
)
from ops.images import ensure_base_image, image_exists  # noqa: E402
from ops.probes import answers  # noqa: E402
from pipelines.docker_settings import base_image  # noqa: E402
from tests.support.serving import free_port, register_models  # noqa: E402
from tests.support.waiting import wait_for  # noqa: E402
from zenloop.config import DataConfig  # noqa: E402
from zenloop.deployment import request_rows  # noqa: E402
from zenloop.paths import isolate  # noqa: E402

MODEL = "zenloop-scale-bench"
SQLITE, PG_ONE, PG_TWO = "SQLite, 1 replica", "PostgreSQL, 1 replica", "PostgreSQL, 2 replicas"
SETUPS = {SQLITE: ("sqlite", 1), PG_ONE: ("postgresql", 1), PG_TWO: ("postgresql", 2)}
CONCURRENCY = (8, 32)
TARGET = 0.7  # PostgreSQL keeps at least this share of SQLite's throughput
IMAGES = {  # image -> its Dockerfile in docker/
    "zenloop-postgres:latest": "postgres.Dockerfile",
    "zenloop-balancer:latest": "balancer.Dockerfile",
}
UP_TIMEOUT_S = 120.0


def ensure_images() -> None:
    """The compose images this benchmark runs, built from Debian's packages if missing."""
    ensure_base_image()
    for image, dockerfile in IMAGES.items():
        if not image_exists(image):
            subprocess.run(
                ["docker", "build", "--network", "host", "-t", image, "-f", dockerfile]
                + ["--build-arg", f"BASE_IMAGE={base_image()}", "."],
                cwd=ROOT / "docker",
                check=True,
            )


@contextmanager
def container(image: str, env: dict[str, str]):
    """A container of `image` on the host network, removed afterwards."""
    flags = [part for key, value in env.items() for part in ("-e", f"{key}={value}")]
    started = subprocess.run(
        ["docker", "run", "-d", "--network", "host", *flags, image],
        capture_output=True,
        text=True,
        check=True,
    )
    name = started.stdout.strip()
    try:
        yield name
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True)


def postgres(stack: ExitStack) -> str:
    """PostgreSQL in its container; the log's URL (the password is in PGPASSWORD)."""
    port = free_port()
    os.environ["PGPASSWORD"] = secrets.token_hex(16)  # the replicas inherit it
    name = stack.enter_context(
        container(
            "zenloop-postgres:latest", {"PGPORT": str(port), "PGPASSWORD": os.environ["PGPASSWORD"]}
        )
    )

    def answers() -> bool:
        probe = ["docker", "exec", name, "sh", "-c"]
        probe.append(f'psql -h 127.0.0.1 -p {port} -U zenloop -d zenloop -tAc "select 1"')
        return subprocess.run(probe, capture_output=True).returncode == 0

    wait_for(answers, "PostgreSQL", UP_TIMEOUT_S, poll_s=0.5)
    return f"postgresql+psycopg://zenloop@127.0.0.1:{port}/zenloop"


def balancer(stack: ExitStack, upstreams: list[str]) -> str:
    """nginx in front of `upstreams` (base URLs); its own base URL."""
    port = free_port()
    hosts = " ".join(url.removeprefix("http://") for url in upstreams)
    stack.enter_context(
        container("zenloop-balancer:latest", {"LISTEN": f"127.0.0.1:{port}", "UPSTREAMS": hosts})
    )
    url = f"http://127.0.0.1:{port}"
    wait_for(lambda: answers(f"{url}/ready"), "the balancer", UP_TIMEOUT_S, poll_s=0.5)
    return url


def setups(stack: ExitStack, version: str, workdir: Path) -> dict[str, str]:
    """Every set-up up at once; label -> the balancer's URL."""
    log_url = postgres(stack)
    urls = {}
    for label, (database, replicas) in SETUPS.items():
        replica_urls = []
        for _ in range(replicas):
            database_url = log_url if database == "postgresql" else None
            context, url = zenloop_service(MODEL, version, workdir, True, database_url=database_url)
            stack.enter_context(context)
            replica_urls.append(url)
        urls[label] = balancer(stack, replica_urls)
    return urls


def measure(urls: dict[str, str], body: Path, script: Path, args) -> dict:
    results: dict[tuple[str, int], list[dict]] = {}
    for url in urls.values():  # warm-up: every replica compiles and caches
        wrk(f"{url}/predict", body, 8, 1.0, script)
    for round_number in range(args.repeats):
        print(f" round {round_number + 1} of {args.repeats}", flush=True)
        for concurrency in CONCURRENCY:
            for label, url in urls.items():
                result = wrk(f"{url}/predict", body, concurrency, args.duration, script)
                print(
                    f"  {label:24s} c={concurrency:<3d} {result['rps']:8.1f} req/s"
                    f"  p99 {result['p99_ms']:7.2f} ms  failed {result['failed']}",
                    flush=True,
                )
                results.setdefault((label, concurrency), []).append(result)
    return results


def report(results: dict[tuple[str, int], list[dict]]) -> bool:
    """The table and the ratios against SQLite; True when PostgreSQL with one replica (the
    same set-up but for the database) meets the target at every concurrency. Two replicas
    are reported too: on a machine whose cores the replicas, PostgreSQL, nginx and the
    load generator share, a second replica adds no cores, only a process to schedule."""
    print("\n| set-up (through nginx) | concurrency | req/s | p99 ms | failed | vs SQLite |")
    print("|---|---|---|---|---|---|")
    met = True
    for concurrency in CONCURRENCY:
        anchor = median(results[(SQLITE, concurrency)], "rps")
        for label in SETUPS:
            cell = results[(label, concurrency)]
            ratio = median(cell, "rps") / anchor
            if label == PG_ONE:
                met = met and ratio >= TARGET
            failed = sum(r["failed"] for r in cell)
            print(
                f"| {label} | {concurrency} | {median(cell, 'rps'):.0f} | "
                f"{median(cell, 'p99_ms'):.2f} | {failed} | {ratio:.2f}x |"
            )
    verdict = "yes" if met else "NO"
    print(f"\nPostgreSQL (1 replica) keeps >= {TARGET}x of SQLite's throughput: {verdict}")
    return met


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=50_000, help="training rows")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per measurement")
    parser.add_argument("--repeats", type=int, default=3, help="rounds over the set-ups")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        print("wrk is not installed: apt-get install wrk", file=sys.stderr)
        return 2
    os.environ.setdefault("ZENML_ANALYTICS_OPT_IN", "false")
    ensure_images()
    workdir = Path(tempfile.mkdtemp(prefix="zenloop-scale-bench-"))
    isolate(workdir)  # temporary stores: nothing of the user's is touched
    registered = register_models(MODEL, DataConfig(n_rows=args.rows), [FRESH_FAMILY], small=False)
    body = workdir / "single.json"
    body.write_text(json.dumps(request_rows(registered.holdout.head(1))[0]))
    script = workdir / "post.lua"
    script.write_text(WRK_SCRIPT)
    print(
        f"model {MODEL} v1 ({FRESH_FAMILY}); {args.duration:.0f}s per cell; "
        f"wrk and every server on 127.0.0.1; {os.cpu_count()} cores"
    )
    with ExitStack() as stack:
        urls = setups(stack, "1", workdir)
        results = measure(urls, body, script, args)
    report(results)
    shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
