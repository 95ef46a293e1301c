"""A real Kubernetes cluster for the tests marked ``cluster``: one per pytest session.

Which cluster (first that applies):

1. ``TEST_KUBECONFIG`` set: that cluster (kind in the GitHub workflow). Its pods run the image
   ``TEST_CHART_IMAGE`` (default ``teraslice-k8s:dev``), which the cluster must already have.
2. ``shared/k8s-real`` found (``$K8S_REAL_SOURCE``, ``<repo>/../shared/k8s-real`` or
   ``/work/shared/k8s-real``): that control plane (kube-apiserver, kube-controller-manager, etcd)
   is installed into a temporary directory, started on free ports, and its process kubelet runs
   every pod as local processes (docs/testing.md). The tests then **must** run: a start failure
   is an error, never a skip.
3. Neither: the tests are skipped, with that reason.

On the process kubelet, images map to local commands so the chart installs with its defaults:

- the product's image (``teraslice-k8s``, the chart's ``image.repository``) runs this checkout's
  ``python -m teraslice_k8s`` (the Dockerfile's entrypoint) through a small wrapper that stands in
  for the image: it sets the image's ``ENV`` and, when the pod mounts a ServiceAccount token,
  writes a kubeconfig from it, so the master talks to the API server *as its ServiceAccount*
  (a verb missing from the chart's Role is a real 403);
- the chart's Elasticsearch image runs ``tests/unit/store/es_emulator.py`` on ``$POD_IP:9200``;
- ``python`` (the ``helm test`` pod's command) is this virtualenv's interpreter.

API for tests and helpers (the session fixture ``k8s_cluster`` yields a :class:`Cluster`):

- ``cluster.kubeconfig`` (admin kubeconfig path), ``cluster.kubectl(*args)`` and
  ``cluster.helm(*args)`` (both with that kubeconfig; they raise on a non-zero exit unless
  ``check=False``; ``kubectl_json`` parses ``-o json``);
- ``with cluster.namespace() as ns:`` a fresh namespace with PodSecurity ``restricted`` labels,
  deleted (and waited for, so no process of it outlives the test) afterwards; the function
  fixture ``k8s_namespace`` does exactly this;
- ``with cluster.pod_url(ns, pod, port) as url:`` an ``http://host:port`` reaching a pod's port
  (its loopback pod IP here, a ``kubectl port-forward`` elsewhere);
- ``cluster.logs_dir``: control-plane and per-container logs (``pods/<ns>/<pod>.<container>.log``
  on the process kubelet), kept after the session for debugging;
- ``cluster.chart_values``: ``helm install`` arguments that make the chart's images runnable on
  this cluster (none on k8s-real; ``values-examples/kind.yaml`` and the image on kind);
- ``cluster.processes``: True when pods are local processes (pod IPs are reachable from the test).

Limitation on the process kubelet: there is no network namespace, so a master (which listens on
``0.0.0.0:5678``) holds that port machine-wide; two releases' masters cannot run at once.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ES_EMULATOR = REPO / "tests" / "unit" / "store" / "es_emulator.py"
CHART = REPO / "charts" / "teraslice"
#: The chart's image repository (values.yaml ``image.repository``) and Elasticsearch image.
PRODUCT_IMAGE = "teraslice-k8s"
ELASTICSEARCH_IMAGE = "docker.elastic.co/elasticsearch/elasticsearch"
#: The node label values-examples/production.yaml selects nodes by (its ``node-pool``).
NODE_POOL_LABEL = "node-pool=teraslice-controllers"
#: Bounds (seconds) for conditions that must come; never sleeps as synchronisation.
NODE_READY_TIMEOUT = 60.0
NAMESPACE_DELETE_TIMEOUT = 180.0
PODSECURITY_LABELS = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
    "pod-security.kubernetes.io/audit": "restricted",
}

# Stands in for the product image: its ENV, then its ENTRYPOINT (python -m teraslice_k8s).
# With a mounted ServiceAccount token it writes a kubeconfig from it, because in-cluster
# clients read /var/run/secrets/kubernetes.io/serviceaccount, which does not exist here.
_ENTRYPOINT = """#!/usr/bin/env bash
set -euo pipefail
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
for name in ${{!TSK_VOLUME_KUBE_API_ACCESS_@}}; do
  dir=${{!name}}
  if [[ -f $dir/token ]]; then
    cfg=$TSK_POD_DIR/kubeconfig-sa
    cat > "$cfg" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: in-cluster
  cluster:
    server: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
    certificate-authority: $dir/ca.crt
users:
- name: service-account
  user:
    tokenFile: $dir/token
contexts:
- name: in-cluster
  context: {{cluster: in-cluster, user: service-account, namespace: $TSK_NAMESPACE}}
current-context: in-cluster
EOF
    export KUBECONFIG=$cfg
    unset KUBERNETES_SERVICE_HOST KUBERNETES_SERVICE_PORT
  fi
  break
done
# This checkout's package, whatever the interpreter's editable install points at (a worktree).
export PYTHONPATH={plugin}${{PYTHONPATH:+:$PYTHONPATH}}
exec {python} -m teraslice_k8s "$@"
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def find_k8s_real() -> Path | None:
    """The read-only k8s-real folder, or None when this machine has none."""
    candidates = [
        os.environ.get("K8S_REAL_SOURCE"),
        REPO.parent / "shared" / "k8s-real",
        "/work/shared/k8s-real",
    ]
    for candidate in candidates:
        if candidate and (Path(candidate) / "install.sh").is_file():
            return Path(candidate)
    return None


def tool(name: str) -> str:
    """``.tools/bin/<name>`` (ci/install-tools.sh), else PATH; a missing tool is a failure."""
    local = REPO / ".tools" / "bin" / name
    found = str(local) if local.is_file() else shutil.which(name)
    if not found:
        pytest.fail(f"{name} is missing: run bash ci/install-tools.sh")
    return found


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    """Poll ``condition`` until it returns something truthy (returned) or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Cluster:
    """A running cluster the tests may use; see the module docstring."""

    kubeconfig: str
    logs_dir: Path
    processes: bool
    #: The product image, as pods on this cluster can run it.
    image: str = f"{PRODUCT_IMAGE}:dev"
    chart_values: list[str] = field(default_factory=list)
    kubectl_path: str = field(default_factory=lambda: tool("kubectl"))
    helm_path: str = field(default_factory=lambda: tool("helm"))

    def _run(self, argv: Sequence[str], *, check: bool, timeout: float, stdin: str | None) -> str:
        result = subprocess.run(
            argv, input=stdin, capture_output=True, text=True, timeout=timeout, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv[:1] + list(argv[3:]))} exited {result.returncode}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
            )
        return result.stdout + ("" if check else result.stderr)

    def kubectl(
        self, *args: str, check: bool = True, timeout: float = 120.0, stdin: str | None = None
    ) -> str:
        """kubectl with the admin kubeconfig; stdout (plus stderr when ``check=False``)."""
        return self._run(
            [self.kubectl_path, "--kubeconfig", self.kubeconfig, *args],
            check=check,
            timeout=timeout,
            stdin=stdin,
        )

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json"))

    def helm(self, *args: str, check: bool = True, timeout: float = 600.0) -> str:
        """helm with the admin kubeconfig; stdout (plus stderr when ``check=False``)."""
        return self._run(
            [self.helm_path, "--kubeconfig", self.kubeconfig, *args], check=check, timeout=timeout, stdin=None
        )

    @contextlib.contextmanager
    def namespace(self, prefix: str = "ts-test") -> Iterator[str]:
        """A fresh namespace (PodSecurity ``restricted``), deleted afterwards, waiting until none
        of its pods is left, so no pod process of it outlives the test (the namespace object
        itself finishes in the background: a terminating namespace admits no new pod)."""
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        manifest = {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": name, "labels": PODSECURITY_LABELS},
        }
        self.kubectl("create", "-f", "-", stdin=json.dumps(manifest))
        try:
            yield name
        finally:
            self.kubectl("delete", "namespace", name, "--wait=false")
            wait_until(
                lambda: not self.kubectl("-n", name, "get", "pods", "-o", "name").strip(),
                NAMESPACE_DELETE_TIMEOUT,
                f"the pods of namespace {name} gone",
                interval=0.5,
            )

    @contextlib.contextmanager
    def pod_url(self, namespace: str, pod: str, port: int) -> Iterator[str]:
        """``http://host:port`` reaching ``port`` of ``pod``: its pod IP when pods are local
        processes, else a ``kubectl port-forward`` for the duration of the block."""
        if self.processes:
            ip = self.kubectl("-n", namespace, "get", "pod", pod, "-o", "jsonpath={.status.podIP}")
            assert ip, f"pod {namespace}/{pod} has no IP"
            yield f"http://{ip}:{port}"
            return
        forward = subprocess.Popen(
            [
                self.kubectl_path,
                "--kubeconfig",
                self.kubeconfig,
                "-n",
                namespace,
                "port-forward",
                f"pod/{pod}",
                f":{port}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            assert forward.stdout is not None
            line = forward.stdout.readline()  # "Forwarding from 127.0.0.1:43121 -> 5678"
            match = re.search(r"127\.0\.0\.1:(\d+)", line)
            assert match, f"kubectl port-forward said: {line!r}"
            yield f"http://127.0.0.1:{match.group(1)}"
        finally:
            forward.terminate()
            forward.wait(timeout=10)


class ProcessCluster:
    """k8s-real installed in a temporary directory, started on free ports, with a process kubelet.

    ``start()`` returns a :class:`Cluster`; ``stop()`` stops the kubelet (SIGTERM: it stops
    every pod's processes and restores /etc/hosts), then the control plane, and removes the
    installation (logs stay in ``logs_dir``).
    """

    def __init__(self, source: Path, logs_dir: Path) -> None:
        self.source, self.logs_dir = source, logs_dir
        self.home = Path(tempfile.mkdtemp(prefix="k8s-real-"))
        self.env: dict[str, str] = {}
        self.kubelet: subprocess.Popen[bytes] | None = None
        self.kubelet_log: Any = None
        self.node = ""

    def start(self) -> Cluster:
        kubectl = tool("kubectl")
        subprocess.run(
            ["bash", str(self.source / "install.sh"), str(self.home)],
            env={**os.environ, "KUBECTL": kubectl},
            check=True,
            capture_output=True,
        )
        self._start_control_plane()
        kubeconfig = str(self.home / "admin.kubeconfig")
        self._start_kubelet(kubeconfig)
        cluster = Cluster(kubeconfig=kubeconfig, logs_dir=self.logs_dir, processes=True)
        wait_until(
            lambda: self._node_ready(cluster),
            NODE_READY_TIMEOUT,
            f"node {self.node} Ready (see {self.logs_dir})",
        )
        return cluster

    def _start_control_plane(self) -> None:
        for _attempt in range(3):  # a free port may be taken between the check and the start
            ports = {
                "K8S_REAL_ETCD_PORT": _free_port(),
                "K8S_REAL_ETCD_PEER_PORT": _free_port(),
                "K8S_REAL_API_PORT": _free_port(),
                "K8S_REAL_KCM_PORT": _free_port(),
            }
            if len(set(ports.values())) < len(ports):
                continue
            self.env = {**os.environ, **{k: str(v) for k, v in ports.items()}}
            result = subprocess.run(
                [str(self.home / "start.sh"), "--fresh"],
                env=self.env,
                capture_output=True,
                text=True,
                check=False,
            )
            (self.logs_dir / "start.log").write_text(result.stdout + result.stderr)
            if result.returncode == 0:
                return
            # start.sh checks a component right after `setsid ... &`, when the pid may not have
            # exec'd the binary yet: it then reports "<component> exited" with an empty log
            # (seen under load, about one start in five). Both are worth another attempt.
            raced = re.search(r"exited; last log lines:\n\s*\nstopped what", result.stderr)
            if "already in use" not in result.stderr and not raced:
                break
        raise RuntimeError(f"k8s-real did not start:\n{result.stdout}\n{result.stderr}")

    def _start_kubelet(self, kubeconfig: str) -> None:
        python = sys.executable
        entrypoint = self.home / "teraslice-k8s-image"
        entrypoint.write_text(_ENTRYPOINT.format(python=python, plugin=REPO / "plugin"))
        entrypoint.chmod(0o755)
        # The emulator's path goes inside a wrapper, not on the command line: the process kubelet
        # rewrites arguments that start with a mountPath of the container (the Elasticsearch pod
        # mounts /tmp), which broke a checkout under /tmp (CI's clones may live there).
        elasticsearch = self.home / "elasticsearch-image"
        elasticsearch.write_text(f'#!/usr/bin/env bash\nexec "{python}" "{ES_EMULATOR}" "$@"\n')
        elasticsearch.chmod(0o755)
        port = _free_port()
        # Distinct per session (ports are), so concurrent sessions never share pod IPs or hosts lines.
        self.node = f"process-node-{port}"
        cidr = f"127.{(port >> 8) & 0xFF}.{port & 0xFF}.0/24"
        self.kubelet_log = (self.logs_dir / "process-kubelet.log").open("wb")
        self.kubelet = subprocess.Popen(
            [
                python, str(self.home / "process_kubelet.py"),
                "--kubeconfig", kubeconfig,
                "--workdir", str(self.logs_dir / "kubelet"),
                "--node-name", self.node,
                "--kubelet-port", str(port),
                "--pod-cidr", cidr,
                "--max-probe-period", "2",
                "--shutdown-grace", "10",
                "--command-map", f"{PRODUCT_IMAGE}={entrypoint}",
                "--command-map", f"{ELASTICSEARCH_IMAGE}={elasticsearch}",
                "--command-map", f"python={python}",
                # The node pool values-examples/production.yaml puts the master and the
                # execution controllers on (the kubelet's scheduling reads only these labels).
                "--node-label", NODE_POOL_LABEL,
            ],
            stdout=self.kubelet_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip

    def _node_ready(self, cluster: Cluster) -> bool:
        if self.kubelet is not None and self.kubelet.poll() is not None:
            raise RuntimeError(
                f"the process kubelet exited {self.kubelet.returncode}: {self.logs_dir}/process-kubelet.log"
            )
        out = cluster.kubectl(
            "get",
            "node",
            self.node,
            "-o",
            'jsonpath={.status.conditions[?(@.type=="Ready")].status}',
            check=False,
        )
        return out.strip() == "True"

    def stop(self) -> None:
        if self.kubelet is not None and self.kubelet.poll() is None:
            self.kubelet.send_signal(signal.SIGTERM)
            try:
                self.kubelet.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kubelet.send_signal(signal.SIGTERM)  # a second signal kills the pods at once
                self.kubelet.wait(timeout=30)
        if self.kubelet_log is not None:
            self.kubelet_log.close()
        if (self.home / "stop.sh").exists():
            result = subprocess.run(
                [str(self.home / "stop.sh"), "--purge"],
                env=self.env or None,
                capture_output=True,
                text=True,
                check=False,
            )
            (self.logs_dir / "stop.log").write_text(result.stdout + result.stderr)
        if (self.home / "logs").is_dir():
            shutil.copytree(self.home / "logs", self.logs_dir / "control-plane", dirs_exist_ok=True)
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture(scope="session")
def k8s_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """The session's real cluster (module docstring); skips only where none can exist."""
    logs_dir = tmp_path_factory.mktemp("k8s-real-logs")
    kubeconfig = os.environ.get("TEST_KUBECONFIG")
    if kubeconfig:
        image = os.environ.get("TEST_CHART_IMAGE", "teraslice-k8s:dev")
        repository, _, tag = image.rpartition(":")
        yield Cluster(
            kubeconfig=kubeconfig,
            logs_dir=logs_dir,
            processes=False,
            image=image,
            chart_values=[
                "--values", str(REPO / "values-examples" / "kind.yaml"),
                "--set", f"image.repository={repository}", "--set-string", f"image.tag={tag}",
            ],
        )  # fmt: skip
        return
    source = find_k8s_real()
    if source is None:
        pytest.skip("no real cluster: set TEST_KUBECONFIG, or put k8s-real at ../shared/k8s-real")
    if not os.access("/etc/hosts", os.W_OK):
        pytest.fail("the process kubelet writes Service names into /etc/hosts: run the tests as root")
    plane = ProcessCluster(source, logs_dir)
    try:
        yield plane.start()
    finally:
        plane.stop()


@pytest.fixture
def k8s_namespace(k8s_cluster: Cluster) -> Iterator[str]:
    """A fresh PodSecurity-``restricted`` namespace on the session's cluster, deleted afterwards."""
    with k8s_cluster.namespace() as name:
        yield name
