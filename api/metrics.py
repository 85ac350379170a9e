"""Prometheus metrics for the service, collected by a pure ASGI middleware (cheap per call)."""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily

LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
OTHER_PATH = "other"

disable_created_metrics()


class ServiceMetrics:
    def __init__(
        self,
        log_stats: Callable[[], dict[str, float]],
        predict_stats: Callable[[], dict[str, float]],
    ):
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "zenloop_requests", "HTTP requests", ["endpoint", "status"], registry=self.registry
        )
        self.latency = Histogram(
            "zenloop_request_latency_seconds",
            "Request latency",
            ["endpoint"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "zenloop_predictions", "Served predictions", ["model_version"], registry=self.registry
        )
        self.model_version = Gauge(
            "zenloop_model_version_served", "Registry version being served", registry=self.registry
        )
        self.reloads = Counter("zenloop_model_reloads", "Model swaps", registry=self.registry)
        self.registry_polls = Counter(
            "zenloop_registry_polls", "Polls of the followed alias", registry=self.registry
        )
        self.registry_errors = Counter(
            "zenloop_registry_errors", "Failed registry polls", registry=self.registry
        )
        self.registry_reachable = Gauge(
            "zenloop_registry_reachable",
            "1 when the last registry poll worked",
            registry=self.registry,
        )
        self.registry_reachable.set(1)
        self.registry.register(_StatsCollector("log", "prediction log", log_stats))
        self.registry.register(_StatsCollector("predict", "grouped prediction", predict_stats))


class _StatsCollector:
    """Reads a component's counters (the log writer, the coalescer) at scrape time."""

    def __init__(self, prefix: str, what: str, stats: Callable[[], dict[str, float]]):
        self.prefix, self.what, self.stats = prefix, what, stats

    def collect(self):
        for name, value in self.stats().items():
            family = GaugeMetricFamily(f"zenloop_{self.prefix}_{name}", f"{self.what}: {name}")
            family.add_metric([], value)
            yield family


class MetricsMiddleware:
    def __init__(self, app, metrics: ServiceMetrics, paths: set[str]):
        self.app = app
        self.metrics = metrics
        self.paths = paths
        # (path, status) -> its counter and histogram children: `labels` costs more than
        # counting. Bounded: the service's paths (and "other") times the statuses it sends.
        self._children: dict[tuple[str, int], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_record(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            path = scope["path"] if scope["path"] in self.paths else OTHER_PATH
            requests, latency = self._children_of(path, status)
            requests.inc()
            latency.observe(time.perf_counter() - started)

    def _children_of(self, path: str, status: int) -> tuple[Counter, Histogram]:
        children = self._children.get((path, status))
        if children is None:
            children = (
                self.metrics.requests.labels(path, str(status)),
                self.metrics.latency.labels(path),
            )
            self._children[(path, status)] = children
        return children
