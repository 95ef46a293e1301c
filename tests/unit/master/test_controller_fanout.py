"""The fan-out's own HTTP/1.1 client (``/cluster/controllers``) against real sockets.

Its answers must equal httpx's ``Response.json()`` for the same bytes, whatever the framing;
failures must say whether a controller was reached (only an unreached one may be asked again by
another route); kept connections are reused, and one the controller closed is replaced.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.controller_client import ControllerClient, Route
from teraslice_k8s.master.controller_fanout import ControllerFanout, Failed, NotConnected
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, RecordingBackend, analytics_for, job_spec
from .scripted_http import CLOSE, HANG, ScriptedServer, chunked, close_delimited, ok


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[int], bytes]], ScriptedServer]]:
    servers: list[ScriptedServer] = []

    def start(reply: Callable[[int], bytes]) -> ScriptedServer:
        servers.append(ScriptedServer(reply))
        return servers[-1]

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def fanout() -> Iterator[ControllerFanout]:
    client = ControllerFanout()
    yield client
    client.close()


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


BODIES = [
    b'{"processed": 3, "started": "2024-05-01T12:00:00.000Z"}',
    '{"name": "gén\\u00e9rateur ✓", "nested": {"a": [1, 2.5, -0.0, 1e300, null, true]}}'.encode(),
    b'{"big": 123456789012345678901234567890, "nan": NaN, "dup": 1, "dup": 2}',
    b"  {}  ",
]


@pytest.mark.parametrize("frame", [ok, chunked, close_delimited], ids=["length", "chunked", "close"])
def test_answers_equal_httpx_json(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer], fanout: ControllerFanout, frame: Any
) -> None:
    servers = [serve(lambda n, body=body: frame(body)) for body in BODIES]
    addresses = [("127.0.0.1", server.port) for server in servers]
    with httpx.Client() as client:
        expected = [client.get(f"http://127.0.0.1:{server.port}/analytics").json() for server in servers]
    assert fanout.get_all(addresses, "/analytics", 5) == expected
    assert expected[2]["big"] == 123456789012345678901234567890 and expected[2]["dup"] == 2


def test_the_request_and_kept_connections(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer], fanout: ControllerFanout
) -> None:
    servers = [serve(lambda n: ok(b'{"n": %d}' % n)) for _ in range(3)]
    addresses = [("127.0.0.1", server.port) for server in servers]
    answers = [fanout.get_all(addresses, "/analytics", 5) for _ in range(3)]
    assert answers == [[{"n": n}] * 3 for n in range(3)]
    assert [server.connections for server in servers] == [1, 1, 1]
    from teraslice_k8s import __version__

    assert servers[0].heads[0] == (
        b"GET /analytics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAccept: application/json\r\n"
        b"Accept-Encoding: identity\r\nUser-Agent: teraslice-k8s-master/%s\r\n\r\n"
        % (servers[0].port, __version__.encode())
    )


def test_a_connection_the_controller_closed_is_replaced(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer], fanout: ControllerFanout
) -> None:
    # Closed after the answer without saying so (noticed before reuse), and closed as the next
    # request arrives (the close crossed it: sent once more on a new connection).
    quiet_close = serve(lambda n: ok(b'{"a": 1}') + CLOSE)
    crossing = serve(lambda n: ok(b'{"b": 2}') if n == 0 else CLOSE)
    addresses = [("127.0.0.1", quiet_close.port), ("127.0.0.1", crossing.port)]
    assert fanout.get_all(addresses, "/analytics", 5) == [{"a": 1}, {"b": 2}]
    assert fanout.get_all(addresses, "/analytics", 5) == [{"a": 1}, {"b": 2}]
    assert [quiet_close.connections, crossing.connections] == [2, 2]
    assert len(crossing.heads) <= 3  # never more than one extra attempt


@pytest.mark.parametrize(
    ("reply", "message"),
    [
        (b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 2\r\n\r\n{}", "HTTP 500"),
        (ok(b"not json"), "the answer is not JSON"),
        (ok(b"[1]"), "returned list, not an object"),
        (b"SSH-2.0-OpenSSH\r\n\r\n", "not an HTTP/1.x answer"),
        (ok(b'{"a": 1}', extra=b"content-encoding: gzip\r\n"), "the answer is encoded (gzip)"),
        (b"HTTP/1.1 204 No Content\r\n\r\n", "HTTP 204 (no body)"),
        (CLOSE, "the connection closed before the answer"),
        (HANG, "no answer within 0.3 s"),
    ],
    ids=["500", "not-json", "not-an-object", "not-http", "encoded", "no-body", "closed", "timeout"],
)
def test_a_reached_controller_that_fails_is_failed(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer],
    fanout: ControllerFanout,
    reply: bytes,
    message: str,
) -> None:
    failing = serve(lambda n: reply)
    healthy = serve(lambda n: ok(b'{"ok": true}'))
    answers = fanout.get_all([("127.0.0.1", failing.port), ("127.0.0.1", healthy.port)], "/analytics", 0.3)
    assert answers[1] == {"ok": True}  # one failing controller does not fail the others
    assert isinstance(answers[0], Failed), answers[0]
    assert str(answers[0]).startswith(f"GET http://127.0.0.1:{failing.port}/analytics failed: {message}")
    assert len(failing.heads) == 1  # sent once: it may have reached the controller


def test_an_unreached_controller_is_not_connected(fanout: ControllerFanout) -> None:
    port = free_port()
    refused, unresolved = fanout.get_all(
        [("127.0.0.1", port), ("svc-ts-exc-gen.ts-dev1.invalid", 45680)], "/analytics", 5
    )
    assert isinstance(refused, NotConnected) and isinstance(unresolved, NotConnected)
    assert str(refused).startswith(f"GET http://127.0.0.1:{port}/analytics failed: ")


def test_close_ends_the_kept_connections(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer],
) -> None:
    server = serve(lambda n: ok(b"{}"))
    fanout = ControllerFanout()
    assert fanout.get_all([("127.0.0.1", server.port)], "/analytics", 5) == [{}]
    fanout.close()
    assert server.closed.acquire(timeout=10)  # the server saw the kept connection end
    (answer,) = fanout.get_all([("127.0.0.1", server.port)], "/analytics", 5)
    assert isinstance(answer, Failed) and str(answer) == "the controller client is closed"
    assert server.connections == 1


def test_json_of_a_failed_answer_is_not_parsed(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer], fanout: ControllerFanout
) -> None:
    """A 500 keeps its connection (the body was read whole): the next request reuses it."""
    body = json.dumps({"error": "boom"}).encode()
    server = serve(lambda n: b"HTTP/1.1 500 Oops\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
    for _ in range(2):
        (answer,) = fanout.get_all([("127.0.0.1", server.port)], "/analytics", 5)
        assert isinstance(answer, Failed)
    assert server.connections == 1


# -- ControllerClient.analytics_all: the fan-out with the client's routes ---------------------


def execution(ex_id: str, host: str | None, port: int | None) -> dict[str, Any]:
    return {"ex_id": ex_id, "job_id": f"job-{ex_id}", "slicer_hostname": host, "slicer_port": port}


def test_analytics_all_keeps_the_routes(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer], backend: RecordingBackend
) -> None:
    reached = serve(lambda n: ok(b'{"processed": 1}'))
    erring = serve(lambda n: b"HTTP/1.1 500 Oops\r\ncontent-length: 2\r\n\r\n{}")
    executions = [
        execution("reached", "127.0.0.1", reached.port),
        execution("proxied", "svc-ts-exc-gen.ts-dev1.invalid", 45680),  # does not resolve here
        execution("erring", "127.0.0.1", erring.port),
        execution("gone", "127.0.0.1", free_port()),
        execution("new", None, None),
    ]
    backend.controller_replies["proxied"] = {"/analytics": {"processed": 2}}
    client = ControllerClient(backend=backend)
    try:
        for _ in range(2):
            answers = client.analytics_all(executions, 5)
            assert answers[:2] == [{"processed": 1}, {"processed": 2}]
            assert [type(a).__name__ for a in answers[2:]] == ["ControllerUnavailable"] * 3
            assert str(answers[2]).endswith(f"{erring.port}/analytics failed: HTTP 500")
            assert str(answers[4]) == "execution new has no controller address yet"
        # The controller that answered 500 was reached: never asked again by the backend. The
        # proxied one is asked through the backend at once the second time (its route is kept);
        # the refused one tries direct first each time (the backend has no route to it either).
        assert backend.calls_of("call_controller") == [
            ("call_controller", "proxied", "GET", "/analytics", {}),
            ("call_controller", "gone", "GET", "/analytics", {}),
            ("call_controller", "proxied", "GET", "/analytics", {}),
            ("call_controller", "gone", "GET", "/analytics", {}),
        ]
        assert [client.route(ex) for ex in executions] == [Route.DIRECT, Route.BACKEND, None, None, None]
        assert len(erring.heads) == 2 and reached.connections == 1
    finally:
        client.close()


def test_a_remembered_backend_route_is_taken_at_once(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer], backend: RecordingBackend
) -> None:
    direct = serve(lambda n: ok(b'{"processed": 1}'))
    proxied = execution("proxied", "127.0.0.1", direct.port)
    backend.controller_replies["proxied"] = {"/analytics": {"processed": 2}}
    client = ControllerClient(backend=backend)
    try:
        client._remember(("proxied", f"http://127.0.0.1:{direct.port}"), Route.BACKEND)
        assert client.analytics_all([proxied], 5) == [{"processed": 2}]
    finally:
        client.close()
    assert direct.heads == []


def test_the_fanout_answers_as_the_httpx_route(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer], backend: RecordingBackend
) -> None:
    """The same controllers asked through the fan-out and through httpx, one by one."""
    bodies = [b'{"processed": 10, "name": "\\u00e9"}', b'{"queued": 1.5e3}', b"[]"]
    servers = [serve(lambda n, body=body: ok(body)) for body in bodies]
    executions = [execution(f"ex-{i}", "127.0.0.1", s.port) for i, s in enumerate(servers)]
    executions.append(execution("gone", "127.0.0.1", free_port()))
    fanned, one_by_one = ControllerClient(), ControllerClient(transport=httpx.HTTPTransport())
    try:
        got = fanned.analytics_all(executions, 5)
        expected = one_by_one.analytics_all(executions, 5)
    finally:
        fanned.close()
        one_by_one.close()
    assert got[:2] == expected[:2] == [{"processed": 10, "name": "é"}, {"queued": 1500.0}]
    assert [type(a).__name__ for a in got[2:]] == [type(a).__name__ for a in expected[2:]]
    assert [type(a).__name__ for a in got[2:]] == ["ControllerUnavailable"] * 2


def test_cluster_controllers_bodies_equal_the_httpx_route(
    serve: Callable[[Callable[[int], bytes]], ScriptedServer],
    store: SqliteStore,
    backend: RecordingBackend,
    config: SysConfig,
    settings: MasterSettings,
) -> None:
    """/cluster/controllers, /cluster/stats and /txt/controllers, byte for byte."""
    for i, name in enumerate(("alpha", "beta", "gamma")):
        body = json.dumps(analytics_for(f"ex-{name}", f"job-{name}", name, processed=i * 7)).encode()
        frame = chunked if i == 1 else ok
        server = serve(lambda n, body=body, frame=frame: frame(body))
        store.create_job({**job_spec(name=name), "job_id": f"job-{name}"})
        store.create_execution(
            {
                **job_spec(name=name),
                "ex_id": f"ex-{name}",
                "job_id": f"job-{name}",
                "_status": "running",
                "slicer_hostname": "127.0.0.1",
                "slicer_port": server.port,
            }
        )
    bodies: list[list[bytes]] = []
    for client in (ControllerClient(), ControllerClient(transport=httpx.HTTPTransport())):
        service = MasterService(store, backend, settings, job_validator(config), controllers=client)
        api = ApiClient(create_app(service))
        try:
            routes = ("/v1/cluster/controllers", "/v1/cluster/stats", "/txt/controllers")
            bodies.append([api.get(route).content for route in routes])
        finally:
            api.close()
            service.stats.close()
            client.close()
    assert bodies[0] == bodies[1]
    assert [c["name"] for c in json.loads(bodies[0][0])] == ["gamma", "beta", "alpha"]


class Hooks:
    """What the controllers' HTTP server asks of its execution controller."""

    ready = True
    ex_id = "ex-real"

    def controller_stats(self) -> dict[str, Any]:
        return analytics_for("ex-real", "job-real", "réal", processed=12, queuing_complete="")

    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def set_log_level(self, level: str) -> None: ...
    def worker_connected(self, conn: Any) -> None: ...
    def worker_message(self, conn: Any, message: dict[str, Any]) -> None: ...
    def worker_disconnected(self, conn: Any) -> None: ...


def test_the_controllers_own_server_answers_the_fanout() -> None:
    """The runtime's controller HTTP server (uvicorn), kept connection and all."""
    import asyncio
    import threading

    from teraslice_k8s.runtime.server import ControllerServer

    port = free_port()
    loop = asyncio.new_event_loop()
    server = ControllerServer(Hooks(), "127.0.0.1", port)
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(server.start(), loop).result(30)
    client, one_by_one = ControllerClient(), ControllerClient(transport=httpx.HTTPTransport())
    try:
        ex = execution("ex-real", "127.0.0.1", port)
        answers = [client.analytics_all([ex], 5) for _ in range(3)]
        assert answers == [[Hooks().controller_stats()]] * 3
        assert answers[0] == one_by_one.analytics_all([ex], 5)
    finally:
        client.close()
        one_by_one.close()
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
