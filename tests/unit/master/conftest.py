"""Fixtures: a real SqliteStore, the recording backend, fake controllers, the service and app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.controller_client import ControllerClient
from teraslice_k8s.master.server import MasterServer
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, FakeControllers, RecordingBackend


@pytest.fixture
def config() -> SysConfig:
    return parse_config(
        {
            "teraslice": {
                "name": "testcluster",
                "cluster_manager_type": "kubernetesV2",
                "shutdown_timeout": 60_000,
            },
            "terafoundation": {"prom_metrics_enabled": False},
        }
    )


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    db = SqliteStore(tmp_path / "state.sqlite", synchronous="NORMAL")
    yield db
    db.close()


@pytest.fixture
def backend() -> RecordingBackend:
    return RecordingBackend()


@pytest.fixture
def controllers() -> FakeControllers:
    return FakeControllers()


@pytest.fixture
def settings(config: SysConfig) -> MasterSettings:
    return MasterSettings.from_config(config)


@pytest.fixture
def service(
    store: SqliteStore,
    backend: RecordingBackend,
    controllers: FakeControllers,
    settings: MasterSettings,
    config: SysConfig,
) -> Iterator[MasterService]:
    svc = MasterService(
        store,
        backend,
        settings,
        job_validator(config),
        prepare=spec_preparer(config),
        controllers=ControllerClient(transport=controllers.transport()),
    )
    svc.start()
    yield svc
    svc.allocator.close()
    svc.lifecycle.close()
    svc.controllers.close()


@pytest.fixture
def client(service: MasterService) -> Iterator[ApiClient]:
    api = ApiClient(create_app(service))
    yield api
    api.close()


@pytest.fixture
def master_url(service: MasterService) -> Iterator[str]:
    """The service behind a real uvicorn server on a free port."""
    server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
    url = server.start()
    yield url
    server.stop()
