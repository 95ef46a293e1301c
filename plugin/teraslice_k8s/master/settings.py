"""The few cluster settings the master's own logic reads, taken from the typed config.

Durations are integer milliseconds: the config model has already parsed Teraslice's
``"<n> <unit>"`` strings. Defaults are Teraslice 3.18's (api-and-runtime.md §7.2).
"""

from __future__ import annotations

from dataclasses import dataclass

from teraslice_k8s.models.config import SysConfig


@dataclass(frozen=True)
class MasterSettings:
    """Cluster name, port and the timeouts of the master's lifecycle logic."""

    name: str = "teracluster"
    cluster_manager_type: str = "native"
    port: int = 5678
    #: Stuck-``stopping`` reaper age and period; bounded wait of a blocking stop.
    shutdown_timeout_ms: int = 60_000
    #: Timeout of a pause/resume/loglevel command to an execution controller.
    action_timeout_ms: int = 120_000
    network_latency_buffer_ms: int = 15_000
    #: How often a stop in progress re-checks that the execution's processes are gone.
    stop_poll_ms: int = 1_000
    #: Timeout of one ``/analytics`` call when listing controllers.
    analytics_timeout_ms: int = 2_000
    #: How long after allocation an execution's controller may wait to run (and its workers
    #: to be scheduled) before the master fails it (:mod:`~teraslice_k8s.master.pending`).
    slicer_timeout_ms: int = 180_000
    #: ``api_payload_limit`` in bytes: larger request bodies are answered 413 unread.
    payload_limit_bytes: int = 100 * 1024 * 1024

    @classmethod
    def from_config(cls, config: SysConfig) -> MasterSettings:
        ts = config.teraslice
        return cls(
            name=ts.name,
            cluster_manager_type=ts.cluster_manager_type,
            port=ts.port,
            shutdown_timeout_ms=ts.shutdown_timeout,
            action_timeout_ms=ts.action_timeout,
            network_latency_buffer_ms=ts.network_latency_buffer,
            slicer_timeout_ms=ts.slicer_timeout,
            payload_limit_bytes=ts.payload_limit_bytes,
        )

    @property
    def command_timeout_s(self) -> float:
        """Teraslice waits ``action_timeout + network_latency_buffer`` for an EC's reply."""
        return (self.action_timeout_ms + self.network_latency_buffer_ms) / 1000
