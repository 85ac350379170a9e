"""Loop benchmark: time from drift onset to the new model serving, and the error ratio.

    .venv/bin/python benchmarks/loop.py [--scenario promotion_season]

Needs the local stack with a deployed champion (`make demo` once). Starts the service and
the monitor with the shipped configs, replays normal then drifted traffic on 127.0.0.1,
and stops both. Targets (issue #4): under 120 s, and RMSE after / before <= 0.8.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from api import server  # noqa: E402
from monitoring.loop_run import format_summary, run_loop  # noqa: E402
from monitoring.watcher import monitor_process, read_heartbeat  # noqa: E402
from zenloop.config import load_serving_config  # noqa: E402

TARGET_SECONDS = 120.0
TARGET_RATIO = 0.8
START_TIMEOUT_S = 120.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--scenario", default="promotion_season")
    args = parser.parse_args()
    serving_path = ROOT / "configs" / "serving.yaml"
    config = load_serving_config(serving_path)
    service, monitor = server.service_process(), monitor_process()
    started_service = service.running_pid() is None
    if started_service:
        server.serve_background(str(serving_path), config)
        server.wait_ready(config, START_TIMEOUT_S)
    before = (read_heartbeat() or {}).get("started_at", 0)
    monitor.start(
        ["monitor", "-c", str(ROOT / "configs" / "monitoring.yaml"), "--watch"],
        lambda: (read_heartbeat() or {}).get("started_at", 0) > before,
        START_TIMEOUT_S,
    )
    try:
        summary = run_loop(server.base_url(config), args.scenario)
    finally:
        monitor.stop()
        if started_service:
            service.stop()
    print(format_summary(summary))
    onset = summary.onset_to_serving_s
    print(
        f"\ndrift onset -> new model serving: {onset:.1f} s (target < {TARGET_SECONDS:.0f} s)"
        if onset
        else "\nno new model served"
    )
    print(
        f"RMSE after / before on drifted traffic: {summary.error_ratio:.2f}"
        f" (target <= {TARGET_RATIO})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
