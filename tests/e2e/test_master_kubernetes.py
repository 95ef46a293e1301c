"""End to end on the Kubernetes emulator: the master (kubernetes backend) runs a job to
``completed`` while a harness plays the kubelet.

The harness watches the emulator's Jobs and Deployments (the same list + watch cache the backend
uses). For each controller Job / worker replica it injects a ``Running`` pod and starts the pod's
container locally (``python -m teraslice_k8s.runtime``) with the pod's env (``EX``,
``NODE_TYPE``, ``POD_IP=127.0.0.1``) and the cluster config as ``TERAFOUNDATION_CONFIG`` (the
ConfigMap mount). Cluster DNS is played by rewriting the workers' ``EX``: ``slicer_hostname`` ->
``127.0.0.1`` and ``slicer_port`` -> the controller's local port. When a process exits the
harness reports it (pod ``Succeeded``/``Failed``, Job ``Complete``/``Failed``); when the
master deletes a Job or Deployment it plays the garbage collector (processes terminated, pods
removed).
"""

from __future__ import annotations

import base64
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from support.k8s_emulator import EmulatorThread
from support.k8s_fixtures import k8s_emulator
from teraslice_k8s.kubernetes.api import ApiSettings, Kind, KubeApi, load_client_configuration
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.state import CacheSettings, ObjectCache
from teraslice_k8s.master.server import MasterServer, build_service
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.models.config import SysConfig, load_config
from teraslice_k8s.store.base import SliceFilter
from teraslice_k8s.store.sqlite import SqliteStore

__all__ = ["k8s_emulator"]

pytestmark = pytest.mark.slow

NAMESPACE = "ts-e2e"
CLUSTER = "e2e"
EX_ID_LABEL = "teraslice.terascope.io/exId"
COMPONENT_LABEL = "app.kubernetes.io/component"
#: Bound on every wait of this test (process start-up included), not a sleep.
TIMEOUT = 120.0
FAST_CACHE = CacheSettings(resync=300.0, poll_delay=0.05, watch_timeout=5.0)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def decode_ex(value: str) -> dict[str, Any]:
    decoded: dict[str, Any] = json.loads(base64.b64decode(value))
    return decoded


def encode_ex(execution: dict[str, Any]) -> str:
    return base64.b64encode(json.dumps(execution).encode()).decode()


class Kubelet:
    """Plays kubelet, DNS and garbage collector for the emulator (see the module docstring)."""

    def __init__(self, emulator: EmulatorThread, config_path: Path, logs: Path) -> None:
        self.emulator = emulator
        self.config_path = config_path
        self.logs = logs
        self.api = KubeApi(ApiSettings(namespace=NAMESPACE), load_client_configuration(host=emulator.url))
        self.cond = threading.Condition()
        self.processes: dict[str, subprocess.Popen[bytes]] = {}  # pod name -> process
        self.owner: dict[str, str] = {}  # pod name -> Job/Deployment name
        self.controller_port: dict[str, int] = {}  # ex_id -> local port of its controller
        self.exit_codes: dict[str, int] = {}
        selector = f"app.kubernetes.io/instance={CLUSTER}"
        self.caches = [
            ObjectCache(self.api, Kind.JOB, selector, FAST_CACHE, self.on_change),
            ObjectCache(self.api, Kind.DEPLOYMENT, selector, FAST_CACHE, self.on_change),
            ObjectCache(
                self.api, Kind.SERVICE, selector, CacheSettings(poll_delay=0.1, watch=False), self.on_change
            ),
        ]

    def start(self) -> None:
        for cache in self.caches:
            cache.start()
            assert cache.wait_synced(TIMEOUT)

    def close(self) -> None:
        for cache in self.caches:
            cache.stop()
        for pod in list(self.processes):
            self.kill(pod)
        self.api.close()

    # -- what the kubelet sees -------------------------------------------------------------

    def on_change(self, kind: Kind, old: dict[str, Any] | None, new: dict[str, Any] | None) -> None:
        if kind is Kind.JOB and new is not None and old is None:
            self.run_pod(new, "execution_controller", 0)
        elif kind is Kind.DEPLOYMENT and new is not None:
            for index in range(int(new["spec"].get("replicas") or 0)):
                self.run_pod(new, "worker", index)
        elif new is None and old is not None and kind is not Kind.SERVICE:
            self.collect(old["metadata"]["name"])
        with self.cond:
            self.cond.notify_all()

    def run_pod(self, owner: dict[str, Any], component: str, index: int) -> None:
        owner_name = owner["metadata"]["name"]
        pod_name = f"{owner_name}-{index}"
        with self.cond:
            if pod_name in self.processes:
                return
        template = owner["spec"]["template"]
        if not template["spec"].get("containers"):
            return  # not a pod template the master rendered (a test's stray object)
        container = template["spec"]["containers"][0]
        env = {e["name"]: e["value"] for e in container.get("env", []) if "value" in e}
        execution = decode_ex(env["EX"])
        ex_id = execution["ex_id"]
        env.update(
            {
                "POD_IP": "127.0.0.1",
                "TERAFOUNDATION_CONFIG": str(self.config_path),
                "PYTHONUNBUFFERED": "1",
            }
        )
        if component == "execution_controller":
            port = free_port()
            with self.cond:
                self.controller_port[ex_id] = port
            env["TERASLICE_SLICER_PORT"] = str(port)
        else:
            # Cluster DNS: the Service name resolves to the controller's local address. The
            # Deployment can be seen before the Job (two watches): wait for the controller.
            with self.cond:
                assert self.cond.wait_for(lambda: ex_id in self.controller_port, TIMEOUT)
                port = self.controller_port[ex_id]
            env["EX"] = encode_ex({**execution, "slicer_hostname": "127.0.0.1", "slicer_port": port})
        self.emulator.apply(
            "v1/pods",
            NAMESPACE,
            {
                "metadata": {"name": pod_name, "labels": dict(template["metadata"]["labels"])},
                "spec": {"containers": [{"name": container["name"], "image": container["image"]}]},
                "status": {"phase": "Running", "hostIP": "10.0.0.7", "podIP": "127.0.0.1"},
            },
        )
        log = (self.logs / f"{pod_name}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "teraslice_k8s.runtime"],
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
        log.close()
        with self.cond:
            self.processes[pod_name] = process
            self.owner[pod_name] = owner_name
        threading.Thread(
            target=self.report_exit,
            args=(pod_name, owner, component, container["name"], process),
            daemon=True,
        ).start()

    def report_exit(
        self,
        pod: str,
        owner: dict[str, Any],
        component: str,
        container: str,
        process: subprocess.Popen[bytes],
    ) -> None:
        code = process.wait()
        if code < 0:  # killed by a signal: Kubernetes reports 128 + the signal number
            code = 128 - code
        with self.cond:
            self.exit_codes[pod] = code
            collected = pod not in self.processes
        if not collected:
            self.emulator.apply(
                "v1/pods",
                NAMESPACE,
                {
                    "metadata": {"name": pod},
                    "status": {
                        "phase": "Succeeded" if code == 0 else "Failed",
                        "containerStatuses": [
                            {"name": container, "state": {"terminated": {"exitCode": code}}}
                        ],
                    },
                },
            )
            if component == "execution_controller" and code == 0:
                status = {"succeeded": 1, "conditions": [{"type": "Complete", "status": "True"}]}
                self.emulator.apply(
                    "batch/v1/jobs",
                    NAMESPACE,
                    {"metadata": {"name": owner["metadata"]["name"]}, "status": status},
                )
        with self.cond:
            self.cond.notify_all()

    def collect(self, owner_name: str) -> None:
        """Garbage collection of a deleted owner's pods."""
        with self.cond:
            pods = [p for p, o in self.owner.items() if o == owner_name]
        for pod in pods:
            self.kill(pod)
            self.emulator.remove("v1/pods", NAMESPACE, pod)

    def kill(self, pod: str) -> None:
        with self.cond:
            process = self.processes.pop(pod, None)
        if process is not None and process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def objects_of(self, ex_id: str) -> list[tuple[str, str]]:
        return [
            (resource, name)
            for (resource, _, name), obj in self.emulator.objects().items()
            if obj.get("metadata", {}).get("labels", {}).get(EX_ID_LABEL) == ex_id
        ]

    def wait_gone(self, ex_id: str) -> list[tuple[str, str]]:
        """Wait (bounded) until no object of ``ex_id`` is left; woken by every change the
        harness sees, and re-checking every 0.2 s for changes it does not watch (pods)."""
        deadline = time.monotonic() + TIMEOUT
        with self.cond:
            while self.objects_of(ex_id) and time.monotonic() < deadline:
                self.cond.wait(0.2)
        return self.objects_of(ex_id)


@pytest.fixture
def cluster_config(tmp_path: Path) -> tuple[SysConfig, Path]:
    path = tmp_path / "teraslice.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "teraslice": {
                    "name": CLUSTER,
                    "cluster_manager_type": "kubernetesV2",
                    "kubernetes_namespace": NAMESPACE,
                    "shutdown_timeout": 30_000,
                    "slicer_timeout": 60_000,
                    "storage": {"type": "sqlite", "path": str(tmp_path / "state.sqlite")},
                }
            }
        ),
        encoding="utf-8",
    )
    return load_config(path), path


@pytest.fixture
def kubelet(
    k8s_emulator: EmulatorThread, cluster_config: tuple[SysConfig, Path], tmp_path: Path
) -> Iterator[Kubelet]:
    k8s_emulator.apply("v1/configmaps", NAMESPACE, {"metadata": {"name": "teraslice-worker"}, "data": {}})
    (tmp_path / "logs").mkdir()
    harness = Kubelet(k8s_emulator, cluster_config[1], tmp_path / "logs")
    harness.start()
    yield harness
    harness.close()


def start_master(emulator: EmulatorThread, config: SysConfig) -> tuple[MasterService, MasterServer, str]:
    """A master process's worth of objects: store, Kubernetes backend, service, HTTP server."""
    api = KubeApi(ApiSettings(namespace=NAMESPACE), load_client_configuration(host=emulator.url))
    service = build_service(
        config,
        store=SqliteStore(config.teraslice.storage.path),
        backend=KubernetesBackend(config, api, cache_settings=FAST_CACHE),
    )
    server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
    service.start()
    return service, server, server.start()


@pytest.fixture
def master(
    k8s_emulator: EmulatorThread, cluster_config: tuple[SysConfig, Path], kubelet: Kubelet
) -> Iterator[tuple[MasterService, str]]:
    service, server, url = start_master(k8s_emulator, cluster_config[0])
    yield service, url
    server.stop()
    service.close()


def poll_until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> bool:
    """Re-check ``predicate`` every 50 ms until it holds (True) or ``timeout`` passes (False)."""
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() > deadline:
            return False
        tick.wait(0.05)
    return True


def dump_logs(logs: Path) -> str:
    return "\n".join(
        f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in sorted(logs.glob("*.log"))
    )


def test_job_runs_to_completed_and_the_master_cleans_up(
    master: tuple[MasterService, str], kubelet: Kubelet, k8s_emulator: EmulatorThread
) -> None:
    service, url = master
    job = {
        "name": "e2e-generator",
        "lifecycle": "once",
        "workers": 2,
        "operations": [{"_op": "data_generator", "size": 1000, "slice_size": 100}, {"_op": "noop"}],
    }
    response = httpx.post(f"{url}/v1/jobs", json=job, timeout=30)
    assert response.status_code == 200, response.text
    ex_id = response.json()["ex_id"]

    execution = service.lifecycle.wait_terminal(ex_id, TIMEOUT)
    assert execution["_status"] == "completed", (execution.get("_failureReason"), dump_logs(kubelet.logs))

    # Slice states: 10 slices of 100 records, all completed, none failed.
    store = service.store
    slices = store.list_slices(SliceFilter(ex_id=ex_id))
    assert len(slices) == 10
    assert {s["state"] for s in slices} == {"completed"}
    assert store.count_slices(SliceFilter(ex_id=ex_id, states=("error",))) == 0
    assert execution["_slicer_stats"]["processed"] == 10
    assert execution["_slicer_stats"]["failed"] == 0
    assert execution["_has_errors"] is False

    # The master removed every object of the execution (Job, Service, Deployment, pods).
    assert kubelet.wait_gone(ex_id) == []
    assert kubelet.exit_codes[next(p for p in kubelet.exit_codes if p.startswith("ts-exc-"))] == 0

    # And the API reports it like Teraslice.
    status = httpx.get(f"{url}/v1/jobs/{execution['job_id']}/ex", timeout=30).json()
    assert (status["ex_id"], status["_status"]) == (ex_id, "completed")


def test_persistent_job_stopped_through_the_api(
    master: tuple[MasterService, str], kubelet: Kubelet, k8s_emulator: EmulatorThread
) -> None:
    service, url = master
    job = {
        "name": "e2e-persistent",
        "lifecycle": "persistent",
        "workers": 1,
        "operations": [{"_op": "data_generator", "size": 50}, {"_op": "noop"}],
    }
    ids = httpx.post(f"{url}/v1/jobs", json=job, timeout=30).json()
    ex_id = ids["ex_id"]
    # The controller (another process) writes `running` and slice states to the store; there is
    # no event for that, so re-read the store, bounded.
    assert poll_until(
        lambda: service.store.count_slices(SliceFilter(ex_id=ex_id, states=("completed",))) > 0
    ), (
        service.store.get_execution(ex_id),
        dump_logs(kubelet.logs),
    )
    assert service.store.get_execution(ex_id)["_status"] == "running"

    response = httpx.post(f"{url}/v1/jobs/{ids['job_id']}/_stop", timeout=TIMEOUT)
    assert response.json() == {"status": "stopped"}, dump_logs(kubelet.logs)
    assert service.store.get_execution(ex_id)["_status"] == "stopped"
    assert kubelet.wait_gone(ex_id) == []


def test_killed_controller_fails_the_execution_with_the_kubernetes_reason(
    master: tuple[MasterService, str], kubelet: Kubelet
) -> None:
    service, url = master
    job = {
        "name": "e2e-crash",
        "lifecycle": "persistent",
        "workers": 1,
        "operations": [{"_op": "data_generator", "size": 50}, {"_op": "noop"}],
    }
    ex_id = httpx.post(f"{url}/v1/jobs", json=job, timeout=30).json()["ex_id"]
    assert poll_until(lambda: service.store.get_execution(ex_id)["_status"] == "running"), dump_logs(
        kubelet.logs
    )

    with kubelet.cond:
        controller = next(pod for pod in kubelet.processes if pod.startswith("ts-exc-"))
        process = kubelet.processes[controller]
    process.send_signal(signal.SIGKILL)  # no chance to write a status: Kubernetes must tell

    execution = service.lifecycle.wait_terminal(ex_id, TIMEOUT)
    assert execution["_status"] == "failed"
    assert execution["_failureReason"] == (
        f"pod {controller}: Failed: container {controller.rsplit('-', 1)[0]} exited with code 137"
    )
    assert execution["_has_errors"] is True
    assert kubelet.wait_gone(ex_id) == []


def test_restarted_master_adopts_running_executions_and_deletes_unknown_objects(
    k8s_emulator: EmulatorThread, cluster_config: tuple[SysConfig, Path], kubelet: Kubelet
) -> None:
    config = cluster_config[0]
    first, server, url = start_master(k8s_emulator, config)
    try:
        job = {
            "name": "e2e-restart",
            "lifecycle": "persistent",
            "workers": 1,
            "operations": [{"_op": "data_generator", "size": 50}, {"_op": "noop"}],
        }
        ex_id = httpx.post(f"{url}/v1/jobs", json=job, timeout=30).json()["ex_id"]
        assert poll_until(lambda: first.store.get_execution(ex_id)["_status"] == "running"), dump_logs(
            kubelet.logs
        )
    finally:
        server.stop()
        first.close()  # the master goes away; its execution keeps running in the cluster

    stray = {
        "metadata": {
            "name": "ts-exc-stray-00000000-0000",
            "labels": {
                "app.kubernetes.io/name": "teraslice",
                "app.kubernetes.io/instance": CLUSTER,
                COMPONENT_LABEL: "execution_controller",
                EX_ID_LABEL: "00000000-0000-4000-8000-000000000000",
            },
        },
        "spec": {"template": {"metadata": {"labels": {}}, "spec": {"containers": []}}},
    }
    k8s_emulator.apply("batch/v1/jobs", NAMESPACE, stray)

    second, server, url = start_master(k8s_emulator, config)
    try:
        assert second.store.get_execution(ex_id)["_status"] == "running"  # adopted, not failed
        assert kubelet.wait_gone("00000000-0000-4000-8000-000000000000") == []  # unknown: deleted
        stopped = httpx.post(f"{url}/v1/ex/{ex_id}/_stop", timeout=TIMEOUT).json()
        assert stopped == {"status": "stopped"}, dump_logs(kubelet.logs)
        assert kubelet.wait_gone(ex_id) == []
    finally:
        server.stop()
        second.close()
