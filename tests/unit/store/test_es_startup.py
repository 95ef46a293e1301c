"""The Elasticsearch store's start-up against a cluster it cannot reach: one warning line per
attempt (no traceback), then a clear error once ``startup_timeout`` has passed. The clock and
the sleeps are simulated (no waiting); the connection failures are real (a closed port)."""

from __future__ import annotations

import logging
import socket
import types

import pytest
from es_emulator import running_emulator

from teraslice_k8s.models.config import parse_config
from teraslice_k8s.store import es_indices
from teraslice_k8s.store.base import StoreError
from teraslice_k8s.store.elasticsearch import ElasticsearchStore
from teraslice_k8s.store.es_client import make_client


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # closed again: connections are refused


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(es_indices, "time", types.SimpleNamespace(monotonic=fake.monotonic, sleep=fake.sleep))
    monkeypatch.setattr(es_indices.random, "uniform", lambda low, high: 3.0)
    return fake


def test_unreachable_cluster_one_line_per_attempt_then_a_clear_error(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    caplog.set_level(logging.INFO)
    with pytest.raises(StoreError) as caught:
        ElasticsearchStore(make_client(url, max_retries=0), "down", startup_timeout=10)
    refused = f"{url}: [Errno 111] Connection refused"
    retrying = (
        "Elasticsearch not ready for index down__jobs (attempt {}, "
        + refused
        + "); retrying for up to {} s more"
    )
    ours = [r for r in caplog.records if r.name == "teraslice_k8s.store.elasticsearch"]
    assert [(r.levelname, r.getMessage(), r.exc_info) for r in ours] == [
        (
            "WARNING",
            retrying.format(1, 10),
            None,
        ),
        (
            "WARNING",
            retrying.format(2, 7),
            None,
        ),
        (
            "WARNING",
            retrying.format(3, 4),
            None,
        ),
        (
            "WARNING",
            retrying.format(4, 1),
            None,
        ),
    ]
    assert clock.sleeps == [3.0, 3.0, 3.0, 1.0]  # never past the deadline
    assert str(caught.value) == (
        f"cannot reach Elasticsearch to create down__jobs: {refused} "
        "(gave up after 10 s, 5 attempts: teraslice.storage.startup_timeout)"
    )


def test_startup_timeout_comes_from_the_config(clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    from teraslice_k8s.store.factory import open_store

    url = f"http://127.0.0.1:{closed_port()}"
    config = parse_config(
        {
            "terafoundation": {
                "connectors": {"elasticsearch-next": {"default": {"node": url, "maxRetries": 0}}}
            },
            "teraslice": {
                "name": "cfg",
                "storage": {"type": "elasticsearch", "startup_timeout": "6 seconds"},
            },
        }
    )
    assert config.teraslice.storage.startup_timeout == 6000
    with pytest.raises(
        StoreError, match=r"\(gave up after 6 s, 3 attempts: teraslice.storage.startup_timeout\)$"
    ):
        open_store(config)
    assert parse_config({}).teraslice.storage.startup_timeout == 120_000


def test_a_cluster_that_comes_up_is_used(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    with running_emulator() as (url, _emulator):
        client = make_client(url)
        real_exists = client.indices.exists
        calls = {"n": 0}

        def flaky_exists(**kwargs: object) -> object:
            calls["n"] += 1
            if calls["n"] == 1:
                return make_client(f"http://127.0.0.1:{closed_port()}", max_retries=0).indices.exists(
                    **kwargs
                )
            return real_exists(**kwargs)

        client.indices.exists = flaky_exists  # type: ignore[method-assign]
        caplog.set_level(logging.WARNING)
        store = ElasticsearchStore(client, "comesup", startup_timeout=60)
        store.close()
        client.close()
    assert len([r for r in caplog.records if r.name == "teraslice_k8s.store.elasticsearch"]) == 1
    assert clock.sleeps == [3.0]
