"""count_by_field's Prometheus counter, read from the process registry's exposition text (what
``/metrics`` serves) after slices run through ``teraslice_k8s.testing`` with a JobMetrics: the
exact series and values, pending counts flushed once per scrape, one counter per process."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import generate_latest
from standard_harness import op_class

from teraslice_k8s.runtime.metrics import JobMetrics
from teraslice_k8s.testing import arun_ops, record

NAME = "teraslice_job_count_by_field_count_total"
EXECUTION = {"ex_id": "ex-1", "job_id": "job-1", "name": "counting"}
#: The reference's example (§2.7): node_id 100, "100", 101, 101, "101", "101", missing.
NODE_IDS: list[Any] = [100, "100", 101, 101, "101", "101"]
COUNT = {"_op": "count_by_field", "field": "node_id", "collect_metrics": True}


def spec_records() -> list[Any]:
    return [record({"node_id": v}) for v in NODE_IDS] + [record({"other": 1})]


@pytest.fixture(autouse=True)
def no_pending_counts() -> Iterator[None]:
    """The pending counts are process-wide (Teraslice's class-static map): start from none."""
    counts: dict[str, Any] = op_class("count_by_field").counts  # type: ignore[attr-defined]
    counts.clear()
    yield
    counts.clear()


def scrape(metrics: JobMetrics) -> list[str]:
    """The counter's lines of the exposition text (HELP, TYPE, then the series in order)."""
    text = generate_latest(metrics.registry).decode()
    return [line for line in text.splitlines() if "count_by_field_count" in line]


def series(value: str, count: int, field: str = "node_id") -> str:
    """One series line (the exposition orders labels by name)."""
    labels = f'ex_id="ex-1",field="{field}",job_id="job-1",name="counting",op_name="count_by_field"'
    return f'{NAME}{{{labels},value="{value}"}} {count:.1f}'


HEAD = [
    "# HELP teraslice_job_count_by_field_count_total count_by_field value field count",
    "# TYPE teraslice_job_count_by_field_count_total counter",
]


async def test_the_reference_example_as_exported_series() -> None:
    metrics = JobMetrics("worker", EXECUTION, add_default=False)
    records = spec_records()
    result = await arun_ops([COUNT], input=records, metrics=metrics)
    assert result.output == records  # records pass through unchanged
    expected = [
        *HEAD,
        series("100", 1),
        series(r"\"100\"", 1),
        series("101", 2),
        series(r"\"101\"", 2),
        series("undefined", 1),
    ]
    assert scrape(metrics) == expected
    # The scrape moved the pending counts into the counter: a second one adds nothing.
    assert scrape(metrics) == expected


async def test_later_slices_add_to_the_series_and_two_ops_share_one_counter() -> None:
    metrics = JobMetrics("worker", EXECUTION, add_default=False)
    second = {**COUNT, "field": "other"}
    slices = [spec_records(), [record({"node_id": 100, "other": "x"})]]
    await arun_ops([COUNT, second], slices=slices, metrics=metrics)
    # Both instances count into the one process-wide map keyed by label only: "other" of the
    # first slice (1, then missing six times) and of the second ("x") join node_id's labels;
    # a label keeps the field of the instance that saw it first.
    assert scrape(metrics) == [
        *HEAD,
        series("100", 2),
        series(r"\"100\"", 1),
        series("101", 2),
        series(r"\"101\"", 2),
        series("undefined", 7),
        series("1", 1, "other"),
        series(r"\"x\"", 1, "other"),
    ]
    assert metrics.has_metric("count_by_field_count_total")


async def test_counts_made_without_prometheus_are_exported_once_it_is_there() -> None:
    await arun_ops([COUNT], input=spec_records())  # no metrics: counting only (inferred)
    pending = op_class("count_by_field").counts  # type: ignore[attr-defined]
    assert {label: entry["count"] for label, entry in pending.items()} == {
        "100": 1,
        '"100"': 1,
        "101": 2,
        '"101"': 2,
        "undefined": 1,
    }
    metrics = JobMetrics("worker", EXECUTION, add_default=False)
    await arun_ops([COUNT], input=[record({"node_id": 101})], metrics=metrics)
    assert scrape(metrics)[2:] == [
        series("100", 1),
        series(r"\"100\"", 1),
        series("101", 3),
        series(r"\"101\"", 2),
        series("undefined", 1),
    ]


async def test_without_collect_metrics_nothing_is_registered_or_counted() -> None:
    metrics = JobMetrics("worker", EXECUTION, add_default=False)
    records = spec_records()
    result = await arun_ops([{**COUNT, "collect_metrics": False}], input=records, metrics=metrics)
    assert result.output == records
    assert scrape(metrics) == []
    assert not metrics.has_metric("count_by_field_count_total")
    assert op_class("count_by_field").counts == {}  # type: ignore[attr-defined]


async def test_labels_are_json_stringify_of_the_value() -> None:
    metrics = JobMetrics("worker", EXECUTION, add_default=False)
    values = [1.0, 2.5, None, True, "é", {"a": [1, "b"]}, float("nan")]
    await arun_ops([COUNT], input=[record({"node_id": v}) for v in values], metrics=metrics)
    labels = [line.split(',value="', 1)[1].rsplit('"} ', 1)[0] for line in scrape(metrics)[2:]]
    # JavaScript's JSON.stringify: 1.0 is 1, no spaces, non-ASCII kept, NaN is null (merged
    # with the null before it).
    assert labels == ["1", "2.5", "null", "true", r"\"é\"", r"{\"a\":[1,\"b\"]}"]
