"""One problem per field: a missing or empty ``_op`` is reported once, not by both the job
schema and the operation registry (before: ``operations[0]._op: must not be empty;
operations[0]._op: is required (a non-empty string)``)."""

from __future__ import annotations

from typing import Any

import pytest

from .fakes import ApiClient


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
