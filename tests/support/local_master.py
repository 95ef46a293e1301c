"""A real master with the local backend (real processes, SQLite), served over HTTP for a test.

``with local_master(tmp_path, hostname="127.0.0.1") as master:`` writes a ``teraslice.yaml``
(``cluster_manager_type: local``, the store in ``tmp_path``; keyword arguments go into the
``teraslice:`` section), starts the service and uvicorn on a free port and yields a
:class:`LocalMaster` (``url``, ``service``, ``config_path``). On exit it stops the server and
closes the service, which ends every process the backend started.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from teraslice_k8s.master.server import MasterServer, build_service
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.models.config import load_config

#: A persistent job (runs until stopped) with 2 workers: slices are small and slow.
PERSISTENT_JOB: dict[str, Any] = {
    "name": "persistent-generator",
    "lifecycle": "persistent",
    "workers": 2,
    "operations": [{"_op": "data_generator", "size": 10}, {"_op": "delay", "ms": 100}],
}


@dataclass(frozen=True, slots=True)
class LocalMaster:
    url: str
    service: MasterService
    config_path: Path


@contextlib.contextmanager
def local_master(tmp_path: Path, **teraslice: Any) -> Iterator[LocalMaster]:
    settings: dict[str, Any] = {
        "name": "localtest",
        "cluster_manager_type": "local",
        "shutdown_timeout": 10_000,
        "storage": {"type": "sqlite", "path": str(tmp_path / "state.sqlite")},
        **teraslice,
    }
    config_path = tmp_path / "teraslice.yaml"
    config_path.write_text(yaml.safe_dump({"teraslice": settings}), encoding="utf-8")
    service = build_service(load_config(config_path), config_path=config_path)
    server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
    service.start()
    try:
        url = server.start()
        yield LocalMaster(url, service, config_path)
    finally:
        server.stop()
        service.close()


def wait_for(predicate: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``predicate`` (bounded) until it returns something truthy; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)
