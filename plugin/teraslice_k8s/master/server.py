"""Assemble and serve the master: store + backend + service + API app under uvicorn.

:func:`open_backend` picks the backend from ``teraslice.cluster_manager_type``:
``kubernetes``/``kubernetesV2`` -> :class:`~teraslice_k8s.kubernetes.backend.KubernetesBackend`
(in-cluster credentials inside a pod, else the kubeconfig: the seed's "master runs locally,
workers in the cluster" mode; or a plain ``kube_api_url`` such as ``kubectl proxy``), ``local``
-> :class:`~teraslice_k8s.backend.local.LocalBackend` (processes on this machine). The store
comes from :func:`teraslice_k8s.store.factory.open_store`.

:class:`MasterServer` serves an app on a socket it binds itself, so the address is known (and
connectable) as soon as :meth:`MasterServer.start` returns; :meth:`MasterServer.run` is the
blocking form the CLI uses.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import socket
import threading
from pathlib import Path
from typing import Any

import uvicorn

from teraslice_k8s.backend.base import Backend
from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.base import Store

log = logging.getLogger(__name__)


def open_backend(
    config: SysConfig,
    *,
    config_path: str | Path | None = None,
    kubeconfig: str | None = None,
    kube_context: str | None = None,
    kube_api_url: str | None = None,
) -> Backend:
    """The backend ``config`` asks for (see the module docstring)."""
    kind = config.teraslice.cluster_manager_type
    if kind in ("kubernetes", "kubernetesV2"):
        from teraslice_k8s.kubernetes.api import ApiSettings, KubeApi, load_client_configuration
        from teraslice_k8s.kubernetes.backend import KubernetesBackend

        configuration = load_client_configuration(
            host=kube_api_url, kubeconfig=kubeconfig, context=kube_context
        )
        api = KubeApi(ApiSettings(namespace=config.teraslice.kubernetes_namespace), configuration)
        return KubernetesBackend(config, api)
    from teraslice_k8s.backend.local import LocalBackend

    # Process logs live next to the state file (``<dir of storage.path>/logs/<ex_id>/``).
    return LocalBackend(
        config_path=config_path,
        log_dir=Path(config.teraslice.storage.path).parent / "logs",
        shutdown_timeout=config.teraslice.shutdown_timeout / 1000,
        node_hostname=config.teraslice.hostname,
    )


def open_default_store(config: SysConfig) -> Store:
    from teraslice_k8s.store.factory import open_store

    store: Store = open_store(config)
    return store


def build_service(
    config: SysConfig, *, store: Store | None = None, backend: Backend | None = None, **backend_options: Any
) -> MasterService:
    """A master service for ``config`` (not started); ``store``/``backend`` override the defaults."""
    from teraslice_k8s.master.assets import AssetService
    from teraslice_k8s.store.factory import open_asset_store

    store = store if store is not None else open_default_store(config)
    try:
        assets = AssetService.from_config(config, open_asset_store(config))
    except Exception:
        store.close()
        raise
    try:
        backend = backend if backend is not None else open_backend(config, **backend_options)
    except Exception:
        assets.close()
        store.close()
        raise
    return MasterService(
        store,
        backend,
        MasterSettings.from_config(config),
        job_validator(config, assets),
        prepare=spec_preparer(config),
        assets=assets,
    )


def _ignore_signal(signum: int, frame: object) -> None:
    log.info("received signal %s after shutdown began", signum)


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (``port`` 0 picks a free one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def freeze_startup_objects() -> None:
    """Leave the objects made until now (imported modules, the app, the service) out of every
    later garbage collection: they live as long as the process, and a full collection walking
    them (~70,000 objects) paused the event loop for 35-100 ms every few hundred requests, the
    master's worst latency at 50 clients. Garbage first, so nothing collectable is frozen."""
    gc.collect()
    gc.freeze()
    log.debug("%d startup objects left out of garbage collection", gc.get_freeze_count())


class MasterServer:
    """Serves ``create_app(service)`` with uvicorn on ``host:port``."""

    def __init__(
        self,
        service: MasterService,
        host: str = "0.0.0.0",
        port: int = 5678,
        *,
        log_level: str | None = None,
        access_log: bool = False,
    ):
        """``access_log``: uvicorn logs one line per request (through
        :mod:`teraslice_k8s.logs`, which lets them through at INFO when switched on);
        ``log_level``: only sets uvicorn's own loggers (tests quieten them with it)."""
        self.service = service
        self._socket = bind(host, port)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        config = uvicorn.Config(
            create_app(service),
            # No uvicorn logging config: its records go to the one handler teraslice_k8s.logs
            # installs, in the process's format.
            log_config=None,
            log_level=log_level,
            lifespan="off",
            access_log=access_log,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    def run(self) -> None:
        """Start the service, serve until SIGINT/SIGTERM, then close everything."""
        self.service.start()
        freeze_startup_objects()
        if threading.current_thread() is threading.main_thread():
            # uvicorn re-raises the signal that stopped it once it restored the previous
            # handlers; make those no-ops so a SIGTERM/SIGINT shutdown ends with exit code 0.
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, _ignore_signal)
        try:
            self._server.run(sockets=[self._socket])
        finally:
            self.service.close()
            self._socket.close()

    def start(self) -> str:
        """Serve in a background thread (the caller starts and closes the service); returns the URL."""
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._socket]}, name="ts-master-http", daemon=True
        )
        self._thread.start()
        return self.url

    def stop(self, timeout: float = 10.0) -> None:
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        with contextlib.suppress(OSError):
            self._socket.close()
