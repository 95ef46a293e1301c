"""A Kubernetes API emulator over real HTTP for backend tests: kmock 0.8 plus a fidelity shim.

Plain ``kmock.KubernetesEmulator`` ignores label selectors, sets no server metadata, has no PUT,
never ends watches, and reports errors with its own reasons. :class:`TsK8sEmulator` closes those
gaps (see ../shared/reference/tooling.md §2); it relies on kmock 0.8 internals (hence the pin).

:class:`EmulatorThread` runs it on its own event loop in a background thread, so the synchronous
``kubernetes`` client (and whole master processes) can talk to ``.url``. Tests read the stored
objects (:meth:`EmulatorThread.objects`), the request log (method, path, query, body) and inject
faults (:meth:`EmulatorThread.fail`): the next N matching requests get a given status and body,
or hang until the client times out.

Service proxy: ``/api/v1/namespaces/{ns}/services/{name}:{port}/proxy/{path}`` is forwarded to the
local HTTP server a test registers for that Service (:meth:`EmulatorThread.proxy_service_to`),
passing its status and body through as the API server does; an unregistered Service answers 404
(no such Service) or 503 (it exists but has no endpoint), with the API server's messages.

Garbage collection: a DELETE whose propagation is not ``Orphan`` removes every object with an owner
reference to the deleted one, recursively and at once (no Terminating phase, unlike a real GC).

Remaining gaps (tests must not rely on them): no controllers (nothing creates pods or updates
status: inject them with :meth:`EmulatorThread.apply`), no validation, simplified patch semantics,
no watch bookmarks.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import copy
import datetime
import itertools
import json
import os
import re
import threading
import uuid
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp.web
import attrs
import kmock
from kmock._internal import aiobus, enums, rendering

#: How long a test waits for the emulator thread to come up or go down.
STARTUP_TIMEOUT = 10.0

#: Kinds of the list objects, for the resources the project touches (kmock sends none).
_LIST_KINDS = {
    "jobs": "JobList",
    "deployments": "DeploymentList",
    "replicasets": "ReplicaSetList",
    "services": "ServiceList",
    "pods": "PodList",
    "configmaps": "ConfigMapList",
    "namespaces": "NamespaceList",
}


# ---------------------------------------------------------------------------------- selectors

_TERM = re.compile(
    r"""^\s*(?:
        (?P<notexists>!\s*(?P<nkey>[^\s=!,()]+))
      | (?P<setkey>[^\s=!,()]+)\s+(?P<setop>in|notin)\s*\((?P<values>[^)]*)\)
      | (?P<eqkey>[^\s=!,()]+)\s*(?P<eqop>==|=|!=)\s*(?P<value>[^\s,()]*)
      | (?P<exists>[^\s=!,()]+)
    )\s*$""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class Requirement:
    """One term of a label selector."""

    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        match self.op:
            case "=":
                return present and value in self.values
            case "!=":
                return not present or value not in self.values
            case "in":
                return present and value in self.values
            case "notin":
                return not present or value not in self.values
            case "exists":
                return present
            case _:
                return not present


def parse_selector(text: str | None) -> list[Requirement]:
    """Parse a Kubernetes label selector (``=``, ``==``, ``!=``, ``in``, ``notin``, ``k``, ``!k``)."""
    if not text:
        return []
    terms: list[str] = []
    depth, start = 0, 0
    for i, char in enumerate(text):
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        elif char == "," and depth == 0:
            terms.append(text[start:i])
            start = i + 1
    terms.append(text[start:])
    requirements = []
    for term in terms:
        m = _TERM.match(term)
        if m is None:
            raise ValueError(f"unparsable label selector term {term!r}")
        if m["notexists"]:
            requirements.append(Requirement(m["nkey"], "!exists"))
        elif m["setkey"]:
            values = frozenset(v.strip() for v in m["values"].split(",") if v.strip())
            requirements.append(Requirement(m["setkey"], m["setop"], values))
        elif m["eqkey"]:
            op = "!=" if m["eqop"] == "!=" else "="
            requirements.append(Requirement(m["eqkey"], op, frozenset({m["value"]})))
        else:
            requirements.append(Requirement(m["exists"], "exists"))
    return requirements


def selects(requirements: list[Requirement], obj: Mapping[str, Any]) -> bool:
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


# ---------------------------------------------------------------------------------- faults & log


@dataclass
class Fault:
    """Answer the next ``times`` requests matching ``verb`` and ``path`` with ``status``/``body``.

    ``verb`` is an HTTP method or a Kubernetes action (``WATCH``, ``LIST``...), ``"*"`` for any;
    ``path`` a regular expression searched in the URL path. ``hang`` keeps the request open until
    the emulator stops (or :meth:`EmulatorThread.release`), so the client's timeout fires.
    """

    verb: str
    path: str
    status: int = 500
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    times: int = 1
    hang: bool = False
    served: int = 0

    def matches(self, request: rendering.Request) -> bool:
        if self.served >= self.times:
            return False
        verbs = {request.method.value.upper()}
        if request.action is not None:
            verbs.add(request.action.value.upper())
        if self.verb != "*" and self.verb.upper() not in verbs:
            return False
        return re.search(self.path, request.url.path) is not None

    def status_body(self) -> dict[str, Any]:
        if self.body is not None:
            return self.body
        reasons = {
            403: "Forbidden",
            404: "NotFound",
            409: "AlreadyExists",
            410: "Expired",
            422: "Invalid",
            429: "TooManyRequests",
            500: "InternalError",
            503: "ServiceUnavailable",
        }
        return {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "reason": reasons.get(self.status, "InternalError"),
            "message": f"injected fault {self.status}",
            "code": self.status,
        }


@dataclass(frozen=True)
class LoggedRequest:
    """What reached the emulator: method, path, query parameters and the parsed JSON body."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    content_type: str


# ---------------------------------------------------------------------------------- the shim

#: ``/api/v1/namespaces/{ns}/services/{name}[:{port}]/proxy[/{path}]`` (the API server's service proxy)
_SERVICE_PROXY = re.compile(
    r"^/api/v1/namespaces/(?P<namespace>[^/]+)/services/(?P<name>[^/:]+)(?::(?P<port>[^/]+))?"
    r"/proxy(?P<path>/.*)?$"
)


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _resource_key(resource: Any) -> str:
    """``batch/v1/jobs``, ``v1/pods`` for a kmock resource."""
    prefix = f"{resource.group}/" if resource.group else ""
    return f"{prefix}{resource.version}/{resource.plural}"


def _propagation(request: rendering.Request) -> str:
    """A DELETE's ``propagationPolicy`` (body or query; the API server's default otherwise)."""
    body = request.data if isinstance(request.data, dict) else {}
    return str(body.get("propagationPolicy") or request.params.get("propagationPolicy") or "Background")


def _status(code: int, reason: str, message: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "metadata": {},
        "status": "Failure",
        "reason": reason,
        "message": message,
        "code": code,
    }


#: Events kept per resource for watches that resume from a resourceVersion.
HISTORY_LIMIT = 10_000


@attrs.mutable(weakref_slot=True)
class RecordingBus(aiobus.Bus[Any]):
    """kmock's event bus, also keeping a history so a watch can resume from a resourceVersion.

    Every event gets the next resourceVersion as its sequence number; a DELETED event's object
    carries it too (the API server does the same). Subscribers receive ``(seq, event)``.
    """

    clock: Any = None
    history: list[tuple[int, dict[str, Any]]] = attrs.field(factory=list)
    last_seq: int = 0

    async def put(self, *items: Any) -> None:
        stamped = []
        for item in items:
            event = copy.deepcopy(item)
            seq = int(self.clock())
            if event.get("type") == "DELETED":
                event["object"].setdefault("metadata", {})["resourceVersion"] = str(seq)
            self.last_seq = seq
            self.history.append((seq, event))
            stamped.append((seq, event))
        del self.history[:-HISTORY_LIMIT]
        await super().put(*stamped)


@attrs.define(kw_only=True)
class TsK8sEmulator(kmock.KubernetesEmulator):
    """kmock's emulator with selectors, server metadata, PUT, ending watches, real Status reasons."""

    faults: list[Fault] = attrs.field(factory=list)
    log: list[LoggedRequest] = attrs.field(factory=list)
    #: (namespace, service, port) -> base URL the service proxy forwards to
    proxies: dict[tuple[str, str, str], str] = attrs.field(factory=dict)
    _rv: Any = attrs.field(factory=lambda: itertools.count(1))
    _release: asyncio.Event = attrs.field(factory=asyncio.Event)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._buses = collections.defaultdict(lambda: RecordingBus(clock=self.next_rv))
        # The kubernetes client asks for `/version/` (with the slash); kmock serves `/version`.
        self.fallback["get /version/"] << self._serve_server_version

    def next_rv(self) -> str:
        return str(next(self._rv))

    def stamp(self, body: dict[str, Any], namespace: str | None, *, created: bool) -> None:
        """Set what a real API server sets: uid, timestamps, generation, resourceVersion."""
        meta = body.setdefault("metadata", {})
        if created:
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("generation", 1)
            meta.setdefault("creationTimestamp", _now())
            if namespace:
                meta.setdefault("namespace", namespace)
        meta["resourceVersion"] = self.next_rv()

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        self.log.append(
            LoggedRequest(
                method=request.method.value.upper(),
                path=request.url.path,
                query=dict(request.params),
                body=copy.deepcopy(request.data),
                content_type=request.headers.get("Content-Type", ""),
            )
        )
        for fault in self.faults:
            if fault.matches(request):
                fault.served += 1
                if fault.hang:
                    await self._release.wait()
                return aiohttp.web.json_response(
                    fault.status_body(), status=fault.status, headers=fault.headers
                )

        proxied = _SERVICE_PROXY.match(request.url.path)
        if proxied is not None:
            return await self._serve_proxy(request, proxied)
        if request.resource is not None and request.method == enums.method.PUT and request.name:
            return await self._serve_put(request)
        if request.resource is not None:
            if request.action == enums.action.CREATE and isinstance(request.data, dict):
                self.stamp(request.data, request.namespace, created=True)
            elif request.action == enums.action.UPDATE:
                rv = self.next_rv()
                if isinstance(request.data, dict):
                    request.data.setdefault("metadata", {})["resourceVersion"] = rv
                elif isinstance(request.data, list):
                    request.data.append({"op": "add", "path": "/metadata/resourceVersion", "value": rv})
        owner_uid = self._uid_of(request) if request.action == enums.action.DELETE else None
        try:
            response = await super()._handle(request)
        except kmock.KubernetesError as e:
            raise self._with_reason(e, request) from e
        if owner_uid and _propagation(request) != "Orphan" and response.status < 300:
            await self._collect_dependents(owner_uid)
        return response

    def _uid_of(self, request: rendering.Request) -> str | None:
        """The uid of the object a request names, if it exists."""
        key = (request.resource, request.namespace, request.name)
        if key not in self._objects or self._objects[key].deleted:
            return None
        obj = self._objects[key]
        return str((obj.raw.get("metadata") or {}).get("uid") or "") or None

    async def _collect_dependents(self, owner_uid: str) -> None:
        """The garbage collector: every object with an owner reference to ``owner_uid`` is
        deleted (DELETED events), then its own dependents, as the real GC does for Background
        and Foreground propagation (synchronously here: no Terminating phase)."""
        pending = [owner_uid]
        while pending:
            uid = pending.pop()
            async with self._lock:
                dependents = [
                    (res, ns, name, str(obj.raw["metadata"].get("uid") or ""))
                    for (res, ns, name), obj in self._objects.items()
                    if not obj.deleted
                    and any(
                        ref.get("uid") == uid
                        for ref in (obj.raw.get("metadata") or {}).get("ownerReferences") or ()
                    )
                ]
            for res, ns, name, dependent_uid in dependents:
                if await self.remove_object(_resource_key(res), ns, name) and dependent_uid:
                    pending.append(dependent_uid)

    @staticmethod
    def _with_reason(error: kmock.KubernetesError, request: rendering.Request) -> kmock.KubernetesError:
        resource = request.resource
        plural = resource.plural if resource is not None else "resource"
        group = resource.group if resource is not None else ""
        qualified = f"{plural}.{group}" if group else str(plural)
        name = request.name or (request.data or {}).get("metadata", {}).get("name", "")
        details = {"name": name, "group": group, "kind": plural}
        if error.status == 409:
            return kmock.KubernetesError(
                409, "AlreadyExists", f'{qualified} "{name}" already exists', details
            )
        if error.status == 404:
            return kmock.KubernetesError(404, "NotFound", f'{qualified} "{name}" not found', details)
        return error

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            return aiohttp.web.json_response(
                {
                    "apiVersion": "v1",
                    "kind": "Status",
                    "metadata": {},
                    "status": "Failure",
                    "reason": exc.reason,
                    "message": exc.message,
                    "details": exc.details or {},
                    "code": exc.status,
                },
                status=exc.status,
            )
        return await super()._render_error(exc)

    async def _serve_proxy(
        self, request: rendering.Request, match: re.Match[str]
    ) -> aiohttp.web.StreamResponse:
        """Forward a service-proxy request to the registered server; its answer goes back as is."""
        namespace, name = match["namespace"], match["name"]
        target = self.proxies.get((namespace, name, match["port"] or ""))
        if target is None:
            async with self._lock:
                exists = any(
                    res.plural == "services" and ns == namespace and obj_name == name and not obj.deleted
                    for (res, ns, obj_name), obj in self._objects.items()
                )
            if exists:
                status = _status(503, "ServiceUnavailable", f'no endpoints available for service "{name}"')
            else:
                status = _status(404, "NotFound", f'services "{name}" not found')
            return aiohttp.web.json_response(status, status=status["code"])
        async with (
            aiohttp.ClientSession() as session,
            session.request(
                request.method.value.upper(),
                target + (match["path"] or "/"),
                params=dict(request.params),
                json=request.data,
            ) as upstream,
        ):
            body = await upstream.read()
            return aiohttp.web.Response(body=body, status=upstream.status, content_type=upstream.content_type)

    async def _serve_put(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        assert request.resource is not None
        key = (request.resource, request.namespace, request.name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                raise self._with_reason(kmock.KubernetesObjectNotFoundError(), request)
            old = self._objects[key].raw
            body = copy.deepcopy(request.data)
            meta = body.setdefault("metadata", {})
            for server_field in ("uid", "creationTimestamp", "namespace"):
                if server_field in old.get("metadata", {}):
                    meta[server_field] = old["metadata"][server_field]
            meta["generation"] = int(old.get("metadata", {}).get("generation", 1)) + 1
            meta["resourceVersion"] = self.next_rv()
            self._objects[key].delete()
            self._objects[key].create(body)
            raw = self._objects[key].raw
            await self._buses[request.resource].put({"type": "MODIFIED", "object": raw})
        return aiohttp.web.json_response(raw)

    async def _serve_list(self, request: rendering.Request) -> rendering.Payload:
        result = dict(await super()._serve_list(request))
        requirements = parse_selector(request.params.get("labelSelector"))
        result["items"] = [o for o in result["items"] if selects(requirements, o)]
        assert request.resource is not None
        group = request.resource.group
        result["apiVersion"] = f"{group}/{request.resource.version}" if group else request.resource.version
        result["kind"] = _LIST_KINDS.get(str(request.resource.plural), "List")
        result["metadata"] = {"resourceVersion": self.next_rv()}
        return result

    async def _serve_watch(self, request: rendering.Request) -> AsyncIterator[rendering.Payload]:
        """Events after ``resourceVersion`` (replayed from history), then live ones, filtered by
        namespace and label selector, until ``timeoutSeconds`` or shutdown. Without a
        resourceVersion every current object comes first as ADDED (like the API server)."""
        assert request.resource is not None
        yield b""  # send the headers now: the client waits for them before it reads events
        requirements = parse_selector(request.params.get("labelSelector"))
        since = int(request.params.get("resourceVersion") or 0)
        timeout = request.params.get("timeoutSeconds")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + float(timeout) if timeout else None
        bus = self._buses[request.resource]
        assert isinstance(bus, RecordingBus)
        marker = await bus.mark()  # subscribe before reading history: nothing falls in between

        def wanted(event: dict[str, Any]) -> bool:
            obj = event.get("object") or {}
            namespace = (obj.get("metadata") or {}).get("namespace")
            in_namespace = request.namespace is None or namespace == request.namespace
            return in_namespace and selects(requirements, obj)

        live: AsyncIterator[Any] = bus.stream(since=marker)
        pending: asyncio.Future[Any] | None = None
        try:
            if since:
                if bus.history and since < bus.history[0][0] - 1:
                    yield {"type": "ERROR", "object": _status(410, "Expired", "too old resource version")}
                    return
                backlog = [(seq, event) for seq, event in bus.history if seq > since]
            else:
                async with self._lock:
                    current = [
                        {"type": "ADDED", "object": obj.raw}
                        for (res, _, _), obj in self._objects.items()
                        if res == request.resource and not obj.deleted
                    ]
                backlog = [(bus.last_seq, event) for event in current]
            replayed = since
            for seq, event in backlog:
                replayed = max(replayed, seq)
                if wanted(event):
                    yield event
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return
                # End at timeoutSeconds, or when the emulator shuts down (the client may be gone).
                pending = asyncio.ensure_future(live.__anext__())
                shutdown = asyncio.ensure_future(self._release.wait())
                try:
                    done, _ = await asyncio.wait(
                        {pending, shutdown}, timeout=remaining, return_when=asyncio.FIRST_COMPLETED
                    )
                finally:
                    shutdown.cancel()
                if pending not in done:
                    return
                next_item, pending = pending, None
                try:
                    seq, event = next_item.result()
                except StopAsyncIteration:
                    return
                if seq > replayed and wanted(event):
                    yield event
        finally:
            if pending is not None:
                # Let the bus iterator unwind before closing it (it may be mid-await).
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError, StopAsyncIteration):
                    await pending
            await live.aclose()  # type: ignore[attr-defined]
            await bus.unmark(marker)

    # ------------------------------------------------------------------ test-side mutations

    async def apply_object(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create the object, or merge ``body`` into it; watchers see ADDED / MODIFIED."""
        res = kmock.resource(resource)
        name = body["metadata"]["name"]
        key = (res, namespace, name)
        async with self._lock:
            if key in self._objects and not self._objects[key].deleted:
                patch = copy.deepcopy(body)
                patch.setdefault("metadata", {})["resourceVersion"] = self.next_rv()
                self._objects[key].patch(patch)
                event = "MODIFIED"
            else:
                fresh = copy.deepcopy(body)
                self.stamp(fresh, namespace, created=True)
                if key in self._objects:
                    self._objects[key].create(fresh)
                else:
                    self._objects[key] = fresh
                event = "ADDED"
            raw = self._objects[key].raw
            await self._buses[res].put({"type": event, "object": raw})
        return copy.deepcopy(raw)

    async def create_if_owner_lives(
        self, resource: str, namespace: str, body: dict[str, Any], owner: tuple[str, str, str]
    ) -> bool:
        """Create ``body`` only while ``owner`` (resource, name, uid, in ``namespace``) exists
        and is not being deleted, checked under the lock a deletion takes: what a controller
        creates for an object deleted meanwhile never appears (a real garbage collector would
        remove it). True if it was created."""
        owner_resource, owner_name, owner_uid = owner
        key = (kmock.resource(owner_resource), namespace, owner_name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                return False
            meta = self._objects[key].raw.get("metadata") or {}
            if meta.get("uid") != owner_uid or meta.get("deletionTimestamp"):
                return False
            fresh = copy.deepcopy(body)
            self.stamp(fresh, namespace, created=True)
            res = kmock.resource(resource)
            new_key = (res, namespace, fresh["metadata"]["name"])
            if new_key in self._objects:
                self._objects[new_key].create(fresh)
            else:
                self._objects[new_key] = fresh
            await self._buses[res].put({"type": "ADDED", "object": self._objects[new_key].raw})
        return True

    async def remove_object(self, resource: str, namespace: str, name: str, *, silent: bool = False) -> bool:
        res = kmock.resource(resource)
        key = (res, namespace, name)
        async with self._lock:
            if key not in self._objects or self._objects[key].deleted:
                return False
            raw = self._objects[key].raw
            self._objects[key].delete()
            if not silent:
                await self._buses[res].put({"type": "DELETED", "object": raw})
        return True

    async def snapshot(self) -> dict[tuple[str, str, str], dict[str, Any]]:
        async with self._lock:
            return {
                (_resource_key(res), ns, name): copy.deepcopy(obj.raw)
                for (res, ns, name), obj in self._objects.items()
                if not obj.deleted
            }


# ---------------------------------------------------------------------------------- the thread


class EmulatorThread:
    """Runs :class:`TsK8sEmulator` on its own event loop; every method is safe from any thread."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._emulator: TsK8sEmulator | None = None
        self._error: BaseException | None = None
        self.url = ""

    # lifecycle --------------------------------------------------------------------------

    def start(self) -> EmulatorThread:
        self._thread = threading.Thread(target=self._run, name="k8s-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(STARTUP_TIMEOUT):
            raise RuntimeError("the Kubernetes emulator did not start")
        if self._error is not None:
            raise RuntimeError("the Kubernetes emulator failed to start") from self._error
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(STARTUP_TIMEOUT)

    def __enter__(self) -> EmulatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as e:  # surfaced by start()
            self._error = e
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        async with TsK8sEmulator() as emulator, kmock.Server(emulator) as server:
            emulator.resources.load_bundled()
            self._emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            emulator._release.set()  # let hanging faults finish so the server can close

    def _run_on_loop(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(STARTUP_TIMEOUT)

    @property
    def emulator(self) -> TsK8sEmulator:
        assert self._emulator is not None, "start() first"
        return self._emulator

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        """Write a kubeconfig pointing at the emulator (for a master run as a subprocess:
        ``KUBECONFIG=<path>``); returns the path."""
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "emulator", "cluster": {"server": self.url}}],
            "users": [{"name": "emulator", "user": {"token": "emulator"}}],
            "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "emulator"}}],
            "current-context": "emulator",
        }
        target = Path(path)
        target.write_text(json.dumps(config), encoding="utf-8")  # JSON is valid YAML
        return target

    # state ------------------------------------------------------------------------------

    def objects(self, resource: str | None = None) -> dict[tuple[str, str, str], dict[str, Any]]:
        """Stored objects by ``(resource, namespace, name)``; ``resource`` like ``batch/v1/jobs``."""
        snapshot: dict[tuple[str, str, str], dict[str, Any]] = self._run_on_loop(self.emulator.snapshot())
        return {k: v for k, v in snapshot.items() if resource is None or k[0] == resource}

    def names(self, resource: str) -> list[str]:
        """Sorted names of the stored objects of ``resource``."""
        return sorted(name for (_, _, name) in self.objects(resource))

    def apply(self, resource: str, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        """Create or merge-patch an object from the test side (watchers see the event)."""
        result: dict[str, Any] = self._run_on_loop(self.emulator.apply_object(resource, namespace, body))
        return result

    def create_if_owner_lives(
        self, resource: str, namespace: str, body: dict[str, Any], owner: tuple[str, str, str]
    ) -> bool:
        """See :meth:`TsK8sEmulator.create_if_owner_lives`."""
        creating = self.emulator.create_if_owner_lives(resource, namespace, body, owner)
        created: bool = self._run_on_loop(creating)
        return created

    def remove(self, resource: str, namespace: str, name: str, *, silent: bool = False) -> bool:
        """Delete an object from the test side (as a controller or GC would); ``silent``: no
        watch event (a missed event, for resync tests)."""
        removal = self.emulator.remove_object(resource, namespace, name, silent=silent)
        return bool(self._run_on_loop(removal))

    # request log ------------------------------------------------------------------------

    @property
    def requests(self) -> list[LoggedRequest]:
        """Every request so far, in arrival order."""
        return list(self.emulator.log)

    def calls(self, *, exclude_watch: bool = False) -> list[tuple[str, str]]:
        """``(method, path)`` of every request (``WATCH`` for watch requests)."""
        result = []
        for r in self.requests:
            method = "WATCH" if r.method == "GET" and r.query.get("watch") == "true" else r.method
            if exclude_watch and method == "WATCH":
                continue
            result.append((method, r.path))
        return result

    def clear_log(self) -> None:
        self.emulator.log.clear()

    # service proxy ----------------------------------------------------------------------

    def proxy_service_to(self, namespace: str, name: str, port: int | str, url: str) -> None:
        """Forward ``/api/v1/namespaces/{namespace}/services/{name}:{port}/proxy/...`` to ``url``
        (a local HTTP server standing in for the Service's endpoints)."""
        self.emulator.proxies[(namespace, name, str(port))] = url.rstrip("/")

    # faults -----------------------------------------------------------------------------

    def fail(
        self,
        verb: str,
        path: str,
        status: int = 500,
        *,
        times: int = 1,
        body: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        hang: bool = False,
    ) -> Fault:
        """Make the next ``times`` requests matching ``verb``/``path`` fail (see :class:`Fault`)."""
        fault = Fault(verb, path, status, body, dict(headers or {}), times, hang)
        self.emulator.faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        self.emulator.faults.clear()

    def release(self) -> None:
        """Let hanging requests finish."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self.emulator._release.set)
