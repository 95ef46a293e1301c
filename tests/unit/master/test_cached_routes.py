"""Cached responses are never stale: a body is served only while fresh (its TTL honoured) or
until the change it shows is superseded (keys that change with the data).

Regression (issue 16 item 1): ``/cluster/state`` and ``/jobs`` returned any cached body, fresh or
stale, so the first answer was served forever (``active: []`` during a run).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

import pytest

from teraslice_k8s.master import app as app_module
from teraslice_k8s.master import app_caches
from teraslice_k8s.master.responses import RenderedCache, render_json
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, RecordingBackend, job_spec


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Renders:
    """A render function returning b"body-<n>" for its n-th call."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self) -> bytes:
        self.count += 1
        return f"body-{self.count}".encode()


# -- RenderedCache --------------------------------------------------------------------------


def test_a_body_is_served_while_fresh_and_never_after_its_ttl() -> None:
    clock, render = Clock(), Renders()
    cache = RenderedCache(ttl=1.0, clock=clock)
    assert cache.get("k") is None
    assert cache.get_or_render("k", render) == b"body-1"
    clock.now += 0.999
    assert cache.get("k") == b"body-1"
    assert cache.get_or_render("k", render) == b"body-1"
    clock.now += 0.001  # exactly ttl after the render began: expired
    assert cache.get("k") is None
    assert cache.get_or_render("k", render) == b"body-2"
    assert render.count == 2


def test_the_ttl_counts_from_when_the_render_began() -> None:
    clock = Clock()
    cache = RenderedCache(ttl=1.0, clock=clock)

    def slow_render() -> bytes:
        clock.now += 0.75  # the data was read at the start; rendering took 0.75 s
        return b"slow"

    assert cache.get_or_render("k", slow_render) == b"slow"
    clock.now += 0.25
    assert cache.get("k") is None


def test_keys_are_separate_and_invalidate_forgets_all() -> None:
    clock, render = Clock(), Renders()
    cache = RenderedCache(ttl=10.0, clock=clock)
    assert cache.get_or_render(("v", 1), render) == b"body-1"
    assert cache.get_or_render(("v", 2), render) == b"body-2"
    assert cache.get_or_render(("v", 1), render) == b"body-1"
    cache.invalidate()
    assert cache.get(("v", 1)) is None and cache.get(("v", 2)) is None
    assert cache.get_or_render(("v", 1), render) == b"body-3"


def test_a_body_rendered_while_the_data_changed_is_not_stored() -> None:
    clock, render = Clock(), Renders()
    cache = RenderedCache(ttl=10.0, clock=clock)
    assert cache.get_or_render("v1", render, still_valid=lambda: False) == b"body-1"
    assert cache.get("v1") is None
    assert cache.get_or_render("v1", render, still_valid=lambda: True) == b"body-2"
    assert cache.get("v1") == b"body-2"


def test_concurrent_misses_render_once_and_share_the_body() -> None:
    cache = RenderedCache(ttl=60.0)
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def render() -> bytes:
        calls.append(1)
        started.set()
        assert release.wait(10)
        return b"shared"

    results: list[bytes] = []
    threads = [threading.Thread(target=lambda: results.append(cache.get_or_render("k", render)))]
    threads[0].start()
    assert started.wait(10)
    threads += [
        threading.Thread(target=lambda: results.append(cache.get_or_render("k", render))) for _ in range(4)
    ]
    for t in threads[1:]:
        t.start()
    release.set()
    for t in threads:
        t.join(10)
    assert results == [b"shared"] * 5
    assert len(calls) == 1
    assert cache._rendering == {}  # per-key locks do not pile up (keys such as generations)


def test_a_full_cache_drops_expired_entries_first() -> None:
    clock = Clock()
    cache = RenderedCache(ttl=1.0, max_entries=2, clock=clock)
    cache.put("old", b"o")
    clock.now += 2
    cache.put("a", b"a")
    cache.put("b", b"b")  # full: "old" (expired) goes, "a" stays
    assert (cache.get("a"), cache.get("b")) == (b"a", b"b")


# -- the routes -------------------------------------------------------------------------------


class VersionedBackend(RecordingBackend):
    """A backend whose cluster state says when it changed (as the local backend does)."""

    def __init__(self) -> None:
        super().__init__()
        self.version = 0
        self.reads = 0

    def state_version(self) -> Hashable:
        return self.version

    def cluster_state(self) -> dict[str, Any]:
        self.reads += 1
        return self.state


def node(*workers: str) -> dict[str, Any]:
    active = [{"assignment": "worker", "ex_id": "ex1", "job_id": "job1", "worker_id": w} for w in workers]
    return {"10.0.0.1": {"node_id": "10.0.0.1", "state": "connected", "active": active}}


@pytest.fixture
def backend() -> RecordingBackend:
    return VersionedBackend()


def test_cluster_state_shows_a_change_on_the_next_request(
    client: ApiClient, backend: VersionedBackend
) -> None:
    backend.state = node()
    assert client.get("/v1/cluster/state").json() == node()
    assert client.get("/cluster/state").json() == node()
    reads = backend.reads
    assert client.get("/v1/cluster/state").json() == node()
    assert backend.reads == reads  # unchanged version within the TTL: one shared render

    backend.state, backend.version = node("w1", "w2"), 1
    assert client.get("/v1/cluster/state").json() == node("w1", "w2")
    assert client.get("/cluster/state").json() == node("w1", "w2")
    backend.state, backend.version = node(), 2
    assert client.get("/v1/cluster/state").json() == node()


def test_cluster_state_bytes_are_the_rendered_state(client: ApiClient, backend: VersionedBackend) -> None:
    backend.state = node("w1")
    first = client.get("/v1/cluster/state")
    backend.version = 5  # a re-render of the same state gives the same bytes
    second = client.get("/v1/cluster/state")
    assert first.content == second.content
    assert first.content == render_json(node("w1"))
    assert first.headers["content-type"] == "application/json"


def test_unversioned_cluster_state_is_never_older_than_the_ttl(
    monkeypatch: pytest.MonkeyPatch, service: MasterService, backend: VersionedBackend
) -> None:
    # A backend without state_version (e.g. a plain Backend): only the TTL bounds staleness.
    # With a zero TTL no body is ever reused, so every request shows the state of that moment.
    monkeypatch.delattr(VersionedBackend, "state_version")
    monkeypatch.setattr(app_caches, "CLUSTER_STATE_TTL", 0.0)
    api = ApiClient(app_module.create_app(service))
    try:
        backend.state = node()
        assert api.get("/v1/cluster/state").json() == node()
        backend.state = node("w1")
        assert api.get("/v1/cluster/state").json() == node("w1")
        backend.state = node()
        assert api.get("/cluster/state").json() == node()
    finally:
        api.close()


def test_job_listing_shows_another_writer_within_the_ttl(
    monkeypatch: pytest.MonkeyPatch, service: MasterService, store: SqliteStore
) -> None:
    # Jobs written by another process on the same store (teraslice-k8s run) bump no generation
    # of this master: the TTL alone bounds how long they stay unseen (zero here: at once).
    monkeypatch.setattr(app_caches, "JOBS_TTL", 0.0)
    api = ApiClient(app_module.create_app(service))
    try:
        assert api.get("/v1/jobs").json() == []
        store.create_job({**job_spec(), "job_id": "outside-1", "_context": "job"})
        assert [j["job_id"] for j in api.get("/v1/jobs").json()] == ["outside-1"]
    finally:
        api.close()


def test_job_listing_shows_this_masters_writes_at_once(client: ApiClient) -> None:
    assert client.get("/v1/jobs").json() == []
    job_id = client.post("/v1/jobs?start=false", json=job_spec()).json()["job_id"]
    assert [j["job_id"] for j in client.get("/v1/jobs").json()] == [job_id]
    client.post(f"/v1/jobs/{job_id}/_inactive")
    assert client.get("/v1/jobs").json()[0]["active"] is False
    client.delete(f"/v1/jobs/{job_id}")
    assert client.get("/v1/jobs").json() == []
