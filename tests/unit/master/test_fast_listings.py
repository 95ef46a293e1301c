"""The fast path for cached listings (master/fast_listings.py): what it answers is exactly what
the app answered (status, headers in order, body), never after a write it did not see, and
every request it may not answer (HEAD, other methods, errors, paths and query strings not seen
answered from a cache) reaches the app unchanged. No sleeps, no timings.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import Message, Receive, Scope, Send

from teraslice_k8s.master import app as app_module
from teraslice_k8s.master.fast_listings import FastListingsMiddleware, LearnedListings
from teraslice_k8s.master.server import MasterServer
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, RecordingBackend, job_spec

ROUTES = (
    "/v1/jobs",
    "/jobs?size=2&sort=_created:asc",
    "/v1/jobs?ex=_status,ex_id",
    "/v1/jobs?unknown=1",
    "/v1/ex",
    "/v1/ex/",
    "/v1/ex?status=running",
    "/txt/jobs",
    "/txt/ex?fields=ex_id,_status&headers=false",
    "/txt/workers",
    "/v1/cluster/state",
)


@pytest.fixture
def records(store: SqliteStore, backend: RecordingBackend) -> None:
    backend.live.add("ex-a1")
    backend.state = {"10.0.0.1": {"node_id": "10.0.0.1", "hostname": "10.0.0.1", "active": []}}
    for name in ("alpha", "beta"):
        store.create_job({**job_spec(name=name), "job_id": f"job-{name}"})
    store.create_execution(
        {**job_spec(name="alpha"), "ex_id": "ex-a1", "job_id": "job-alpha", "_status": "running"}
    )


@pytest.fixture
def app(records: None, service: MasterService) -> Any:
    return app_module.create_app(service)


@pytest.fixture
def api(app: Any) -> Iterator[ApiClient]:
    client = ApiClient(app)
    yield client
    client.close()


def learned_of(app: Any) -> LearnedListings:
    (layer,) = [m for m in app.user_middleware if m.cls is FastListingsMiddleware]
    learned: LearnedListings = layer.kwargs["learned"]
    return learned


def whole(response: httpx.Response) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return response.status_code, list(response.headers.raw), response.content


def fresh(service: MasterService, route: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """The answer of a new app (nothing cached, nothing learned): what the store holds now."""
    client = ApiClient(app_module.create_app(service))
    try:
        return whole(client.get(route))
    finally:
        client.close()


def test_fast_answers_are_the_apps_answers(api: ApiClient, app: Any, service: MasterService) -> None:
    learned = learned_of(app)
    for route in ROUTES:
        by_app = whole(api.get(route))  # rendered, stored, learned
        answered = learned.answered
        assert whole(api.get(route)) == by_app, route
        assert learned.answered == answered + 1, f"{route} was not answered by the fast path"
        assert by_app == fresh(service, route)
    assert len(learned) == len(ROUTES)


def _set_status_elsewhere(db: str, ex_id: str, status: str) -> None:
    """An execution controller's status write, from its own process and connection."""
    store = SqliteStore(db)
    try:
        store.set_status(ex_id, status)
    finally:
        store.close()


def test_a_controller_process_write_shows_on_the_next_request(
    api: ApiClient, app: Any, service: MasterService, store: SqliteStore
) -> None:
    routes = ("/v1/ex?status=running", "/txt/ex", "/v1/jobs?ex=_status")
    before = {route: whole(api.get(route)) for route in routes}
    answered = learned_of(app).answered
    assert {route: whole(api.get(route)) for route in routes} == before
    assert learned_of(app).answered == answered + len(routes)
    process = multiprocessing.get_context("spawn").Process(
        target=_set_status_elsewhere, args=(str(store.path), "ex-a1", "completed")
    )
    process.start()
    process.join(120)
    assert process.exitcode == 0
    after = {route: whole(api.get(route)) for route in routes}
    assert after == {route: fresh(service, route) for route in routes}
    assert all(after[route] != before[route] for route in routes)
    assert api.get("/v1/ex?status=running").json() == []
    answered = learned_of(app).answered
    assert {route: whole(api.get(route)) for route in routes} == after  # fast again, new bodies
    assert learned_of(app).answered == answered + len(routes)


def test_a_write_through_another_connection_shows_on_the_next_request(
    api: ApiClient, app: Any, service: MasterService, store: SqliteStore
) -> None:
    other = SqliteStore(store.path)
    try:
        for _ in range(2):
            api.get("/txt/jobs")
        other.create_job({**job_spec(name="gamma"), "job_id": "job-gamma"})
        answer = whole(api.get("/txt/jobs"))
    finally:
        other.close()
    assert answer == fresh(service, "/txt/jobs")
    assert b"job-gamma" in answer[2]


def test_what_the_fast_path_leaves_to_the_app(api: ApiClient, app: Any) -> None:
    learned = learned_of(app)
    get = api.get("/v1/jobs")
    api.get("/v1/jobs")
    answered = learned.answered
    head = api.request("HEAD", "/v1/jobs")
    assert (head.status_code, head.headers.raw, head.content) == (200, get.headers.raw, b"")
    for _ in range(2):  # errors are never learned: each one is the app's answer
        assert api.get("/v1/jobs?size=abc").status_code == 400
        assert api.get("/v1/ex?status=bogus").status_code == 400
        assert api.get("/v1/nothing").status_code == 405
        assert api.get("/v1/jobs/job-alpha").status_code == 200  # not a cached listing
        assert api.get("/v1/cluster/controllers").status_code == 200  # live on every request
    assert api.post("/v1/jobs?start=false", json=job_spec(name="delta")).status_code == 200
    assert learned.answered == answered
    assert sorted(path + "?" + query.decode() for path, query in learned._entries) == ["/v1/jobs?"]
    # A new query string is the app's until it has answered it once from a cache.
    assert api.get("/v1/jobs?size=1").status_code == 200
    assert learned.answered == answered


# -- the layer itself, over a scripted app ----------------------------------------------------


class ScriptedApp:
    """Answers every request with ``parts`` (body messages) and offers ``lookup``."""

    def __init__(self, parts: list[bytes], lookup: Any) -> None:
        self.parts = parts
        self.lookup = lookup
        self.calls = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls += 1
        LearnedListings.offer(self.lookup)
        body = b"".join(self.parts)
        headers = [(b"x-first", b"1"), (b"content-length", str(len(body)).encode()), (b"content-type", b"t")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for n, part in enumerate(self.parts):
            await send({"type": "http.response.body", "body": part, "more_body": n < len(self.parts) - 1})


async def call(layer: FastListingsMiddleware, path: str = "/x") -> list[Message]:
    scope = {"type": "http", "method": "GET", "path": path, "query_string": b"a=1", "headers": []}
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    await layer(scope, receive, send)
    return sent


async def test_the_headers_are_the_apps_with_the_new_length() -> None:
    stored = [b"body"]
    app = ScriptedApp([b"body"], lambda: stored[0])
    layer = FastListingsMiddleware(app, LearnedListings())
    await call(layer)
    stored[0] = b"a longer body"  # stored for a later version
    start, body = await call(layer)
    assert app.calls == 1
    assert start["headers"] == [(b"x-first", b"1"), (b"content-length", b"13"), (b"content-type", b"t")]
    assert body == {"type": "http.response.body", "body": b"a longer body"}


@pytest.mark.parametrize(
    ("parts", "lookup"),
    [
        ([b"body"], lambda: b"another body"),  # a write came between the answer and the lookup
        ([b"body"], lambda: None),  # rendered for that request only
        ([b"bo", b"dy"], lambda: b"body"),  # streamed
    ],
    ids=["other-body", "not-stored", "streamed"],
)
async def test_not_learned_unless_the_lookup_gives_what_was_sent(parts: list[bytes], lookup: Any) -> None:
    app = ScriptedApp(parts, lookup)
    layer = FastListingsMiddleware(app, LearnedListings())
    await call(layer)
    await call(layer)
    assert app.calls == 2 and len(layer.learned) == 0


async def test_a_failing_lookup_leaves_the_request_to_the_app() -> None:
    state = {"fail": False}

    def lookup() -> bytes:
        if state["fail"]:
            raise RuntimeError("store is down")
        return b"body"

    app = ScriptedApp([b"body"], lookup)
    layer = FastListingsMiddleware(app, LearnedListings())
    await call(layer)
    state["fail"] = True
    await call(layer)
    assert (app.calls, layer.learned.answered) == (2, 0)


async def test_learned_requests_are_bounded() -> None:
    layer = FastListingsMiddleware(ScriptedApp([b"b"], lambda: b"b"), LearnedListings(max_entries=2))
    for path in ("/a", "/b", "/c"):
        await call(layer, path)
    assert sorted(path for path, _ in layer.learned._entries) == ["/b", "/c"]


def test_the_access_log_shows_fast_answers(
    records: None, service: MasterService, caplog: pytest.LogCaptureFixture
) -> None:
    """Over uvicorn: both answers are logged and equal apart from their date."""
    server = MasterServer(service, "127.0.0.1", 0, log_level="warning", access_log=True)
    url = server.start()
    try:
        with caplog.at_level(logging.INFO, logger="uvicorn.access"), httpx.Client() as client:
            answers = [client.get(f"{url}/v1/ex?status=running") for _ in range(3)]
    finally:
        server.stop()
    undated = [[(k, v) for k, v in r.headers.raw if k.lower() != b"date"] for r in answers]
    assert undated[0] == undated[1] == undated[2]
    assert answers[0].content == answers[1].content == answers[2].content
    lines = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert [line.split(" - ", 1)[1] for line in lines] == ['"GET /v1/ex?status=running HTTP/1.1" 200'] * 3
