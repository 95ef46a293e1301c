"""Container resources by Teraslice's precedence, and the rules they rest on.

- :func:`worker_resources`: per resource (cpu, memory), the job's new-style
  ``resources_requests_<name>``/``resources_limits_<name>`` win; else the job's old ``<name>``,
  else the cluster's, as both request and limit. A map that would be empty is omitted
  (Teraslice leaves an empty one).
- :func:`controller_resources`: ``cpu_execution_controller``/``memory_execution_controller`` of
  the job, else of the cluster, else 0.5 CPU / 512000000 bytes (Teraslice falls back to ``-1``;
  docs/compatibility.md); request and limit are the same.
- Both also return the memory limit in effect, from which :func:`max_old_space` derives
  ``NODE_OPTIONS=--max-old-space-size`` (90% of it in MiB, JS-rounded).
- :func:`truthy` is JavaScript's truthiness, which Teraslice's ``a || b`` precedence uses:
  ``0``, ``""``, ``null``, ``false`` and NaN count as unset (the pod context uses it too).

Amounts are written as ``JSON.stringify`` prints them (``2`` not ``2.0``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from teraslice_k8s.kubernetes.jsontext import js_number
from teraslice_k8s.models.config import (
    DEFAULT_CPU_EXECUTION_CONTROLLER,
    DEFAULT_MEMORY_EXECUTION_CONTROLLER,
    TerasliceConfig,
)


def truthy(value: Any) -> bool:
    """JavaScript truthiness for JSON values (``0``, ``""``, ``null``, ``false``, NaN are unset)."""
    # Exact-type fast paths first: this runs ~20 times per manifest.
    kind = type(value)
    if kind is str or kind is int:  # exact types: Python's truthiness is JavaScript's here
        return bool(value)
    if value is None or value is False:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return value not in (0, "")


def max_old_space(memory: int | float) -> int:
    """Teraslice's ``getMaxOldSpace``: 90% of the memory in MiB, JS-rounded."""
    return math.floor(0.9 * (memory / 1024 / 1024) + 0.5)


def _amount(value: Any) -> Any:
    """A resource amount as ``JSON.stringify`` prints it (an int, the common case, unchanged)."""
    return value if type(value) is int else js_number(value)


def worker_resources(ex: Mapping[str, Any], ts: TerasliceConfig) -> tuple[dict[str, Any], Any]:
    """A worker's ``resources`` (possibly ``{}``) and the memory limit in effect (or ``None``)."""
    requests: dict[str, Any] = {}
    limits: dict[str, Any] = {}
    _worker_resource(ex, "cpu", ts.cpu, requests, limits)
    max_memory = _worker_resource(ex, "memory", ts.memory, requests, limits)
    resources: dict[str, Any] = {}
    if requests:  # Teraslice leaves an empty map here; we omit it
        resources["requests"] = requests
    if limits:
        resources["limits"] = limits
    return resources, max_memory


_NEW_METHOD_KEYS: dict[str, tuple[str, str]] = {
    name: (f"resources_requests_{name}", f"resources_limits_{name}") for name in ("cpu", "memory")
}


def _worker_resource(
    ex: Mapping[str, Any], name: str, cluster_value: Any, requests: dict[str, Any], limits: dict[str, Any]
) -> Any:
    """Set ``requests[name]``/``limits[name]`` by Teraslice's precedence; the limit in effect.

    The new method (``resources_requests_<name>``/``resources_limits_<name>``) wins; else the
    old ``<name>`` of the job, else of the cluster, as both request and limit. The returned
    limit (``None`` when unset) is what ``NODE_OPTIONS`` is derived from for memory.
    """
    request_key, limit_key = _NEW_METHOD_KEYS[name]
    request, limit = ex.get(request_key), ex.get(limit_key)
    request_set, limit_set = truthy(request), truthy(limit)
    if request_set or limit_set:
        if request_set:
            requests[name] = _amount(request)
        if limit_set:
            limits[name] = _amount(limit)
        return limit
    value = ex.get(name)
    value = value if truthy(value) else cluster_value
    if not truthy(value):
        return None
    requests[name] = limits[name] = _amount(value)
    return value


def controller_resources(ex: Mapping[str, Any], ts: TerasliceConfig) -> tuple[dict[str, Any], Any]:
    """The execution controller's ``resources`` (never empty) and its memory limit."""
    # Teraslice: `job || config || -1`; we fall back to the documented defaults instead of -1.
    cpu = ex.get("cpu_execution_controller")
    if not truthy(cpu):
        cpu = ts.cpu_execution_controller
        cpu = cpu if truthy(cpu) else DEFAULT_CPU_EXECUTION_CONTROLLER
    memory = ex.get("memory_execution_controller")
    if not truthy(memory):
        memory = ts.memory_execution_controller
        memory = memory if truthy(memory) else DEFAULT_MEMORY_EXECUTION_CONTROLLER
    amounts = {"cpu": _amount(cpu), "memory": _amount(memory)}
    return {"requests": amounts, "limits": dict(amounts)}, memory
