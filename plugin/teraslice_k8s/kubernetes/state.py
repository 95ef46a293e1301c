"""What the master knows about the cluster: an object cache fed by list + watch, and cluster state.

:func:`gen_cluster_state` is pure: pods in, Teraslice's ``kubernetesV2`` cluster-state object out
(k8s-backend.md §8.2), built fresh on every call. Unlike Teraslice it never creates an
``"undefined"`` node for a pod that has no ``hostIP`` yet (Pending, unscheduled), and the
``assets`` of an execution controller or worker are the execution's resolved asset ids (read
from the pod's ``EX``) where Teraslice always reports ``[]``. :class:`PodAssetIds` remembers
each pod's ids, so a cluster state of 1,000 workers decodes only the pods it has not seen.

:class:`ObjectCache` keeps one kind of object (all objects matching one label selector) in
memory with ONE list followed by ONE watch at a time, per kind, in a background thread: never a
call per pod. It relists every ``resync`` seconds (catching anything a watch missed), relists at
once when a watch reports 410 Gone, and when watching fails otherwise it falls back to polling
(a list every ``poll_delay`` seconds, Teraslice's ``kubernetes_api_poll_delay``): after a
transient failure (the API server down or restarting, a 5xx, a broken stream) for a short,
doubling while (``2 x poll_delay``, then 4x, ... at most :data:`WATCH_RETRY_MAX` seconds, and
from the first again once a watch is established), after a refusal (403: a Role without
``watch``) for ``resync`` seconds before it tries to watch again. Every change is reported to a callback as
``(kind, old, new)`` (``new is None`` for a deletion), and :attr:`ObjectCache.generation` counts
the changes, so a reader can tell cheaply whether anything it derived (the cluster state) is
still current.
"""

from __future__ import annotations

import binascii
import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from teraslice_k8s.kubernetes.api import Kind, KubeApi, WatchStream
from teraslice_k8s.kubernetes.errors import Gone, KubeError, Transient
from teraslice_k8s.models.asset_versions import ASSET_ID

log = logging.getLogger(__name__)

#: Longest polling (seconds) before a watch that failed transiently is tried again.
WATCH_RETRY_MAX = 30.0

#: Label keys read from pods (Teraslice's names).
COMPONENT_LABEL = "app.kubernetes.io/component"
EX_ID_LABEL = "teraslice.terascope.io/exId"
JOB_ID_LABEL = "teraslice.terascope.io/jobId"

#: Cluster-state node fields Kubernetes cannot fill (Teraslice reports them as "N/A").
_NOT_AVAILABLE = "N/A"

ChangeListener = Callable[[Kind, "dict[str, Any] | None", "dict[str, Any] | None"], None]


#: Pods whose processes load the execution's assets (the master's entry keeps ``[]``).
_ASSET_LOADERS = frozenset({"execution_controller", "worker"})

AssetIdsOf = Callable[[Mapping[str, Any]], "tuple[str, ...]"]


def pod_asset_ids(pod: Mapping[str, Any]) -> tuple[str, ...]:
    """The resolved asset ids of the execution a controller or worker pod runs: the 40-hex
    entries of ``assets`` in its first container's ``EX`` (base64 JSON of the execution), the
    ones the process loads at start. ``()`` for any other pod and for an ``EX`` that is absent
    or unreadable (the cluster state must never fail because of one odd pod)."""
    labels = (pod.get("metadata") or {}).get("labels") or {}
    if labels.get(COMPONENT_LABEL) not in _ASSET_LOADERS:
        return ()
    containers = (pod.get("spec") or {}).get("containers") or [{}]
    for env in containers[0].get("env") or ():
        if env.get("name") == "EX":
            raw = env.get("value")
            break
    else:
        return ()
    try:
        execution = orjson.loads(binascii.a2b_base64(raw))
    except (TypeError, ValueError, binascii.Error):
        return ()
    assets = execution.get("assets") if isinstance(execution, dict) else None
    if not isinstance(assets, list):
        return ()
    return tuple(a for a in assets if isinstance(a, str) and ASSET_ID.fullmatch(a))


def gen_cluster_state(
    pods: Iterable[Mapping[str, Any]], asset_ids: AssetIdsOf = pod_asset_ids
) -> dict[str, Any]:
    """Teraslice's cluster state for ``pods`` (node id = host IP -> node with its active pods).

    A node appears for every host IP some pod is on; only ``Running`` pods are listed in its
    ``active``. Absent labels/IPs leave the matching key out of the entry, as Teraslice's
    ``undefined`` does in JSON. Pods without a host IP (not scheduled yet) are skipped. An
    entry's ``assets`` is ``asset_ids(pod)`` (default :func:`pod_asset_ids`), a fresh list.
    """
    state: dict[str, Any] = {}
    for pod in pods:
        status = pod.get("status") or {}
        host_ip = status.get("hostIP")
        if not host_ip:
            continue
        node = state.get(host_ip)
        if node is None:
            node = state[host_ip] = {
                "node_id": host_ip,
                "hostname": host_ip,
                "pid": _NOT_AVAILABLE,
                "node_version": _NOT_AVAILABLE,
                "teraslice_version": _NOT_AVAILABLE,
                "total": _NOT_AVAILABLE,
                "state": "connected",
                "available": _NOT_AVAILABLE,
                "active": [],
            }
        if status.get("phase") != "Running":
            continue
        meta = pod.get("metadata") or {}
        labels = meta.get("labels") or {}
        containers = (pod.get("spec") or {}).get("containers") or [{}]
        entry = {
            "assets": list(asset_ids(pod)),
            "assignment": labels.get(COMPONENT_LABEL),
            "ex_id": labels.get(EX_ID_LABEL),
            "image": containers[0].get("image"),
            "job_id": labels.get(JOB_ID_LABEL),
            "pod_name": meta.get("name"),
            "pod_ip": status.get("podIP"),
            "worker_id": meta.get("name"),
        }
        node["active"].append({k: v for k, v in entry.items() if v is not None})
    return state


class PodAssetIds:
    """:func:`gen_cluster_state` with :func:`pod_asset_ids` remembered per pod.

    A pod's ``EX`` cannot change (a pod's container env is immutable), so the ids are kept per
    pod uid (name + ``resourceVersion`` for an object without one) and decoded once per pod,
    not once per state. Only the pods of the latest state are remembered: a pod gone from the
    listing is forgotten at the next :meth:`cluster_state`. Safe to call from several threads
    (at worst two calls decode the same pod)."""

    def __init__(self) -> None:
        self._known: dict[str | tuple[str, str], tuple[str, ...]] = {}

    def cluster_state(self, pods: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
        known = self._known
        seen: dict[str | tuple[str, str], tuple[str, ...]] = {}

        def ids(pod: Mapping[str, Any]) -> tuple[str, ...]:
            meta = pod.get("metadata") or {}
            key: str | tuple[str, str] = meta.get("uid") or (str(meta.get("name")), _rv(pod))
            found = known.get(key)
            if found is None:
                found = pod_asset_ids(pod)
            seen[key] = found
            return found

        state = gen_cluster_state(pods, ids)
        self._known = seen
        return state


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """Timing of an :class:`ObjectCache` (seconds)."""

    #: Full relist period (and how long polling lasts before watching is tried again).
    resync: float = 300.0
    #: Polling period when watching fails (``kubernetes_api_poll_delay``).
    poll_delay: float = 1.0
    #: Server-side length of one watch request.
    watch_timeout: float = 60.0
    #: Use list + watch; ``False`` polls only.
    watch: bool = True


class ObjectCache:
    """All objects of one kind matching ``label_selector``, kept current by list + watch."""

    def __init__(
        self,
        api: KubeApi,
        kind: Kind,
        label_selector: str,
        settings: CacheSettings,
        on_change: ChangeListener,
    ) -> None:
        self.kind = kind
        self.label_selector = label_selector
        self._api = api
        self._settings = settings
        self._on_change = on_change
        self._objects: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._synced = threading.Event()
        self._thread: threading.Thread | None = None
        self._stream: WatchStream | None = None
        self._resource_version = ""
        self._generation = 0
        #: A watch request of the current attempt was answered (its stream may break later).
        self._established = False

    # ------------------------------------------------------------------------------ reading

    def items(self) -> list[dict[str, Any]]:
        """A snapshot of the cached objects (do not mutate them)."""
        with self._lock:
            return list(self._objects.values())

    @property
    def generation(self) -> int:
        """Bumped (before listeners hear of it) by every change a list or watch brings: an
        object added, modified (new ``resourceVersion``) or deleted. Equal generations mean
        :meth:`items` has not changed in between."""
        return self._generation

    def wait_synced(self, timeout: float) -> bool:
        """Block until the first list has been loaded (or ``timeout``); True when it has."""
        return self._synced.wait(timeout)

    # ------------------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"cache-{self.kind.value}", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()  # unblocks a watch waiting for the next event
        if self._thread is not None:
            self._thread.join(timeout)

    def relist(self) -> None:
        """List now and reconcile the cache with the result (also used by the run loop)."""
        listing = self._api.list(self.kind, self.label_selector)
        fresh = {_key(item): item for item in listing.items}
        changes: list[tuple[dict[str, Any] | None, dict[str, Any] | None]] = []
        with self._lock:
            for key, gone in self._objects.items():
                if key not in fresh:
                    changes.append((gone, None))
            for key, new in fresh.items():
                previous = self._objects.get(key)
                if previous is None or _rv(previous) != _rv(new):
                    changes.append((previous, new))
            self._objects = fresh
            self._resource_version = listing.resource_version
            if changes:
                self._generation += 1
        self._synced.set()
        self._notify(changes)

    # ------------------------------------------------------------------------------ loop

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._observe()
            except Exception:
                # Never let the thread die: the master would go blind for this kind.
                log.exception("the %s cache failed unexpectedly; starting over", self.kind.value)
                self._stop.wait(self._settings.poll_delay)

    def _observe(self) -> None:
        settings = self._settings
        watching = settings.watch
        #: How long to poll before watching again; transient failures in a row.
        poll_for, failures = settings.resync, 0
        while not self._stop.is_set():
            try:
                self.relist()
            except KubeError as e:
                log.warning("listing %s (%s) failed: %s", self.kind.value, self.label_selector, e)
                self._stop.wait(settings.poll_delay)
                continue
            if not watching:
                self._poll_until(time.monotonic() + poll_for)
                watching = settings.watch
                if watching and failures:
                    log.info("watching %s again", self.kind.value)
                continue
            self._established = False
            try:
                self._watch_until(time.monotonic() + settings.resync)
            except Gone:
                log.info("watch of %s expired (410); listing again", self.kind.value)
            except KubeError as e:
                if self._stop.is_set():
                    return
                if isinstance(e, Transient):
                    failures = 1 if self._established else failures + 1
                    poll_for = min(settings.resync, WATCH_RETRY_MAX, settings.poll_delay * 2**failures)
                else:  # refused (e.g. 403: no watch verb): trying again soon cannot help
                    failures, poll_for = 0, settings.resync
                log.warning(
                    "watching %s failed: %s; polling every %gs for %gs",
                    self.kind.value,
                    e,
                    settings.poll_delay,
                    poll_for,
                )
                watching = False

    def _poll_until(self, deadline: float) -> None:
        while not self._stop.wait(self._settings.poll_delay) and time.monotonic() < deadline:
            try:
                self.relist()
            except KubeError as e:
                log.warning("listing %s failed: %s", self.kind.value, e)

    def _watch_until(self, deadline: float) -> None:
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return  # periodic resync: relist
            stream = self._api.watch(
                self.kind,
                self.label_selector,
                self._resource_version,
                min(self._settings.watch_timeout, remaining),
            )
            self._stream = stream
            self._established = True
            if self._stop.is_set():  # stop() ran while the watch was being established
                stream.close()
            try:
                for event in stream:
                    if self._stop.is_set():
                        return
                    self._apply(event.type, event.object)
            finally:
                self._stream = None
                stream.close()

    def _apply(self, event_type: str, obj: dict[str, Any]) -> None:
        rv = _rv(obj)
        if event_type == "BOOKMARK":
            if rv:
                self._resource_version = rv
            return
        obj.setdefault("kind", self.kind.value)
        key = _key(obj)
        change: tuple[dict[str, Any] | None, dict[str, Any] | None] | None
        with self._lock:
            old = self._objects.get(key)
            if event_type == "DELETED":
                self._objects.pop(key, None)
                change = (old, None) if old is not None else None
            else:
                self._objects[key] = obj
                change = (old, obj)
            if change is not None:
                self._generation += 1
            if rv:
                self._resource_version = rv
        if change is not None:
            self._notify([change])

    def _notify(self, changes: list[tuple[dict[str, Any] | None, dict[str, Any] | None]]) -> None:
        for old, new in changes:
            try:
                self._on_change(self.kind, old, new)
            except Exception:
                # A listener bug must not kill the cache thread (the master would go blind).
                log.exception("change listener failed for a %s", self.kind.value)


def _key(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name"))


def _rv(obj: Mapping[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("resourceVersion") or "")
