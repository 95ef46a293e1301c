"""The master the chart configures starts and passes the chart's own ``helm test`` script.

What a pod of the chart would do, minus the cluster: the rendered master ``teraslice.yaml``
(values-examples/kind.yaml; only the Elasticsearch URL and the port are pointed at local
stand-ins), the image's entrypoint (``python -m teraslice_k8s`` with ``NODE_TYPE=master``), the
Kubernetes emulator holding the chart's worker ConfigMap, and the Elasticsearch HTTP emulator.
Then the test pod's command runs unchanged against the master.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from support.k8s_emulator import EmulatorThread
from unit.store.es_emulator import running_emulator

from .helm_render import NAMESPACE, container, render

pytestmark = pytest.mark.slow

#: Bound on the master's start-up (polled, not slept).
STARTUP_TIMEOUT = 60.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
def kubernetes() -> Iterator[EmulatorThread]:
    with EmulatorThread() as emulator:
        yield emulator


def test_master_from_the_chart_answers_the_helm_test(kubernetes: EmulatorThread, tmp_path: Path) -> None:
    port = free_port()
    rendered = render(examples=["kind.yaml"], values={"teraslice": {"port": port}})
    config = rendered.config("ts-teraslice-master")
    worker_configmap = rendered.get("ConfigMap", "ts-teraslice-worker")
    kubernetes.apply("v1/configmaps", NAMESPACE, worker_configmap)
    test_pod = container(rendered.get("Pod", "ts-teraslice-master-test-api"), "test-api")
    test_env = {e["name"]: e["value"] for e in test_pod["env"]}

    with running_emulator() as (es_url, _es):
        config["terafoundation"]["connectors"]["elasticsearch-next"]["default"]["node"] = [es_url]
        config_path = tmp_path / "teraslice.yaml"
        config_path.write_text(yaml.safe_dump(config))
        env = {
            **os.environ,
            "NODE_TYPE": "master",
            "TERAFOUNDATION_CONFIG": str(config_path),
            "KUBECONFIG": str(kubernetes.write_kubeconfig(tmp_path / "kubeconfig")),
        }
        log = (tmp_path / "master.log").open("w")
        master = subprocess.Popen([sys.executable, "-m", "teraslice_k8s"], env=env, stdout=log, stderr=log)
        try:
            url = f"http://127.0.0.1:{port}/"
            deadline = time.monotonic() + STARTUP_TIMEOUT
            while True:
                assert master.poll() is None, (tmp_path / "master.log").read_text()
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, (tmp_path / "master.log").read_text()
                time.sleep(0.1)
            # The helm test pod's own command, with the URL of this master.
            check = subprocess.run(
                test_pod["command"],
                env={**os.environ, **test_env, "TERASLICE_URL": url},
                capture_output=True,
                text=True,
                check=False,
                timeout=60,
            )
            assert check.returncode == 0, check.stdout + check.stderr
            assert "'clustering_type': 'kubernetesV2'" in check.stdout
            assert f"'name': {test_env['TERASLICE_NAME']!r}" in check.stdout
        finally:
            master.terminate()
            master.wait(timeout=30)
            log.close()
