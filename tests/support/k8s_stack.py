"""A Teraslice cluster on the real control plane for the executions / faults / API-call tests.

``with stack(cluster, namespace) as s:`` puts into ``namespace``:

- an Elasticsearch pod (the chart's image: the project's emulator on the process kubelet, the
  real image on kind) and its Service ``elasticsearch``; it holds the jobs, executions and
  slice state of every master of the stack and the records an ``elasticsearch_bulk`` writes;
- the worker ConfigMap ``teraslice-worker`` whose ``teraslice.yaml`` points the execution
  controller and worker pods at that Service (the master's config, another ES address).

Masters of the stack:

- :func:`master_in_process`: store, Kubernetes backend (admin kubeconfig), service and HTTP
  server in the test process (fast; the API module's counters are readable);
- :class:`MasterProcess`: ``python -m teraslice_k8s master`` as a child process, which a test
  can SIGKILL and start again (the "master pod killed" faults).

Controllers and workers always run as real pods (local processes on k8s-real), so records are
really processed. :func:`objects_left` lists what the API server still has of an execution.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from support.k8s_real import ELASTICSEARCH_IMAGE, REPO, Cluster, _free_port, wait_until
from teraslice_k8s.kubernetes.api import ApiSettings, Kind, KubeApi, load_client_configuration
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.state import CacheSettings
from teraslice_k8s.master.server import MasterServer, build_service
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.models.config import parse_config

EX_ID_LABEL = "teraslice.terascope.io/exId"
COMPONENT_LABEL = "app.kubernetes.io/component"
ES_IMAGE = f"{ELASTICSEARCH_IMAGE}:9.3.0"
#: Bound (seconds) on the Elasticsearch pod becoming Ready and on a master's start.
READY_TIMEOUT = 120.0
#: The master's watches end server-side after this long (then re-established: one call each).
WATCH_TIMEOUT = 30.0
#: The execution objects whose absence "nothing left" means.
EXECUTION_KINDS = (Kind.JOB, Kind.SERVICE, Kind.DEPLOYMENT, Kind.REPLICA_SET, Kind.POD)


@dataclass
class Stack:
    cluster: Cluster
    namespace: str
    #: Elasticsearch as the test process reaches it (pod IP here, a port-forward on kind).
    es_url: str
    #: The ``teraslice:`` settings every master and pod of the stack shares.
    teraslice: dict[str, Any]
    api: KubeApi = field(init=False)

    def __post_init__(self) -> None:
        self.api = admin_api(self.cluster, self.namespace)

    def config(self, es_node: str | None = None, **teraslice: Any) -> dict[str, Any]:
        """The cluster config (``es_node`` default: the test process's URL of Elasticsearch)."""
        return {
            "teraslice": {**self.teraslice, **teraslice},
            "terafoundation": {
                "log_level": "info",
                "prom_metrics_enabled": False,
                "connectors": {"elasticsearch-next": {"default": {"node": [es_node or self.es_url]}}},
            },
        }

    def es(self, method: str, path: str, body: Any = None) -> Any:
        """One request to the stack's Elasticsearch; its JSON answer."""
        response = httpx.request(method, f"{self.es_url}{path}", json=body, timeout=30)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response.json()

    def pods(self, ex_id: str, component: str) -> list[dict[str, Any]]:
        """Live (not terminating) pods of one component of ``ex_id``."""
        items = self.api.list(Kind.POD, f"{EX_ID_LABEL}={ex_id},{COMPONENT_LABEL}={component}").items
        return [p for p in items if not p["metadata"].get("deletionTimestamp")]

    def running_pods(self, ex_id: str, component: str) -> list[dict[str, Any]]:
        return [p for p in self.pods(ex_id, component) if (p.get("status") or {}).get("phase") == "Running"]


def admin_api(cluster: Cluster, namespace: str) -> KubeApi:
    return KubeApi(ApiSettings(namespace=namespace), load_client_configuration(kubeconfig=cluster.kubeconfig))


def objects_left(api: KubeApi, ex_id: str) -> list[str]:
    """``Kind/name`` of every Job, Service, Deployment, ReplicaSet and pod of ``ex_id``."""
    return [
        f"{kind.value}/{item['metadata']['name']}"
        for kind in EXECUTION_KINDS
        for item in api.list(kind, f"{EX_ID_LABEL}={ex_id}").items
    ]


def es_manifests() -> list[dict[str, Any]]:
    labels = {"app.kubernetes.io/name": "ts-test-elasticsearch"}
    env = {  # what the chart sets for its single-node Elasticsearch (ignored by the emulator)
        "discovery.type": "single-node",
        "node.store.allow_mmap": "false",
        "ES_JAVA_OPTS": "-Xms512m -Xmx512m",
        "xpack.security.enabled": "false",
        "xpack.ml.enabled": "false",
        "ingest.geoip.downloader.enabled": "false",
    }
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "elasticsearch-0", "labels": labels},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "runAsGroup": 1000,
                "fsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "elasticsearch",
                    "image": ES_IMAGE,
                    "env": [{"name": k, "value": v} for k, v in env.items()],
                    "ports": [{"name": "http", "containerPort": 9200}],
                    "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "elasticsearch", "labels": labels},
        "spec": {"selector": labels, "ports": [{"name": "http", "port": 9200, "targetPort": "http"}]},
    }
    return [pod, service]


def pod_ready(cluster: Cluster, namespace: str, pod: str) -> bool:
    out = cluster.kubectl(
        "-n", namespace, "get", "pod", pod, "-o",
        'jsonpath={.status.conditions[?(@.type=="Ready")].status}', check=False,
    )  # fmt: skip
    return out.strip() == "True"


@contextlib.contextmanager
def stack(cluster: Cluster, namespace: str, name: str = "ts-real", **teraslice: Any) -> Iterator[Stack]:
    """Elasticsearch and the worker ConfigMap in ``namespace`` (see the module docstring).

    ``teraslice`` settings go into every master's and pod's ``teraslice:`` section.
    """
    for manifest in es_manifests():
        cluster.kubectl("-n", namespace, "create", "-f", "-", stdin=json.dumps(manifest))
    wait_until(
        lambda: pod_ready(cluster, namespace, "elasticsearch-0"),
        READY_TIMEOUT,
        "the Elasticsearch pod Ready",
    )
    settings = {
        "name": name,
        "cluster_manager_type": "kubernetesV2",
        "kubernetes_namespace": namespace,
        "kubernetes_image": cluster.image,
        "assets_directory": "/app/assets",
        "storage": {"type": "elasticsearch", "connection": "default"},
        **teraslice,
    }
    with cluster.pod_url(namespace, "elasticsearch-0", 9200) as es_url:
        s = Stack(cluster, namespace, es_url, settings)
        pod_config = s.config(es_node=f"http://elasticsearch.{namespace}:9200")
        cluster.kubectl(
            "-n", namespace, "create", "configmap", "teraslice-worker",
            f"--from-literal=teraslice.yaml={yaml.safe_dump(pod_config)}",
        )  # fmt: skip
        try:
            yield s
        finally:
            s.api.close()


@contextlib.contextmanager
def assets_stack(cluster: Cluster, prefix: str, mount_path: str) -> Iterator[Stack]:
    """A :func:`stack` in a fresh namespace for tests of assets: pods unpack assets into their
    assets volume, mounted at ``mount_path`` (the master's ``assets_directory`` too). On the
    process kubelet an in-container path reaches a volume only through the env values the
    kubelet rewrites, so the worker config says ``assets_directory: ${ASSETS_DIR}`` and the
    pods' ``env_vars`` set it to the mount path."""
    with (
        cluster.namespace(prefix) as namespace,
        stack(
            cluster,
            namespace,
            shutdown_timeout=10_000,
            assets_directory="${ASSETS_DIR}",
            env_vars={"ASSETS_DIR": mount_path},
        ) as st,
    ):
        yield st


@dataclass
class InProcessMaster:
    service: MasterService
    server: MasterServer
    url: str
    http: httpx.Client

    @property
    def backend(self) -> KubernetesBackend:
        assert isinstance(self.service.backend, KubernetesBackend)
        return self.service.backend

    def close(self) -> None:
        self.http.close()
        self.server.stop()
        self.service.close()


@contextlib.contextmanager
def master_in_process(s: Stack, **teraslice: Any) -> Iterator[InProcessMaster]:
    """A master in the test process (admin kubeconfig) serving its API on a loopback port."""
    config = parse_config(s.config(**teraslice))
    api = admin_api(s.cluster, s.namespace)
    backend = KubernetesBackend(
        config, api, cache_settings=CacheSettings(resync=120.0, poll_delay=0.5, watch_timeout=WATCH_TIMEOUT)
    )
    service = build_service(config, backend=backend)
    server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
    service.start()
    master = InProcessMaster(service, server, server.start(), httpx.Client(timeout=60))
    master.http.base_url = httpx.URL(master.url)
    try:
        yield master
    finally:
        master.close()


class MasterProcess:
    """``python -m teraslice_k8s master`` with the stack's config and the admin kubeconfig.

    :meth:`start` waits until ``GET /`` answers; :meth:`kill` sends SIGKILL (no clean-up runs,
    as when a master pod is killed); :meth:`terminate` is the clean shutdown.
    """

    def __init__(self, s: Stack, workdir: Path, **teraslice: Any) -> None:
        self.stack = s
        self.port = _free_port()
        self.config_path = workdir / "master.yaml"
        self.config_path.write_text(yaml.safe_dump(s.config(**teraslice)), encoding="utf-8")
        self.log_path = workdir / "master.log"
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        self.starts += 1
        with self.log_path.open("ab") as log:
            log.write(f"---- start #{self.starts}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "teraslice_k8s", "master",
                    "--config", str(self.config_path),
                    "--kubeconfig", self.stack.cluster.kubeconfig,
                    "--host", "127.0.0.1", "--port", str(self.port),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=REPO,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )  # fmt: skip
        wait_until(self._answers, READY_TIMEOUT, f"the master answering on {self.url} (see {self.log_path})")

    def _answers(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the master exited {self.process.returncode}:\n{self.log()}")
        try:
            return httpx.get(f"{self.url}/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def get(self, path: str) -> Any:
        response = httpx.get(f"{self.url}{path}", timeout=30)
        assert response.status_code == 200, (path, response.status_code, response.text)
        return response.json()

    def post(self, path: str, body: Any = None) -> httpx.Response:
        return httpx.post(f"{self.url}{path}", json=body, timeout=60)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]


def _gone(pid: int) -> bool:
    """The process ended (a zombie counts: this machine's init reaps orphans late)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):
        return True


#: Launches of the API server before its port counts as taken for good (see ApiServer.start).
LAUNCH_ATTEMPTS = 5


class ApiServer:
    """Stops and starts the kube-apiserver of a k8s-real control plane (only the API server:
    etcd, the controller-manager, the process kubelet and every pod keep running).

    Found from the admin kubeconfig's folder (k8s-real's install: ``run/kube-apiserver.pid``,
    ``logs/``). :meth:`start` relaunches the recorded command line the way ``start.sh`` does
    (``setsid`` in the background, so ``stop.sh`` ends it as usual) and waits for ``/readyz``.
    """

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.home = Path(cluster.kubeconfig).parent
        self.pid_file = self.home / "run" / "kube-apiserver.pid"
        self.argv: list[str] = []

    @property
    def available(self) -> bool:
        return self.cluster.processes and self.pid_file.is_file()

    def stop(self) -> None:
        pid = int(self.pid_file.read_text().strip())
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        self.argv = [part.decode() for part in raw.split(b"\0") if part]
        assert self.argv and self.argv[0].endswith("kube-apiserver"), self.argv
        # SIGKILL: an outage, and immediate (a SIGTERM'd apiserver drains for a minute).
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: _gone(pid), 30, "the kube-apiserver to exit")

    def start(self) -> None:
        """Relaunch the API server and wait for ``/readyz``. A launch whose port was taken
        meanwhile is retried: while nothing listens, a client reconnecting to the port (the
        controller-manager, the kubelet) can be given that very port as its own ephemeral
        port (a TCP self-connect), and the new server then fails with "address already in use"
        until that connection is gone."""
        assert self.argv, "stop() first"
        log = self.home / "logs" / "kube-apiserver.log"
        for _attempt in range(LAUNCH_ATTEMPTS):
            offset = log.stat().st_size if log.exists() else 0
            pid = self._launch(log)
            outcome = wait_until(
                functools.partial(self._outcome, pid), 120, "the kube-apiserver /readyz", interval=0.5
            )
            if outcome == "ready":
                return
            with log.open("rb") as f:
                f.seek(offset)
                tail = f.read().decode(errors="replace")
            if "address already in use" not in tail:
                raise AssertionError(f"the kube-apiserver exited at start:\n{tail[-3000:]}")
        raise AssertionError(f"the kube-apiserver's port stayed taken for {LAUNCH_ATTEMPTS} launches")

    def _outcome(self, pid: int) -> str:
        """ "ready", "exited", or "" while starting."""
        if self.cluster.kubectl("get", "--raw", "/readyz", check=False).strip() == "ok":
            return "ready"
        return "exited" if _gone(pid) else ""

    def _launch(self, log: Path) -> int:
        script = 'setsid "$@" >>"$LOG" 2>&1 </dev/null & echo $!'
        out = subprocess.run(
            ["bash", "-c", script, "launch", *self.argv],
            env={**os.environ, "LOG": str(log)},
            capture_output=True,
            text=True,
            check=True,
        )
        self.pid_file.write_text(out.stdout.strip() + "\n")
        return int(out.stdout.strip())
