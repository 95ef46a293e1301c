"""When the master's controller client falls back to the backend's route (hybrid mode).

Direct first; only a request that never reached a controller (DNS failure, refused, connect
timeout) goes to ``Backend.call_controller``; an answer from the controller, even an error,
is final. The route that worked is remembered per execution.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from teraslice_k8s.backend.base import BackendError
from teraslice_k8s.backend.local import LocalBackend
from teraslice_k8s.master.controller_client import ControllerClient, ControllerUnavailable, Route

from .fakes import RecordingBackend

EX_ID = "e76a0278-d9bc-4d78-bf14-431bcd97528c"
HOST = "svc-ts-exc-gen-7ba9afb0-417a.ts-dev1"
EXECUTION: dict[str, Any] = {"ex_id": EX_ID, "slicer_hostname": HOST, "slicer_port": 45680}


class Direct:
    """The direct route: answers each request with ``answer`` and records it."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append((request.method, str(request.url)))
        return self.answer(request)


def dns_failure(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[Errno -2] Name or service not known", request=request)


@pytest.fixture
def backend() -> RecordingBackend:
    backend = RecordingBackend()
    backend.controller_replies[EX_ID] = {
        "/pause": {"status": "paused"},
        "/analytics": {"processed": 3},
        "/loglevel": {"level": "debug"},
    }
    return backend


@pytest.fixture
def make_client() -> Iterator[Callable[..., ControllerClient]]:
    made: list[ControllerClient] = []

    def make(direct: Direct | None, backend: Any = None) -> ControllerClient:
        transport = httpx.MockTransport(direct) if direct is not None else None
        client = ControllerClient(transport=transport, backend=backend)
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


def test_direct_answer_uses_no_proxy(
    make_client: Callable[..., ControllerClient], backend: RecordingBackend
) -> None:
    direct = Direct(lambda request: httpx.Response(200, json={"status": "paused"}))
    client = make_client(direct, backend)
    assert client.pause(EXECUTION, 5) == {"status": "paused"}
    assert direct.requests == [("POST", f"http://{HOST}:45680/pause")]
    assert backend.calls_of("call_controller") == []
    assert client.route(EXECUTION) is Route.DIRECT


def test_dns_failure_goes_through_the_backend_and_is_remembered(
    make_client: Callable[..., ControllerClient], backend: RecordingBackend
) -> None:
    direct = Direct(dns_failure)
    client = make_client(direct, backend)
    assert client.pause(EXECUTION, 5) == {"status": "paused"}
    assert client.route(EXECUTION) is Route.BACKEND
    assert client.set_log_level(EXECUTION, "debug", 5) == {"level": "debug"}
    assert client.analytics(EXECUTION, 5) == {"processed": 3}
    # one direct attempt only: later calls go straight to the route that worked
    assert direct.requests == [("POST", f"http://{HOST}:45680/pause")]
    assert backend.calls_of("call_controller") == [
        ("call_controller", EX_ID, "POST", "/pause", {}),
        ("call_controller", EX_ID, "POST", "/loglevel", {"level": "debug"}),
        ("call_controller", EX_ID, "GET", "/analytics", {}),
    ]


def test_real_dns_failure_goes_through_the_backend(
    make_client: Callable[..., ControllerClient], backend: RecordingBackend
) -> None:
    """No mock: ``.invalid`` is reserved (RFC 6761) and never resolves."""
    client = make_client(None, backend)
    execution = {**EXECUTION, "slicer_hostname": "svc-ts-exc-gen-7ba9afb0-417a.ts-dev1.invalid"}
    assert client.pause(execution, 5) == {"status": "paused"}
    assert backend.calls_of("call_controller") == [("call_controller", EX_ID, "POST", "/pause", {})]


@pytest.mark.parametrize(
    "answer",
    [
        pytest.param(lambda request: httpx.Response(500, json={"error": "boom"}), id="ec-500"),
        pytest.param(lambda request: httpx.Response(200, content=b"not json"), id="ec-not-json"),
        pytest.param(lambda request: httpx.Response(200, json=[1]), id="ec-not-an-object"),
    ],
)
def test_an_answer_from_the_controller_is_final(
    make_client: Callable[..., ControllerClient],
    backend: RecordingBackend,
    answer: Callable[[httpx.Request], httpx.Response],
) -> None:
    client = make_client(Direct(answer), backend)
    with pytest.raises(ControllerUnavailable, match=f"POST http://{HOST}:45680/pause"):
        client.pause(EXECUTION, 5)
    assert backend.calls_of("call_controller") == []
    assert client.route(EXECUTION) is None


def test_ec_500_message(make_client: Callable[..., ControllerClient], backend: RecordingBackend) -> None:
    client = make_client(Direct(lambda request: httpx.Response(500, json={"error": "boom"})), backend)
    with pytest.raises(ControllerUnavailable) as caught:
        client.pause(EXECUTION, 5)
    assert str(caught.value).startswith(
        f"POST http://{HOST}:45680/pause failed: Server error '500 Internal Server Error'"
    )


def test_a_read_timeout_is_not_sent_again(
    make_client: Callable[..., ControllerClient], backend: RecordingBackend
) -> None:
    """The pause may have reached the controller: sending it by another route could repeat it."""

    def read_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    client = make_client(Direct(read_timeout), backend)
    with pytest.raises(ControllerUnavailable, match="timed out"):
        client.pause(EXECUTION, 5)
    assert backend.calls_of("call_controller") == []


def test_connect_timeout_and_refused_go_through_the_backend(
    make_client: Callable[..., ControllerClient], backend: RecordingBackend
) -> None:
    def connect_timeout(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectTimeout("timed out", request=request)

    client = make_client(Direct(connect_timeout), backend)
    assert client.pause(EXECUTION, 5) == {"status": "paused"}
    assert len(backend.calls_of("call_controller")) == 1


def test_backend_failure_is_unavailable_and_the_next_call_tries_direct_again(
    make_client: Callable[..., ControllerClient], backend: RecordingBackend
) -> None:
    direct = Direct(dns_failure)
    client = make_client(direct, backend)
    client.pause(EXECUTION, 5)
    backend.fail["call_controller"] = BackendError("no endpoints available for service")
    with pytest.raises(ControllerUnavailable, match=r"^no endpoints available for service$"):
        client.pause(EXECUTION, 5)
    assert client.route(EXECUTION) is None
    assert client.pause(EXECUTION, 5) == {"status": "paused"}
    assert len(direct.requests) == 2
    assert len(backend.calls_of("call_controller")) == 3


def test_without_a_backend_a_dns_failure_is_unavailable(make_client: Callable[..., ControllerClient]) -> None:
    client = make_client(Direct(dns_failure))
    with pytest.raises(ControllerUnavailable, match=r"Name or service not known"):
        client.pause(EXECUTION, 5)


def test_no_address_yet_is_unavailable(
    make_client: Callable[..., ControllerClient], backend: RecordingBackend
) -> None:
    client = make_client(Direct(dns_failure), backend)
    with pytest.raises(ControllerUnavailable, match=f"execution {EX_ID} has no controller address yet"):
        client.pause({"ex_id": EX_ID}, 5)
    assert backend.calls == []


def test_routes_are_per_execution(
    make_client: Callable[..., ControllerClient], backend: RecordingBackend
) -> None:
    other = {"ex_id": "other", "slicer_hostname": "10.0.0.5", "slicer_port": 45680}

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.host == HOST:
            return dns_failure(request)
        return httpx.Response(200, json={"status": "paused"})

    client = make_client(Direct(answer), backend)
    client.pause(EXECUTION, 5)
    client.pause(other, 5)
    assert (client.route(EXECUTION), client.route(other)) == (Route.BACKEND, Route.DIRECT)


# -- the local backend's route (a real controller process: tests/e2e/test_run_local.py) ---------


def test_local_backend_without_that_execution_fails(tmp_path: Any) -> None:
    backend = LocalBackend(log_dir=tmp_path)
    with pytest.raises(BackendError, match=f"execution {EX_ID} has no execution controller process"):
        backend.call_controller({"ex_id": EX_ID}, "GET", "/analytics", {}, 5)
