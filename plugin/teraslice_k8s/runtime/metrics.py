"""Prometheus ``/metrics`` of execution controllers and workers (Teraslice's ``teraslice_job_``
prefix), served on ``prom_metrics_port`` when ``prom_metrics_enabled`` (the job's values
override terafoundation's). With ``prom_metrics_add_default`` the process, platform and GC
collectors are included. Each process gets its own registry (no global state).

Operations reach their process's metrics through ``OpContext.metrics`` (a :class:`JobMetrics`,
or None when metrics are disabled), as Teraslice's reach ``context.apis.foundation.promMetrics``:
:meth:`JobMetrics.add_counter` registers a counter named with the process's prefix and
:attr:`JobMetrics.default_labels` gives the labels every series of the process carries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
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
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from teraslice_k8s import __version__
from teraslice_k8s.runtime.settings import RuntimeSettings

log = logging.getLogger(__name__)
LABELS = ("ex_id", "job_id", "name")
#: The name prefix of every metric of an execution controller or worker (Teraslice's).
PREFIX = "teraslice_job_"


class ScrapeCounter(Collector):
    """A counter an operation adds to with :meth:`inc`, directly or from its ``collect``
    callback, which runs at every scrape before the values are read (prom-client's
    ``collect``: pending counts kept elsewhere are added then). Exposed as
    ``<name>_total`` with one series per distinct label set; thread-safe (scrapes run on the
    metrics server's thread)."""

    def __init__(
        self,
        name: str,
        documentation: str,
        label_names: Sequence[str],
        collect: Callable[[ScrapeCounter], None] | None = None,
    ) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.label_names = tuple(label_names)
        self._collect = collect
        self._values: dict[tuple[str, ...], float] = {}
        self._lock = threading.Lock()

    def inc(self, labels: Mapping[str, Any], value: float = 1.0) -> None:
        """Add ``value`` (>= 0) to the series of ``labels`` (values shown with ``str``; a label
        left out is empty). A label the counter does not declare is a ValueError."""
        unknown = set(labels) - set(self.label_names)
        if unknown:
            raise ValueError(f"{self.name}: unknown label(s) {', '.join(sorted(unknown))}")
        if value < 0:
            raise ValueError(f"{self.name}: a counter only goes up (inc by {value})")
        key = tuple(str(labels.get(n, "")) for n in self.label_names)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + value

    def describe(self) -> list[Metric]:
        return [CounterMetricFamily(self.name, self.documentation, labels=self.label_names)]

    def collect(self) -> Iterator[Metric]:
        if self._collect is not None:
            try:
                self._collect(self)
            except Exception:  # a broken callback must not break the whole scrape
                log.exception("collecting %s failed", self.name)
        family = CounterMetricFamily(self.name, self.documentation, labels=self.label_names)
        with self._lock:
            series = list(self._values.items())
        for key, value in series:
            family.add_metric(list(key), value)
        yield family


class JobMetrics:
    """``teraslice_job_<role>_info``, ``teraslice_job_slices_processed``,
    ``teraslice_job_slices_failed`` and ``teraslice_job_records_processed`` (extension)."""

    def __init__(self, role: str, execution: Mapping[str, Any], *, add_default: bool) -> None:
        self.registry = CollectorRegistry()
        if add_default:
            for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
                self.registry.register(collector)
        labels = {k: str(execution.get(k, "")) for k in LABELS}
        self._default_labels = labels
        self._added: dict[str, ScrapeCounter] = {}
        info = Gauge(
            f"{PREFIX}{role}_info",
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

    @property
    def prefix(self) -> str:
        """The prefix :meth:`add_counter` puts before a name (``teraslice_job_``)."""
        return PREFIX

    @property
    def default_labels(self) -> dict[str, str]:
        """The labels (name -> value) every series of this process carries: ``ex_id``,
        ``job_id`` and ``name`` (the job's name); a copy."""
        return dict(self._default_labels)

    def has_metric(self, name: str) -> bool:
        """Whether :meth:`add_counter` already registered ``name`` (without the prefix)."""
        return name.removesuffix("_total") in self._added

    def add_counter(
        self,
        name: str,
        documentation: str,
        label_names: Sequence[str],
        collect: Callable[[ScrapeCounter], None] | None = None,
    ) -> ScrapeCounter:
        """Register the counter ``<prefix><name>`` (exposed as ``<prefix><name>_total``; a
        ``_total`` at the end of ``name`` is not doubled) in this process's registry and
        return it. Adding a name twice returns the first counter unchanged, as
        terafoundation's ``addCounter`` keeps the first (two operations of a job may both
        add theirs). ``collect`` runs at each scrape (see :class:`ScrapeCounter`)."""
        key = name.removesuffix("_total")
        found = self._added.get(key)
        if found is not None:
            return found
        counter = ScrapeCounter(PREFIX + key, documentation, label_names, collect)
        self.registry.register(counter)
        self._added[key] = counter
        return counter

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
