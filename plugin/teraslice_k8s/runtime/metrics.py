"""Prometheus ``/metrics`` of execution controllers and workers (Teraslice's ``teraslice_job_``
prefix), served on ``prom_metrics_port`` when ``prom_metrics_enabled``. With
``prom_metrics_add_default`` the default process/platform/GC collectors are included."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, start_http_server

from teraslice_k8s import __version__
from teraslice_k8s.runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)
LABELS = ("ex_id", "job_id", "name")


class JobMetrics:
    def __init__(self, role: str, execution: Mapping[str, Any], registry: CollectorRegistry) -> None:
        labels = {k: str(execution.get(k, "")) for k in LABELS}
        info = Gauge(
            f"teraslice_job_{role}_info",
            f"{role} of a teraslice-k8s execution",
            [*LABELS, "version"],
            registry=registry,
        )
        info.labels(**labels, version=__version__).set(1)
        self.slices_processed = Counter(
            "teraslice_job_slices_processed",
            "slices finished (completed or failed)",
            LABELS,
            registry=registry,
        ).labels(**labels)
        self.slices_failed = Counter(
            "teraslice_job_slices_failed", "slices that failed", LABELS, registry=registry
        ).labels(**labels)
        self.records_processed = Counter(
            "teraslice_job_records_processed", "records read by the reader", LABELS, registry=registry
        ).labels(**labels)

    def slice_done(self, records: int, failed: bool) -> None:
        self.slices_processed.inc()
        if failed:
            self.slices_failed.inc()
        else:
            self.records_processed.inc(records)


def start_metrics(role: str, execution: Mapping[str, Any], settings: RuntimeSettings) -> JobMetrics | None:
    """Serve ``/metrics`` if enabled; a port already in use is logged, not fatal."""
    if not settings.prom_metrics_enabled:
        return None
    registry = REGISTRY if settings.prom_metrics_add_default else CollectorRegistry()
    metrics = JobMetrics(role, execution, registry)
    try:
        start_http_server(settings.prom_metrics_port, registry=registry)
    except OSError as exc:
        log.warning("metrics port %d unavailable: %s", settings.prom_metrics_port, exc)
    return metrics
