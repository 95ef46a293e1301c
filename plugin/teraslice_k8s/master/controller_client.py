"""HTTP client from the master to one execution controller (EC) on ``slicer_hostname:slicer_port``.

The EC interface (shared with the runtime): ``GET /analytics`` -> ControllerStats,
``POST /pause`` -> ``{"status":"paused"}``, ``POST /resume`` -> ``{"status":"running"}``,
``POST /loglevel?level=<l>`` -> ``{"level":"<l>"}``. Every failure (connection refused, DNS,
timeout, non-2xx, bad JSON) raises :class:`ControllerUnavailable`, which the master turns
into Teraslice's "not available" errors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx

from teraslice_k8s.errors import TerasliceError


class ControllerUnavailable(TerasliceError):
    """The execution controller could not be reached or refused the command."""


def controller_url(execution: Mapping[str, Any]) -> str | None:
    """``http://<slicer_hostname>:<slicer_port>`` of an execution, or None before allocation."""
    host, port = execution.get("slicer_hostname"), execution.get("slicer_port")
    if not host or not port:
        return None
    return f"http://{host}:{port}"


class ControllerClient:
    """Thread-safe; one connection pool shared by every request of the master."""

    def __init__(self, *, transport: httpx.BaseTransport | None = None) -> None:
        self._http = httpx.Client(transport=transport, headers={"Accept": "application/json"})

    def _call(
        self, execution: Mapping[str, Any], method: str, path: str, timeout: float, **params: str
    ) -> dict[str, Any]:
        base = controller_url(execution)
        if base is None:
            raise ControllerUnavailable(f"execution {execution.get('ex_id')} has no controller address yet")
        try:
            response = self._http.request(method, base + path, params=params or None, timeout=timeout)
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as err:
            raise ControllerUnavailable(f"{method} {base}{path} failed: {err}") from err
        if not isinstance(body, dict):
            raise ControllerUnavailable(
                f"{method} {base}{path} returned {type(body).__name__}, not an object"
            )
        return body

    def analytics(self, execution: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return self._call(execution, "GET", "/analytics", timeout)

    def pause(self, execution: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return self._call(execution, "POST", "/pause", timeout)

    def resume(self, execution: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return self._call(execution, "POST", "/resume", timeout)

    def set_log_level(self, execution: Mapping[str, Any], level: str, timeout: float) -> dict[str, Any]:
        return self._call(execution, "POST", "/loglevel", timeout, level=level)

    def close(self) -> None:
        self._http.close()
