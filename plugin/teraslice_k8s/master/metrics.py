"""``GET /metrics`` of the master (root only, :func:`install_metrics_route`): Prometheus gauges
read from the store at scrape time.

Exposed: ``teraslice_master_info`` (cluster name, clustering type, version),
``teraslice_master_executions{status}`` (living executions per status),
``teraslice_master_jobs`` (jobs not deleted) and ``teraslice_master_allocation_queue``
(executions waiting for the allocator), and with a backend that counts them (Kubernetes),
``teraslice_master_kubernetes_api_requests_total{verb,resource}``. A private registry keeps
the output to these series plus the process collector; nothing is cached, so a scrape always
reflects the store.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily, Metric
from prometheus_client.registry import Collector

from teraslice_k8s import TERASLICE_COMPAT_VERSION
from teraslice_k8s.master.service_calls import call
from teraslice_k8s.models.execution import LIVING_STATUSES
from teraslice_k8s.store.base import ExFilter, JobFilter

if TYPE_CHECKING:
    from teraslice_k8s.master.service import MasterService


class _MasterCollector(Collector):
    def __init__(self, service: MasterService) -> None:
        self._service = service

    def collect(self) -> Iterator[Metric]:
        service = self._service
        info = InfoMetricFamily("teraslice_master", "Teraslice master")
        info.add_metric(
            [],
            {
                "name": service.settings.name,
                "clustering_type": service.backend.clustering_type,
                "teraslice_version": TERASLICE_COMPAT_VERSION,
            },
        )
        yield info
        executions = GaugeMetricFamily(
            "teraslice_master_executions", "Living executions by status", labels=["status"]
        )
        for status in sorted(LIVING_STATUSES):
            executions.add_metric([status], service.store.count_executions(ExFilter(statuses=(status,))))
        yield executions
        yield GaugeMetricFamily(
            "teraslice_master_jobs", "Jobs not deleted", value=service.store.count_jobs(JobFilter())
        )
        yield GaugeMetricFamily(
            "teraslice_master_allocation_queue",
            "Executions waiting to be allocated",
            value=len(service.allocator.queued()),
        )
        api_calls = getattr(service.backend, "api_calls", None)
        if callable(api_calls):
            requests = CounterMetricFamily(
                "teraslice_master_kubernetes_api_requests",
                "Kubernetes API requests sent by the master (every attempt)",
                labels=["verb", "resource"],
            )
            for (verb, resource), count in sorted(api_calls().items()):
                requests.add_metric([verb, resource], count)
            yield requests


def metrics_response(service: MasterService) -> Response:
    """Render the master's metrics in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_MasterCollector(service))
    ProcessCollector(registry=registry)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)


def install_metrics_route(app: FastAPI, service: MasterService) -> None:
    """Add ``GET /metrics`` to ``app`` itself (root only, as in Teraslice)."""

    @app.get("/metrics", summary="Prometheus metrics of the master")
    async def metrics() -> Response:
        response: Response = await call(metrics_response, service)
        return response
