"""Traffic over time from the service's Prometheus /metrics, sampled by the page's backend.

/metrics holds cumulative counters, so one scrape says nothing about "now": the sampler
keeps a bounded series of scrapes and each point is the difference between two of them
(requests per second, errors, latency percentiles from the histogram's bucket deltas).
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import httpx
from prometheus_client.parser import text_string_to_metric_families

logger = logging.getLogger(__name__)

PREDICTION_ENDPOINTS = frozenset({"/predict", "/predict_batch"})
# Endpoints that report the service's state rather than serve a request: probes and the
# page's own polling ask them every few seconds, and their 503 while a service starts (no
# model loaded yet) is the right answer, not a failure. Their statuses are not errors.
PROBE_ENDPOINTS = frozenset({"/ready", "/health", "/metrics", "/model-info"})
REQUESTS_SAMPLE = "zenloop_requests_total"
LATENCY_BUCKET_SAMPLE = "zenloop_request_latency_seconds_bucket"
LOG_PREFIX = "zenloop_log_"
SERVED_VERSION_SAMPLE = "zenloop_model_version_served"
PERCENTILES = (0.5, 0.95, 0.99)
CLIENT_ERROR, SERVER_ERROR = 400, 500
MS_PER_S = 1000.0


@dataclass
class Scrape:
    """The cumulative numbers of one /metrics answer that the page turns into rates."""

    at: float
    requests: int = 0  # prediction endpoints
    client_errors: int = 0  # 4xx, every endpoint but the probes
    server_errors: int = 0  # 5xx, every endpoint but the probes
    buckets: dict[float, float] = field(default_factory=dict)  # le -> cumulative count
    log: dict[str, float] = field(default_factory=dict)  # pending_rows, written_rows, ...
    served_version: float | None = None


def parse_metrics(text: str, at: float) -> Scrape:
    """The prediction endpoints' requests and latency buckets, the errors of real requests
    (every endpoint but PROBE_ENDPOINTS), and the log gauges."""
    scrape = Scrape(at=at)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = sample.labels
            if sample.name == REQUESTS_SAMPLE:
                status = int(labels.get("status", "0"))
                endpoint = labels.get("endpoint")
                if endpoint in PREDICTION_ENDPOINTS:
                    scrape.requests += int(sample.value)
                if endpoint in PROBE_ENDPOINTS:
                    continue
                if status >= SERVER_ERROR:
                    scrape.server_errors += int(sample.value)
                elif status >= CLIENT_ERROR:
                    scrape.client_errors += int(sample.value)
            elif (
                sample.name == LATENCY_BUCKET_SAMPLE
                and labels.get("endpoint") in PREDICTION_ENDPOINTS
            ):
                bound = float(labels["le"])
                scrape.buckets[bound] = scrape.buckets.get(bound, 0.0) + sample.value
            elif sample.name.startswith(LOG_PREFIX):
                scrape.log[sample.name.removeprefix(LOG_PREFIX)] = sample.value
            elif sample.name == SERVED_VERSION_SAMPLE:
                scrape.served_version = sample.value
    return scrape


def bucket_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """Prometheus' histogram_quantile: linear inside the bucket that holds the q-th rank."""
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return None
    rank = q * total
    lower_bound, lower_count = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):  # in the overflow bucket: the highest finite bound
                return lower_bound
            inside = count - lower_count
            share = (rank - lower_count) / inside if inside else 1.0
            return lower_bound + (bound - lower_bound) * share
        lower_bound, lower_count = bound, count
    return lower_bound


def traffic_point(before: Scrape, after: Scrape) -> dict[str, float | None]:
    """What happened between two scrapes (a restarted service's counters start again)."""
    seconds = max(after.at - before.at, 1e-9)
    restarted = after.requests < before.requests
    base = Scrape(at=before.at) if restarted else before
    deltas = {b: after.buckets[b] - base.buckets.get(b, 0.0) for b in after.buckets}
    point: dict[str, float | None] = {
        "at": after.at,
        "requests": after.requests - base.requests,
        "requests_per_s": (after.requests - base.requests) / seconds,
        "client_errors": after.client_errors - base.client_errors,
        "server_errors": after.server_errors - base.server_errors,
        "log_backlog": after.log.get("pending_rows"),
        "log_written": after.log.get("written_rows"),
        "log_refused": after.log.get("refused_rows"),
        "log_spilled": after.log.get("spilled_rows"),
    }
    for q in PERCENTILES:
        value = bucket_quantile(q, deltas)
        point[f"p{round(q * 100)}_ms"] = None if value is None else value * MS_PER_S
    return point


class TrafficSampler:
    """A daemon thread that scrapes /metrics every `interval_s`, keeping the newest scrapes."""

    def __init__(self, metrics_url: str, interval_s: float, kept: int, timeout_s: float):
        self.metrics_url = metrics_url
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.scrapes: deque[Scrape] = deque(maxlen=kept)
        self.last_error: str | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="traffic-sampler", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(self.timeout_s + self.interval_s)

    def sample_once(self) -> None:
        try:
            response = httpx.get(self.metrics_url, timeout=self.timeout_s)
            response.raise_for_status()
        except httpx.HTTPError as exc:  # the service may be down for a while: keep trying
            self.last_error = f"{type(exc).__name__}: {exc}"
            return
        self.last_error = None
        scrape = parse_metrics(response.text, time.time())
        with self._lock:
            self.scrapes.append(scrape)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample_once()
            self._stop.wait(self.interval_s)

    def points(self, limit: int) -> list[dict[str, float | None]]:
        """The newest `limit` points, oldest first (a chart's order)."""
        with self._lock:
            scrapes = list(self.scrapes)
        points = [traffic_point(a, b) for a, b in zip(scrapes, scrapes[1:], strict=False)]
        return points[-limit:] if limit else []

    def latest(self) -> Scrape | None:
        with self._lock:
            return self.scrapes[-1] if self.scrapes else None
