"""What the execution controller and workers read from the cluster config and the execution.

All durations are milliseconds in the config model (already parsed from Teraslice's
``"<n> <unit>"`` strings); here they are seconds (floats) because asyncio speaks seconds.
Prometheus settings: a job value overrides terafoundation's.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.models.job_fields import SLICER_PORT

#: Env overriding the port the execution controller listens on (local runs pick a free port).
SLICER_PORT_ENV = "TERASLICE_SLICER_PORT"


@dataclass(frozen=True, slots=True)
class RuntimeSettings:
    cluster_name: str = "teracluster"
    hostname: str = "127.0.0.1"
    shutdown_timeout: float = 60.0
    slicer_timeout: float = 180.0
    worker_disconnect_timeout: float = 300.0
    action_timeout: float = 120.0
    network_latency_buffer: float = 15.0
    analytics_rate: float = 60.0
    connectors: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    prom_metrics_enabled: bool = False
    prom_metrics_port: int = 3333
    prom_metrics_add_default: bool = True
    log_level: str = "info"

    @classmethod
    def from_config(cls, config: SysConfig, execution: Mapping[str, Any] | None = None) -> RuntimeSettings:
        ts, tf = config.teraslice, config.terafoundation
        ex = execution or {}
        connectors = {
            kind: {name: conn.model_dump(exclude_none=True) for name, conn in conns.items()}
            for kind, conns in tf.connectors.items()
        }
        log_level = ex.get("log_level") or (tf.log_level if isinstance(tf.log_level, str) else "info")
        return cls(
            cluster_name=ts.name,
            hostname=os.environ.get("POD_IP") or ts.hostname,
            shutdown_timeout=ts.shutdown_timeout / 1000,
            slicer_timeout=ts.slicer_timeout / 1000,
            worker_disconnect_timeout=ts.worker_disconnect_timeout / 1000,
            action_timeout=ts.action_timeout / 1000,
            network_latency_buffer=ts.network_latency_buffer / 1000,
            analytics_rate=ts.analytics_rate / 1000,
            connectors=connectors,
            prom_metrics_enabled=bool(_pick(ex, "prom_metrics_enabled", tf.prom_metrics_enabled)),
            prom_metrics_port=int(_pick(ex, "prom_metrics_port", tf.prom_metrics_port)),
            prom_metrics_add_default=bool(_pick(ex, "prom_metrics_add_default", tf.prom_metrics_add_default)),
            log_level=str(log_level),
        )


def keepalive(settings: RuntimeSettings) -> tuple[float, float]:
    """(ping interval, ping timeout) of the worker websocket, as Teraslice's socket.io
    (interval ``action_timeout + network_latency_buffer``, timeout ``action_timeout``): long
    enough that a worker busy with a CPU-heavy slice is not taken for dead."""
    return settings.action_timeout + settings.network_latency_buffer, settings.action_timeout


def _pick(ex: Mapping[str, Any], key: str, default: Any) -> Any:
    value = ex.get(key)
    return default if value is None else value


def slicer_port(execution: Mapping[str, Any]) -> int:
    """The port the controller serves on: env override, else the record's, else 45680."""
    env = os.environ.get(SLICER_PORT_ENV)
    if env:
        return int(env)
    return int(execution.get("slicer_port") or SLICER_PORT)


def decode_execution(environ: Mapping[str, str]) -> dict[str, Any]:
    """The execution record from ``EX`` (base64 JSON) or, like Teraslice, raw JSON in ``job``."""
    raw = environ.get("EX")
    try:
        if raw:
            text = base64.b64decode(raw, validate=True).decode("utf-8")
            record = json.loads(text)
        elif environ.get("job"):
            record = json.loads(environ["job"])
        else:
            raise ValidationError([Problem("EX", "is not set (base64 JSON of the execution record)")])
    except (binascii.Error, UnicodeDecodeError, json.JSONDecodeError) as exc:
        name = "EX" if raw else "job"
        raise ValidationError([Problem(name, f"is not valid base64 JSON: {exc}")]) from None
    if not isinstance(record, dict):
        raise ValidationError([Problem("EX", "must hold a JSON object")])
    for key in ("ex_id", "job_id", "operations"):
        if key not in record:
            raise ValidationError([Problem(f"EX.{key}", "is required")])
    return record


def encode_execution(record: Mapping[str, Any]) -> str:
    return base64.b64encode(json.dumps(record, separators=(",", ":")).encode()).decode()
