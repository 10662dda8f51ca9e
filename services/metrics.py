"""Prometheus metrics for operators: `GET /metrics`, off unless `METRICS_TOKEN` is set.

Each app owns its `CollectorRegistry` (never the library's global default), so tests can
build many apps and every count belongs to one of them. Labels are route *templates* and a
few fixed words, never ids or paths, so the number of series stays small.

For the generation layer:
- `metrics.observe_upstream(model, endpoint, seconds, outcome)` after every upstream call
  (`outcome` "ok", or an error kind such as "timeout", "rate_limited", "moderation_blocked",
  "server_error", "connection_error").
- `metrics.observe_job(stage, seconds)` where a job runs (the in-process pool, or a worker
  process with API_RUNS_JOBS / `manage.py worker`): stage "queued" (accepted -> started) or
  "run" (started -> succeeded or failed).
- `metrics.set_job_source(fn)` with `fn() -> JobCounts`: called at scrape time (in a worker
  thread, so a quick DB count is fine) for jobs by state and the queue depth.
The runtime's instance is `runtime.metrics`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = logging.getLogger("storyloom.metrics")

JOB_STATES = ("queued", "running", "succeeded", "failed", "cancelled")
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
# Edits at high quality take 60-180 s upstream; the default buckets stop at 10 s.
UPSTREAM_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 45, 60, 90, 120, 180, 300, 600)
# Time in the queue is short when workers keep up and minutes when they do not.
QUEUE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800)


@dataclass(frozen=True)
class JobCounts:
    """Jobs by status right now, and how many wait for a worker."""

    by_state: Mapping[str, int] = field(default_factory=dict)
    queue_depth: int = 0


class _JobCollector(Collector):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def describe(self) -> list[Metric]:
        # Empty: the registry must not call `collect` (and the job source) at registration.
        return []

    def collect(self) -> Iterator[Metric]:
        source = self.metrics.job_source
        if source is None:
            return
        try:
            counts = source()
        except Exception as exc:  # noqa: BLE001 - a failing source must not break the whole scrape
            log.warning("job metrics unavailable: %s", type(exc).__name__)
            return
        jobs = GaugeMetricFamily("storyloom_jobs", "Generation jobs by state", labels=["state"])
        for state in sorted(set(JOB_STATES) | set(counts.by_state)):
            jobs.add_metric([state], counts.by_state.get(state, 0))
        yield jobs
        yield GaugeMetricFamily(
            "storyloom_queue_depth", "Generation jobs waiting for a worker", value=counts.queue_depth
        )


class Metrics:
    """The app's metrics: request counts and latency, upstream latency and errors, jobs."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.job_source: Callable[[], JobCounts] | None = None
        self.requests = Counter(
            "storyloom_http_requests",
            "HTTP requests by method, route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.request_seconds = Histogram(
            "storyloom_http_request_duration_seconds",
            "Time from request to the end of the response",
            ["method", "route"],
            registry=self.registry,
        )
        self.upstream_seconds = Histogram(
            "storyloom_upstream_request_duration_seconds",
            "Image backend call latency, by model and endpoint (generate|edit)",
            ["model", "endpoint"],
            buckets=UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self.upstream_errors = Counter(
            "storyloom_upstream_errors",
            "Image backend calls that failed, by kind",
            ["model", "endpoint", "kind"],
            registry=self.registry,
        )
        self.job_queued_seconds = Histogram(
            "storyloom_job_queued_seconds",
            "Time from a job's acceptance to its start (observed by the process that runs it)",
            buckets=QUEUE_BUCKETS,
            registry=self.registry,
        )
        self.job_run_seconds = Histogram(
            "storyloom_job_run_seconds",
            "Time from a job's start to its end, succeeded or failed (observed by the process that runs it)",
            buckets=UPSTREAM_BUCKETS,
            registry=self.registry,
        )
        self.registry.register(_JobCollector(self))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        method = method if method in METHODS else "OTHER"
        self.requests.labels(method, route, str(status)).inc()
        self.request_seconds.labels(method, route).observe(seconds)

    def observe_upstream(self, model: str, endpoint: str, seconds: float, outcome: str = "ok") -> None:
        """Record one upstream call; any `outcome` other than "ok" counts as an error of that kind."""
        self.upstream_seconds.labels(model, endpoint).observe(seconds)
        if outcome != "ok":
            self.upstream_errors.labels(model, endpoint, outcome).inc()

    def observe_job(self, stage: str, seconds: float) -> None:
        """`stage` "queued" (accepted -> started) or "run" (started -> ended)."""
        (self.job_queued_seconds if stage == "queued" else self.job_run_seconds).observe(seconds)

    def set_job_source(self, fn: Callable[[], JobCounts] | None) -> None:
        self.job_source = fn

    def render(self) -> bytes:
        return generate_latest(self.registry)
