"""Pytest fixtures and helpers around the Kubernetes emulator, shared by integration and e2e tests.

Import the fixtures into a folder's ``conftest.py`` (``from support.k8s_fixtures import ...``).
Retries never sleep here: the API's ``sleep`` records the waits in the ``sleeps`` fixture instead.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from support.k8s_emulator import EmulatorThread
from teraslice_k8s.backend.base import BackendEvent
from teraslice_k8s.kubernetes.api import ApiSettings, KubeApi, load_client_configuration
from teraslice_k8s.kubernetes.backend import KubernetesBackend
from teraslice_k8s.kubernetes.state import CacheSettings
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.models.job import validate_job


@pytest.fixture
def k8s_emulator() -> Iterator[EmulatorThread]:
    """A fresh emulator on a random local port (``.url``), stopped after the test."""
    with EmulatorThread() as emulator:
        yield emulator


NAMESPACE = "ts-dev1"
JOB_ID = "7ba9afb0-417a-4936-adc5-b15e31d1edd1"
EX_ID = "e76a0278-d9bc-4d78-bf14-431bcd97528c"
#: How long a test waits for an event that must come (a bound, not a sleep).
EVENT_TIMEOUT = 10.0


@pytest.fixture
def config() -> SysConfig:
    return parse_config(
        {
            "teraslice": {
                "name": "ts-dev1",
                "cluster_manager_type": "kubernetesV2",
                "kubernetes_namespace": NAMESPACE,
                "kubernetes_image": "teraslice:k8sdev",
                "shutdown_timeout": 60000,
            }
        }
    )


def make_execution(config: SysConfig, *, ex_id: str = EX_ID, job_id: str = JOB_ID) -> dict[str, Any]:
    job = validate_job(
        {
            "name": "example-data-generator-job",
            "workers": 2,
            "operations": [{"_op": "data_generator", "size": 100}, {"_op": "noop"}],
        },
        config,
    ).config
    return {**job, "job_id": job_id, "ex_id": ex_id, "_status": "scheduling"}


@pytest.fixture
def execution(config: SysConfig) -> dict[str, Any]:
    return make_execution(config)


@pytest.fixture
def emulator(k8s_emulator: EmulatorThread) -> EmulatorThread:
    """The emulator with the worker ConfigMap the chart creates, and an empty request log."""
    k8s_emulator.apply(
        "v1/configmaps", NAMESPACE, {"metadata": {"name": "teraslice-worker"}, "data": {"teraslice.yaml": ""}}
    )
    return k8s_emulator


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_api(emulator: EmulatorThread, sleeps: list[float]) -> Iterator[Callable[..., KubeApi]]:
    made: list[KubeApi] = []

    def make(**settings: Any) -> KubeApi:
        defaults: dict[str, Any] = {
            "namespace": NAMESPACE,
            "attempts": 3,
            "sleep": sleeps.append,
            "jitter": lambda: 0.5,
            "request_timeout": 5.0,
        }
        api = KubeApi(ApiSettings(**{**defaults, **settings}), load_client_configuration(host=emulator.url))
        made.append(api)
        return api

    yield make
    for api in made:
        api.close()


@pytest.fixture
def api(make_api: Callable[..., KubeApi]) -> KubeApi:
    return make_api()


#: Short server-side watches so stopping the caches is quick; polling fallback every 50 ms.
CACHE_SETTINGS = CacheSettings(resync=300.0, poll_delay=0.05, watch_timeout=5.0)


@pytest.fixture
def make_backend(config: SysConfig, api: KubeApi) -> Iterator[Callable[..., KubernetesBackend]]:
    made: list[KubernetesBackend] = []

    def make(*, kube: KubeApi | None = None, cache: CacheSettings = CACHE_SETTINGS) -> KubernetesBackend:
        backend = KubernetesBackend(config, kube or api, cache_settings=cache)
        made.append(backend)
        return backend

    yield make
    for backend in made:
        backend.close()


@pytest.fixture
def backend(make_backend: Callable[..., KubernetesBackend]) -> KubernetesBackend:
    """A backend that is not observing (no watches in the request log)."""
    return make_backend()


class Events:
    """Collects backend events; :meth:`next` waits (bounded) for the next one."""

    def __init__(self) -> None:
        self._queue: queue.Queue[BackendEvent] = queue.Queue()

    def __call__(self, event: BackendEvent) -> None:
        self._queue.put(event)

    def next(self, timeout: float = EVENT_TIMEOUT) -> BackendEvent:
        try:
            return self._queue.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no backend event within {timeout}s") from None

    def pending(self) -> list[BackendEvent]:
        result = []
        while not self._queue.empty():
            result.append(self._queue.get_nowait())
        return result


@pytest.fixture
def events() -> Events:
    return Events()
