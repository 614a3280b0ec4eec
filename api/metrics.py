"""Prometheus metrics of one app, in a registry of its own (two apps in one process never collide)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("fraudlens_api_requests_total", "HTTP requests by route and status.",
                                ["method", "route", "status"], registry=self.registry)
        self.latency = Histogram("fraudlens_api_request_seconds", "HTTP request latency by route.",
                                 ["method", "route"], registry=self.registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5))
        self.scored = Counter("fraudlens_api_scored_total", "Transactions scored by POST /v1/score, by decision.",
                              ["decision"], registry=self.registry)
        self.decisions = Counter("fraudlens_api_decisions_total", "Investigator decisions, by label.",
                                 ["label"], registry=self.registry)
        self.auth_failures = Counter("fraudlens_api_auth_failures_total", "Requests refused 401 or 403.",
                                     ["status"], registry=self.registry)
