"""Error mapping and retry policy of the Kubernetes API layer, without HTTP.

The client's methods in the call table are replaced by fakes that raise the exceptions the real
client raises, so the tests see exactly which errors are retried, how often, how long the
(injected) sleeps are and which lines are logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import pytest
import urllib3
from kubernetes.client import ApiException

from teraslice_k8s.kubernetes import api as api_module
from teraslice_k8s.kubernetes.api import ApiSettings, Kind, KubeApi, load_client_configuration, map_error
from teraslice_k8s.kubernetes.errors import (
    AlreadyExists,
    Conflict,
    Forbidden,
    Gone,
    Invalid,
    KubeError,
    NotFound,
    Transient,
    Unauthorized,
    error_for_status,
)


def status_body(code: int, reason: str, message: str = "boom") -> str:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": reason,
            "message": message,
            "code": code,
        }
    )


def api_exception(
    status: int, body: str | None = None, headers: dict[str, str] | None = None
) -> ApiException:
    error = ApiException(status=status, reason="x", body=body)
    error.headers = headers
    return error


class Scripted:
    """A transport that raises the scripted exceptions, then returns ``result`` as JSON bytes."""

    def __init__(self, failures: list[Exception], result: Any = None) -> None:
        self.failures = list(failures)
        self.result = result if result is not None else {"metadata": {"name": "j"}}
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> bytes:
        self.calls += 1
        if self.failures:
            raise self.failures.pop(0)
        return json.dumps(self.result).encode()


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def make_api(sleeps: list[float]) -> Callable[..., KubeApi]:
    def make(send: Callable[..., Any], **settings: Any) -> KubeApi:
        defaults: dict[str, Any] = {"namespace": "ts-dev1", "sleep": sleeps.append, "jitter": lambda: 0.5}
        api = KubeApi(
            ApiSettings(**{**defaults, **settings}), load_client_configuration(host="http://127.0.0.1:9")
        )
        api._send = send  # type: ignore[method-assign]
        return api

    return make


# ------------------------------------------------------------------------------- mapping


@pytest.mark.parametrize(
    ("status", "reason", "expected"),
    [
        (400, "BadRequest", Invalid),
        (401, "Unauthorized", Unauthorized),
        (403, "Forbidden", Forbidden),
        (404, "NotFound", NotFound),
        (409, "AlreadyExists", AlreadyExists),
        (409, "Conflict", Conflict),
        (410, "Expired", Gone),
        (422, "Invalid", Invalid),
        (429, "TooManyRequests", Transient),
        (500, "InternalError", Transient),
        (503, "ServiceUnavailable", Transient),
        (504, "Timeout", Transient),
    ],
)
def test_status_maps_to_class(status: int, reason: str, expected: type[KubeError]) -> None:
    error = map_error(api_exception(status, status_body(status, reason)), "get", "batch/jobs", "j", "ns")
    assert type(error) is expected
    assert error.status == status
    assert error.reason == reason


def test_409_without_status_body_on_create_is_already_exists() -> None:
    error = map_error(api_exception(409, "conflict!"), "create", "batch/jobs", "j", "ns")
    assert type(error) is AlreadyExists


def test_forbidden_names_verb_resource_and_namespace() -> None:
    error = map_error(
        api_exception(403, status_body(403, "Forbidden")), "create", "batch/jobs", "j", "ts-dev1"
    )
    assert str(error) == (
        'forbidden: the master\'s ServiceAccount may not "create" "batch/jobs" in namespace "ts-dev1" '
        "— grant it in the Role"
    )


def test_core_group_resource_has_no_prefix() -> None:
    error = map_error(api_exception(403, None), "watch", "pods", "", "ts-dev1")
    assert '"watch" "pods"' in str(error)


def test_not_found_message() -> None:
    body = status_body(404, "NotFound", 'jobs.batch "j" not found')
    error = map_error(api_exception(404, body), "get", "batch/jobs", "j", "ts-dev1")
    assert str(error) == 'get batch/jobs "j" in namespace "ts-dev1": not found (jobs.batch "j" not found)'


def test_only_status_payloads_are_kept_and_text_is_truncated() -> None:
    html = "<html>" + "x" * 1000 + "</html>"
    error = map_error(api_exception(502, html), "list", "pods", "", "ns")
    assert error.payload is None
    detail = str(error).split("HTTP 502 (", 1)[1].rstrip(")")
    assert len(detail) == 256
    assert detail.endswith("…")


def test_status_message_is_truncated() -> None:
    error = map_error(
        api_exception(422, status_body(422, "Invalid", "m" * 1000)), "create", "apps/deployments", "d", "ns"
    )
    assert error.payload is not None
    assert len(error.payload["message"]) == 256
    assert set(error.payload) == {"kind", "status", "reason", "code", "message"}


def test_transport_errors_are_transient() -> None:
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out.")
    refused = urllib3.exceptions.NewConnectionError(None, "Connection refused")  # type: ignore[arg-type]
    assert type(map_error(timeout, "get", "batch/jobs", "j", "ns")) is Transient
    assert "timed out" in str(map_error(timeout, "get", "batch/jobs", "j", "ns"))
    assert type(map_error(refused, "get", "batch/jobs", "j", "ns")) is Transient
    assert type(map_error(ConnectionResetError(), "get", "batch/jobs", "j", "ns")) is Transient


def test_client_side_validation_is_invalid() -> None:
    error = map_error(ValueError("spec.template: Field required"), "create", "batch/jobs", "j", "ns")
    assert type(error) is Invalid
    assert "rejected before it was sent" in str(error)


def test_errors_are_chained_to_the_client_exception(make_api: Callable[..., KubeApi]) -> None:
    original = api_exception(404, status_body(404, "NotFound"))
    api = make_api(Scripted([original]))
    with pytest.raises(NotFound) as info:
        api.get(Kind.JOB, "j")
    assert info.value.__cause__ is original


# ------------------------------------------------------------------------------- retries


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 410, 422])
def test_final_statuses_are_not_retried(
    status: int, make_api: Callable[..., KubeApi], sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    read = Scripted([api_exception(status, status_body(status, "X"))])
    api = make_api(read)
    with pytest.raises(KubeError), caplog.at_level(logging.WARNING):
        api.get(Kind.JOB, "j")
    assert read.calls == 1
    assert sleeps == []
    assert caplog.records == []


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_transient_statuses_are_retried_then_escalated(
    status: int, make_api: Callable[..., KubeApi], sleeps: list[float], caplog: pytest.LogCaptureFixture
) -> None:
    read = Scripted([api_exception(status, status_body(status, "X", "busy"))] * 4)
    api = make_api(read, attempts=4, backoff_base=0.5, backoff_cap=10.0)
    with pytest.raises(Transient), caplog.at_level(logging.WARNING, logger=api_module.__name__):
        api.get(Kind.JOB, "j")
    assert read.calls == 4
    assert sleeps == [0.5, 1.0, 2.0]  # base * 2**(n-1) * (0.5 + jitter 0.5)
    where = f'get batch/jobs "j" in namespace "ts-dev1": HTTP {status} (busy)'
    assert [r.getMessage() for r in caplog.records] == [
        f"attempt #1/4 failed: {where}; will retry in 0.50s",
        f"attempt #2/4 failed: {where}; will retry in 1.00s",
        f"attempt #3/4 failed: {where}; will retry in 2.00s",
        f"attempt #4/4 failed: {where}; escalating",
    ]


def test_success_after_transient_failures(make_api: Callable[..., KubeApi], sleeps: list[float]) -> None:
    timeout = urllib3.exceptions.ReadTimeoutError(None, "/x", "Read timed out.")
    read = Scripted([api_exception(500, None), timeout], result={"metadata": {"name": "j", "uid": "u"}})
    api = make_api(read, attempts=3)
    assert api.get(Kind.JOB, "j") == {"metadata": {"name": "j", "uid": "u"}}
    assert read.calls == 3
    assert len(sleeps) == 2


def test_retry_after_is_honoured_and_capped(make_api: Callable[..., KubeApi], sleeps: list[float]) -> None:
    read = Scripted(
        [
            api_exception(429, status_body(429, "TooManyRequests"), {"Retry-After": "3"}),
            api_exception(429, status_body(429, "TooManyRequests"), {"Retry-After": "120"}),
        ]
    )
    api = make_api(read, attempts=3, backoff_cap=10.0)
    api.get(Kind.JOB, "j")
    assert sleeps == [3.0, 10.0]


def test_backoff_is_capped_and_jittered(sleeps: list[float], make_api: Callable[..., KubeApi]) -> None:
    jitters = iter([0.0, 0.99, 0.99, 0.99])
    read = Scripted([api_exception(503, None)] * 5)
    api = make_api(read, attempts=5, backoff_base=2.0, backoff_cap=5.0, jitter=lambda: next(jitters))
    with pytest.raises(Transient):
        api.get(Kind.JOB, "j")
    assert sleeps == [1.0, pytest.approx(5.0), 5.0, 5.0]


def test_single_attempt_means_no_retry(make_api: Callable[..., KubeApi], sleeps: list[float]) -> None:
    read = Scripted([api_exception(500, None)])
    api = make_api(read, attempts=1)
    with pytest.raises(Transient):
        api.get(Kind.JOB, "j")
    assert read.calls == 1
    assert sleeps == []


def test_every_attempt_is_counted_by_verb_and_resource(make_api: Callable[..., KubeApi]) -> None:
    read = Scripted([api_exception(500, None), api_exception(404, status_body(404, "NotFound"))])
    api = make_api(read, attempts=3)
    assert api.calls() == {}
    with pytest.raises(NotFound):
        api.get(Kind.JOB, "j")  # a retried 500, then a final 404: two requests sent
    assert api.delete(Kind.POD, "p") is True
    assert api.calls() == {("get", "batch/jobs"): 2, ("delete", "pods"): 1}
    snapshot = api.calls()
    snapshot["get", "batch/jobs"] = 99  # a copy: the counters are the API module's own
    assert api.calls()["get", "batch/jobs"] == 2


def test_rbac_rules_are_exactly_the_call_table_verbs() -> None:
    granted = {
        (group, resource, verb)
        for rule in api_module.RBAC_RULES
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    used = {
        (ops.api_version.rpartition("/")[0], ops.resource, verb)
        for ops in api_module.CALL_TABLE.values()
        for verb in ops.verbs
    }
    assert used == granted


def test_error_for_status_needs_no_client_types() -> None:
    # A bare status, a text body and a plain dict of headers are enough (what the proxy path has).
    body = json.dumps({"kind": "Status", "reason": "TooManyRequests", "message": "slow down"})
    error = error_for_status(
        429,
        body.encode(),
        {"Retry-After": "3"},
        where="get pods",
        verb="get",
        resource="pods",
        namespace="ns",
    )
    assert isinstance(error, Transient)
    assert (error.message, error.retry_after, error.reason) == (
        "get pods: HTTP 429 (slow down)",
        3.0,
        "TooManyRequests",
    )
    plain = error_for_status(
        418, "teapot", None, where="get pods", verb="get", resource="pods", namespace="ns"
    )
    assert (
        type(plain) is KubeError and plain.message == "get pods: HTTP 418 (teapot)" and plain.payload is None
    )
