"""The controller's buffered state writes: what reaches the store is each changed slice's record
as it is at the flush, once per flush; a failed flush loses nothing."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from teraslice_k8s.runtime.slices import Slice, SliceState
from teraslice_k8s.runtime.state_writer import StateWriter
from teraslice_k8s.store.base import Page, SliceFilter, StoreError
from teraslice_k8s.store.sqlite import SqliteStore


def stored(store: SqliteStore) -> list[dict[str, Any]]:
    return store.list_slices(SliceFilter(ex_id="ex1"), Page(size=100, sort="slicer_order:asc"))


async def test_a_flush_writes_each_changed_slice_once_as_it_is_then(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite")
    writes: list[list[str]] = []
    real = store.create_slices

    def create_slices(records: Any) -> None:
        writes.append([f"{r['slice_id']}:{r['state']}" for r in records])
        real(records)

    store.create_slices = create_slices  # type: ignore[method-assign]
    writer = StateWriter(store)
    a, b = Slice("a", 0, 0, {"count": 1}, "ex1"), Slice("b", 0, 1, {"count": 1}, "ex1")
    for s in (a, b):
        writer.slice_changed(s)
    a.state, a.updated = SliceState.START, "2026-12-07T00:00:00.001Z"
    writer.slice_changed(a)
    a.state, a.record_count, a.updated = SliceState.COMPLETED, 1, "2026-12-07T00:00:00.002Z"
    writer.slice_changed(a)
    await writer.flush()
    assert writes == [["a:completed", "b:pending"]]
    assert stored(store) == [a.record(), b.record()]
    await writer.flush()  # nothing changed since
    assert len(writes) == 1
    store.close()


async def test_a_failed_flush_keeps_the_slices_and_the_next_one_writes_their_latest_state(
    tmp_path: Path,
) -> None:
    store = SqliteStore(tmp_path / "state.sqlite")
    real = store.create_slices
    fail = [True]

    def create_slices(records: Any) -> None:
        if fail[0]:
            raise StoreError("down")
        real(records)

    store.create_slices = create_slices  # type: ignore[method-assign]
    writer = StateWriter(store)
    a = Slice("a", 0, 0, {"count": 1}, "ex1")
    writer.slice_changed(a)
    with pytest.raises(StoreError):
        await writer.flush()
    assert writer.pending == 1
    a.state, a.updated = SliceState.START, "2026-12-07T00:00:00.001Z"
    writer.slice_changed(a)
    fail[0] = False
    await writer.flush()
    assert stored(store) == [a.record()]
    assert stored(store)[0]["state"] == "start"
    store.close()


async def test_slicing_waits_while_the_writer_is_max_backlog_behind(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "state.sqlite")
    writer = StateWriter(store, max_backlog=3)
    slices = [Slice(f"s{i}", 0, i, {"count": 1}, "ex1") for i in range(3)]
    for s in slices[:2]:
        writer.slice_changed(s)
    await asyncio.wait_for(writer.wait_room(), 30)  # 2 behind: room
    writer.slice_changed(slices[2])
    waiting = asyncio.ensure_future(writer.wait_room())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done()  # 3 behind: the slicer waits
    await writer.flush()
    await asyncio.wait_for(waiting, 30)  # written: room again
    assert [r["slice_id"] for r in stored(store)] == ["s0", "s1", "s2"]
    writer.add_analytics([{"ex_id": "ex1"}] * 3)  # analytics records count too
    waiting = asyncio.ensure_future(writer.wait_room())
    for _ in range(10):
        await asyncio.sleep(0)
    assert not waiting.done()
    writer.close()  # a writer that stopped holds nothing back
    await asyncio.wait_for(waiting, 30)
    store.close()
