"""Prometheus ``/metrics`` of execution controllers and workers (Teraslice's ``teraslice_job_``
prefix), served on ``prom_metrics_port`` when ``prom_metrics_enabled`` (the job's values
override terafoundation's). With ``prom_metrics_add_default`` the process, platform and GC
collectors are included. Each process gets its own registry (no global state)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    start_http_server,
)

from teraslice_k8s import __version__
from teraslice_k8s.runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)
LABELS = ("ex_id", "job_id", "name")


class JobMetrics:
    """``teraslice_job_<role>_info``, ``teraslice_job_slices_processed``,
    ``teraslice_job_slices_failed`` and ``teraslice_job_records_processed`` (extension)."""

    def __init__(self, role: str, execution: Mapping[str, Any], *, add_default: bool) -> None:
        self.registry = CollectorRegistry()
        if add_default:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        labels = {k: str(execution.get(k, "")) for k in LABELS}
        info = Gauge(
            f"teraslice_job_{role}_info",
            f"{role} of a teraslice-k8s execution",
            [*LABELS, "version"],
            registry=self.registry,
        )
        info.labels(**labels, version=__version__).set(1)
        self.slices_processed = Counter(
            "teraslice_job_slices_processed",
            "slices finished (completed or failed)",
            LABELS,
            registry=self.registry,
        ).labels(**labels)
        self.slices_failed = Counter(
            "teraslice_job_slices_failed", "slices that failed", LABELS, registry=self.registry
        ).labels(**labels)
        self.records_processed = Counter(
            "teraslice_job_records_processed", "records read by the reader", LABELS, registry=self.registry
        ).labels(**labels)
        self._server: Any = None

    def serve(self, port: int, addr: str = "0.0.0.0") -> None:
        self._server, _thread = start_http_server(port, addr=addr, registry=self.registry)

    def close(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def slice_done(self, records: int, failed: bool) -> None:
        self.slices_processed.inc()
        if failed:
            self.slices_failed.inc()
        else:
            self.records_processed.inc(records)


def start_metrics(role: str, execution: Mapping[str, Any], settings: RuntimeSettings) -> JobMetrics | None:
    """Serve ``/metrics`` if enabled; a port already in use is logged, not fatal (several local
    processes share one machine)."""
    if not settings.prom_metrics_enabled:
        return None
    metrics = JobMetrics(role, execution, add_default=settings.prom_metrics_add_default)
    try:
        metrics.serve(settings.prom_metrics_port)
    except OSError as exc:
        log.warning("metrics port %d unavailable: %s", settings.prom_metrics_port, exc)
    return metrics
