"""Unknown keys are kept and reported (warnings, verbatim), or refused with ``strict``; keys the
master sets are reported as replaced; an operation's default connector must exist.

Through the API (``POST /v1/jobs``, ``?strict=``, the ``teraslice.strict_job_keys`` setting)
and the CLI (``jobs register``, ``run --strict``, ``render``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.cli import main
from teraslice_k8s.master.app import create_app
from teraslice_k8s.master.controller_client import ControllerClient
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import ApiClient, FakeControllers, RecordingBackend

TYPO_JOB: dict[str, Any] = {
    "name": "typos",
    "wokers": 1,
    "operations": [{"_op": "data_generator", "sise": 10}, {"_op": "noop"}],
}
WOKERS = '"wokers" is not a job property; it is kept but has no effect (did you mean "workers"?)'
SISE = (
    '"operations[0].sise" is not an option of data_generator; it is kept but has no effect '
    '(did you mean "size"?)'
)
TYPO_WARNINGS = [
    {
        "type": "JobValidation",
        "reason": {
            "type": "jobProperty",
            "kind": "unknownKey",
            "reason": {"field": "wokers", "description": WOKERS},
        },
    },
    {
        "type": "JobValidation",
        "reason": {
            "type": "assetOperation",
            "_op": "data_generator",
            "kind": "unknownKey",
            "reason": {"field": "operations[0].sise", "description": SISE},
        },
    },
]
STRICT_PROBLEMS = [
    'wokers: is not a job property (did you mean "workers"?)',
    'operations[0].sise: is not an option of data_generator (did you mean "size"?)',
]


def test_unknown_keys_are_kept_and_returned_as_warnings(client: ApiClient) -> None:
    response = client.post("/v1/jobs?start=false", json=TYPO_JOB)
    assert response.status_code == 200
    body = response.json()
    assert body["warnings"] == TYPO_WARNINGS
    stored = client.get(f"/v1/jobs/{body['job_id']}").json()
    assert stored["wokers"] == 1
    assert stored["operations"][0] == {"_op": "data_generator", "sise": 10}


def test_an_api_key_no_operation_declares_is_a_warning(client: ApiClient) -> None:
    job = {
        "name": "api-typo",
        "apis": [{"_name": "out", "limt": 5}],
        "operations": [{"_op": "data_generator"}, {"_op": "stdout", "_api_name": "out"}],
    }
    response = client.post("/v1/jobs?start=false", json=job)
    assert response.status_code == 200
    assert response.json()["warnings"] == [
        {
            "type": "JobValidation",
            "reason": {
                "type": "assetOperation",
                "_op": "stdout",
                "kind": "unknownKey",
                "reason": {
                    "field": "apis[0].limt",
                    "description": '"apis[0].limt" is not an option of stdout; it is kept but has no effect '
                    '(did you mean "limit"?)',
                },
            },
        }
    ]


@pytest.mark.parametrize("query", ["?start=false&strict=true", "?start=false&strict"])
def test_strict_makes_unknown_keys_errors(client: ApiClient, query: str) -> None:
    response = client.post(f"/v1/jobs{query}", json=TYPO_JOB)
    assert response.status_code == 422
    assert response.json() == {
        "error": 422,
        "message": "; ".join(STRICT_PROBLEMS),
        "problems": STRICT_PROBLEMS,
    }
    assert client.get("/v1/jobs").json() == []


def test_put_takes_strict_too(client: ApiClient) -> None:
    job_id = client.post("/v1/jobs?start=false", json={**TYPO_JOB, "wokers": None}).json()["job_id"]
    response = client.put(f"/v1/jobs/{job_id}?strict=true", json=TYPO_JOB)
    assert response.status_code == 422
    assert response.json()["problems"] == STRICT_PROBLEMS


def test_client_supplied_master_keys_are_reported(client: ApiClient) -> None:
    job = {**TYPO_JOB, "_context": "x", "_created": "then", "_updated": "then"}
    job.pop("wokers")
    job["operations"] = [{"_op": "data_generator"}, {"_op": "noop"}]
    response = client.post("/v1/jobs?start=false", json=job)
    assert response.status_code == 200
    assert [w["reason"] for w in response.json()["warnings"]] == [
        {
            "type": "jobProperty",
            "kind": "ignored",
            "reason": {
                "field": key,
                "description": f'"{key}" is set by the master; the posted value is replaced',
            },
        }
        for key in ("_context", "_created", "_updated")
    ]
    stored = client.get(f"/v1/jobs/{response.json()['job_id']}").json()
    assert stored["_context"] == "job"
    assert stored["_created"] != "then"


@pytest.fixture
def strict_client(store: SqliteStore, config: SysConfig) -> Iterator[ApiClient]:
    strict = parse_config(
        {
            "teraslice": {"name": "strict", "cluster_manager_type": "kubernetesV2", "strict_job_keys": True},
            "terafoundation": {"prom_metrics_enabled": False},
        }
    )
    service = MasterService(
        store,
        RecordingBackend(),
        MasterSettings.from_config(strict),
        job_validator(strict),
        prepare=spec_preparer(strict),
        controllers=ControllerClient(transport=FakeControllers().transport()),
    )
    service.start()
    api = ApiClient(create_app(service))
    yield api
    api.close()
    service.allocator.close()
    service.lifecycle.close()
    service.controllers.close()


def test_the_master_setting_makes_strict_the_default(strict_client: ApiClient) -> None:
    response = strict_client.post("/v1/jobs?start=false", json=TYPO_JOB)
    assert response.status_code == 422
    assert response.json()["problems"] == STRICT_PROBLEMS
    allowed = strict_client.post("/v1/jobs?start=false&strict=false", json=TYPO_JOB)
    assert allowed.status_code == 200
    assert allowed.json()["warnings"] == TYPO_WARNINGS


def test_the_default_connector_must_exist_for_operations_that_use_one(client: ApiClient) -> None:
    job = {
        "name": "es",
        "operations": [
            {"_op": "elasticsearch_reader", "index": "a", "date_field_name": "d"},
            {"_op": "noop"},
        ],
    }
    response = client.post("/v1/jobs?start=false", json=job)
    problem = (
        'operations[0]._connection: elasticsearch_reader needs the terafoundation connector "default" '
        "of type elasticsearch-next or elasticsearch_next or elasticsearch, which this cluster does not "
        "configure (terafoundation.connectors)"
    )
    assert response.status_code == 422
    assert response.json() == {"error": 422, "message": problem, "problems": [problem]}


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def typo_file(tmp_path: Path) -> Path:
    path = tmp_path / "typos.json"
    path.write_text(json.dumps(TYPO_JOB), encoding="utf-8")
    return path


def test_jobs_register_prints_the_warnings(
    master_url: str, typo_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["jobs", "register", str(typo_file), "--url", master_url]) == 0
    err = capsys.readouterr().err
    assert err == f"warning: {WOKERS}\nwarning: {SISE}\n"
    assert main(["jobs", "register", str(typo_file), "--strict", "--url", master_url]) != 0
    err = capsys.readouterr().err
    for problem in STRICT_PROBLEMS:
        assert problem in err


def test_run_strict_refuses_and_render_warns(
    typo_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["run", str(typo_file), "--strict", "--data-dir", str(tmp_path / "data")])
    _out, err = capsys.readouterr()
    assert code == 2
    assert err == "".join(f"{typo_file}: {problem}\n" for problem in STRICT_PROBLEMS)
    config = Path(__file__).resolve().parents[3] / "examples" / "teraslice.yaml"
    assert main(["render", "--config", str(config), "--job", str(typo_file)]) == 0
    err = capsys.readouterr().err
    assert err == f"warning: {typo_file}: {WOKERS}\nwarning: {typo_file}: {SISE}\n"
    code = main(["render", "--config", str(config), "--job", str(typo_file), "--strict"])
    assert code != 0
