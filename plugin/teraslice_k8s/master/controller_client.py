"""HTTP client from the master to one execution controller (EC) on ``slicer_hostname:slicer_port``.

The EC interface (shared with the runtime): ``GET /analytics`` -> ControllerStats,
``POST /pause`` -> ``{"status":"paused"}``, ``POST /resume`` -> ``{"status":"running"}``,
``POST /loglevel?level=<l>`` -> ``{"level":"<l>"}``. Every failure (connection refused, DNS,
timeout, non-2xx, bad JSON) raises :class:`ControllerUnavailable`, which the master turns
into Teraslice's "not available" errors.

Routes: the direct URL first. When it cannot be connected to at all (DNS failure, connection
refused, connect timeout: the request never reached an EC, so even a ``POST`` is safe to send
again) and a backend was given, the same request goes through
:meth:`~teraslice_k8s.backend.base.Backend.call_controller` instead (Kubernetes: the API
server's service proxy, for a master running outside the cluster whose ``svc-...<namespace>``
names do not resolve). An EC that answered, even with an error status, is never asked again by
the other route. The route that worked is remembered per execution and address, so later calls
go straight to it; when the remembered backend route fails, the next call tries direct again.

:meth:`ControllerClient.analytics_all` asks many controllers at once (``/cluster/controllers``):
its direct requests go through :class:`~teraslice_k8s.master.controller_fanout.ControllerFanout`
(coroutines over kept connections, ~30x less CPU per call than httpx), with the same routes and
failures; a client given an httpx ``transport`` (tests, benchmarks answering through
``httpx.MockTransport``) sends every call through it instead.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any, Final

import httpx

from teraslice_k8s.backend.base import Backend, BackendError
from teraslice_k8s.errors import TerasliceError
from teraslice_k8s.master.controller_fanout import ControllerFanout, NotConnected, valid_host

log = logging.getLogger(__name__)

#: Executions whose route is remembered (oldest forgotten first; forgetting costs one retry).
ROUTES_REMEMBERED: Final = 4096

#: Failures that prove the request did not reach any EC (safe to send by another route).
_NOT_CONNECTED: Final = (httpx.ConnectError, httpx.ConnectTimeout)


class ControllerUnavailable(TerasliceError):
    """The execution controller could not be reached or refused the command."""


#: Runs a function over items, e.g. a thread pool's ``map`` (results in the items' order).
Mapper = Callable[[Callable[[Any], Any], Iterable[Any]], Iterator[Any]]


class Route(StrEnum):
    """How the master reached an execution's controller."""

    #: ``http://<slicer_hostname>:<slicer_port>``
    DIRECT = "direct"
    #: :meth:`Backend.call_controller` (the Kubernetes API server's service proxy)
    BACKEND = "backend"


def controller_url(execution: Mapping[str, Any]) -> str | None:
    """``http://<slicer_hostname>:<slicer_port>`` of an execution, or None before allocation."""
    host, port = execution.get("slicer_hostname"), execution.get("slicer_port")
    if not host or not port:
        return None
    return f"http://{host}:{port}"


def _address(execution: Mapping[str, Any]) -> tuple[str, int] | None:
    """(host, port) of an execution's controller for the fan-out; None before allocation or
    for an address it cannot send as is (the one-by-one call reports that)."""
    host, port = execution.get("slicer_hostname"), execution.get("slicer_port")
    if not isinstance(host, str) or not valid_host(host) or isinstance(port, bool):
        return None
    try:
        number = int(port)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return (host, number) if 0 < number < 65536 else None


class ControllerClient:
    """Thread-safe; one connection pool shared by every request of the master.

    ``backend``: the fallback route (see the module docstring); without it a controller that
    cannot be connected to is simply unavailable.
    """

    def __init__(
        self, *, transport: httpx.BaseTransport | None = None, backend: Backend | None = None
    ) -> None:
        self._http = httpx.Client(transport=transport, headers={"Accept": "application/json"})
        self._fanout = ControllerFanout() if transport is None else None
        self._backend = backend
        self._lock = threading.Lock()
        self._routes: OrderedDict[tuple[str, str], Route] = OrderedDict()

    def route(self, execution: Mapping[str, Any]) -> Route | None:
        """The route that last worked for this execution's controller (None: not tried yet)."""
        base = controller_url(execution)
        with self._lock:
            return self._routes.get((str(execution.get("ex_id")), base or ""))

    def _remember(self, key: tuple[str, str], route: Route | None) -> None:
        with self._lock:
            if route is None:
                self._routes.pop(key, None)
                return
            self._routes[key] = route
            self._routes.move_to_end(key)
            while len(self._routes) > ROUTES_REMEMBERED:
                self._routes.popitem(last=False)

    def _call(
        self, execution: Mapping[str, Any], method: str, path: str, timeout: float, **params: str
    ) -> dict[str, Any]:
        base = controller_url(execution)
        if base is None:
            raise ControllerUnavailable(f"execution {execution.get('ex_id')} has no controller address yet")
        key = (str(execution.get("ex_id")), base)
        if self._backend is not None and self.route(execution) is Route.BACKEND:
            return self._via_backend(self._backend, key, execution, (method, path, params), timeout)
        try:
            response = self._http.request(method, base + path, params=params or None, timeout=timeout)
        except _NOT_CONNECTED as err:
            if self._backend is None:
                raise ControllerUnavailable(f"{method} {base}{path} failed: {err}") from err
            log.debug("cannot connect to the controller of %s at %s (%s)", key[0], base, err)
            return self._via_backend(self._backend, key, execution, (method, path, params), timeout)
        except httpx.HTTPError as err:
            raise ControllerUnavailable(f"{method} {base}{path} failed: {err}") from err
        try:
            response.raise_for_status()
            body = response.json()
        except (httpx.HTTPError, ValueError) as err:
            raise ControllerUnavailable(f"{method} {base}{path} failed: {err}") from err
        if not isinstance(body, dict):
            raise ControllerUnavailable(
                f"{method} {base}{path} returned {type(body).__name__}, not an object"
            )
        self._remember(key, Route.DIRECT)
        return body

    def _via_backend(
        self,
        backend: Backend,
        key: tuple[str, str],
        execution: Mapping[str, Any],
        request: tuple[str, str, Mapping[str, str]],
        timeout: float,
    ) -> dict[str, Any]:
        method, path, params = request
        try:
            body = backend.call_controller(execution, method, path, params, timeout)
        except BackendError as err:
            self._remember(key, None)  # the next call tries the direct route again
            raise ControllerUnavailable(str(err)) from err
        if self.route(execution) is not Route.BACKEND:
            log.info(
                "the controller of %s is reached through the backend (%s); %s does not connect",
                key[0],
                type(backend).__name__,
                key[1],
            )
        self._remember(key, Route.BACKEND)
        return body

    def analytics(self, execution: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return self._call(execution, "GET", "/analytics", timeout)

    def pause(self, execution: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return self._call(execution, "POST", "/pause", timeout)

    def resume(self, execution: Mapping[str, Any], timeout: float) -> dict[str, Any]:
        return self._call(execution, "POST", "/resume", timeout)

    def set_log_level(self, execution: Mapping[str, Any], level: str, timeout: float) -> dict[str, Any]:
        return self._call(execution, "POST", "/loglevel", timeout, level=level)

    def analytics_all(
        self, executions: Sequence[Mapping[str, Any]], timeout: float, each: Mapper = map
    ) -> list[dict[str, Any] | ControllerUnavailable]:
        """:meth:`analytics` of every execution, asked at once; each answer or failure in the
        executions' order. ``each`` runs the calls that go one by one (the backend route, or every
        call when a transport was given) and may run them in parallel (a thread pool's ``map``)."""
        results: list[dict[str, Any] | ControllerUnavailable | None] = [None] * len(executions)
        one_by_one: list[int] = []  # indexes of the executions whose call goes through `each`
        direct: list[tuple[int, tuple[str, int]]] = []
        for i, execution in enumerate(executions):
            address = None if self._fanout is None else _address(execution)
            if address is None or (self._backend is not None and self.route(execution) is Route.BACKEND):
                one_by_one.append(i)
            else:
                direct.append((i, address))
        fallback: list[int] = []  # reached no controller directly: through the backend
        if self._fanout is not None and direct:
            answers = self._fanout.get_all([address for _, address in direct], "/analytics", timeout)
            for (i, _), answer in zip(direct, answers, strict=True):
                key = (str(executions[i].get("ex_id")), controller_url(executions[i]) or "")
                if isinstance(answer, dict):
                    self._remember(key, Route.DIRECT)
                    results[i] = answer
                elif isinstance(answer, NotConnected) and self._backend is not None:
                    log.debug("cannot connect to the controller of %s at %s (%s)", key[0], key[1], answer)
                    fallback.append(i)
                else:
                    results[i] = ControllerUnavailable(str(answer))

        def call(i: int) -> dict[str, Any] | ControllerUnavailable:
            execution = executions[i]
            try:
                if i in fallback and self._backend is not None:
                    key = (str(execution.get("ex_id")), controller_url(execution) or "")
                    request: tuple[str, str, Mapping[str, str]] = ("GET", "/analytics", {})
                    return self._via_backend(self._backend, key, execution, request, timeout)
                return self.analytics(execution, timeout)
            except ControllerUnavailable as err:
                return err

        later = sorted(one_by_one + fallback)
        for i, result in zip(later, each(call, later), strict=True):
            results[i] = result
        return [r if r is not None else ControllerUnavailable("not asked") for r in results]

    def close(self) -> None:
        self._http.close()
        if self._fanout is not None:
            self._fanout.close()
