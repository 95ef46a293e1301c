"""Values the store cannot keep exactly are refused at the door, each naming its field.

One test per rule (exact status, message and problems), the payload limit (413) and deep
nesting through the real uvicorn server (no 5xx, no dropped connection), and the store's own
backstop for writers that bypass the API.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from teraslice_k8s.errors import ValidationError
from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.models.json_values import MAX_DEPTH, MAX_SAFE_INTEGER, parse_json, value_problems
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient

INTEGER = (
    "must be an integer between -9007199254740991 and 9007199254740991 "
    "(larger integers lose digits in JavaScript and Elasticsearch)"
)
DEPTH = "is nested deeper than 100 levels of arrays and objects"


def job_text(size: str, extra: str = "") -> bytes:
    """A valid job with ``size`` (raw JSON text) as the reader's option."""
    return (
        '{"name":"limits"' + extra + ',"operations":[{"_op":"data_generator","size":' + size + "},"
        '{"_op":"noop"}]}'
    ).encode()


def post_raw(client: ApiClient, body: bytes, content_type: str = "application/json") -> httpx.Response:
    return client.post("/v1/jobs?start=false", content=body, headers={"content-type": content_type})


def assert_refused(response: httpx.Response, status: int, message: str, problems: list[str]) -> None:
    assert response.status_code == status, response.text
    expected: dict[str, Any] = {"error": status, "message": message}
    if problems:
        expected["problems"] = problems
    assert response.json() == expected


def assert_nothing_stored(client: ApiClient) -> None:
    listing = client.get("/v1/jobs")
    assert listing.status_code == 200
    assert listing.json() == []


@pytest.mark.parametrize("size", [str(MAX_SAFE_INTEGER + 1), str(-MAX_SAFE_INTEGER - 1), "1" + "0" * 30])
def test_an_unsafe_integer_is_refused_naming_the_field(client: ApiClient, size: str) -> None:
    problem = f"operations[0].size: {INTEGER}"
    assert_refused(post_raw(client, job_text(size)), 422, problem, [problem])
    assert_nothing_stored(client)


def test_the_largest_safe_integer_is_kept_exactly(client: ApiClient) -> None:
    response = post_raw(client, job_text(str(MAX_SAFE_INTEGER)))
    assert response.status_code == 200, response.text
    job = client.get(f"/v1/jobs/{response.json()['job_id']}").json()
    assert job["operations"][0]["size"] == MAX_SAFE_INTEGER


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_malformed_json_naming_the_field(client: ApiClient, constant: str) -> None:
    problem = f"operations[0].size: {constant} is not a JSON value"
    message = f"the json submitted is malformed: {problem}"
    assert_refused(post_raw(client, job_text(constant)), 400, message, [problem])
    assert_nothing_stored(client)


def test_a_number_overflowing_to_infinity_is_refused(client: ApiClient) -> None:
    problem = "operations[0].size: must be a finite number"
    assert_refused(post_raw(client, job_text("1e400")), 422, problem, [problem])


def test_nesting_deeper_than_the_limit_names_the_first_too_deep_value(client: ApiClient) -> None:
    # The job object is level 1, "meta" (the outermost array) level 2: the innermost is level 101.
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    path = "meta" + "[0]" * (MAX_DEPTH - 1)
    problem = f"{path}: {DEPTH}"
    assert_refused(post_raw(client, job_text("10", ',"meta":' + nested)), 422, problem, [problem])
    fits = "[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)
    assert post_raw(client, job_text("10", ',"meta":' + fits)).status_code == 200


def test_an_unpaired_surrogate_is_refused_in_values_and_keys(client: ApiClient) -> None:
    body = job_text("10", ',"env_vars":{"A":"x\\ud800"},"meta":{"k\\udc00":1}')
    surrogate = "must not contain an unpaired UTF-16 surrogate (it cannot be stored as UTF-8)"
    problems = [f"env_vars.A: {surrogate}", f"meta.k\\udc00: {surrogate}"]
    assert_refused(post_raw(client, body), 422, "; ".join(problems), problems)


def test_malformed_json_keeps_teraslices_message(client: ApiClient) -> None:
    assert_refused(post_raw(client, b'{"name": '), 400, "the json submitted is malformed", [])
    # an integer too long for Python's int() (4,300 digits) is not taken apart
    huge = b'{"a": 1' + b"0" * 5000 + b"}"
    assert_refused(post_raw(client, huge), 400, "the json submitted is malformed", [])


def test_problems_are_capped(client: ApiClient) -> None:
    body = ('{"operations":[{"_op":"noop"}],"many":[' + ",".join(["1e400"] * 500) + "]}").encode()
    response = post_raw(client, body)
    assert response.status_code == 422
    assert response.json()["problems"] == [f"many[{i}]: must be a finite number" for i in range(20)]


def test_put_applies_the_same_rules(client: ApiClient) -> None:
    job_id = post_raw(client, job_text("10")).json()["job_id"]
    response = client.put(
        f"/v1/jobs/{job_id}", content=job_text(str(2**64)), headers={"content-type": "application/json"}
    )
    problem = f"operations[0].size: {INTEGER}"
    assert_refused(response, 422, problem, [problem])
    assert client.get(f"/v1/jobs/{job_id}").json()["operations"][0]["size"] == 10


def test_a_body_over_the_payload_limit_is_413(service: MasterService) -> None:
    service.settings = MasterSettings(**{**vars(service.settings), "payload_limit_bytes": 1000})
    client = ApiClient(create_app(service))
    try:
        big = job_text("10", ',"pad":"' + "x" * 2000 + '"')
        assert_refused(post_raw(client, big), 413, "request entity too large (limit 1000 bytes)", [])
        assert post_raw(client, job_text("10")).status_code == 200
    finally:
        client.close()


@pytest.mark.parametrize("depth", [1_000, 5_000, 20_000, 100_000])
def test_deep_nesting_through_the_real_server_is_a_4xx_not_a_dropped_connection(
    master_url: str, depth: int
) -> None:
    body = job_text("10", ',"meta":' + "[" * depth + "]" * depth)
    with httpx.Client(base_url=master_url, timeout=60) as http:
        response = http.post("/v1/jobs", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 422
        assert response.json()["error"] == 422
        assert DEPTH in response.json()["message"]
        # the server is still there and the listing unharmed
        assert http.get("/v1/jobs").json() == []


def test_parse_json_is_exact_for_what_it_accepts() -> None:
    text = '{"a":[1,-2.5,"x\\u00e9",null,true,{"b":9007199254740991}],"c":1e308}'
    assert parse_json(text.encode()) == json.loads(text)


def test_the_store_refuses_unkeepable_job_values_itself(store: SqliteStore) -> None:
    with pytest.raises(ValidationError) as caught:
        store.create_job({"job_id": "j1", "name": "x", "size": 2**70, "x": float("nan")})
    assert caught.value.lines == [f"size: {INTEGER}", "x: must be a finite number"]
    assert value_problems({"ok": [1, 2.5, "s", None, True]}) == []


def test_the_payload_limit_comes_from_api_payload_limit() -> None:
    from teraslice_k8s.models.config import parse_config

    config = parse_config({"teraslice": {"api_payload_limit": "1kb"}})
    assert MasterSettings.from_config(config).payload_limit_bytes == 1024
    assert MasterSettings.from_config(parse_config({})).payload_limit_bytes == 100 * 1024 * 1024
