"""The parts of a Kubernetes cluster the emulator lacks, for tests that run a whole master on it.

:class:`Kubelet` watches the emulator's objects (bounded polling of its store, every ``tick``
seconds) and plays:

- the Job controller and the kubelet: one ``Running`` controller pod per controller Job, running a
  real in-process :class:`~teraslice_k8s.runtime.execution_controller.ExecutionController` on the
  execution decoded from the Job's ``EX`` env var and on its own store connection (as the pod
  would); a controller that exits by itself marks its pod ``Succeeded`` and the Job ``Complete``;
- the Deployment controller: ``replicas`` ``Running`` worker pods per worker Deployment (no worker
  process: the controllers here start without workers);
- the garbage collector with graceful termination: the pods of a deleted Job or Deployment get a
  ``deletionTimestamp`` (Terminating, still listed), the controller gets its SIGTERM
  (``request_shutdown``), and the pod object is removed only once the controller has exited
  (worker pods one tick later). A pod deleted through the API (force stop) kills its controller.

Controllers run on one asyncio loop in a background thread. ``on_step(ex_id)`` may return the
controller's start-up hook (see ``ExecutionController(on_step=...)``) to inject a stop at a step.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import datetime
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from support.k8s_emulator import EmulatorThread
from teraslice_k8s.runtime.execution_controller import ExecutionController
from teraslice_k8s.runtime.settings import RuntimeSettings, decode_execution
from teraslice_k8s.store.sqlite import SqliteStore

COMPONENT = "app.kubernetes.io/component"
EX_ID = "teraslice.terascope.io/exId"
StepHook = Callable[[str], Awaitable[None]]


def _now() -> str:
    return datetime.datetime.now(tz=datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class _Controller:
    ex_id: str
    pod: str
    job: str
    controller: ExecutionController
    store: SqliteStore
    future: Any = None
    terminating: bool = False


@dataclass
class Kubelet:
    emulator: EmulatorThread
    namespace: str
    store_path: Path
    settings: RuntimeSettings
    on_step: Callable[[str], StepHook | None] = lambda ex_id: None
    tick: float = 0.02
    #: ex_ids of every controller started, in order
    started: list[str] = field(default_factory=list)
    errors: list[BaseException] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._controllers: dict[str, _Controller] = {}  # by pod name
        self._jobs_seen: set[str] = set()  # Job uids that got their pod (no restarts here)
        self._workers: dict[str, str] = {}  # worker pod -> Deployment
        self._stop = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._loop_thread = threading.Thread(target=self._loop.run_forever, name="kubelet-loop", daemon=True)
        self._thread = threading.Thread(target=self._run, name="kubelet", daemon=True)

    def __enter__(self) -> Kubelet:
        self._loop_thread.start()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)
        for entry in list(self._controllers.values()):
            self._loop.call_soon_threadsafe(entry.controller.request_shutdown)
            if entry.future is not None:
                with contextlib.suppress(BaseException):
                    entry.future.result(10)
            entry.store.close()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._loop_thread.join(10)
        self._loop.close()

    def running_controllers(self) -> list[str]:
        """Ex ids whose controller has not exited yet."""
        return [e.ex_id for e in self._controllers.values() if not (e.future and e.future.done())]

    # ------------------------------------------------------------------ the loop

    def _run(self) -> None:
        while not self._stop.wait(self.tick):
            try:
                self._sync()
            except BaseException as error:  # surfaced by the test through .errors
                self.errors.append(error)

    def _sync(self) -> None:
        objects = self.emulator.objects()
        jobs = {
            name: o
            for (res, ns, name), o in objects.items()
            if res == "batch/v1/jobs" and ns == self.namespace
        }
        deployments = {
            name: o
            for (res, ns, name), o in objects.items()
            if res == "apps/v1/deployments" and ns == self.namespace
        }
        pods = {
            name: o for (res, ns, name), o in objects.items() if res == "v1/pods" and ns == self.namespace
        }
        # Garbage collector + graceful termination of controller pods.
        for pod_name, entry in list(self._controllers.items()):
            done = entry.future is not None and entry.future.done()
            if pod_name not in pods:  # deleted through the API (force stop): killed
                if not done:
                    self._loop.call_soon_threadsafe(entry.controller.request_shutdown)
                    self._wait(entry)
                self._forget(pod_name)
                continue
            if entry.job not in jobs and not entry.terminating:
                entry.terminating = True
                self.emulator.apply(
                    "v1/pods", self.namespace, {"metadata": {"name": pod_name, "deletionTimestamp": _now()}}
                )
                self._loop.call_soon_threadsafe(entry.controller.request_shutdown)
            elif done and entry.terminating:
                self.emulator.remove("v1/pods", self.namespace, pod_name)
                self._forget(pod_name)
            elif (
                done
                and not entry.terminating
                and entry.job in jobs
                and pods[pod_name].get("status", {}).get("phase") == "Running"
            ):
                self._exited_by_itself(entry)
        # Job controller + kubelet: a pod running a controller per new Job (after the GC pass,
        # which works on the snapshot taken before these pods existed).
        for name, job in jobs.items():
            pod_name = f"{name}-pod"
            uid = job["metadata"].get("uid", name)
            if uid not in self._jobs_seen and not job["metadata"].get("deletionTimestamp"):
                self._jobs_seen.add(uid)
                self._start_controller(name, pod_name, job)
        # Deployment controller + GC of worker pods.
        for name, deployment in deployments.items():
            wanted = int(deployment.get("spec", {}).get("replicas") or 0)
            have = [p for p, d in self._workers.items() if d == name]
            for i in range(len(have), wanted):
                if not self._create_pod(f"{name}-w{i}", deployment, "apps/v1/deployments"):
                    break
                self._workers[f"{name}-w{i}"] = name
        for pod_name, owner in list(self._workers.items()):
            if owner in deployments:
                continue
            pod = pods.get(pod_name)
            if pod is None:
                del self._workers[pod_name]
            elif pod["metadata"].get("deletionTimestamp"):
                self.emulator.remove("v1/pods", self.namespace, pod_name)  # terminated after a tick
                del self._workers[pod_name]
            else:
                self.emulator.apply(
                    "v1/pods", self.namespace, {"metadata": {"name": pod_name, "deletionTimestamp": _now()}}
                )

    def _create_pod(self, name: str, owner: dict[str, Any], owner_resource: str) -> bool:
        """Create a Running pod from ``owner``'s template, unless the owner was deleted since
        this tick's snapshot (the pod would never exist for real: the garbage collector
        removes it). True if it was created."""
        template = owner["spec"]["template"]
        meta = owner["metadata"]
        return self.emulator.create_if_owner_lives(
            "v1/pods",
            self.namespace,
            {
                "metadata": {"name": name, "labels": copy.deepcopy(template["metadata"]["labels"])},
                "spec": copy.deepcopy(template["spec"]),
                "status": {"phase": "Running", "hostIP": "10.0.0.1", "podIP": "10.1.0.1"},
            },
            (owner_resource, meta["name"], meta.get("uid", "")),
        )

    def _start_controller(self, job_name: str, pod_name: str, job: dict[str, Any]) -> None:
        container = job["spec"]["template"]["spec"]["containers"][0]
        env = {e["name"]: e.get("value", "") for e in container.get("env", []) if "name" in e}
        execution = decode_execution(env)
        ex_id = str(execution["ex_id"])
        if not self._create_pod(pod_name, job, "batch/v1/jobs"):
            return  # the Job was deleted since this tick's snapshot: no pod, no controller
        store = SqliteStore(self.store_path, synchronous="NORMAL")
        controller = ExecutionController(
            execution, store, self.settings, host="127.0.0.1", port=_free_port(), on_step=self.on_step(ex_id)
        )
        entry = _Controller(ex_id, pod_name, job_name, controller, store)
        self._controllers[pod_name] = entry
        self.started.append(ex_id)
        entry.future = asyncio.run_coroutine_threadsafe(controller.run(handle_signals=False), self._loop)

    def _exited_by_itself(self, entry: _Controller) -> None:
        self.emulator.apply(
            "v1/pods", self.namespace, {"metadata": {"name": entry.pod}, "status": {"phase": "Succeeded"}}
        )
        self.emulator.apply(
            "batch/v1/jobs",
            self.namespace,
            {
                "metadata": {"name": entry.job},
                "status": {"conditions": [{"type": "Complete", "status": "True"}]},
            },
        )

    def _wait(self, entry: _Controller) -> None:
        try:
            code = entry.future.result(30)
            if code != 0:
                self.errors.append(AssertionError(f"controller of {entry.ex_id} exited with {code}"))
        except BaseException as error:
            self.errors.append(error)

    def _forget(self, pod_name: str) -> None:
        entry = self._controllers.pop(pod_name)
        if entry.future is not None and entry.future.done():
            self._wait(entry)
        entry.store.close()
