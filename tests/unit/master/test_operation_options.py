"""Operation options are checked against each operation's declared schema at submit.

One test per rule through ``POST /v1/jobs`` with the exact status, message and problems;
nothing is stored for a refused job.
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from teraslice_k8s.runtime.operations.base import (
    Batch,
    OpOptions,
    OptionsNotDeclared,
    Processor,
    SliceRequest,
    declared_options,
)

from .fakes import ApiClient


def job(reader: dict[str, Any], *processors: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": "options", "operations": [reader, *(processors or [{"_op": "noop"}])], **fields}


def gen(**options: Any) -> dict[str, Any]:
    return {"_op": "data_generator", **options}


def refused(client: ApiClient, body: dict[str, Any], *problems: str) -> None:
    response = client.post("/v1/jobs?start=false", json=body)
    assert response.status_code == 422, response.text
    assert response.json() == {"error": 422, "message": "; ".join(problems), "problems": list(problems)}
    assert client.get("/v1/jobs").json() == []


@pytest.mark.parametrize(
    ("options", "problem"),
    [
        ({"size": "str"}, "operations[0].size: must be an integer"),
        ({"size": True}, "operations[0].size: must be an integer"),
        ({"size": 5.0}, "operations[0].size: must be an integer"),
        ({"size": 0}, "operations[0].size: must be > 0"),
        ({"stress_test": "yes"}, "operations[0].stress_test: must be a boolean"),
        ({"stress_test": 1}, "operations[0].stress_test: must be a boolean"),
        (
            {"start": 12},
            'operations[0].start: must be a date string (ISO 8601, e.g. "2024-05-01T00:00:00Z")',
        ),
        (
            {"end": "yesterday"},
            'operations[0].end: must be a date string (ISO 8601, e.g. "2024-05-01T00:00:00Z")',
        ),
        ({"delay": 1e12}, "operations[0].delay: must be <= 86400"),
        ({"delay": "1"}, "operations[0].delay: must be a number"),
        ({"format": "iso"}, "operations[0].format: must be one of dateNow, isoBetween, utcDate, utcBetween"),
        ({"_encoding": "xml"}, "operations[0]._encoding: must be one of json, raw"),
    ],
)
def test_a_wrong_reader_option_is_422_naming_it(
    client: ApiClient, options: dict[str, Any], problem: str
) -> None:
    refused(client, job(gen(**options)), problem)


@pytest.mark.parametrize(
    ("processor", "problem"),
    [
        ({"_op": "delay", "ms": 10**12}, "operations[1].ms: must be <= 86400000"),
        (
            {"_op": "delay", "ms": "soon"},
            'operations[1].ms: must be a duration: milliseconds or a string like "1 minute"',
        ),
        ({"_op": "stdout", "limit": -1}, "operations[1].limit: must be >= 0"),
        ({"_op": "stdout", "limit": "5"}, "operations[1].limit: must be an integer"),
        (
            {"_op": "elasticsearch_bulk", "index": "x", "create": "no"},
            "operations[1].create: must be a boolean",
        ),
    ],
)
def test_a_wrong_processor_option_is_422_naming_it(
    client: ApiClient, processor: dict[str, Any], problem: str
) -> None:
    refused(client, job(gen(), processor), problem)


def test_an_asset_suffix_must_name_an_asset_the_job_has(client: ApiClient) -> None:
    refused(
        client,
        job(gen(), {"_op": "noop@nosuchasset"}),
        'operations[1]._op: no asset "nosuchasset" with operation "noop" '
        "(not in the job's assets; built in: standard, elasticsearch)",
    )
    accepted = job(gen(**{"_op": "data_generator@standard:2.1.2"}), {"_op": "noop@standard"})
    assert client.post("/v1/jobs?start=false", json=accepted).status_code == 200


def test_dead_letter_action_is_throw_log_none_or_an_api(client: ApiClient) -> None:
    refused(
        client,
        job(gen(_dead_letter_action="nosuchapi")),
        "operations[0]._dead_letter_action: must be throw, log, none or the _name of an API "
        '(no API named "nosuchapi")',
    )
    refused(
        client,
        job(gen(), apis=[{"_name": "dlq", "_dead_letter_action": "elsewhere"}]),
        "apis[0]._dead_letter_action: must be throw, log, none or the _name of an API "
        '(no API named "elsewhere")',
    )
    for action in ("throw", "log", "none", "dlq"):
        body = job(gen(_dead_letter_action=action), apis=[{"_name": "dlq"}])
        assert client.post("/v1/jobs?start=false", json=body).status_code == 200, action


def test_api_common_keys_are_typed(client: ApiClient) -> None:
    refused(
        client,
        job(gen(), apis=[{"_name": "a", "_encoding": "xml", "_connection": ""}]),
        "apis[0]._connection: must not be empty",
        "apis[0]._encoding: must be one of json, raw",
    )


def test_an_api_option_error_names_the_api(client: ApiClient) -> None:
    body = job(
        gen(),
        {"_op": "elasticsearch_bulk", "_api_name": "out"},
        apis=[{"_name": "out", "index": "x", "size": "big"}],
    )
    refused(client, body, "apis[0].size: must be an integer")


def test_an_env_value_with_nul_is_refused(client: ApiClient) -> None:
    refused(client, job(gen(), env_vars={"A": "x\x00y"}), "env_vars.A: must not contain a NUL character")


class _NoSchema(Processor):
    async def process(self, batch: Batch, request: SliceRequest) -> Batch:
        return batch


class _EmptySchema(OpOptions):
    pass


class _WithSchema(_NoSchema):
    Options: ClassVar[type[OpOptions]] = _EmptySchema


def test_every_operation_must_declare_its_options_schema() -> None:
    with pytest.raises(OptionsNotDeclared) as caught:
        declared_options(_NoSchema)
    assert str(caught.value) == (
        f"{__name__}._NoSchema declares no options schema "
        "(Options = a subclass of OpOptions, docs/operations.md)"
    )
    assert declared_options(_WithSchema) is _EmptySchema
