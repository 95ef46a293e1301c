"""The only module that imports the ``kubernetes`` client.

Everything else in the package talks to Kubernetes through :class:`KubeApi`, with plain dict
manifests in and plain dicts out. The client's ``ApiClient`` provides configuration,
authentication (service-account token refresh, kubeconfig credentials) and the HTTP transport;
requests and responses bypass its generated models on purpose: since client 37 they are pydantic
models that reject valid manifests (numeric quantities such as ``cpu: 0.5``, which the API server
and Teraslice accept) and drop or reorder fields between releases. The server validates instead
(``fieldValidation=Strict``). Failures leave this module only as
:mod:`teraslice_k8s.kubernetes.errors` classes.

Retry policy (:meth:`KubeApi._call`): only :class:`~.errors.Transient` failures (5xx, 429,
timeouts, connection errors) are retried, at most ``ApiSettings.attempts`` attempts in total,
waiting ``min(cap, base * 2**(n-1))`` scaled by a jitter in [0.5, 1.5) between attempts
(``Retry-After`` when a 429/503 sends one, still capped). Every failed attempt is logged as
``attempt #n/N``. 400/401/403/404/409/410/422 are final at once: retrying cannot change them.

Every request sent (each attempt of a retried call, each watch established) is counted by verb
and resource: :meth:`KubeApi.calls` (the master exports them in ``/metrics``; tests and
``benchmarks/k8s_calls.py`` count the calls of an execution's lifecycle with them).

``RBAC_RULES`` lists exactly the API verbs this module calls; the chart's Role must grant
exactly these (``tests/chart`` checks both directions). Each call below names its verb.

:meth:`KubeApi.proxy_service` is the exception to the retry policy for writes: a ``POST``
through the service proxy is sent once (a retried ``/pause`` could reach the controller twice).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final, NoReturn
from urllib.parse import quote

import urllib3
from kubernetes import client as k8s_client
from kubernetes import config as k8s_config

from teraslice_k8s.kubernetes.errors import (
    Gone,
    Invalid,
    KubeError,
    NotFound,
    Transient,
    error_for_status,
    truncate,
)

log = logging.getLogger(__name__)

#: (apiGroup, resource) -> verbs this module uses. Keep in sync with the calls below;
#: the chart renders its Role from the same data (values are checked by tests/chart).
RBAC_RULES: Final[tuple[dict[str, tuple[str, ...]], ...]] = (
    # pods: cluster state and failure reasons (list/watch), force stop (delete)
    {"apiGroups": ("",), "resources": ("pods",), "verbs": ("list", "watch", "delete")},
    # the execution controller Service: create, adopt on 409 (get), force stop (list), stop (delete)
    {"apiGroups": ("",), "resources": ("services",), "verbs": ("get", "list", "create", "delete")},
    # the worker ConfigMap must exist before an execution starts
    {"apiGroups": ("",), "resources": ("configmaps",), "verbs": ("get",)},
    # worker Deployments: create, adopt on 409 (get), scale (patch), track (list/watch), stop (delete)
    {
        "apiGroups": ("apps",),
        "resources": ("deployments",),
        "verbs": ("get", "list", "watch", "create", "patch", "delete"),
    },
    # force stop removes worker ReplicaSets before their Deployment
    {"apiGroups": ("apps",), "resources": ("replicasets",), "verbs": ("list", "delete")},
    # execution controller Jobs: create, adopt on 409 (get), track (list/watch), stop (delete)
    {
        "apiGroups": ("batch",),
        "resources": ("jobs",),
        "verbs": ("get", "list", "watch", "create", "delete"),
    },
    # the execution controller's HTTP interface through the API server's service proxy, when the
    # master cannot reach the Service directly (master outside the cluster). The API server
    # authorizes a proxy request with the verb of its HTTP method: GET -> get, POST -> create.
    {"apiGroups": ("",), "resources": ("services/proxy",), "verbs": ("get", "create")},
)


class Kind(StrEnum):
    """The object kinds this module handles (one row each in the call table)."""

    JOB = "Job"
    SERVICE = "Service"
    DEPLOYMENT = "Deployment"
    POD = "Pod"
    REPLICA_SET = "ReplicaSet"
    CONFIG_MAP = "ConfigMap"
    #: The ``proxy`` subresource of a Service (only :meth:`KubeApi.proxy_service` uses it).
    SERVICE_PROXY = "Service/proxy"


@dataclass(frozen=True, slots=True)
class ApiSettings:
    """How :class:`KubeApi` talks to the API server."""

    #: Namespace of every call (the master's ``kubernetes_namespace``).
    namespace: str = "default"
    #: Total attempts for a transient failure (1 = no retry).
    attempts: int = 4
    #: First backoff, seconds; doubles per attempt.
    backoff_base: float = 0.5
    #: Longest single wait, seconds (also caps ``Retry-After``).
    backoff_cap: float = 10.0
    #: Client-side timeout of one request (connect + read), seconds.
    request_timeout: float = 30.0
    #: Sleeps between attempts; tests inject a recorder so retries take no time.
    sleep: Callable[[float], None] = time.sleep
    #: Returns a float in [0, 1) for the backoff jitter.
    jitter: Callable[[], float] = random.random


@dataclass(frozen=True, slots=True)
class ObjectList:
    """The items of a list call and the list's ``metadata.resourceVersion`` (to watch from)."""

    items: list[dict[str, Any]]
    resource_version: str


@dataclass(frozen=True, slots=True)
class WatchEvent:
    """One watch event: ``type`` is ``ADDED``/``MODIFIED``/``DELETED``/``BOOKMARK``."""

    type: str
    object: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class _Ops:
    """One row of the call table: where a kind lives and the verbs this module uses on it."""

    api_version: str
    resource: str
    verbs: frozenset[str]

    @property
    def group_resource(self) -> str:
        """``batch/jobs``, ``apps/deployments``, ``pods`` (core group has no prefix)."""
        group = self.api_version.rpartition("/")[0]
        return f"{group}/{self.resource}" if group else self.resource

    def path(self, namespace: str, name: str = "") -> str:
        """The collection path, or the object path when ``name`` is given."""
        root = "/api" if "/" not in self.api_version else "/apis"
        path = f"{root}/{self.api_version}/namespaces/{quote(namespace, safe='')}/{self.resource}"
        return f"{path}/{quote(name, safe='')}" if name else path


#: The explicit call table: every kind this module touches, and the verbs it uses on each
#: (the same verbs as ``RBAC_RULES``; ``tests/unit/kubernetes`` checks that they agree).
CALL_TABLE: Final[dict[Kind, _Ops]] = {
    Kind.JOB: _Ops("batch/v1", "jobs", frozenset({"create", "get", "list", "watch", "delete"})),
    Kind.SERVICE: _Ops("v1", "services", frozenset({"create", "get", "list", "delete"})),
    Kind.DEPLOYMENT: _Ops(
        "apps/v1", "deployments", frozenset({"create", "get", "list", "watch", "patch", "delete"})
    ),
    Kind.POD: _Ops("v1", "pods", frozenset({"list", "watch", "delete"})),
    Kind.REPLICA_SET: _Ops("apps/v1", "replicasets", frozenset({"list", "delete"})),
    Kind.CONFIG_MAP: _Ops("v1", "configmaps", frozenset({"get"})),
    Kind.SERVICE_PROXY: _Ops("v1", "services/proxy", frozenset({"get", "create"})),
}

#: HTTP method of a service-proxy request -> the RBAC verb the API server checks for it.
_PROXY_VERBS: Final[dict[str, str]] = {"GET": "get", "POST": "create"}


class WatchStream:
    """The events of one watch request; iterate once. :meth:`close` may be called from another
    thread to end a blocked iteration (the stream then raises :class:`~.errors.Transient`)."""

    def __init__(self, response: Any, ops: _Ops, namespace: str) -> None:
        self._response = response
        self._ops = ops
        self._namespace = namespace

    def __iter__(self) -> Iterator[WatchEvent]:
        complete = False
        try:
            for line in _lines(self._response, self._ops):
                try:
                    event = json.loads(line)
                except ValueError as e:
                    raise Transient(
                        f"watch {self._ops.group_resource}: malformed event {truncate(line)!r}"
                    ) from e
                if event.get("type") == "ERROR":
                    _raise_watch_error(event.get("object") or {}, self._ops, self._namespace)
                yield WatchEvent(str(event.get("type")), event.get("object") or {})
            complete = True
        finally:
            if not complete:
                self._response.close()  # never hand a half-read connection back to the pool
            self._response.release_conn()

    def close(self) -> None:
        """Shut the connection down (unblocks a reader in another thread)."""
        connection = getattr(self._response, "connection", None)
        sock = getattr(connection, "sock", None)
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def load_client_configuration(
    *, host: str | None = None, kubeconfig: str | None = None, context: str | None = None
) -> Any:
    """A ``kubernetes.client.Configuration`` for this process.

    ``host``: talk plain HTTP(S) to that URL without credentials (tests, emulator).
    Otherwise in-cluster credentials when ``KUBERNETES_SERVICE_HOST`` and ``_PORT`` are both set
    (the master runs in a pod), else the kubeconfig (``kubeconfig`` path, ``$KUBECONFIG`` or
    ``~/.kube/config``; the seed's "master runs locally" mode).
    """
    configuration = k8s_client.Configuration()
    if host is not None:
        configuration.host = host.rstrip("/")
    elif os.environ.get("KUBERNETES_SERVICE_HOST") and os.environ.get("KUBERNETES_SERVICE_PORT"):
        k8s_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    else:
        k8s_config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
    # Our own loop retries (bounded and logged); urllib3 must not retry silently underneath it.
    configuration.retries = False
    return configuration


class KubeApi:
    """Create / get / list / watch / delete / scale namespaced objects, as plain dicts.

    Thread-safe for concurrent calls (the client's urllib3 pool is); one instance per master.
    """

    def __init__(self, settings: ApiSettings, configuration: Any = None) -> None:
        self.settings = settings
        self._api_client = k8s_client.ApiClient(configuration or load_client_configuration())
        self._calls: Counter[tuple[str, str]] = Counter()
        self._calls_lock = threading.Lock()

    def calls(self) -> dict[tuple[str, str], int]:
        """Requests sent so far by ``(verb, resource)`` (``("create", "batch/jobs")``,
        ``("get", "services/proxy")``): a snapshot, every attempt counted."""
        with self._calls_lock:
            return dict(self._calls)

    @property
    def namespace(self) -> str:
        return self.settings.namespace

    def close(self) -> None:
        """Release the connection pool."""
        self._api_client.close()  # type: ignore[no-untyped-call]

    # ------------------------------------------------------------------------------ verbs

    def create(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """Create ``body`` (kind from ``body["kind"]``); returns the object the server stored.

        Unknown fields are rejected (``fieldValidation=Strict``) rather than silently dropped.
        Raises :class:`~.errors.AlreadyExists` on a name clash.
        """
        kind = Kind(body["kind"])
        if kind is Kind.SERVICE_PROXY:
            raise ValueError("a service proxy is not an object: use proxy_service()")
        ops = _ops(kind, "create")
        name = str(body.get("metadata", {}).get("name", ""))
        # RBAC: create
        return self._json(
            "create",
            ops,
            name,
            "POST",
            ops.path(self.namespace),
            query=[("fieldValidation", "Strict")],
            body=dict(body),
        )

    def get(self, kind: Kind, name: str) -> dict[str, Any]:
        """The object ``name``; raises :class:`~.errors.NotFound` when it does not exist."""
        ops = _ops(kind, "get")
        # RBAC: get
        return self._json("get", ops, name, "GET", ops.path(self.namespace, name))

    def list(self, kind: Kind, label_selector: str) -> ObjectList:
        """Every object matching ``label_selector``, plus the list's resourceVersion."""
        ops = _ops(kind, "list")
        query = [("labelSelector", label_selector)] if label_selector else []
        # RBAC: list
        data = self._json("list", ops, "", "GET", ops.path(self.namespace), query=query)
        items = data.get("items") or []
        for item in items:
            # Lists omit kind/apiVersion on items; put them back so items look like gets.
            item.setdefault("kind", kind.value)
            item.setdefault("apiVersion", ops.api_version)
        return ObjectList(items, str((data.get("metadata") or {}).get("resourceVersion") or ""))

    def watch(self, kind: Kind, label_selector: str, resource_version: str, timeout: float) -> WatchStream:
        """Stream changes after ``resource_version`` until the server ends the watch.

        The server closes the stream after ``timeout`` seconds; the client gives up
        ``request_timeout`` later. Establishing the watch is retried like any call; a failure
        mid-stream raises :class:`~.errors.Transient`, an expired resourceVersion
        :class:`~.errors.Gone` (relist and watch again).
        """
        ops = _ops(kind, "watch")
        query = [("watch", "true"), ("allowWatchBookmarks", "true")]
        if label_selector:
            query.append(("labelSelector", label_selector))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        query.append(("timeoutSeconds", str(max(1, int(timeout)))))
        read_timeout = timeout + self.settings.request_timeout
        # RBAC: watch
        response = self._call(
            "watch",
            ops,
            "",
            lambda: self._send(
                "GET",
                ops.path(self.namespace),
                query,
                None,
                timeout=(self.settings.request_timeout, read_timeout),
                stream=True,
            ),
        )
        return WatchStream(response, ops, self.namespace)

    def delete(
        self,
        kind: Kind,
        name: str,
        *,
        propagation: str = "Background",
        grace_period: int | None = None,
    ) -> bool:
        """Delete ``name``; returns False when it was already gone (404 counts as success)."""
        if not name:
            raise ValueError(f"name of the {kind.value} to delete must be set, got {name!r}")
        ops = _ops(kind, "delete")
        options: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "DeleteOptions",
            "propagationPolicy": propagation,
        }
        if grace_period is not None:
            options["gracePeriodSeconds"] = grace_period
        try:
            # RBAC: delete
            self._json("delete", ops, name, "DELETE", ops.path(self.namespace, name), body=options)
        except NotFound:
            return False
        return True

    def patch_replicas(self, name: str, replicas: int) -> dict[str, Any]:
        """Set the Deployment's ``spec.replicas`` with a JSON Patch (as Teraslice does)."""
        if replicas < 0:
            raise ValueError(f"replicas must not be negative, got {replicas}")
        ops = _ops(Kind.DEPLOYMENT, "patch")
        body = [{"op": "replace", "path": "/spec/replicas", "value": replicas}]
        # RBAC: patch
        return self._json(
            "patch",
            ops,
            name,
            "PATCH",
            ops.path(self.namespace, name),
            body=body,
            content_type="application/json-patch+json",
        )

    def proxy_service(
        self,
        name: str,
        port: int | str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
        attempts: int | None = None,
    ) -> bytes:
        """``method`` ``path`` (with query ``params``) on port ``port`` of the Service ``name``,
        through the API server (``/api/v1/namespaces/{ns}/services/{name}:{port}/proxy{path}``),
        authenticated like every other call; returns the body the Service answered.

        Only ``GET`` (RBAC ``get`` on ``services/proxy``) and ``POST`` (``create``) are allowed.
        A non-2xx answer, whether from the API server (no such Service, no ready endpoint) or
        relayed from the Service itself, raises the mapped :mod:`~.errors` class. ``GET`` is
        retried like every read (at most ``attempts``, default ``ApiSettings.attempts``);
        ``POST`` is sent exactly once, whatever fails. ``timeout`` bounds each attempt (default
        ``ApiSettings.request_timeout``).
        """
        method = method.upper()
        verb = _PROXY_VERBS.get(method)
        if verb is None:
            raise ValueError(f"the service proxy is only used with GET or POST, not {method}")
        if not path.startswith("/"):
            raise ValueError(f"the proxied path must start with '/', got {path!r}")
        ops = _ops(Kind.SERVICE_PROXY, verb)
        services = CALL_TABLE[Kind.SERVICE].path(self.namespace, f"{name}:{port}")
        url_path = f"{services}/proxy{quote(path, safe='/')}"
        query = list((params or {}).items())
        # RBAC: get (GET) / create (POST) on services/proxy
        data: bytes = self._call(
            verb,
            ops,
            name,
            lambda: self._send(method, url_path, query, None, timeout=timeout),
            attempts=attempts if method == "GET" else 1,
        )
        return data

    # ------------------------------------------------------------------------------ plumbing

    def _send(
        self,
        method: str,
        path: str,
        query: Sequence[tuple[str, str]],
        body: Any,
        *,
        content_type: str = "application/json",
        timeout: float | tuple[float, float] | None = None,
        stream: bool = False,
    ) -> Any:
        """One HTTP request through the client's transport; non-2xx raises ``ApiException``."""
        headers = {"Accept": "application/json"}
        if body is not None:
            headers["Content-Type"] = content_type
        method, url, headers, body, _ = self._api_client.param_serialize(
            method=method,
            resource_path=path,
            query_params=list(query),
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self._api_client.call_api(
            method,
            url,
            header_params=headers,
            body=body,
            _request_timeout=timeout or self.settings.request_timeout,
        )
        if stream and 200 <= response.status <= 299:
            return response.response
        data = response.read()  # type: ignore[no-untyped-call]
        if not 200 <= response.status <= 299:
            k8s_client.ApiException.from_response(
                http_resp=response, body=data.decode("utf-8", errors="replace"), data=None
            )
        return data

    def _json(
        self,
        verb: str,
        ops: _Ops,
        name: str,
        method: str,
        path: str,
        *,
        query: Sequence[tuple[str, str]] = (),
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        data = self._call(
            verb, ops, name, lambda: self._send(method, path, query, body, content_type=content_type)
        )
        try:
            decoded = json.loads(data)
        except ValueError as e:
            raise KubeError(
                f"{_describe(verb, ops, name, self.namespace)}: the API answered with a "
                f"non-JSON body {truncate(repr(data))}"
            ) from e
        if not isinstance(decoded, dict):
            raise KubeError(f"{_describe(verb, ops, name, self.namespace)}: unexpected response")
        return decoded

    def _call(
        self, verb: str, ops: _Ops, name: str, request: Callable[[], Any], *, attempts: int | None = None
    ) -> Any:
        """Run ``request`` with the retry policy of the module docstring; map every failure.

        ``attempts`` overrides ``ApiSettings.attempts`` (1: a request that must not be repeated).
        """
        settings = self.settings
        attempts = max(1, settings.attempts if attempts is None else attempts)
        for attempt in range(1, attempts + 1):
            with self._calls_lock:
                self._calls[verb, ops.group_resource] += 1
            try:
                return request()
            except Exception as e:
                error = map_error(e, verb, ops.group_resource, name, self.namespace)
                if not isinstance(error, Transient):
                    raise error from e
                if attempt == attempts:
                    log.warning("attempt #%d/%d failed: %s; escalating", attempt, attempts, error)
                    raise error from e
                wait = self._backoff(attempt, error.retry_after)
                log.warning(
                    "attempt #%d/%d failed: %s; will retry in %.2fs",
                    attempt,
                    attempts,
                    error,
                    wait,
                )
            settings.sleep(wait)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        settings = self.settings
        if retry_after is not None:
            return max(0.0, min(settings.backoff_cap, retry_after))
        base = settings.backoff_base * 2.0 ** (attempt - 1)
        return min(settings.backoff_cap, base * (0.5 + settings.jitter()))


def map_error(error: Exception, verb: str, resource: str, name: str, namespace: str) -> KubeError:
    """Translate a client/transport exception into the :mod:`~.errors` hierarchy.

    ``resource`` is ``group/plural`` (``batch/jobs``; ``pods`` for the core group).
    """
    target = f'{resource} "{name}"' if name else resource
    if isinstance(error, k8s_client.ApiException):
        return error_for_status(
            int(error.status or 0),
            error.body or error.reason,
            error.headers,
            where=f'{verb} {target} in namespace "{namespace}"',
            verb=verb,
            resource=resource,
            namespace=namespace,
        )
    if isinstance(error, urllib3.exceptions.TimeoutError | TimeoutError):
        return Transient(f'{verb} {target} in namespace "{namespace}": timed out ({truncate(str(error))})')
    if isinstance(error, urllib3.exceptions.HTTPError | ConnectionError | OSError):
        return Transient(
            f'{verb} {target} in namespace "{namespace}": connection failed ({truncate(str(error))})'
        )
    if isinstance(error, ValueError | TypeError):
        # The client validates request models itself (pydantic in client >= 37).
        return Invalid(
            f'{verb} {target} in namespace "{namespace}": the request was rejected before it was '
            f"sent: {truncate(str(error))}"
        )
    return KubeError(f'{verb} {target} in namespace "{namespace}": {truncate(repr(error))}')


def _raise_watch_error(status: Mapping[str, Any], ops: _Ops, namespace: str) -> NoReturn:
    code = int(status.get("code") or 0)
    message = truncate(str(status.get("message") or ""))
    where = f'watch {ops.group_resource} in namespace "{namespace}"'
    if code == 410:
        raise Gone(f"{where}: resource version expired ({message})", status=code, payload=dict(status))
    raise Transient(f"{where}: the server ended the watch with {code} ({message})", status=code)


def _lines(response: Any, ops: _Ops) -> Iterator[str]:
    """Newline-delimited lines of a streaming response; transport failures -> Transient."""
    buffer = b""
    try:
        for chunk in response.stream(amt=None, decode_content=False):
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                if line.strip():
                    yield line.decode("utf-8", errors="replace")
    except (urllib3.exceptions.HTTPError, OSError) as e:
        raise Transient(f"watch {ops.group_resource}: the stream broke ({truncate(str(e))})") from e
    if buffer.strip():
        yield buffer.decode("utf-8", errors="replace")


def _ops(kind: Kind, verb: str) -> _Ops:
    ops = CALL_TABLE[kind]
    if verb not in ops.verbs:
        raise ValueError(f"this module does not {verb} {kind.value} objects (not in RBAC_RULES)")
    return ops


def _describe(verb: str, ops: _Ops, name: str, namespace: str) -> str:
    target = f'{ops.group_resource} "{name}"' if name else ops.group_resource
    return f'{verb} {target} in namespace "{namespace}"'
