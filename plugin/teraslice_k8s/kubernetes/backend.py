"""The Kubernetes backend: one controller Job, its Service and a worker Deployment per execution.

Composes :mod:`~teraslice_k8s.kubernetes.render` (manifests) with
:mod:`~teraslice_k8s.kubernetes.api` (calls) and :mod:`~teraslice_k8s.kubernetes.state`
(list + watch caches). Behaviour follows Teraslice 3.18's ``kubernetesV2`` backend
(k8s-backend.md §7) with these deliberate differences:

- The worker ConfigMap is checked before anything is created (a clear error names it).
- The controller Job is found by **execution id** for the worker Deployment's owner reference
  (Teraslice looks it up by job id and trips over a previous execution's Job).
- 409 on create: the existing object is adopted when its labels say it belongs to this cluster and
  execution (``app.kubernetes.io/instance``, ``teraslice.terascope.io/exId``); otherwise a clear
  error. A failure after the Job exists deletes what was created, so nothing is orphaned.
- Stop deletes the Job (Background propagation) and also the Service and Deployment explicitly,
  so it does not depend on the garbage collector. Force stop deletes every listed item with
  ``gracePeriodSeconds: 1`` (Teraslice stops at the first item already terminating).
- Scaling never goes below 0 workers (refused with a clear error).
- The master reaches a controller it cannot connect to directly (the master runs outside the
  cluster) through the API server's service proxy (:meth:`KubernetesBackend.call_controller`).
- Pods and Jobs are watched: a failed / evicted controller, an image pull error or a crash loop
  are reported as :class:`~teraslice_k8s.backend.base.BackendEvent`s with the Kubernetes reason.
  While any pod of an execution waits (unschedulable, a container that cannot be created), each
  change of its pods is reported as a ``PENDING`` event carrying a
  :class:`~teraslice_k8s.backend.base.StartState` (which pods wait and why, controller first;
  what runs; when the controller Job was created), and once more when nothing waits any longer.
  What to do about it (``_pendingReason``, failing after ``slicer_timeout``) is the master's.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Hashable, Mapping
from typing import Any

from teraslice_k8s.backend.base import (
    BackendError,
    BackendEvent,
    ControllerAddress,
    EventKind,
    EventListener,
    ScaleAction,
    StartState,
    check_worker_count,
    new_worker_total,
)
from teraslice_k8s.kubernetes.api import (
    ApiSettings,
    Kind,
    KubeApi,
    load_client_configuration,
)
from teraslice_k8s.kubernetes.errors import AlreadyExists, KubeError, NotFound
from teraslice_k8s.kubernetes.names import (
    EX_ID_LABEL,
    INSTANCE_LABEL,
    Component,
    cluster_name_label,
    cluster_selector,
    label_value,
    selector_for,
)
from teraslice_k8s.kubernetes.observation import CONTROLLER, WORKER, observe, start_state
from teraslice_k8s.kubernetes.observation import labels_of as _labels
from teraslice_k8s.kubernetes.render import (
    OwnerRef,
    execution_names,
    render_controller_job,
    render_controller_service,
    render_worker_deployment,
)
from teraslice_k8s.kubernetes.state import CacheSettings, ObjectCache, PodAssetIds
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.models.job_fields import SLICER_PORT

log = logging.getLogger(__name__)

#: How long :meth:`KubernetesBackend.start` waits for the first list of each kind.
INITIAL_SYNC_TIMEOUT = 10.0


class KubernetesBackend:
    """The :class:`~teraslice_k8s.backend.base.Backend` for ``kubernetes`` / ``kubernetesV2``."""

    def __init__(
        self,
        config: SysConfig,
        api: KubeApi | None = None,
        *,
        cache_settings: CacheSettings | None = None,
    ) -> None:
        teraslice = config.teraslice
        self.config = config
        self.clustering_type: str = teraslice.cluster_manager_type
        self.executions_survive_master = True
        self.namespace = teraslice.kubernetes_namespace
        self.api = api or KubeApi(ApiSettings(namespace=self.namespace), load_client_configuration())
        self.instance = cluster_name_label(teraslice.name)
        settings = cache_settings or CacheSettings(
            resync=max(60.0, teraslice.node_state_interval / 1000 * 12),
            poll_delay=teraslice.kubernetes_api_poll_delay / 1000,
        )
        self._caches = {
            kind: ObjectCache(self.api, kind, cluster_selector(teraslice.name), settings, self._on_change)
            for kind in (Kind.POD, Kind.JOB, Kind.DEPLOYMENT)
        }
        self._listener: EventListener | None = None
        self._lock = threading.Lock()
        self._last_event: dict[str, tuple[EventKind, str]] = {}
        #: Ex ids whose objects this backend deleted and that the API server may still list
        #: (ReplicaSets and Services are not cached; the caches may lag): see execution_ids().
        self._deleting: set[str] = set()
        #: ex_id -> the last StartState reported, while some pod of the execution waits.
        self._start_states: dict[str, StartState] = {}
        self._report_lock = threading.Lock()
        self._started = False
        #: Each pod's asset ids for the cluster state, decoded from its EX once.
        self._pod_assets = PodAssetIds()

    # ------------------------------------------------------------------------------ lifecycle

    def start(self, listener: EventListener) -> None:
        """Start the pod / Job / Deployment caches (one list + watch each) and report events."""
        self._listener = listener
        self._started = True  # before the threads: their callbacks read the caches, not the API
        for cache in self._caches.values():
            cache.start()
        deadline = time.monotonic() + INITIAL_SYNC_TIMEOUT
        for cache in self._caches.values():
            if not cache.wait_synced(max(0.0, deadline - time.monotonic())):
                log.warning("the %s cache is not synced yet; it keeps retrying", cache.kind.value)

    def close(self) -> None:
        """Stop observing and release the API connection pool (objects stay in the cluster)."""
        for cache in self._caches.values():
            cache.stop()
        self.api.close()

    # ------------------------------------------------------------------------------ start

    def allocate_controller(self, execution: Mapping[str, Any]) -> ControllerAddress:
        """Check the worker ConfigMap, create the controller Job and its Service (owned by the Job).

        Returns the Service's ``<name>.<namespace>`` and port 45680. If the Service cannot be
        created, the Job is deleted again before the error propagates.
        """
        ex_id = str(execution["ex_id"])
        self._check_config_map()
        job = self._create_or_adopt(render_controller_job(execution, self.config), ex_id)
        try:
            owner = OwnerRef(job["metadata"]["name"], job["metadata"]["uid"])
            service = self._create_or_adopt(render_controller_service(execution, self.config, owner), ex_id)
        except Exception:
            self._delete_quietly(Kind.JOB, job["metadata"]["name"])
            raise
        return ControllerAddress(f"{service['metadata']['name']}.{self.namespace}", SLICER_PORT)

    def allocate_workers(self, execution: Mapping[str, Any]) -> None:
        """Create the worker Deployment, owned by this execution's controller Job."""
        ex_id = str(execution["ex_id"])
        jobs = self.api.list(Kind.JOB, self._selector(CONTROLLER, ex_id)).items
        live = [j for j in jobs if not j["metadata"].get("deletionTimestamp")]
        if len(live) != 1:
            raise BackendError(
                f"expected one execution controller Job for execution {ex_id} in namespace "
                f'"{self.namespace}", found {len(live)}; was allocate_controller called?'
            )
        job = live[0]
        uid = job["metadata"].get("uid")
        if not uid:
            raise BackendError(f'the controller Job "{job["metadata"]["name"]}" has no metadata.uid')
        owner = OwnerRef(job["metadata"]["name"], uid)
        self._create_or_adopt(render_worker_deployment(execution, self.config, owner), ex_id)

    # ------------------------------------------------------------------------------ stop/scale

    def stop_execution(self, ex_id: str, *, force: bool = False) -> None:
        """Delete the execution's objects; already-gone objects are fine.

        Normal (Teraslice's): one delete, the controller Job with Background propagation; the
        garbage collector removes its pod and, through their owner references, the Service and
        the worker Deployment (-> ReplicaSet -> pods). Should the collector not do so within
        ``shutdown_timeout``, the master's stop flow deletes what is left by force
        (``Lifecycle.check_stops``). Force: worker pods, ReplicaSets, Deployments, controller
        pods, Services, Jobs, each with a 1 s grace period (Teraslice's order). Every listed object is
        attempted even if one deletion fails; the first failure is raised at the end.
        """
        if force:
            steps = [
                (Kind.POD, WORKER),
                (Kind.REPLICA_SET, WORKER),
                (Kind.DEPLOYMENT, WORKER),
                (Kind.POD, CONTROLLER),
                (Kind.SERVICE, CONTROLLER),
                (Kind.JOB, CONTROLLER),
            ]
            grace: int | None = 1
        else:
            steps = [(Kind.JOB, CONTROLLER)]
            grace = None
        with self._lock:
            self._deleting.add(ex_id)
        errors: list[KubeError] = []
        for kind, component in steps:
            try:
                items = self.api.list(kind, self._selector(component, ex_id)).items
            except KubeError as e:
                errors.append(e)
                continue
            for item in items:
                try:
                    self.api.delete(
                        kind, item["metadata"]["name"], propagation="Background", grace_period=grace
                    )
                except KubeError as e:
                    errors.append(e)
        if errors:
            raise BackendError(
                f"stopping execution {ex_id} left objects behind: {errors[0]}"
                + (f" (and {len(errors) - 1} more errors)" if len(errors) > 1 else "")
            ) from errors[0]

    def scale_workers(self, ex_id: str, action: ScaleAction, count: int) -> int:
        """Patch the worker Deployment's replicas; refuses totals below 0."""
        check_worker_count(count)
        sel = self._selector(WORKER, ex_id)
        deployments = self.api.list(Kind.DEPLOYMENT, sel).items
        if len(deployments) != 1:
            raise BackendError(
                f"expected one worker Deployment matching {sel} in namespace "
                f'"{self.namespace}", found {len(deployments)}'
            )
        deployment = deployments[0]
        current = int((deployment.get("spec") or {}).get("replicas") or 0)
        total = new_worker_total(ex_id, current, action, count)
        self.api.patch_replicas(deployment["metadata"]["name"], total)
        return total

    # ------------------------------------------------------------------------------ observation

    def execution_ids(self) -> set[str]:
        """Ex ids with any object of this cluster left: a pod (Terminating ones included), Job
        or Deployment in the watch caches, and for executions this backend stopped, whatever
        the API server still lists (ReplicaSets, Services, objects the caches have not caught
        up with; objects with a ``deletionTimestamp`` count as still there).

        The caches cost no API call (before :meth:`start`, three list calls: the master's
        reconciliation may run before observing starts); each stopped execution the caches no
        longer show costs one list per kind until the API server lists nothing of it.
        """
        ids = self._cached_ids()
        with self._lock:
            deleting = sorted(self._deleting - ids)
        for ex_id in deleting:
            try:
                left = self._objects_left(ex_id)
            except KubeError as e:
                log.warning("could not check what is left of execution %s: %s", ex_id, e)
                left = ["(unknown)"]
            if left:
                ids.add(ex_id)
            else:
                with self._lock:
                    self._deleting.discard(ex_id)
        return ids

    def _cached_ids(self) -> set[str]:
        ids: set[str] = set()
        for cache in self._caches.values():
            for obj in self._items(cache):
                ex_id = _labels(obj).get(EX_ID_LABEL)
                if ex_id:
                    ids.add(ex_id)
        return ids

    def _objects_left(self, ex_id: str) -> list[str]:
        """``Kind/name`` of every object of the execution the API server lists (one list per
        kind, selected by the execution id label)."""
        selector = f"{EX_ID_LABEL}={label_value(ex_id)}"
        left = []
        for kind in (Kind.POD, Kind.JOB, Kind.DEPLOYMENT, Kind.REPLICA_SET, Kind.SERVICE):
            for item in self.api.list(kind, selector).items:
                left.append(f"{kind.value}/{item['metadata']['name']}")
        return left

    def api_calls(self) -> dict[tuple[str, str], int]:
        """Kubernetes API requests this backend sent, by ``(verb, resource)`` (``/metrics``)."""
        return self.api.calls()

    def cluster_state(self) -> dict[str, Any]:
        """Teraslice's ``kubernetesV2`` cluster state from the pod cache (a pod list before
        :meth:`start`); a controller's or worker's ``assets`` are its execution's asset ids."""
        return self._pod_assets.cluster_state(self._items(self._caches[Kind.POD]))

    #: ``state_version`` is an attribute read (no lock, no I/O): the API may call it on its
    #: event loop and answer a cached ``/cluster/state`` without a thread-pool hop.
    state_version_is_local = True

    def state_version(self) -> Hashable:
        """Changes whenever :meth:`cluster_state` may (the pod cache's change count); before
        :meth:`start` a fresh object, so a listing is never reused."""
        return self._caches[Kind.POD].generation if self._started else object()

    # ------------------------------------------------------------------------------ controller

    def call_controller(
        self,
        execution: Mapping[str, Any],
        method: str,
        path: str,
        params: Mapping[str, str],
        timeout: float,
    ) -> dict[str, Any]:
        """The controller's HTTP interface through the API server's service proxy.

        The Service is the first label of ``slicer_hostname`` (``<service>.<namespace>``, as
        :meth:`allocate_controller` returned it), else the name rendered for the execution; the
        port is ``slicer_port`` (45680 by default). One attempt, for ``GET`` too: ``timeout``
        must bound the call, and a controller without a ready endpoint (503) is normal while it
        starts; the master's next call is the retry. A ``POST`` is never repeated.
        """
        ex_id = execution.get("ex_id", "?")
        hostname = str(execution.get("slicer_hostname") or "")
        service = hostname.split(".", 1)[0] if hostname else execution_names(execution).service
        port = int(execution.get("slicer_port") or SLICER_PORT)
        what = (
            f"{method} {path} on the execution controller of {ex_id} through the API server's "
            f'service proxy (Service "{service}" port {port} in namespace "{self.namespace}")'
        )
        try:
            data = self.api.proxy_service(
                service, port, method, path, params=params, timeout=timeout, attempts=1
            )
        except (KubeError, ValueError) as e:
            raise BackendError(f"{what} failed: {e}") from e
        try:
            body = json.loads(data)
        except ValueError as e:
            raise BackendError(f"{what} answered a non-JSON body {data[:200]!r}") from e
        if not isinstance(body, dict):
            raise BackendError(f"{what} answered {type(body).__name__}, not an object")
        return body

    # ------------------------------------------------------------------------------ internals

    def _items(self, cache: ObjectCache) -> list[dict[str, Any]]:
        if not self._started:
            cache.relist()  # not observing (no start()): read the current state now
        return cache.items()

    def _selector(self, component: Component, ex_id: str) -> str:
        return selector_for(component, ex_id)

    def _check_config_map(self) -> None:
        name = self.config.teraslice.kubernetes_config_map_name
        try:
            self.api.get(Kind.CONFIG_MAP, name)
        except NotFound as e:
            raise BackendError(
                f'the worker ConfigMap "{name}" (teraslice.kubernetes_config_map_name) does not '
                f'exist in namespace "{self.namespace}"; create it (the Helm chart does) or fix '
                "the setting"
            ) from e

    def _create_or_adopt(self, body: Mapping[str, Any], ex_id: str) -> dict[str, Any]:
        kind = Kind(body["kind"])
        name = body["metadata"]["name"]
        try:
            return self.api.create(body)
        except AlreadyExists as e:
            existing = self.api.get(kind, name)
            labels = _labels(existing)
            same_ex = labels.get(EX_ID_LABEL) == label_value(ex_id)
            # The Service carries no instance label in Teraslice's shape: absent counts as ours.
            same_cluster = labels.get(INSTANCE_LABEL, self.instance) == self.instance
            ours = same_ex and same_cluster
            if ours and not existing["metadata"].get("deletionTimestamp"):
                log.info('adopting the existing %s "%s" of execution %s', kind.value, name, ex_id)
                return existing
            if ours:
                message = (
                    f'{kind.value} "{name}" of execution {ex_id} is still being deleted in namespace '
                    f'"{self.namespace}"; start again when Kubernetes has removed it'
                )
            else:
                message = (
                    f'{kind.value} "{name}" already exists in namespace "{self.namespace}" and belongs '
                    f"to execution {labels.get(EX_ID_LABEL, '?')} of cluster "
                    f"{labels.get(INSTANCE_LABEL, '?')}, not to execution {ex_id} of cluster "
                    f"{self.instance}; delete it or wait for Kubernetes to remove it"
                )
            raise BackendError(message) from e

    def _delete_quietly(self, kind: Kind, name: str) -> None:
        try:
            self.api.delete(kind, name, propagation="Background")
        except KubeError as e:
            log.error('could not delete %s "%s" after a failed start: %s', kind.value, name, e)

    def _on_change(self, kind: Kind, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if self._listener is None:
            return  # not observing yet (a relist of a backend that was not started)
        obj = new if new is not None else old
        assert obj is not None
        ex_id = _labels(obj).get(EX_ID_LABEL)
        if not ex_id:
            return  # the master pod, or a foreign object
        if new is None:
            # The caches only: no API call on the watch thread (the master's stop check asks
            # execution_ids(), which also looks at what the caches do not hold).
            if ex_id not in self._cached_ids():
                with self._lock:
                    self._start_states.pop(ex_id, None)
                self._emit(BackendEvent(ex_id, EventKind.GONE))
                return
        else:
            event = observe(kind, new)
            if event is not None:
                self._emit(BackendEvent(ex_id, event[0], event[1]))
        if kind in (Kind.POD, Kind.JOB):  # the Job: allocated_at (its cache may sync last)
            self._report_start(ex_id)

    def _report_start(self, ex_id: str) -> None:
        """Send a ``PENDING`` event if the execution's start state changed while a pod waits,
        or if nothing waits any more after something did. Serialised (the pod and Job cache
        threads both call this), so an execution's snapshots reach the listener in order."""
        with self._report_lock:
            state = self._start_state(ex_id)
            with self._lock:
                last = self._start_states.get(ex_id)
                if last is not None and state.allocated_at is None:
                    # Allocation time stays what it was when the Job goes (stop, GC).
                    state = dataclasses.replace(state, allocated_at=last.allocated_at)
                if state == last or (not state.waiting and last is None):
                    return
                if state.waiting:
                    self._start_states[ex_id] = state
                else:
                    del self._start_states[ex_id]
            listener = self._listener
            if listener is not None:
                reason = state.waiting[0].reason if state.waiting else ""
                listener(BackendEvent(ex_id, EventKind.PENDING, reason, start=state))

    def _start_state(self, ex_id: str) -> StartState:
        return start_state(ex_id, self._caches[Kind.POD].items(), self._caches[Kind.JOB].items())

    def _emit(self, event: BackendEvent) -> None:
        with self._lock:
            key = (event.kind, event.reason)
            if self._last_event.get(event.ex_id) == key:
                return
            self._last_event[event.ex_id] = key
        listener = self._listener
        if listener is not None:
            listener(event)
