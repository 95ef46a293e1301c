"""Job validation seen through ``POST /v1/jobs``.

- One problem per field: a missing or empty ``_op`` is reported once, not by both the job
  schema and the operation registry (before: ``operations[0]._op: must not be empty;
  operations[0]._op: is required (a non-empty string)``).
- An op's or API's ``_connection`` must name a terafoundation connector (Teraslice's rule;
  before, the job was accepted and every slice failed with a LookupError).
"""

from __future__ import annotations

from typing import Any

import pytest

from teraslice_k8s.models.config import SysConfig, parse_config

from .fakes import ApiClient


@pytest.fixture
def config() -> SysConfig:
    return parse_config(
        {
            "teraslice": {"name": "testcluster", "cluster_manager_type": "kubernetesV2"},
            "terafoundation": {
                "prom_metrics_enabled": False,
                "connectors": {
                    "elasticsearch-next": {"default": {"node": ["http://es:9200"]}},
                    "kafka": {"events": {"brokers": ["kafka:9092"]}},
                },
            },
        }
    )


@pytest.mark.parametrize(
    ("first_op", "problem"),
    [
        ({"_op": ""}, "operations[0]._op: must not be empty"),
        ({"op": "data_generator"}, "operations[0]._op: is required"),
    ],
)
def test_a_bad_op_name_is_one_problem(client: ApiClient, first_op: dict[str, Any], problem: str) -> None:
    job = {"name": "bad-op", "operations": [first_op, {"_op": "noop"}]}
    response = client.post("/v1/jobs", json=job)
    assert response.status_code == 422
    assert response.json() == {"error": 422, "message": problem, "problems": [problem]}


def test_connections_must_name_a_terafoundation_connector(client: ApiClient) -> None:
    job = {
        "name": "connections",
        "apis": [{"_name": "elasticsearch_sender_api", "index": "x", "_connection": "missing-api"}],
        "operations": [
            {"_op": "data_generator", "_connection": "events"},
            {"_op": "elasticsearch_bulk", "index": "y", "_connection": "missing-op"},
            {"_op": "elasticsearch_bulk", "_api_name": "elasticsearch_sender_api"},
            {"_op": "noop", "_connection": "default"},
        ],
    }
    response = client.post("/v1/jobs", json=job)
    assert response.status_code == 422
    assert response.json()["problems"] == [
        'apis[0]._connection: no terafoundation connector named "missing-api"',
        'operations[1]._connection: no terafoundation connector named "missing-op"',
    ]
    job["apis"][0]["_connection"] = "default"
    job["operations"][1]["_connection"] = "default"
    assert client.post("/v1/jobs", json=job).status_code == 200
