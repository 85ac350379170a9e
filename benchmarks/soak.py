"""Soak: the service under a steady load for minutes, with hot swaps and drift checks.

    .venv/bin/python benchmarks/soak.py [--minutes 10] [--rate 100] [--png soak.png]

Everything runs in temporary stores on 127.0.0.1: two model versions are trained and
registered, the service is started with durable acknowledgement, and a steady stream of
requests (single rows, every tenth a batch) is sent at `--rate` requests per second.
Every `--swap-every` seconds the service is switched to the other version (an admin
load); every `--drift-every` seconds this process plays the monitor: it reads the
served version's logged window and runs the drift check on it. The resident memory of
the service and of this process (the monitor) is sampled throughout. It prints the
figures and writes the memory curve as a PNG.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from zenloop.paths import isolate  # noqa: E402

MODEL = "zenloop-soak"
FAMILIES = ["random_forest", "xgboost"]  # v1 and v2, swapped back and forth
TRAIN_ROWS = 20_000
WORKERS = 4  # client threads sharing the rate
BATCH_EVERY = 10
BATCH_ROWS = 20
WINDOW_ROWS = 2_000
REFERENCE_ROWS = 2_000
REQUEST_TIMEOUT_S = 30.0
MIB = 2**20
PERCENTILES = (50, 99)


@dataclass
class Tally:
    """What the clients saw; shared by the client threads under its lock."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answered: int = 0
    failed: dict[int, int] = field(default_factory=dict)
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, status: int, latency_ms: float) -> None:
        with self.lock:
            self.answered += 1
            self.latencies_ms.append(latency_ms)
            if status != 200:
                self.failed[status] = self.failed.get(status, 0) + 1


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def client(url: str, rows: list[dict], rate: float, stop: threading.Event, tally: Tally) -> None:
    """Requests at a steady `rate` per second until `stop` (late ones are sent at once)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=REQUEST_TIMEOUT_S)
    single = [json.dumps(r).encode() for r in rows]
    batches = [
        json.dumps({"rows": rows[i : i + BATCH_ROWS]}).encode()
        for i in range(0, len(rows) - BATCH_ROWS, BATCH_ROWS)
    ]
    due, i = time.monotonic(), random.randrange(len(rows))  # each client its own stretch
    while not stop.is_set():
        due += 1 / rate
        if (wait := due - time.monotonic()) > 0:
            stop.wait(wait)
        path, body = (
            ("/predict_batch", batches[i % len(batches)])
            if i % BATCH_EVERY == 0
            else ("/predict", single[i % len(single)])
        )
        started = time.perf_counter()
        try:
            connection.request("POST", path, body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            status = 0  # no answer at all
            connection.close()
        tally.record(status, (time.perf_counter() - started) * 1e3)
        i += 1
    connection.close()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--rate", type=float, default=100.0, help="requests per second")
    parser.add_argument("--swap-every", type=float, default=60.0, help="seconds between swaps")
    parser.add_argument("--drift-every", type=float, default=60.0, help="seconds between checks")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--png", type=Path, default=Path("soak.png"))
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="zenloop-soak-"))
    isolate(folder)  # before anything imports ZenML or reads MLflow's location
    import httpx
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from mlflow.tracking import MlflowClient

    from monitoring.drift import check_drift
    from monitoring.log_store import PredictionLogStore
    from tests.support.serving import ADMIN_TOKEN, register_models, running_service
    from zenloop.config import DataConfig, DriftConfig, PolicyConfig
    from zenloop.deployment import VALIDATED_TAG, request_rows
    from zenloop.reference import reference_sample

    registered = register_models(MODEL, DataConfig(n_rows=TRAIN_ROWS), FAMILIES, small=False)
    MlflowClient().set_model_version_tag(MODEL, "2", VALIDATED_TAG, "soak")
    rows = request_rows(registered.holdout)  # traffic like the training data: no drift
    min_rows = PolicyConfig().min_window_rows
    references = {
        v: reference_sample(registered.holdout, b, REFERENCE_ROWS, 0)
        for v, b in registered.bundles.items()
    }
    print(
        f"soak: {args.minutes:g} min at {args.rate:g} req/s, swaps every {args.swap_every:g}s,"
        f" drift checks every {args.drift_every:g}s; stores in {folder}"
    )

    tally, stop = Tally(), threading.Event()
    samples: list[tuple[float, float, float, int]] = []  # t, service MiB, monitor MiB, answered
    swaps: list[tuple[float, str]] = []
    checks: list[tuple[float, str, int, str]] = []
    me = os.getpid()
    with running_service(folder, MODEL, reload_interval_s=10.0) as service:
        service.wait_ready()
        store = PredictionLogStore(f"sqlite:///{service.log_db}")
        admin = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
        threads = [
            threading.Thread(
                target=client, args=(service.url, rows, args.rate / WORKERS, stop, tally)
            )
            for _ in range(WORKERS)
        ]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        end = started + args.minutes * 60
        next_sample = next_swap = next_check = started
        next_swap += args.swap_every
        next_check += args.drift_every
        version = "1"
        with httpx.Client(base_url=service.url, timeout=REQUEST_TIMEOUT_S) as http:
            while (now := time.monotonic()) < end:
                if now >= next_sample:
                    samples.append(
                        (now - started, rss_mib(service.pid), rss_mib(me), tally.answered)
                    )
                    next_sample += args.sample_every
                if now >= next_swap:
                    version = "2" if version == "1" else "1"
                    answer = http.post(f"/models/load?version={version}", headers=admin)
                    swaps.append((now - started, f"v{version}: {answer.status_code}"))
                    next_swap += args.swap_every
                if now >= next_check:
                    window = store.last_rows(WINDOW_ROWS, version)
                    bundle = registered.bundles[version]
                    if len(window) < min_rows:  # as the monitor's policy: not judged
                        reason = f"under min_window_rows ({min_rows}): not judged"
                        checks.append((now - started, version, len(window), reason))
                        next_check += args.drift_every
                        continue
                    drift = check_drift(
                        MODEL,
                        version,
                        window,
                        references[version],
                        bundle.schema,
                        bundle.metrics["test"],
                        DriftConfig(),
                        with_html=False,
                    ).report
                    checks.append((now - started, version, len(window), drift.reason))
                    next_check += args.drift_every
                time.sleep(
                    max(0.0, min(next_sample, next_swap, next_check, end) - time.monotonic())
                )
        stop.set()
        for thread in threads:
            thread.join()
        samples.append(
            (time.monotonic() - started, rss_mib(service.pid), rss_mib(me), tally.answered)
        )
        logged = store.count()

    print_figures(tally, samples, swaps, checks, logged)
    plot(args, samples, swaps, len(checks), plt)
    return 0 if not tally.failed else 1


def print_figures(
    tally: Tally,
    samples: list[tuple[float, float, float, int]],
    swaps: list[tuple[float, str]],
    checks: list[tuple[float, str, int, str]],
    logged: int,
) -> None:
    """The soak's figures: traffic, failures, latency, swaps, checks and memory."""
    seconds = samples[-1][0]
    service_mib = [s[1] for s in samples]
    monitor_mib = [s[2] for s in samples]
    p50, p99 = (statistics.quantiles(tally.latencies_ms, n=100)[p - 1] for p in PERCENTILES)
    rate = tally.answered / seconds
    print(f"\nrequests answered: {tally.answered} in {seconds:.0f}s ({rate:.1f}/s)")
    print(f"failed: {sum(tally.failed.values())} {tally.failed or ''}")
    print(f"latency: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(f"rows logged: {logged}")
    print(f"swaps: {len(swaps)} ({', '.join(s[1] for s in swaps)})")
    print(f"drift checks: {len(checks)}")
    for t, version, n, reason in checks:
        print(f"  {t:6.0f}s v{version} on {n} rows: {reason}")
    for name, mib in (("service", service_mib), ("monitor (this process)", monitor_mib)):
        print(
            f"{name} RSS: start {mib[0]:.0f} MiB, end {mib[-1]:.0f} MiB, max {max(mib):.0f} MiB,"
            f" growth {mib[-1] - mib[0]:+.0f} MiB"
        )


def plot(args, samples, swaps, checks: int, plt) -> None:
    """The memory curves, with the swaps as grey lines."""
    figure, axis = plt.subplots(figsize=(9, 4))
    axis.plot([s[0] for s in samples], [s[1] for s in samples], label="service RSS")
    axis.plot([s[0] for s in samples], [s[2] for s in samples], label="monitor RSS")
    for t, _ in swaps:
        axis.axvline(t, color="grey", alpha=0.3)
    axis.set_xlabel("seconds")
    axis.set_ylabel("MiB")
    axis.set_title(f"soak: {args.rate:g} req/s, {len(swaps)} swaps (grey), {checks} drift checks")
    axis.legend()
    figure.tight_layout()
    figure.savefig(args.png)
    print(f"memory curve: {args.png.resolve()}")


if __name__ == "__main__":
    sys.exit(main())
