"""Listings can't be poisoned: records written around the API (straight into SQLite or the
Elasticsearch emulator) never turn ``GET /v1/jobs``, ``/v1/ex``, ``/txt/*`` or ``?ex=`` into a
500. A record that cannot be shown is listed in its safe form (id, ``_context``,
``_unreadable``) and logged once; every other record is listed exactly as stored.
"""

from __future__ import annotations

import logging
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.controller_client import ControllerClient
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig
from teraslice_k8s.store import records
from teraslice_k8s.store.elasticsearch import ElasticsearchStore
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, FakeControllers, RecordingBackend

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from es_emulator import Emulator, running_emulator

BIG = 123456789012345678901234567890
DEEP = 600  # parses, but no encoder walks it


def stamp(n: int) -> str:
    return f"2024-05-01T12:00:{n:02d}.000Z"


def deep_text(depth: int) -> str:
    return "[" * depth + "]" * depth


#: (job_id, doc text as stored, what the listing shows); newest first (the listing's order).
SQLITE_JOBS: list[tuple[str, str, dict[str, Any]]] = [
    (
        "not-json",
        '{"job_id": "not-json", "name": ',
        {
            "job_id": "not-json",
            "_context": "job",
            "_unreadable": "the stored document is not JSON: Expecting value: line 1 column 32 (char 31)",
        },
    ),
    (
        "an-array",
        "[1, 2]",
        {"job_id": "an-array", "_context": "job", "_unreadable": "the stored document is not a JSON object"},
    ),
    (
        "no-id",
        '{"name": "no id"}',
        {"job_id": "no-id", "_context": "job", "_unreadable": "the stored document has no job_id"},
    ),
    (
        "too-deep-to-parse",
        '{"job_id": "too-deep-to-parse", "x": ' + deep_text(100_000) + "}",
        {
            "job_id": "too-deep-to-parse",
            "_context": "job",
            "_unreadable": "the stored document nests too deep to read",
        },
    ),
    (
        "too-deep-to-render",
        '{"job_id": "too-deep-to-render", "name": "deep", "x": ' + deep_text(DEEP) + "}",
        {
            "job_id": "too-deep-to-render",
            "name": "deep",
            "_context": "job",
            "_unreadable": "the stored record cannot be rendered: RecursionError: "
            "maximum recursion depth exceeded",
        },
    ),
    (
        "big-int",
        f'{{"job_id": "big-int", "name": "big", "size": {BIG}, "nan": NaN}}',
        {"job_id": "big-int", "name": "big", "size": BIG, "nan": None},
    ),
    (
        "good",
        '{"job_id": "good", "name": "good", "workers": 1}',
        {"job_id": "good", "name": "good", "workers": 1},
    ),
]


def insert_sqlite(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        for age, (job_id, doc, _shown) in enumerate(reversed(SQLITE_JOBS)):
            conn.execute("INSERT INTO jobs VALUES (?, ?, ?, 0, 0, ?)", (job_id, stamp(age), stamp(age), doc))
            conn.execute(
                "INSERT INTO executions VALUES (?, ?, 'completed', ?, ?, 0, ?)",
                (f"ex-{job_id}", job_id, stamp(age), stamp(age), doc.replace('"job_id": "', '"ex_id": "ex-')),
            )


@pytest.fixture
def poisoned(store: SqliteStore, tmp_path: Path) -> SqliteStore:
    insert_sqlite(tmp_path / "state.sqlite")
    return store


def test_sqlite_job_listing_shows_every_record_and_safe_forms(
    poisoned: SqliteStore, client: ApiClient
) -> None:
    response = client.get("/v1/jobs")
    assert response.status_code == 200
    listed = response.json()
    assert [job["job_id"] for job in listed] == [job_id for job_id, _doc, _shown in SQLITE_JOBS]
    for index, (record, (_id, _doc, shown)) in enumerate(zip(listed, SQLITE_JOBS, strict=True)):
        expected, got = shown, record
        if "_unreadable" in shown and "rendered" not in shown["_unreadable"]:
            # the store's safe form keeps the indexed columns
            when = stamp(len(SQLITE_JOBS) - 1 - index)
            expected = {**shown, "_created": when, "_updated": when}
        if record.get("_unreadable", "").startswith("the stored record cannot be rendered"):
            # the reason ends with the interpreter's own words ("... in comparison")
            assert record["_unreadable"].startswith(shown["_unreadable"])
            got = {**record, "_unreadable": shown["_unreadable"]}
        assert got == expected


@pytest.mark.parametrize(
    "path",
    [
        "/v1/jobs?ex=_status,ex_id",
        "/v1/jobs?sort=name:asc",
        "/v1/ex",
        "/v1/ex?sort=name:desc",
        "/txt/jobs",
        "/txt/ex",
        "/txt/jobs?fields=job_id,x,size",
    ],
)
def test_every_listing_answers_200(poisoned: SqliteStore, client: ApiClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 200, response.text
    text = response.text
    for job_id, _doc, _shown in SQLITE_JOBS:
        assert job_id in text


def test_ex_listing_attaches_the_latest_execution(poisoned: SqliteStore, client: ApiClient) -> None:
    listed = {job["job_id"]: job["ex"] for job in client.get("/v1/jobs?ex=_status").json()}
    # the ex docs hold no _status: an unreadable one's safe form has the indexed column's
    assert listed["good"] == {}
    assert listed["not-json"] == {"_status": "completed"}


def test_txt_table_of_poisoned_jobs(poisoned: SqliteStore, client: ApiClient) -> None:
    text = client.get("/txt/jobs?fields=job_id,name,size&headers=false").text
    assert text.splitlines() == [
        "not-json            N/A   N/A                           ",
        "an-array            N/A   N/A                           ",
        "no-id               N/A   N/A                           ",
        "too-deep-to-parse   N/A   N/A                           ",
        "too-deep-to-render  deep  N/A                           ",
        "big-int             big   123456789012345678901234567890",
        "good                good  N/A                           ",
    ]


def test_an_unreadable_record_is_logged_once(
    poisoned: SqliteStore, client: ApiClient, caplog: pytest.LogCaptureFixture
) -> None:
    records._logged.clear()  # earlier tests listed the same ids
    with caplog.at_level(logging.WARNING, logger="teraslice_k8s.store.records"):
        client.get("/v1/jobs")
        client.get("/v1/jobs?size=50")
    lines = [r.getMessage() for r in caplog.records if "an-array" in r.getMessage()]
    assert lines == [
        "stored job an-array cannot be shown as stored (the stored document is not a JSON object): "
        "listed in a safe form"
    ]


# -- the Elasticsearch store, through the emulator ----------------------------------------------


@pytest.fixture
def es_client(config: SysConfig) -> Iterator[tuple[ApiClient, Emulator, str]]:
    with running_emulator() as (url, emulator):
        store = ElasticsearchStore(url, "poison", refresh=True)
        service = MasterService(
            store,
            RecordingBackend(),
            MasterSettings.from_config(config),
            job_validator(config),
            prepare=spec_preparer(config),
            controllers=ControllerClient(transport=FakeControllers().transport()),
        )
        service.start()
        api = ApiClient(create_app(service))
        try:
            yield api, emulator, "poison"
        finally:
            api.close()
            service.allocator.close()
            service.lifecycle.close()
            service.controllers.close()
            store.close()


def es_insert(emulator: Emulator, index: str, doc_id: str, source: dict[str, Any]) -> None:
    with emulator.lock:
        emulator._write(index, doc_id, source)
        emulator.indices[index].refresh()


def test_es_listings_answer_200_with_poisoned_records(es_client: tuple[ApiClient, Emulator, str]) -> None:
    # (rendering failures do not depend on the store: the SQLite cases cover them)
    client, emulator, cluster = es_client
    docs = {
        "es-big": {
            "job_id": "es-big",
            "name": "big",
            "size": BIG,
            "_updated": stamp(3),
            "_created": stamp(3),
        },
        "es-nan": {"job_id": "es-nan", "x": float("nan"), "_updated": stamp(2), "_created": stamp(2)},
        "es-no-id": {"job_id": ["es-no-id"], "_updated": stamp(0), "_created": stamp(0)},
    }
    for doc_id, source in docs.items():
        es_insert(emulator, f"{cluster}__jobs", doc_id, source)
        ex = {**source, "ex_id": f"ex-{doc_id}", "job_id": doc_id, "_status": "completed"}
        es_insert(emulator, f"{cluster}__ex", f"ex-{doc_id}", ex)
    response = client.get("/v1/jobs")
    assert response.status_code == 200, response.text
    listed = {job["job_id"]: job for job in response.json()}
    assert listed["es-big"] == docs["es-big"]
    assert listed["es-nan"] == {**docs["es-nan"], "x": None}
    assert listed["es-no-id"] == {
        "job_id": "es-no-id",
        "_context": "job",
        "_unreadable": "the stored document has no job_id",
    }
    for path in ("/v1/ex", "/v1/jobs?ex=_status", "/txt/jobs", "/txt/ex"):
        answer = client.get(path)
        assert answer.status_code == 200, (path, answer.text)
        assert "es-big" in answer.text


@pytest.mark.parametrize("job_id", [job_id for job_id, _doc, _shown in SQLITE_JOBS])
def test_every_stored_record_can_be_fetched(poisoned: SqliteStore, client: ApiClient, job_id: str) -> None:
    job = client.get(f"/v1/jobs/{job_id}")
    assert job.status_code == 200
    assert job.json()["job_id"] == job_id
    ex = client.get(f"/v1/ex/ex-{job_id}")
    assert ex.status_code == 200
    assert ex.json()["ex_id"] == f"ex-{job_id}"
