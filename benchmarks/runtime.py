"""Runtime benchmarks (issues 5 and 13). Prints figures and their ratio to the targets.

1. data_generator -> noop records/s: the same operations called in one plain loop in one
   process (the physical limit of this data plane), then through a real controller and 1, 2, 4
   and 8 real worker processes (local backend, SQLite state). **Runtime efficiency** = records/s
   with 1 worker / records/s of the plain loop (target >= 0.8); scaling = records/s with N
   workers / records/s with 1 (bounded by the machine's cores: a 2-core machine cannot pass 2).
2. Slices/s dispatched by one controller to 8 local worker processes with 1-record slices
   (target >= 5,000 slices/s; issue 5's older figure: 4 workers, >= 2,000), from the slices'
   state records.
3. Time from ``_start`` (allocation) to the first completed slice with the local backend.

Throughput is measured from the first completed slice to the last (state records' ``_updated``),
which leaves out process start-up. The load average is printed before and after: the machine
may be shared, and figures drop roughly in proportion when the load exceeds the CPU count;
the efficiency ratio is taken within one run, so it suffers less from that.

The dispatch run also prints the CPU time per slice of the controller and of the 8 workers
together (sampled from ``/proc`` every 20 ms, from the first completed slice on).

Usage: ``.venv/bin/python benchmarks/runtime.py [--records N] [--slice-size N] [--slices N]
[--workers 1,2,4,8] [--dispatch-only]``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import queue
import tempfile
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from teraslice_k8s.backend.base import BackendEvent, EventKind
from teraslice_k8s.backend.local import LocalBackend
from teraslice_k8s.master.allocator import Allocator
from teraslice_k8s.runtime.operations.base import OpContext
from teraslice_k8s.runtime.pipeline import build_processors, build_reader
from teraslice_k8s.store.base import Page, SliceFilter
from teraslice_k8s.store.sqlite import SqliteStore

SLICES_TARGET = 5_000  # issue 13 (8 workers)
EFFICIENCY_TARGET = 0.8  # issue 13: controller + 1 worker / plain loop


#: Seconds between samples of the processes' CPU time during a run.
CPU_SAMPLE = 0.02
_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a living process (Linux ``/proc``), None once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


def _ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


def pipeline_records_per_second(total: int, per_slice: int) -> float:
    job = {
        "lifecycle": "once",
        "operations": [{"_op": "data_generator", "size": total, "slice_size": per_slice}, {"_op": "noop"}],
    }
    ctx = OpContext(job)
    reader = build_reader(job, ctx)
    (noop,) = build_processors(job, ctx)

    async def go() -> float:
        start = time.perf_counter()
        done = 0
        while done < total:
            request = {"count": min(per_slice, total - done), "processed": done}
            batch = await noop.process(await reader.fetch(request), request)
            done += len(batch)
        return total / (time.perf_counter() - start)

    return asyncio.run(go())


class LocalRun:
    def __init__(self, root: Path) -> None:
        db = root / "state.sqlite"
        config = root / "teraslice.yaml"
        config.write_text(f"teraslice:\n  storage:\n    type: sqlite\n    path: {db}\n")
        self.store = SqliteStore(db)
        self.events: queue.Queue[BackendEvent] = queue.Queue()
        self.backend = LocalBackend(config_path=config, log_dir=root / "logs", shutdown_timeout=10)
        self.backend.start(self.events.put)
        self.cpu: dict[str, float] = {}

    def run(self, job: dict[str, Any]) -> tuple[str, float, float]:
        """Run to the end; returns (ex_id, seconds to the first completed slice, total seconds).

        Also samples the processes' CPU time (``self.cpu``: role -> seconds used from the
        first completed slice to the last sample before the process ended)."""
        record = {
            "name": "bench",
            "lifecycle": "once",
            "max_retries": 0,
            "analytics": False,
            **job,
            "job_id": str(uuid.uuid4()),
            "ex_id": str(uuid.uuid4()),
            "metadata": {},
            "_status": "pending",
        }
        ex_id = str(self.store.create_execution(record)["ex_id"])
        start = time.perf_counter()
        Allocator(self.store, self.backend).allocate(ex_id)
        first = None
        #: pid -> (role, CPU seconds at the first completed slice, latest CPU seconds)
        samples: dict[int, tuple[str, float, float]] = {}
        next_sample = 0.0
        while True:
            if first is None and self.store.count_slices(SliceFilter(ex_id=ex_id, states=("completed",))):
                first = time.perf_counter() - start
            if first is not None and time.perf_counter() >= next_sample:
                next_sample = time.perf_counter() + CPU_SAMPLE
                for role, pids in self.backend.processes(ex_id).items():
                    for pid in pids:
                        used = _cpu_seconds(pid)
                        if used is not None:
                            base = samples[pid][1] if pid in samples else used
                            samples[pid] = (role, base, used)
            try:
                event = self.events.get(timeout=0.005)
            except queue.Empty:
                continue
            if event.ex_id == ex_id and event.kind in (
                EventKind.CONTROLLER_SUCCEEDED,
                EventKind.CONTROLLER_FAILED,
            ):
                break
        total = time.perf_counter() - start
        self.cpu = {}
        for role, base, used in samples.values():
            self.cpu[role] = self.cpu.get(role, 0.0) + used - base
        status = self.store.get_execution(ex_id)["_status"]
        if status != "completed":
            raise SystemExit(
                f"benchmark execution ended {status}: {self.store.get_execution(ex_id)['_failureReason']}"
            )
        return ex_id, first if first is not None else total, total

    def active_span(self, ex_id: str) -> tuple[int, float]:
        """(slices completed after the first one, seconds from the first completion to the last).

        Measuring from the first completion leaves out process start-up (slices are created
        as soon as the controller runs, before any worker has connected)."""
        flt = SliceFilter(ex_id=ex_id, states=("completed",))
        n = self.store.count_slices(flt)
        first = self.store.list_slices(flt, Page(size=1, sort="_updated:asc"))[0]
        last = self.store.list_slices(flt, Page(size=1, sort="_updated:desc"))[0]
        return n - 1, _ts(last["_updated"]) - _ts(first["_updated"])

    def close(self) -> None:
        self.backend.close()
        self.store.close()


def line(
    label: str, value: float, unit: str, target: float | None = None, higher_is_better: bool = True
) -> None:
    text = f"{label:<58} {value:>12,.0f} {unit}"
    if target:
        ratio = value / target if higher_is_better else target / value
        text += f"   target {target:,.0f} -> x{ratio:.2f} {'OK' if ratio >= 1 else 'BELOW TARGET'}"
    print(text)


def _load() -> str:
    load = os.getloadavg()
    return f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def throughput(env: LocalRun, records: int, size: int, worker_counts: list[int]) -> None:
    """1. records/s of the plain loop, then through a controller and N workers."""
    loop = max(pipeline_records_per_second(records, size) for _ in range(3))
    line(f"data_generator -> noop, plain loop in one process ({size:,}/slice)", loop, "records/s")
    rates: dict[int, float] = {}
    gen = {"_op": "data_generator", "size": records, "slice_size": size}
    for workers in worker_counts:
        ex_id, _first, total = env.run({"workers": workers, "operations": [gen, {"_op": "noop"}]})
        n, span = env.active_span(ex_id)
        rates[workers] = n * size / span
        scaling = f"   x{rates[workers] / rates[min(rates)]:.2f} of {min(rates)} worker"
        line(
            f"  controller + {workers} worker process{'es' if workers > 1 else ''}",
            rates[workers],
            "records/s",
        )
        print(f"{'':60}{scaling}   (incl. start-up: {records / total:,.0f} records/s)")
    if 1 in rates:
        efficiency = rates[1] / loop
        verdict = "OK" if efficiency >= EFFICIENCY_TARGET else "BELOW TARGET"
        print(
            f"runtime efficiency (1 worker / plain loop): {efficiency:.2f}   "
            f"target >= {EFFICIENCY_TARGET} {verdict}"
        )
    loop_again = max(pipeline_records_per_second(records, size) for _ in range(3))
    line("  plain loop again (the machine's drift during the run)", loop_again, "records/s")


def dispatch(env: LocalRun, slices: int) -> None:
    """2. 1-record slices to 8 workers: slices/s and CPU per slice."""
    tiny = {"_op": "data_generator", "size": slices, "slice_size": 1}
    ex_id, _, total = env.run({"workers": 8, "operations": [tiny, {"_op": "noop"}]})
    n, span = env.active_span(ex_id)
    line("1-record slices, 1 controller -> 8 workers (after 1st slice)", n / span, "slices/s", SLICES_TARGET)
    line("  same, including process start-up", n / total, "slices/s")
    for role, label in (("execution_controller", "controller"), ("worker", "8 workers together")):
        if n and role in env.cpu:
            line(f"  CPU per slice after the 1st: {label}", env.cpu[role] / n * 1e6, "us")


def start_up(env: LocalRun) -> None:
    """3. ``_start`` to the first completed slice."""
    one = {"_op": "data_generator", "size": 1}
    firsts = [env.run({"workers": 1, "operations": [one, {"_op": "noop"}]})[1] for _ in range(3)]
    line("_start -> first completed slice, local backend (best of 3)", min(firsts) * 1000, "ms")
    line("_start -> first completed slice, local backend (worst of 3)", max(firsts) * 1000, "ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=1_000_000, help="records for the throughput runs")
    parser.add_argument("--slice-size", type=int, default=10_000, help="records per slice (throughput)")
    parser.add_argument("--slices", type=int, default=20_000, help="1-record slices for the dispatch run")
    parser.add_argument("--workers", default="1,2,4,8", help="worker counts for the scaling runs")
    parser.add_argument("--dispatch-only", action="store_true", help="only the 1-record-slice run (2.)")
    args = parser.parse_args()

    print(f"machine: {os.cpu_count()} CPUs, load average {_load()}")
    with tempfile.TemporaryDirectory() as tmp:
        env = LocalRun(Path(tmp))
        try:
            if not args.dispatch_only:
                throughput(env, args.records, args.slice_size, [int(w) for w in args.workers.split(",")])
            dispatch(env, args.slices)
            if not args.dispatch_only:
                start_up(env)
        finally:
            env.close()
    print(f"load average after: {_load()}")


if __name__ == "__main__":
    main()
