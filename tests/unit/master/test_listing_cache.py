"""Cached listings (issue 13): ``/v1/jobs``, ``?ex=``, ``/v1/ex``, ``?status=``, ``/txt/jobs`` and
``/txt/ex`` are rendered once while the store's records are unchanged, byte-identical to an
uncached render, and any job or execution write (this master, another connection, an execution
controller's own process) shows on the very next request. No sleeps, no timings.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from teraslice_k8s.master import app as app_module
from teraslice_k8s.master.listing_cache import FreshShared, ListingCache
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, FakeControllers, RecordingBackend, analytics_for, job_spec

ROUTES = (
    "/v1/jobs",
    "/jobs?size=2&sort=_created:asc",
    "/v1/jobs?ex=_status,ex_id,workers",
    "/v1/ex",
    "/v1/ex?status=running",
    "/v1/ex?status=completed&size=1",
    "/txt/jobs",
    "/txt/jobs?fields=job_id,name&headers=false",
    "/txt/ex",
    "/txt/ex?status=running",
)


class Renders:
    """Counts the store listings the routes make (one per render)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, service: MasterService) -> None:
        self.count = 0
        for name in ("list_jobs", "list_executions"):
            monkeypatch.setattr(service, name, self.counting(getattr(service, name)))

    def counting(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return method(*args, **kwargs)

        return counted


@pytest.fixture
def records(store: SqliteStore, backend: RecordingBackend) -> dict[str, str]:
    """Three jobs; one with a running execution, one with two completed ones, one with none.
    The running executions' processes are live in the backend (so the lifecycle keeps them)."""
    backend.live.update({"ex-a1", "ex-d1"})
    ids: dict[str, str] = {}
    for name in ("alpha", "beta", "gamma"):
        ids[name] = store.create_job({**job_spec(name=name), "job_id": f"job-{name}"})["job_id"]
    for ex_id, job, status in (
        ("ex-a1", "alpha", "running"),
        ("ex-b1", "beta", "completed"),
        ("ex-b2", "beta", "completed"),
    ):
        store.create_execution(
            {**job_spec(name=job), "ex_id": ex_id, "job_id": ids[job], "_status": status, "workers": 2}
        )
    return ids


def fresh_bodies(service: MasterService) -> dict[str, bytes]:
    """Every route's body from a new app (nothing cached): what the store holds now."""
    api = ApiClient(app_module.create_app(service))
    try:
        return {route: api.get(route).content for route in ROUTES}
    finally:
        api.close()


def bodies(client: ApiClient) -> dict[str, bytes]:
    answers = {route: client.get(route) for route in ROUTES}
    assert {route: r.status_code for route, r in answers.items()} == dict.fromkeys(ROUTES, 200)
    return {route: r.content for route, r in answers.items()}


def _set_status_elsewhere(db: str, ex_id: str, status: str) -> None:
    """An execution controller's status write, from its own process and connection."""
    store = SqliteStore(db)
    try:
        store.set_status(ex_id, status, {"_slicer_stats": {"processed": 10}})
    finally:
        store.close()


@pytest.fixture
def renders(monkeypatch: pytest.MonkeyPatch, service: MasterService) -> Renders:
    return Renders(monkeypatch, service)


@pytest.fixture
def cached_client(renders: Renders, service: MasterService) -> Iterator[ApiClient]:
    api = ApiClient(app_module.create_app(service))  # created after the counting wrappers
    yield api
    api.close()


def test_each_listing_renders_once_while_nothing_changes(
    records: dict[str, str], cached_client: ApiClient, renders: Renders
) -> None:
    first = bodies(cached_client)
    rendered = renders.count
    assert rendered >= len(ROUTES)  # ?ex= reads the jobs once (plus its latest executions)
    assert bodies(cached_client) == first
    assert bodies(cached_client) == first
    assert renders.count == rendered


def test_cached_bodies_are_byte_identical_to_uncached_ones(
    records: dict[str, str], cached_client: ApiClient, service: MasterService
) -> None:
    bodies(cached_client)
    cached = bodies(cached_client)
    assert cached == fresh_bodies(service)
    assert cached_client.get("/txt/jobs").headers["content-type"] == "text/html; charset=utf-8"
    assert cached_client.get("/v1/jobs").headers["content-type"] == "application/json"


def test_a_controller_process_write_shows_on_the_next_request(
    records: dict[str, str], cached_client: ApiClient, service: MasterService, store: SqliteStore
) -> None:
    before = bodies(cached_client)
    process = multiprocessing.get_context("spawn").Process(
        target=_set_status_elsewhere, args=(str(store.path), "ex-a1", "completed")
    )
    process.start()
    process.join(120)
    assert process.exitcode == 0
    after = bodies(cached_client)
    assert after == fresh_bodies(service)
    # every listing that shows ex-a1 changed; the running-only listings lost it
    assert {r for r in ROUTES if after[r] != before[r]} == {
        "/v1/jobs?ex=_status,ex_id,workers",
        "/v1/ex",
        "/v1/ex?status=running",
        "/v1/ex?status=completed&size=1",
        "/txt/ex",
        "/txt/ex?status=running",
    }
    jobs = {j["job_id"]: j["ex"] for j in cached_client.get("/v1/jobs?ex=_status,ex_id,workers").json()}
    assert jobs[records["alpha"]] == {"_status": "completed", "ex_id": "ex-a1", "workers": 2}
    assert cached_client.get("/v1/ex?status=running").json() == []


def test_writes_through_another_connection_show_on_the_next_request(
    records: dict[str, str], cached_client: ApiClient, service: MasterService, store: SqliteStore
) -> None:
    other = SqliteStore(store.path)  # e.g. teraslice-k8s run, or a second master thread
    try:
        for write in (
            lambda: other.create_job({**job_spec(name="delta"), "job_id": "job-delta"}),
            lambda: other.create_execution(
                {**job_spec(name="delta"), "ex_id": "ex-d1", "job_id": "job-delta", "_status": "running"}
            ),
            lambda: other.update_execution("ex-d1", {"workers": 7}),
            lambda: other.replace_job("job-gamma", {**job_spec(name="gamma-renamed"), "active": False}),
        ):
            bodies(cached_client)  # cached
            write()
            assert bodies(cached_client) == fresh_bodies(service)
    finally:
        other.close()
    assert "gamma-renamed" in cached_client.get("/txt/jobs").text
    assert "ex-d1" in cached_client.get("/txt/ex?status=running").text


def test_a_write_during_a_render_is_not_kept(
    records: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    service: MasterService,
    store: SqliteStore,
) -> None:
    # The render reads the listing, then a controller writes before the body is stored: that
    # body may answer the request it was rendered for, but the next request renders again.
    other = SqliteStore(store.path)
    listed = service.list_executions
    writes = iter([lambda: other.set_status("ex-a1", "completed")])

    def list_then_write(*args: Any, **kwargs: Any) -> Any:
        found = listed(*args, **kwargs)
        next(writes, lambda: None)()
        return found

    monkeypatch.setattr(service, "list_executions", list_then_write)
    api = ApiClient(app_module.create_app(service))
    try:
        shown = api.get("/v1/ex?status=running").json()
        assert [ex["ex_id"] for ex in shown] == ["ex-a1"]  # read before the write
        assert api.get("/v1/ex?status=running").json() == []
    finally:
        api.close()
        other.close()


def test_this_masters_writes_show_on_the_next_request(
    records: dict[str, str], cached_client: ApiClient, service: MasterService
) -> None:
    bodies(cached_client)
    job_id = cached_client.post("/v1/jobs?start=false", json=job_spec(name="epsilon")).json()["job_id"]
    assert job_id in cached_client.get("/txt/jobs").text
    cached_client.post(f"/v1/jobs/{records['gamma']}/_inactive")
    assert bodies(cached_client) == fresh_bodies(service)


class Unversioned:
    """A store that cannot say when its records change (as the Elasticsearch store)."""


class RemoteVersion:
    """A store whose version is a request (as Elasticsearch's ``_stats``): read off the loop."""

    def __init__(self) -> None:
        self.version = 0
        self.reads = 0

    def records_version(self) -> int:
        self.reads += 1
        return self.version


def test_a_remote_version_is_read_in_the_render_call_and_keys_the_body() -> None:
    store = RemoteVersion()
    cache = ListingCache(store)
    assert cache.versioned
    assert cache.cached("jobs") == (None, None)  # nothing read on the event loop
    assert store.reads == 0
    renders = iter([b"v0", b"v1", b"never"])

    def render() -> bytes:
        return next(renders)

    assert cache.render("jobs", None, render) == b"v0"
    assert cache.render("jobs", None, render) == b"v0"  # same version: stored body
    store.version = 1
    assert cache.render("jobs", None, render) == b"v1"
    assert cache.render("jobs", None, render) == b"v1"


def test_a_store_without_a_version_gets_every_listing_rendered() -> None:
    cache = ListingCache(Unversioned())
    assert not cache.versioned
    key, body = cache.cached(("ex", 1))
    assert (key, body) == (None, None)
    renders = iter([b"body-1", b"body-2"])

    def render() -> bytes:
        return next(renders)

    assert cache.render(("ex", 1), key, render) == b"body-1"
    assert cache.render(("ex", 1), key, render) == b"body-2"


class Failing:
    records_version_is_local = True

    def records_version(self) -> int:
        raise RuntimeError("store is down")


def test_an_unreadable_version_renders_instead_of_serving() -> None:
    cache = ListingCache(Failing())
    assert cache.cached("jobs") == (None, None)
    assert cache.render("jobs", None, lambda: b"rendered") == b"rendered"


# -- /cluster/controllers: concurrent requests share a fan-out that began after they arrived --


async def test_concurrent_callers_share_a_render_begun_after_they_arrived() -> None:
    import asyncio

    started, release = asyncio.Event(), asyncio.Event()
    count = 0

    async def render() -> bytes:
        nonlocal count
        count += 1
        mine = count
        if mine == 1:
            started.set()
            await release.wait()
        return f"body-{mine}".encode()

    shared = FreshShared(render)
    first = asyncio.ensure_future(shared.get())
    await started.wait()
    later = [asyncio.ensure_future(shared.get()) for _ in range(2)]
    await asyncio.sleep(0)  # let them arrive (they wait on the loop, not in a render)
    assert count == 1
    release.set()
    # "first" got the render it started; the others arrived while it ran, so they got the next
    # one (begun after they arrived), rendered once for both.
    assert await asyncio.gather(first, *later) == [b"body-1", b"body-2", b"body-2"]
    assert count == 2
    assert await shared.get() == b"body-3"  # nothing is kept between requests


async def test_a_failed_shared_render_is_raised_to_its_callers_and_the_next_caller_renders() -> None:
    import asyncio

    started, release = asyncio.Event(), asyncio.Event()
    outcomes: list[Exception | bytes] = [b"first", RuntimeError("controller gone"), b"ok"]

    async def render() -> bytes:
        outcome = outcomes.pop(0)
        if outcome == b"first":
            started.set()
            await release.wait()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    shared = FreshShared(render)
    first = asyncio.ensure_future(shared.get())
    await started.wait()
    waiters = [asyncio.ensure_future(shared.get()) for _ in range(2)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.gather(first, *waiters, return_exceptions=True)
    assert results[0] == b"first"
    assert [str(r) for r in results[1:]] == ["controller gone", "controller gone"]
    assert await shared.get() == b"ok"


async def test_a_caller_that_goes_away_does_not_cancel_the_shared_render() -> None:
    import asyncio

    started, release = asyncio.Event(), asyncio.Event()
    finished: list[int] = []

    async def render() -> bytes:
        n = len(finished) + 1
        started.set()
        await release.wait()
        finished.append(n)
        return f"body-{n}".encode()

    shared = FreshShared(render)
    gone = asyncio.ensure_future(shared.get())
    await started.wait()
    staying = asyncio.ensure_future(shared.get())
    await asyncio.sleep(0)
    gone.cancel()
    release.set()
    assert await staying == b"body-2"
    assert gone.cancelled()
    assert finished == [1, 2]  # the render its starter left still ran to its end


def test_cluster_controllers_is_live_on_every_request(
    records: dict[str, str], cached_client: ApiClient, controllers: FakeControllers, store: SqliteStore
) -> None:
    controllers.analytics["10.0.0.9"] = analytics_for("ex-a1", records["alpha"], "alpha")
    store.update_execution("ex-a1", {"slicer_hostname": "10.0.0.9", "slicer_port": 45680})
    first = cached_client.get("/v1/cluster/controllers").json()
    assert [c["ex_id"] for c in first] == ["ex-a1"]
    store.set_status("ex-a1", "completed")
    assert cached_client.get("/v1/cluster/controllers").json() == []


def test_elasticsearch_listings_show_another_writer_on_the_next_request(
    settings: MasterSettings, config: SysConfig
) -> None:
    # The emulator counts operations and refreshes like Elasticsearch's _stats; a controller
    # writing through its own client changes them, so the next listing renders again.
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "store"))
    from es_emulator import running_emulator

    from teraslice_k8s.store.elasticsearch import ElasticsearchStore

    with running_emulator() as (url, emulator):
        store = ElasticsearchStore(url, "lc")
        controller = ElasticsearchStore(url, "lc")
        service = MasterService(store, RecordingBackend(), settings, job_validator(config))
        api = ApiClient(app_module.create_app(service))
        try:
            store.create_job({**job_spec(name="alpha"), "job_id": "job-a"})
            store.create_execution(
                {**job_spec(name="alpha"), "ex_id": "ex-a", "job_id": "job-a", "_status": "running"}
            )
            first = api.get("/v1/jobs?ex=_status").json()
            searches = sum(1 for _method, path in emulator.requests if path.endswith("/_search"))
            assert api.get("/v1/jobs?ex=_status").json() == first  # served from the cache
            assert sum(1 for _m, path in emulator.requests if path.endswith("/_search")) == searches
            controller.set_status("ex-a", "completed")
            assert api.get("/v1/jobs?ex=_status").json()[0]["ex"] == {"_status": "completed"}
            assert api.get("/txt/ex").text == fresh_text(service, "/txt/ex")
        finally:
            api.close()
            controller.close()
            store.close()


def fresh_text(service: MasterService, route: str) -> str:
    api = ApiClient(app_module.create_app(service))
    try:
        return api.get(route).text
    finally:
        api.close()


class LocalVersionBackend(RecordingBackend):
    """A backend whose state version is an attribute read, as the Kubernetes backend's."""

    state_version_is_local = True

    def __init__(self) -> None:
        super().__init__()
        self.version = 0
        self.reads = 0

    def state_version(self) -> int:
        return self.version

    def cluster_state(self) -> dict[str, Any]:
        self.reads += 1
        return self.state


def test_a_cheap_state_version_serves_cached_state_and_shows_changes_at_once(
    settings: MasterSettings, config: SysConfig, store: SqliteStore
) -> None:
    backend = LocalVersionBackend()
    service = MasterService(store, backend, settings, job_validator(config))
    api = ApiClient(app_module.create_app(service))
    worker = {"assignment": "worker", "ex_id": "e1", "job_id": "j1", "worker_id": "w1", "pod_name": "p1"}
    try:
        backend.state = {"n1": {"node_id": "n1", "state": "connected", "active": []}}
        first = api.get("/v1/cluster/state").content
        table = api.get("/txt/workers").text
        reads = backend.reads
        assert api.get("/v1/cluster/state").content == first
        assert api.get("/txt/workers").text == table
        assert backend.reads == reads  # both answered from the cache
        backend.state = {"n1": {"node_id": "n1", "state": "connected", "active": [worker]}}
        backend.version = 1
        assert api.get("/v1/cluster/state").json() == backend.state
        assert "p1" in api.get("/txt/workers").text
    finally:
        api.close()
