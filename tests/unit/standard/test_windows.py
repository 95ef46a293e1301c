"""window, accumulate, accumulate_by_key: state across slices, release rules and the flush."""

from __future__ import annotations

import sys
from typing import Any

import pytest
from standard_harness import bodies, config_error, entity, make_op, run_slices

from teraslice_k8s.runtime.data_entity import DataWindow

BASE = "2019-05-02T18:12:{:02d}.000Z"


def times(window: DataWindow) -> list[Any]:
    return [r["time"] for r in window.as_array()]


async def test_tumbling_event_windows() -> None:
    op = await make_op(
        {"_op": "window", "time_field": "time", "window_length": 1000, "event_window_expiration": 1}
    )
    first, second = await run_slices(
        op, [[{"time": BASE.format(s)} for s in (0, 1, 2)], [{"time": BASE.format(4)}]]
    )
    assert [times(w) for w in first] == [[BASE.format(0), BASE.format(1)]]
    assert [times(w) for w in second] == [[BASE.format(2)]]
    assert first[0].get_metadata("_key") is None


async def test_sliding_windows_overlap() -> None:
    config = {
        "_op": "window",
        "time_field": "time",
        "window_length": 3000,
        "window_type": "sliding",
        "sliding_window_interval": 2000,
    }
    op = await make_op(config)
    (out,) = await run_slices(op, [[{"time": BASE.format(s)} for s in range(1, 11)]])
    assert [[int(t[17:19]) for t in times(w)] for w in out] == [[1, 2, 3, 4], [3, 4, 5, 6], [5, 6, 7, 8]]
    # The flush emits the windows still open (t+7.., t+9..).
    flushed = (await run_slices(op, [], flush=True))[-1]
    assert [[int(t[17:19]) for t in times(w)] for w in flushed] == [[7, 8, 9, 10], [9, 10]]


async def test_window_skips_falsy_times_and_expires_on_empty_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    op = await make_op({"_op": "window", "time_field": "time", "window_length": 1000})
    # The empty slice comes 5 ms after the window was made (no sleeping in tests).
    module = sys.modules[type(op).__module__]
    real = module._now_ms
    monkeypatch.setattr(module, "_now_ms", lambda: real() + 5)
    out = await run_slices(op, [[{"time": BASE.format(0)}, {"time": None}, {"other": 1}, {"time": 0}], []])
    # Default expiration 0: the first empty slice emits every open window.
    assert out[0] == [] and [times(w) for w in out[1]] == [[BASE.format(0)]]


async def test_window_messages() -> None:
    assert (
        config_error({"_op": "window", "window_length": 0}) == "window_size must be an integer greater than 0"
    )
    assert config_error({"_op": "window", "sliding_window_interval": -1}) == (
        "window_size must be an integer greater than 0"
    )
    assert config_error({"_op": "window", "event_window_expiration": 1.5}) == (
        "event_window_expiration must be an integer greater than or equal to 0"
    )
    assert config_error({"_op": "window", "window_type": "hopping"}) == "must be one of tumbling, sliding"


async def test_accumulate_releases_after_empty_slices() -> None:
    op = await make_op({"_op": "accumulate", "empty_after": 3})
    batches = [[{"n": i} for i in range(100)] for _ in range(3)]
    out = await run_slices(op, [*batches, [], [], [], []])
    assert [len(o) for o in out] == [0, 0, 0, 0, 0, 1, 0]
    (window,) = out[5]
    assert len(window.as_array()) == 300 and window.get_metadata("_key") is None


async def test_accumulate_zero_and_flush() -> None:
    op = await make_op({"_op": "accumulate", "empty_after": 0})
    (out,) = await run_slices(op, [[{"a": 1}]])
    assert [bodies(w.as_array()) for w in out] == [[{"a": 1}]]
    kept = await make_op({"_op": "accumulate", "flush_data_on_shutdown": True})
    assert [len(o) for o in await run_slices(kept, [[{"a": 1}]], flush=True)] == [0, 1]
    lost = await make_op({"_op": "accumulate"})
    assert await run_slices(lost, [[{"a": 1}]], flush=True) == [[], []]
    assert config_error({"_op": "accumulate", "empty_after": "3"}) == (
        "Invalid parameter empty_after, must be of type number, got String"
    )
    assert config_error({"_op": "accumulate", "empty_after": -1}) == (
        "Invalid parameter empty_after, this value must be >= 0"
    )
    assert config_error({"_op": "accumulate", "flush_data_on_shutdown": 1}) == (
        "Invalid parameter flush_data_on_shutdown, expected boolean, got Number"
    )


async def test_accumulate_by_key_in_batches() -> None:
    names = ["joe", "moe", "poe", "randy", "fin"]
    slices = [[{"name": names[i % 5], "i": i} for i in range(125)] for _ in range(3)]
    config = {
        "_op": "accumulate_by_key",
        "empty_after": 3,
        "key_field": "name",
        "batch_return": True,
        "batch_size": 150,
    }
    op = await make_op(config)
    out = await run_slices(op, [*slices, [], [], [], [], [], []])
    assert [[(w.get_key(), len(w.as_array())) for w in o] for o in out] == [
        [],
        [],
        [],
        [],
        [],
        [("joe", 75), ("moe", 75)],
        [("poe", 75), ("randy", 75)],
        [("fin", 75)],
        [],
    ]


async def test_accumulate_by_key_default_uses_metadata_key() -> None:
    op = await make_op({"_op": "accumulate_by_key", "empty_after": 3})
    records = [
        entity({"name": n}, _key=k) for n, k in (("chilly", 1), ("willy", 1), ("billy", 2), ("dilly", 3))
    ]
    out = await run_slices(op, [[*records, {"no": "key"}], [], [], []])
    assert [(w.get_key(), bodies(w.as_array())) for w in out[3]] == [
        (1, [{"name": "chilly"}, {"name": "willy"}]),
        (2, [{"name": "billy"}]),
        (3, [{"name": "dilly"}]),
    ]
    assert (
        config_error({"_op": "accumulate_by_key", "batch_size": 0})
        == "batch size must be an integer greater then 0"
    )


async def test_the_worker_flush_runs_the_pipeline_once_more() -> None:
    from teraslice_k8s.runtime.flush import flush, wants_flush

    accumulate = await make_op({"_op": "accumulate", "empty_after": 100, "flush_data_on_shutdown": True})
    flatten = await make_op({"_op": "data_window_to_array"})
    await accumulate.process([{"a": 1}, {"a": 2}], {})
    assert wants_flush([accumulate, flatten])
    assert bodies(await flush([accumulate, flatten])) == [{"a": 1}, {"a": 2}]
    assert accumulate.flushing is False  # type: ignore[attr-defined]
    assert await flush([accumulate, flatten]) == []
