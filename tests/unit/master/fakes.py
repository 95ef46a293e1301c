"""A recording Backend and a fake execution-controller transport for the master's tests.

:class:`RecordingBackend` implements the Backend protocol: it records every call with its
arguments (``calls``), keeps the set of ex_ids that "have objects" (``live``), and emits
:class:`BackendEvent`s only when a test calls :meth:`RecordingBackend.emit`. Its controller
route (``call_controller``) answers from ``controller_replies`` (ex_id -> path -> JSON object) and
fails like an unreachable controller for anything else.
:class:`FakeControllers` answers the EC HTTP interface (``/analytics``, ``/pause``,
``/resume``, ``/loglevel``) for the controllers a test registers, through
``httpx.MockTransport``; unknown hosts fail like an unreachable controller.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from anyio.from_thread import start_blocking_portal

from teraslice_k8s.backend.base import (
    BackendError,
    BackendEvent,
    ControllerAddress,
    EventKind,
    EventListener,
    ScaleAction,
)


class RecordingBackend:
    clustering_type = "kubernetesV2"

    def __init__(self, *, stop_removes: bool = True, executions_survive_master: bool = True) -> None:
        self.executions_survive_master = executions_survive_master
        self.calls: list[tuple[Any, ...]] = []
        self.live: set[str] = set()
        self.replicas: dict[str, int] = {}
        self.listener: EventListener | None = None
        #: method name -> exception raised by the next call of it
        self.fail: dict[str, Exception] = {}
        self.stop_removes = stop_removes
        self.state: dict[str, Any] = {}
        #: ex_id -> EC path -> the JSON object ``call_controller`` answers
        self.controller_replies: dict[str, dict[str, dict[str, Any]]] = {}
        self.closed = False
        self._lock = threading.Lock()

    def _record(self, *call: Any) -> None:
        with self._lock:
            self.calls.append(call)
        error = self.fail.pop(call[0], None)
        if error is not None:
            raise error

    def names(self) -> list[str]:
        return [c[0] for c in self.calls]

    def calls_of(self, name: str) -> list[tuple[Any, ...]]:
        return [c for c in self.calls if c[0] == name]

    # -- Backend protocol --

    def start(self, listener: EventListener) -> None:
        self.listener = listener
        self._record("start")

    def allocate_controller(self, execution: Mapping[str, Any]) -> ControllerAddress:
        self._record("allocate_controller", execution["ex_id"], dict(execution))
        self.live.add(execution["ex_id"])
        return ControllerAddress(f"svc-{execution['ex_id'][:8]}.default")

    def allocate_workers(self, execution: Mapping[str, Any]) -> None:
        self._record("allocate_workers", execution["ex_id"], dict(execution))
        self.replicas[execution["ex_id"]] = execution["workers"]

    def stop_execution(self, ex_id: str, *, force: bool = False) -> None:
        self._record("stop_execution", ex_id, force)
        if self.stop_removes:
            self.live.discard(ex_id)

    def scale_workers(self, ex_id: str, action: ScaleAction, count: int) -> int:
        self._record("scale_workers", ex_id, action, count)
        if ex_id not in self.replicas:
            raise BackendError(f"no worker deployment for execution {ex_id}")
        current = self.replicas[ex_id]
        new = {"add": current + count, "remove": current - count, "set": count}[action]
        self.replicas[ex_id] = max(new, 0)
        return self.replicas[ex_id]

    def execution_ids(self) -> set[str]:
        return set(self.live)

    def cluster_state(self) -> dict[str, Any]:
        return self.state

    def call_controller(
        self,
        execution: Mapping[str, Any],
        method: str,
        path: str,
        params: Mapping[str, str],
        timeout: float,
    ) -> dict[str, Any]:
        ex_id = execution["ex_id"]
        self._record("call_controller", ex_id, method, path, dict(params))
        reply = self.controller_replies.get(ex_id, {}).get(path)
        if reply is None:
            raise BackendError(f"no route to the controller of execution {ex_id}")
        return reply

    def close(self) -> None:
        self.closed = True

    # -- test controls --

    def emit(self, ex_id: str, kind: EventKind, reason: str = "") -> None:
        assert self.listener is not None, "the master did not start the backend"
        self.listener(BackendEvent(ex_id, kind, reason))


def analytics_for(ex_id: str, job_id: str, name: str, **overrides: Any) -> dict[str, Any]:
    """A ControllerStats object as an EC's ``/analytics`` returns it."""
    stats: dict[str, Any] = {
        "ex_id": ex_id,
        "job_id": job_id,
        "name": name,
        "workers_available": 0,
        "workers_active": 2,
        "workers_joined": 2,
        "workers_reconnected": 0,
        "workers_disconnected": 0,
        "job_duration": 5,
        "failed": 1,
        "subslices": 0,
        "queued": 3,
        "slice_range_expansion": 0,
        "processed": 40,
        "slicers": 1,
        "subslice_by_key": 0,
        "started": "2024-05-01T12:00:00.000Z",
    }
    stats.update(overrides)
    return stats


class FakeControllers:
    """EC endpoints by host (``slicer_hostname``); records ``(method, host, path, query)``."""

    def __init__(self) -> None:
        self.analytics: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, str, str]] = []
        #: called with each request before it is answered (to simulate races)
        self.on_request: Callable[[httpx.Request], None] | None = None

    def handler(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.requests.append((request.method, host, request.url.path, request.url.query.decode()))
        if self.on_request is not None:
            self.on_request(request)
        if host not in self.analytics:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        if request.method == "GET" and path == "/analytics":
            return httpx.Response(200, json=self.analytics[host])
        if request.method == "POST" and path == "/pause":
            return httpx.Response(200, json={"status": "paused"})
        if request.method == "POST" and path == "/resume":
            return httpx.Response(200, json={"status": "running"})
        if request.method == "POST" and path == "/loglevel":
            return httpx.Response(200, json={"level": request.url.params["level"]})
        return httpx.Response(404, json={"error": 404})

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handler)


WAIT = 10.0


def job_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "name": "generator",
        "lifecycle": "once",
        "workers": 2,
        "operations": [{"_op": "data_generator", "size": 100}, {"_op": "noop"}],
    }
    spec.update(overrides)
    return spec


def settle(service: Any) -> None:
    """Wait (bounded) until the allocator and the lifecycle have nothing left to do."""
    assert service.allocator.wait_idle(WAIT), "allocator did not finish"
    assert service.lifecycle.wait_idle(WAIT), "lifecycle did not finish"


class ApiClient:
    """A synchronous HTTP client calling an ASGI app in-process (httpx's ASGITransport on an
    anyio portal), for tests that drive the API without a server."""

    def __init__(self, app: Any, base_url: str = "http://master") -> None:
        self._portal_cm = start_blocking_portal()
        self._portal = self._portal_cm.__enter__()
        self._client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=base_url)

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        response: httpx.Response = self._portal.call(
            functools.partial(self._client.request, method, url, **kwargs)
        )
        return response

    def get(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)

    def close(self) -> None:
        self._portal.call(self._client.aclose)
        self._portal_cm.__exit__(None, None, None)
