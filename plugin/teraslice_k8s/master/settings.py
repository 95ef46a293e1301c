"""The few cluster settings the master's own logic reads, taken from the loaded config.

The config may be the raw ``teraslice.yaml`` mapping or the typed config model (objects with
attributes); durations may be integer milliseconds or Teraslice's ``"<n> <unit>"`` strings.
Defaults are Teraslice 3.18's (api-and-runtime.md §7.2).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from teraslice_k8s.errors import Problem, ValidationError

_UNITS_MS = {
    "ms": 1,
    "millisecond": 1,
    "second": 1000,
    "sec": 1000,
    "s": 1000,
    "minute": 60_000,
    "min": 60_000,
    "m": 60_000,
    "hour": 3_600_000,
    "h": 3_600_000,
    "day": 86_400_000,
    "d": 86_400_000,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-z]+)\s*$")


def duration_ms(value: Any, path: str) -> int:
    """``60000`` / ``"1 minute"`` / ``"30 seconds"`` -> milliseconds; anything else is a ValidationError."""
    if isinstance(value, bool):
        raise ValidationError([Problem(path, "must be a duration")])
    if isinstance(value, int | float):
        return int(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return int(text)
        match = _DURATION.match(text)
        if match:
            unit = match.group(2)
            unit = unit if unit in _UNITS_MS else unit.removesuffix("s")
            if unit in _UNITS_MS:
                return int(float(match.group(1)) * _UNITS_MS[unit])
    raise ValidationError([Problem(path, f"must be a duration (ms or '<n> <unit>'), got {value!r}")])


def _section(config: Any, name: str) -> Any:
    if config is None:
        return {}
    if isinstance(config, dict):
        return config.get(name) or {}
    return getattr(config, name, None) or {}


def _value(section: Any, key: str, default: Any) -> Any:
    value = section.get(key) if isinstance(section, dict) else getattr(section, key, None)
    return default if value is None else value


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

    @classmethod
    def from_config(cls, config: Any) -> MasterSettings:
        ts = _section(config, "teraslice")
        return cls(
            name=str(_value(ts, "name", cls.name)),
            cluster_manager_type=str(_value(ts, "cluster_manager_type", cls.cluster_manager_type)),
            port=int(_value(ts, "port", cls.port)),
            shutdown_timeout_ms=duration_ms(
                _value(ts, "shutdown_timeout", cls.shutdown_timeout_ms), "teraslice.shutdown_timeout"
            ),
            action_timeout_ms=duration_ms(
                _value(ts, "action_timeout", cls.action_timeout_ms), "teraslice.action_timeout"
            ),
            network_latency_buffer_ms=duration_ms(
                _value(ts, "network_latency_buffer", cls.network_latency_buffer_ms),
                "teraslice.network_latency_buffer",
            ),
        )

    @property
    def command_timeout_s(self) -> float:
        """Teraslice waits ``action_timeout + network_latency_buffer`` for an EC's reply."""
        return (self.action_timeout_ms + self.network_latency_buffer_ms) / 1000
