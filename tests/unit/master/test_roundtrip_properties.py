"""Property: any JSON value at any job or option field is refused (4xx) or stored exactly.

Through the HTTP app (``POST /v1/jobs``) over a real SQLite store: whatever hypothesis puts at
a job field, an operation option or an API key (integers of any size, NaN/Infinity, deep
nesting, unpaired surrogates, odd keys), the answer is 200 or a 4xx, never a 5xx; and after it
``GET /v1/jobs``, ``GET /v1/jobs/<id>`` and ``/txt/jobs`` answer 200, the job listed and fetched
being exactly what was stored (a refused job leaves the listing as it was). 5,000 cases.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
from pathlib import Path
from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.controller_client import ControllerClient
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import FakeControllers, RecordingBackend

#: Placements checked (each example checks PER_EXAMPLE of them, one request sequence each).
CASES = 5000
PER_EXAMPLE = 5
METADATA = ("job_id", "_context", "_created", "_updated")
JOB_FIELDS = ["name", "workers", "lifecycle", "labels", "env_vars", "targets", "assets", "meta", "wokers"]
OPTION_FIELDS = ["size", "start", "delay", "stress_test", "format", "seed", "_dead_letter_action", "sise"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(alphabet=st.characters(codec=None), max_size=8)
)
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
deep = st.integers(min_value=90, max_value=130).map(lambda n: json.loads("[" * n + "]" * n))
values = json_values | deep


def body_of(where: str, key: str, value: Any) -> bytes:
    job: dict[str, Any] = {"name": "prop", "operations": [{"_op": "data_generator"}, {"_op": "noop"}]}
    if where == "job":
        job[key] = value
    elif where == "option":
        job["operations"][0][key] = value
    else:
        job["apis"] = [{"_name": "api", key: value}]
        job["operations"][1]["_api_name"] = "api"
    # allow_nan: NaN/Infinity reach the master as the tokens Python writes (not JSON)
    return json.dumps(job, allow_nan=True).encode("utf-8", "surrogatepass")


def same(a: Any, b: Any) -> bool:
    """JSON equality (a float and the integer JavaScript prints for it are the same number)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, float) and math.isnan(a):
        return False
    if (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and (isinstance(a, float) or isinstance(b, float))
    ):
        # JSON.stringify prints a double by its shortest digits (4.638651948827686e+16 as
        # 46386519488276860): the same number once read back as a double.
        return float(a) == float(b)
    return bool(a == b)


def test_any_value_anywhere_is_refused_or_stored_exactly(config: SysConfig, tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "prop.sqlite", synchronous="NORMAL")
    service = MasterService(
        store,
        RecordingBackend(),
        MasterSettings.from_config(config),
        job_validator(config),
        prepare=spec_preparer(config),
        controllers=ControllerClient(transport=FakeControllers().transport()),
    )
    service.start()
    # One event loop and the app in-process (httpx's ASGI transport): about 1 ms a request,
    # so 5,000 placements fit in the test's minute.
    loop = asyncio.new_event_loop()
    # The loop runs on in its own thread between requests, so the API's worker threads (and
    # their store connections) are reused rather than started per request.
    runner = threading.Thread(target=loop.run_forever, daemon=True)
    runner.start()
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=create_app(service)), base_url="http://master")

    def call(method: str, url: str, **kwargs: Any) -> httpx.Response:
        return asyncio.run_coroutine_threadsafe(http.request(method, url, **kwargs), loop).result()

    stored: list[str] = []
    seen = [0]

    @settings(
        max_examples=CASES // PER_EXAMPLE,
        deadline=None,
        derandomize=True,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["job", "option", "api"]),
                st.sampled_from(JOB_FIELDS + OPTION_FIELDS) | st.text(max_size=6),
                values,
            ),
            min_size=PER_EXAMPLE,
            max_size=PER_EXAMPLE,
        )
    )
    def check(placements: list[tuple[str, str, Any]]) -> None:
        before = len(stored)
        records: dict[str, Any] = {}
        for where, key, value in placements:
            body = body_of(where, key, value)
            response = call(
                "POST", "/v1/jobs?start=false", content=body, headers={"content-type": "application/json"}
            )
            status = response.status_code
            assert status in (200, 400, 413, 415, 422), (status, response.text)
            seen[0] += 1
            if status != 200:
                assert response.json()["error"] == status
                continue
            job_id = response.json()["job_id"]
            stored.append(job_id)
            fetched = call("GET", f"/v1/jobs/{job_id}")
            assert fetched.status_code == 200
            records[job_id] = fetched.json()
            spec = {k: v for k, v in records[job_id].items() if k not in METADATA}
            assert same(spec, json.loads(body)), (spec, body)
        # the listing holds exactly the jobs stored (newest first), refused ones left no trace
        listing = call("GET", f"/v1/jobs?size={len(placements)}")
        assert listing.status_code == 200
        listed = listing.json()
        new = len(stored) - before
        assert [job["job_id"] for job in listed[:new]] == stored[before:][::-1]
        for job in listed[:new]:
            assert same(job, records[job["job_id"]])
        assert call("GET", f"/txt/jobs?size={len(placements)}").status_code == 200

    try:
        check()
        assert seen[0] >= CASES
        assert len(stored) > CASES // 10  # the property saw both outcomes
        assert call("GET", "/v1/jobs?size=10000").status_code == 200
        assert call("GET", "/txt/jobs?size=10000").status_code == 200
    finally:
        asyncio.run_coroutine_threadsafe(http.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        runner.join()
        loop.close()
        service.allocator.close()
        service.lifecycle.close()
        service.controllers.close()
        store.close()
