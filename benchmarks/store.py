"""SQLite store benchmarks (issue 4, store part). Prints figures; asserts nothing.

1. ``list_jobs(size=100)`` with 10,000 stored jobs (the store's share of ``GET /v1/jobs``):
   latency p50/p99 from one thread, then from 50 concurrent clients served by a pool of 8
   threads (target for the whole request: p99 < 100 ms under 50 clients), plus the ``?ex=``
   join.
2. Slice-state writes/s: ``create_slices`` in batches of 100, then ``update_slice`` (the
   workers' ``start``/``completed`` writes) from 1 process and from 4 processes at once.

Usage: ``.venv/bin/python benchmarks/store.py [--jobs N] [--slices N] [--synchronous FULL|NORMAL]``.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from teraslice_k8s.store.base import JobFilter, Page, SliceFilter
from teraslice_k8s.store.sqlite import SqliteStore

LIST_P99_TARGET_MS = 100.0
POOL_THREADS = 8


def _job(i: int) -> dict[str, Any]:
    return {
        "name": f"generator-{i}",
        "lifecycle": "persistent" if i % 3 else "once",
        "workers": 1 + i % 8,
        "assets": ["standard"],
        "active": i % 10 != 0,
        "operations": [
            {"_op": "data_generator", "size": 5000},
            {"_op": "elasticsearch_bulk", "index": f"index-{i}", "size": 5000},
        ],
        "job_id": f"job-{i:06d}",
    }


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _timed(call: Callable[[], object], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        call()
        samples.append((time.perf_counter() - start) * 1000)
    return samples


def bench_listing(path: Path, jobs: int, synchronous: Any) -> None:
    store = SqliteStore(path, synchronous=synchronous)
    start = time.perf_counter()
    for i in range(jobs):
        store.create_job(_job(i))
        if i % 2 == 0:
            store.create_execution({**_job(i), "ex_id": f"ex-{i:06d}", "_status": "running"})
    print(f"setup: {jobs} jobs + {jobs // 2} executions stored in {time.perf_counter() - start:.1f} s")

    calls: dict[str, Callable[[], object]] = {
        "list_jobs(size=100)": lambda: store.list_jobs(page=Page(size=100)),
        "list_jobs(active=true, from=5000, sort=_created:asc)": lambda: store.list_jobs(
            JobFilter(active=True), Page(size=100, from_=5000, sort="_created:asc")
        ),
        "list_jobs_json(size=100) (what GET /v1/jobs sends)": lambda: store.list_jobs_json(
            page=Page(size=100)
        ),
        "list_jobs_json(size=100, ex_fields=[_status, ex_id]) (?ex=)": lambda: store.list_jobs_json(
            page=Page(size=100), ex_fields=["_status", "ex_id"]
        ),
        "list_jobs(size=100, sort=name:asc) (unindexed field)": lambda: store.list_jobs(
            page=Page(size=100, sort="name:asc")
        ),
        "count_jobs()": store.count_jobs,
    }
    for name, call in calls.items():
        p50, p99 = _percentiles(_timed(call, 200))
        print(f"1 thread   {name}: p50 {p50:.2f} ms, p99 {p99:.2f} ms")

    for name, call in [
        ("list_jobs_json(size=100)", lambda: store.list_jobs_json(page=Page(size=100))),
        ("list_jobs(size=100)", lambda: store.list_jobs(page=Page(size=100))),
    ]:
        _concurrent(name, call, clients=50, per_client=40)
    store.close()


def _concurrent(name: str, call: Callable[[], object], clients: int, per_client: int) -> None:
    """``clients`` closed-loop clients whose calls run on a pool of ``POOL_THREADS`` threads, the
    way the master's handlers reach the store (``asyncio.to_thread``); latency includes queueing."""
    samples: list[float] = []
    lock = threading.Lock()
    barrier = threading.Barrier(clients)
    pool = ThreadPoolExecutor(max_workers=POOL_THREADS)

    def client() -> None:
        barrier.wait()
        mine = _timed(lambda: pool.submit(call).result(), per_client)
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    pool.shutdown()
    p50, p99 = _percentiles(samples)
    verdict = "within" if p99 < LIST_P99_TARGET_MS else "OVER"
    print(
        f"{clients} clients on {POOL_THREADS} threads {name}: {len(samples) / elapsed:.0f} calls/s, "
        f"p50 {p50:.2f} ms, p99 {p99:.2f} ms ({verdict} the {LIST_P99_TARGET_MS:.0f} ms p99 budget "
        "of the whole request)"
    )


def _slice_worker(path: str, synchronous: Any, prefix: str, count: int, barrier: Any) -> None:
    store = SqliteStore(path, synchronous=synchronous)
    records = [
        {
            "slice_id": f"{prefix}-{i}",
            "slicer_id": 0,
            "slicer_order": i,
            "state": "pending",
            "ex_id": "ex-1",
            "request": '{"count":5000}',
        }
        for i in range(count)
    ]
    barrier.wait()
    for start in range(0, count, 100):
        store.create_slices(records[start : start + 100])
    for record in records:
        store.update_slice(record["slice_id"], {"state": "start"})
        store.update_slice(record["slice_id"], {"state": "completed"})
    store.close()


def bench_slices(path: Path, slices: int, synchronous: Any) -> None:
    store = SqliteStore(path, synchronous=synchronous)
    records = [
        {
            "slice_id": f"s-{i}",
            "slicer_id": 0,
            "slicer_order": i,
            "state": "pending",
            "ex_id": "ex-0",
            "request": '{"count":5000}',
        }
        for i in range(slices)
    ]
    start = time.perf_counter()
    for offset in range(0, slices, 100):
        store.create_slices(records[offset : offset + 100])
    created = time.perf_counter() - start
    start = time.perf_counter()
    for record in records:
        store.update_slice(record["slice_id"], {"state": "start"})
    updated = time.perf_counter() - start
    print(
        f"1 process  create_slices (batches of 100): {slices / created:,.0f} records/s; "
        f"update_slice: {slices / updated:,.0f} writes/s"
    )
    store.close()

    processes, per_process = 4, slices // 4
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    work = functools.partial(_slice_worker, str(path), synchronous)
    procs = [ctx.Process(target=work, args=(f"p{n}", per_process, barrier)) for n in range(processes)]
    for proc in procs:
        proc.start()
    barrier.wait()
    start = time.perf_counter()
    for proc in procs:
        proc.join()
    elapsed = time.perf_counter() - start
    writes = processes * per_process * 2
    print(
        f"{processes} processes create + 2 x update_slice per slice: "
        f"{processes * per_process / elapsed:,.0f} slices/s = {writes / elapsed:,.0f} state updates/s"
    )
    with SqliteStore(path) as check:
        done = check.count_slices(SliceFilter(ex_id="ex-1", states=["completed"]))
    print(f"  (check: {done} of {processes * per_process} slices completed)")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--slices", type=int, default=8_000)
    parser.add_argument("--synchronous", choices=["NORMAL", "FULL"], default="NORMAL")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"SQLite store benchmark (synchronous={args.synchronous}, {tmp})")
        bench_listing(Path(tmp) / "jobs.sqlite", args.jobs, args.synchronous)
        bench_slices(Path(tmp) / "slices.sqlite", args.slices, args.synchronous)


if __name__ == "__main__":
    main()
