"""sample_exact_es_percent against the Elasticsearch emulator: the percentage document, its
refresh, and the reference's messages."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest
from standard_harness import config_error, make_op

from teraslice_k8s.runtime.connectors import elasticsearch_client

sys.path.insert(0, str(Path(__file__).parents[1] / "store"))
from es_emulator import running_emulator


def put(url: str, percent: Any) -> None:
    client = elasticsearch_client({"node": [url]}, "test")
    if not client.indices.exists(index="rates"):
        client.indices.create(index="rates")
    client.index(index="rates", id="sample", document={"percent": percent}, refresh=True)
    client.close()


CONFIG = {
    "_op": "sample_exact_es_percent",
    "index": "rates",
    "document_id": "sample",
    "window_ms": 100,
    "seed": 3,
}


async def test_percentage_from_the_document_and_refresh() -> None:
    with running_emulator() as (url, _emulator):
        put(url, 50)
        connectors = {"elasticsearch-next": {"default": {"node": [url]}}}
        op: Any = await make_op(CONFIG, connectors=connectors)
        try:
            assert len(await op.process([{"i": i} for i in range(10000)], {})) == 5000
            put(url, "0")
            await op.refresh()
            assert await op.process([{"i": i} for i in range(10000)], {}) == []
            put(url, 100)
            await op.refresh()
            assert len(await op.process([{"i": i} for i in range(10000)], {})) == 10000
            # A failing refresh keeps the known (non-zero) percentage.
            put(url, "lots")
            await op.refresh()
            assert op.percentage == 1.0
        finally:
            await op.shutdown()


@pytest.mark.parametrize(
    ("percent", "message"),
    [
        ("lots", "Percent could not be converted from a string to a number:_id: sample, percent: lots"),
        ([1], "Expected percent to be of type number or string, found Array. _id: sample, percent: 1"),
        (101, "Percent must be a number between 0 and 100, received 101."),
    ],
)
async def test_a_bad_first_percentage_fails_initialize(percent: Any, message: str) -> None:
    with running_emulator() as (url, _emulator):
        put(url, percent)
        with pytest.raises(RuntimeError) as err:
            await make_op(CONFIG, connectors={"elasticsearch-next": {"default": {"node": [url]}}})
    assert str(err.value) == (
        "SampleExactESPercentage failed to retrieve percentage from index rates of elasticsearch-next "
        f"connection default: {message}"
    )


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"index": 5}, "must be of type string"),
        ({"index": ""}, "must not be an empty string"),
        ({"index": "Rates"}, "must be lowercase"),
        ({"document_id": "  "}, "must be a non-empty string"),
        ({"window_ms": 50}, "must be a number between 100 and 3,600,000 milliseconds (1 hour)."),
    ],
)
def test_messages(options: dict[str, Any], message: str) -> None:
    assert config_error({**CONFIG, **options}) == message
