"""Master benchmarks (issue 4). Prints figures; asserts nothing.

1. Overhead per execution start, excluding the Kubernetes API's own time: ``_start`` of a stored
   job (validation + execution record) plus the allocator's work (status writes + the backend
   calls, where the stubbed backend renders the Job, Service and Deployment manifests exactly as
   the Kubernetes backend does and sends nowhere). p50/p99, target p99 < 10 ms.
2. Every listing route Teraslice dashboards and ts-topy poll (``/v1/jobs``, ``?ex=``, ``/v1/ex``,
   ``?status=``, ``/txt/jobs|ex|workers``, ``/v1/cluster/state``, ``/v1/cluster/controllers``)
   over real HTTP at 1, 10 and 50 concurrent clients: p50/p99 with 10,000 jobs, 100,000
   executions (10 per job, one job in 100 running) and 1,000 workers in the cluster state
   (issue 13; target p99 < 50 ms at 50 clients, SQLite). The running executions' controllers
   answer ``/analytics`` over real sockets on 127.0.0.1, one port each, from one process (a
   minimal asyncio HTTP/1.1 server: in a cluster they run elsewhere, so their own CPU is kept
   small here), so ``/cluster/controllers`` measures the master's client as it runs.
   The master runs in its own process (uvicorn, as in production); the clients are bare asyncio
   HTTP/1.1 keep-alive connections in this process. ``GET /v1/`` is the floor (the event loop's
   and HTTP's cost of the smallest answer), measured in the same run. Stores: SQLite (records
   loaded by the direct bulk path of :func:`seed_sqlite`) and Elasticsearch: a real one at
   ``--es-url``/``$BENCH_ELASTICSEARCH_URL`` (the GitHub workflow's service), else the project's
   emulator (``tests/unit/store/es_emulator.py``, a Python model that scans every record per
   search: its figures show the master's correctness path, not Elasticsearch's speed).
   The load average is printed before and after each store's run (the machine is shared).

Usage: ``.venv/bin/python benchmarks/master.py [--starts N (0: skip 1.)] [--jobs N]
[--executions N] [--workers N] [--clients 1,10,50] [--samples N] [--stores sqlite,elasticsearch]
[--es-url URL] [--es-samples N] [--synchronous FULL|NORMAL] [--db FILE] [--routes ROUTE ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import orjson

from teraslice_k8s.backend.base import BackendError, ControllerAddress, EventListener, ScaleAction
from teraslice_k8s.kubernetes.render import (
    OwnerRef,
    render_controller_job,
    render_controller_service,
    render_worker_deployment,
)
from teraslice_k8s.master.server import MasterServer
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.master.settings import MasterSettings
from teraslice_k8s.master.validation import job_validator, spec_preparer
from teraslice_k8s.models.config import SysConfig, parse_config
from teraslice_k8s.store.sqlite import SqliteStore

START_P99_TARGET_MS = 10.0
HTTP_LISTING_P99_TARGET_MS = 50.0  # issue 13: every listing route, 50 clients, SQLite

JOB: dict[str, Any] = {
    "name": "bench-generator",
    "lifecycle": "persistent",
    "workers": 4,
    "labels": {"team": "data"},
    "targets": [{"key": "zone", "value": "west"}],
    "resources_requests_cpu": 1,
    "resources_requests_memory": 1_000_000_000,
    "volumes": [{"name": "scratch", "path": "/scratch"}],
    "operations": [{"_op": "data_generator", "size": 5000}, {"_op": "noop"}],
}


def config() -> SysConfig:
    return parse_config(
        {"teraslice": {"name": "bench", "cluster_manager_type": "kubernetesV2", "kubernetes_namespace": "ts"}}
    )


class RenderingBackend:
    """Backend stub: renders the three manifests like the Kubernetes backend, calls no API."""

    clustering_type = "kubernetesV2"
    executions_survive_master = True

    def __init__(self, cfg: SysConfig, workers: int = 0) -> None:
        self.cfg = cfg
        self.state = cluster_state(workers)

    def start(self, listener: EventListener) -> None:
        pass

    def allocate_controller(self, execution: Mapping[str, Any]) -> ControllerAddress:
        job = render_controller_job(execution, self.cfg)
        owner = OwnerRef(name=job["metadata"]["name"], uid=str(uuid.uuid4()))
        service = render_controller_service(execution, self.cfg, owner)
        return ControllerAddress(f"{service['metadata']['name']}.ts")

    def allocate_workers(self, execution: Mapping[str, Any]) -> None:
        owner = OwnerRef(name="ts-exc", uid=str(uuid.uuid4()))
        render_worker_deployment(execution, self.cfg, owner)

    def stop_execution(self, ex_id: str, *, force: bool = False) -> None:
        pass

    def scale_workers(self, ex_id: str, action: ScaleAction, count: int) -> int:
        return count

    def execution_ids(self) -> set[str]:
        return set()

    def cluster_state(self) -> dict[str, Any]:
        return self.state

    def call_controller(
        self,
        execution: Mapping[str, Any],
        method: str,
        path: str,
        params: Mapping[str, str],
        timeout: float,
    ) -> dict[str, Any]:
        raise BackendError("the benchmark backend runs no controllers")

    def close(self) -> None:
        pass


def cluster_state(workers: int, nodes: int = 20, per_ex: int = 10) -> dict[str, Any]:
    """A Kubernetes-shaped cluster state with ``workers`` worker pods (+ one controller per 10)."""
    state: dict[str, Any] = {}
    for n in range(nodes):
        ip = f"10.0.{n // 256}.{n % 256}"
        state[ip] = {
            "node_id": ip,
            "hostname": ip,
            "pid": "N/A",
            "node_version": "N/A",
            "teraslice_version": "N/A",
            "total": "N/A",
            "state": "connected",
            "available": "N/A",
            "active": [],
        }
    ips = list(state)
    for w in range(workers):
        ex = w // per_ex
        for assignment in (["execution_controller"] if w % per_ex == 0 else []) + ["worker"]:
            name = f"ts-{'exc' if assignment != 'worker' else 'wkr'}-bench-{ex:04d}-{w:05d}"
            state[ips[w % nodes]]["active"].append(
                {
                    "assets": [],
                    "assignment": assignment,
                    "ex_id": f"ex-{ex:04d}",
                    "job_id": f"job-{ex:04d}",
                    "image": "ghcr.io/terascope/teraslice:v3.18.0",
                    "pod_name": name,
                    "pod_ip": f"172.16.{w // 256}.{w % 256}",
                    "worker_id": name,
                }
            )
    return state


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def report(label: str, samples: list[float], target: float) -> None:
    p50, p99 = percentiles(samples)
    verdict = "meets" if p99 < target else "MISSES"
    print(
        f"  {label:<44} n={len(samples):>6}  p50={p50:7.2f} ms  p99={p99:7.2f} ms  "
        f"({verdict} p99 < {target:g} ms)"
    )


# -- 1. execution start overhead ------------------------------------------------------------------


def bench_starts(starts: int, synchronous: Any) -> None:
    cfg = config()
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "state.sqlite", synchronous=synchronous)
        service = MasterService(
            store,
            RenderingBackend(cfg),
            MasterSettings.from_config(cfg),
            job_validator(cfg),
            prepare=spec_preparer(cfg),
        )
        job_id = service.submit_job(JOB, start=False)["job_id"]
        samples, api_part = [], []
        for i in range(starts + 20):
            t0 = time.perf_counter()
            ex_id = service.start_job(job_id)["ex_id"]
            t1 = time.perf_counter()
            service.allocator.allocate(ex_id)
            t2 = time.perf_counter()
            if store.get_execution(ex_id)["_status"] != "initializing":
                raise RuntimeError(f"allocation failed: {store.get_execution(ex_id)}")
            store.set_status(ex_id, "completed")  # so the job may start again (not timed)
            if i >= 20:  # warm-up excluded
                samples.append((t2 - t0) * 1000)
                api_part.append((t1 - t0) * 1000)
        store.close()
    print(f"1. execution start overhead (SQLite synchronous={synchronous}, backend renders, no API calls)")
    report("_start (validate + create execution)", api_part, START_P99_TARGET_MS)
    report("_start + allocation (statuses + render x3)", samples, START_P99_TARGET_MS)


# -- 2. listing latency under 1, 10 and 50 clients -------------------------------------------

#: Every listing route Teraslice dashboards and ts-topy poll (issue 13), plus ``/v1/`` (the floor:
#: the event loop and HTTP cost of the smallest answer, measured in the same run).
ROUTES = (
    "/v1/",
    "/v1/jobs",
    "/v1/jobs?ex=_status,ex_id",
    "/v1/ex",
    "/v1/ex?status=running",
    "/txt/jobs",
    "/txt/ex",
    "/txt/workers",
    "/v1/cluster/state",
    "/v1/cluster/controllers",
)
#: One job in this many has a running latest execution (a reachable controller).
RUNNING_EVERY = 100
ANALYTICS = {
    "workers_available": 0,
    "workers_active": 4,
    "workers_joined": 4,
    "workers_reconnected": 0,
    "workers_disconnected": 0,
    "job_duration": 0,
    "failed": 0,
    "subslices": 0,
    "queued": 10,
    "slice_range_expansion": 0,
    "processed": 1000,
    "slicers": 1,
    "subslice_by_key": 0,
    "started": "2026-11-27T10:00:00.000Z",
    "queuing_complete": "",
}


class VersionedRenderingBackend(RenderingBackend):
    """The rendering stub with a state version, as the Kubernetes backend has (its pod cache's
    change count): the pods do not change during the benchmark. ``running``: the executions
    whose processes run (the master adopts them at start instead of failing them)."""

    def __init__(self, cfg: SysConfig, workers: int, running: set[str]) -> None:
        super().__init__(cfg, workers)
        self.running = running

    state_version_is_local = True  # as the Kubernetes backend's

    def execution_ids(self) -> set[str]:
        return set(self.running)

    def state_version(self) -> int:
        return 0


def _controllers(count: int, port_queue: Any) -> None:
    """``count`` execution controllers answering ``GET /analytics`` at once over keep-alive
    HTTP/1.1 (as the controllers' uvicorn does) on 127.0.0.1, one port each; puts the ports."""
    body = orjson.dumps(ANALYTICS)
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (
        len(body),
        body,
    )

    class Controller(asyncio.Protocol):
        def __init__(self) -> None:
            self.buffer = b""

        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while b"\r\n\r\n" in self.buffer:
                _, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
                self.transport.write(answer)

    async def serve() -> None:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(Controller, "127.0.0.1", 0) for _ in range(count)]
        port_queue.put([server.sockets[0].getsockname()[1] for server in servers])
        await asyncio.Event().wait()

    asyncio.run(serve())


def _open_store(kind: str, where: str) -> Any:
    if kind == "sqlite":
        return SqliteStore(where, synchronous="NORMAL")
    from teraslice_k8s.store.elasticsearch import ElasticsearchStore

    return ElasticsearchStore(where, ES_CLUSTER, startup_timeout=30)


def _serve(kind: str, where: str, workers: int, controller_ports: Sequence[int], port_queue: Any) -> None:
    from teraslice_k8s.store.base import ExFilter, Page

    cfg = config()
    store = _open_store(kind, where)
    running = store.list_executions(ExFilter(statuses=("running",)), Page(size=10_000))
    for n, ex in enumerate(running):  # the controllers' addresses of this run
        port = controller_ports[n % len(controller_ports)]
        store.update_execution(ex["ex_id"], {"slicer_hostname": "127.0.0.1", "slicer_port": port})
    service = MasterService(
        store,
        VersionedRenderingBackend(cfg, workers, {ex["ex_id"] for ex in running}),
        MasterSettings.from_config(cfg),
        job_validator(cfg),
    )
    server = MasterServer(service, "127.0.0.1", 0, log_level="error")
    port_queue.put(server.port)
    server.run()


ES_CLUSTER = "bench"


def listing_records(jobs: int, executions: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``jobs`` job records and ``executions`` execution records (spread evenly over the jobs,
    created in turn), shaped as the master stores them: an execution is the job spec overlaid by
    the validated config plus Teraslice's execution metadata. One job in :data:`RUNNING_EVERY`
    has a running latest execution with a controller address; every other execution is
    completed, failed or stopped."""
    from datetime import UTC, datetime, timedelta

    from teraslice_k8s.master.records import new_execution
    from teraslice_k8s.store.timestamps import format_timestamp

    cfg = config()
    validated = job_validator(cfg)(JOB).config
    base = datetime.now(UTC) - timedelta(days=7)

    def stamp(n: int) -> str:
        return format_timestamp(base + timedelta(milliseconds=n))

    job_records: list[dict[str, Any]] = []
    for i in range(jobs):
        job_records.append(
            {
                **JOB,
                "name": f"generator-{i}",
                "job_id": str(uuid.uuid4()),
                "_context": "job",
                "_created": stamp(i),
                "_updated": stamp(i),
            }
        )
    ex_records: list[dict[str, Any]] = []
    per_job, extra = divmod(executions, max(jobs, 1))
    n = jobs
    for round_ in range(per_job + 1):
        for i, job in enumerate(job_records):
            if round_ == per_job and i >= extra:
                break
            last = round_ == per_job - 1 if i >= extra else round_ == per_job
            status = (
                ("running" if i % RUNNING_EVERY == 0 else "completed")
                if last
                else ("completed", "completed", "failed", "stopped")[(i + round_) % 4]
            )
            spec = {k: v for k, v in job.items() if not k.startswith("_") and k != "job_id"}
            record = new_execution(job["job_id"], spec, {**validated, "name": spec["name"]})
            record.update({"_status": status, "_created": stamp(n), "_updated": stamp(n + 5)})
            if status == "running":
                record.update({"slicer_hostname": f"10.1.{i // 256 % 256}.{i % 256}", "slicer_port": 45680})
            ex_records.append(record)
            n += 1
    return job_records, ex_records


def seed_sqlite(db: Path, jobs: list[dict[str, Any]], executions: list[dict[str, Any]]) -> None:
    """The direct bulk path: the rows :class:`SqliteStore` itself writes
    (``sqlite_schema.job_row``/``ex_row``), inserted by ``executemany`` in one transaction into a
    file the store created (schema, indexes, triggers), then ``ANALYZE``. ~100x faster than one
    ``create_execution`` transaction per record, and the same rows."""
    import sqlite3

    from teraslice_k8s.store import sqlite_schema

    SqliteStore(db).close()
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.executemany("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?)", map(sqlite_schema.job_row, jobs))
    conn.executemany(
        "INSERT INTO executions VALUES (?, ?, ?, ?, ?, ?, ?)", map(sqlite_schema.ex_row, executions)
    )
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.close()


def seed_elasticsearch(url: str, jobs: list[dict[str, Any]], executions: list[dict[str, Any]]) -> None:
    """The store creates its indices; the records go in through ``_bulk`` (2,000 per request,
    refreshed once at the end), as Teraslice's own bulk loads do."""
    from teraslice_k8s.store.es_client import make_client

    store = _open_store("elasticsearch", url)
    client = make_client(url)
    try:
        for index in (store.jobs.name, store.executions.name):
            client.indices.delete(index=index)  # a previous run's records
        store.close()
        store = _open_store("elasticsearch", url)
        for index, id_field, records in (
            (store.jobs.name, "job_id", jobs),
            (store.executions.name, "ex_id", executions),
        ):
            for start in range(0, len(records), 2000):
                operations: list[Any] = []
                for record in records[start : start + 2000]:
                    operations += [{"index": {"_index": index, "_id": record[id_field]}}, record]
                response = client.bulk(operations=operations)
                if response["errors"]:
                    raise RuntimeError(f"bulk load into {index} failed: {response['items'][:1]}")
            client.indices.refresh(index=index)
    finally:
        store.close()
        client.close()


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, path: str) -> int:
    """One keep-alive HTTP/1.1 GET on an open connection; returns the body size.

    A bare asyncio client: a full HTTP client library costs more CPU per request than the
    master's hot paths, and on a small machine the load generator would measure itself.
    """
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAccept: application/json\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    body = await reader.readexactly(length)
    if status != 200:
        raise RuntimeError(f"GET {path}: {status} {body[:200]!r}")
    return len(body)


async def _load(port: int, path: str, clients: int, requests: int) -> list[float]:
    samples: list[float] = []
    host = f"127.0.0.1:{port}"

    async def one_client() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=2**24)
        try:
            await _get(reader, writer, host, path)  # warm-up (connection, caches)
            for _ in range(requests):
                t0 = time.perf_counter()
                await _get(reader, writer, host, path)
                samples.append((time.perf_counter() - t0) * 1000)
        finally:
            writer.close()

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return samples


def _load_average() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3]) if Path("/proc/loadavg").exists() else "?"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of process ``pid`` (all its threads), from /proc (0 elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def _master(kind: str, where: str, workers: int, controllers: int) -> Iterator[tuple[int, int]]:
    """The master process (and its ``controllers`` in another): (port, pid of the master)."""
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    ec = ctx.Process(target=_controllers, args=(max(controllers, 1), ports), daemon=True)
    ec.start()
    process = None
    try:
        controller_ports = ports.get(timeout=120)
        process = ctx.Process(
            target=_serve, args=(kind, where, workers, controller_ports, ports), daemon=True
        )
        process.start()
        yield ports.get(timeout=300), process.pid or 0
    finally:
        for started in (process, ec):
            if started is not None:
                started.terminate()
                started.join(10)


@contextmanager
def _emulator() -> Iterator[str]:
    """The project's Elasticsearch emulator (tests/unit/store/es_emulator.py) in its own process."""
    import socket
    import subprocess
    import sys

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    script = Path(__file__).resolve().parent.parent / "tests" / "unit" / "store" / "es_emulator.py"
    process = subprocess.Popen(
        [sys.executable, str(script), "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()  # "es_emulator listening on ..."
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(10)


def bench_listings(
    kind: str,
    *,
    where: str,
    levels: Sequence[int],
    samples: int,
    workers: int,
    target: float | None,
    controllers: int,
    routes: Sequence[str] = ROUTES,
) -> None:
    """p50/p99 of each route at each client count; ``samples`` requests per route and level;
    ``controllers``: how many controllers to serve for the running executions."""
    print(f"   load average before: {_load_average()}")
    header = "".join(f"  {c:>3} clients p50/p99 ms" for c in levels)
    print(f"   {'route':<28}{header}   master CPU ms/request")
    misses: list[str] = []
    with _master(kind, where, workers, controllers) as (port, pid):
        for path in routes:
            cells = []
            p99 = 0.0
            cpu, requests = _cpu_seconds(pid), 0
            for clients in levels:
                per_client = max(2, samples // clients)
                try:
                    figures = asyncio.run(_load(port, path, clients, per_client))
                except Exception as error:  # e.g. the emulator overwhelmed: say so, go on
                    cells.append(f"  {'failed: ' + type(error).__name__:>21}  ")
                    p99 = float("inf")
                    continue
                p50, p99 = percentiles(figures)
                requests += len(figures) + clients  # with the warm-up requests
                cells.append(f"  {p50:9.2f} / {p99:9.2f}  ")
            cells.append(f"  {(_cpu_seconds(pid) - cpu) * 1000 / max(requests, 1):8.2f}")
            if target is not None and path != "/v1/" and p99 >= target:
                misses.append(path)
            print(f"   {path:<28}{''.join(cells)}", flush=True)
    print(f"   load average after: {_load_average()}")
    if target is not None:
        verdict = "every route meets" if not misses else f"MISSED by {', '.join(misses)}:"
        print(f"   p99 < {target:g} ms at {levels[-1]} clients: {verdict}")


def bench_http(
    jobs: int,
    *,
    executions: int,
    workers: int,
    levels: Sequence[int],
    samples: int,
    stores: Sequence[str],
    es_url: str | None,
    es_samples: int,
    es_levels: Sequence[int],
    db: Path | None,
    routes: Sequence[str] = ROUTES,
) -> None:
    print(
        f"2. listings over HTTP: {jobs:,} jobs, {executions:,} executions "
        f"({-(-jobs // RUNNING_EVERY)} running with a controller), {workers:,} workers in the cluster state"
    )
    records: tuple[list[dict[str, Any]], list[dict[str, Any]]] | None = None
    running = -(-jobs // RUNNING_EVERY)  # as listing_records makes them

    def built() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        nonlocal records
        if records is None:
            t0 = time.perf_counter()
            records = listing_records(jobs, executions)
            print(f"  records built in {time.perf_counter() - t0:.1f} s")
        return records

    if "sqlite" in stores:
        with tempfile.TemporaryDirectory() as tmp:
            if db is None or not db.exists():
                db = db or Path(tmp) / "state.sqlite"
                t0 = time.perf_counter()
                seed_sqlite(db, *built())
                print(f"  SQLite store {db} (seeded in {time.perf_counter() - t0:.1f} s)")
            else:
                print(f"  SQLite store {db} (seeded by an earlier run)")
            bench_listings(
                "sqlite",
                where=str(db),
                levels=levels,
                samples=samples,
                workers=workers,
                target=HTTP_LISTING_P99_TARGET_MS,
                controllers=running,
                routes=routes,
            )
    if "elasticsearch" in stores:
        with _emulator() if es_url is None else nullcontext(es_url) as url:
            what = "the project's emulator (an in-memory Python model: scans every record per search)"
            t0 = time.perf_counter()
            seed_elasticsearch(url, *built())
            print(
                f"  Elasticsearch store at {url if es_url else what} "
                f"(seeded in {time.perf_counter() - t0:.1f} s)"
            )
            bench_listings(
                "elasticsearch",
                where=url,
                levels=es_levels,
                samples=es_samples,
                workers=workers,
                target=None,
                controllers=running,
                routes=routes,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--starts", type=int, default=500, help="0 skips part 1")
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--executions", type=int, default=100_000)
    parser.add_argument("--workers", type=int, default=1_000)
    parser.add_argument("--clients", default="1,10,50", help="client counts, comma separated")
    parser.add_argument("--samples", type=int, default=400, help="requests per route and client count")
    parser.add_argument("--stores", default="sqlite,elasticsearch")
    parser.add_argument(
        "--es-url",
        default=os.environ.get("BENCH_ELASTICSEARCH_URL"),
        help="a real Elasticsearch (default $BENCH_ELASTICSEARCH_URL; unset: the emulator)",
    )
    parser.add_argument("--es-samples", type=int, default=None, help="default: 20 on the emulator")
    parser.add_argument(
        "--es-clients", default=None, help="client counts for Elasticsearch (default: --clients)"
    )
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    parser.add_argument(
        "--db",
        type=Path,
        default=None,
        help="SQLite file for part 2, seeded when missing (reuse one to compare two versions)",
    )
    parser.add_argument(
        "--routes",
        nargs="+",
        choices=ROUTES,
        default=ROUTES,
        metavar="ROUTE",
        help=f"routes to measure (default: all; the floor {ROUTES[0]} is always measured first): "
        + ", ".join(ROUTES[1:]),
    )
    args = parser.parse_args()
    if args.starts:
        bench_starts(args.starts, args.synchronous)
    es_samples = args.es_samples or (args.samples if args.es_url else 20)
    levels = [int(c) for c in args.clients.split(",")]
    bench_http(
        args.jobs,
        executions=args.executions,
        workers=args.workers,
        levels=levels,
        samples=args.samples,
        stores=args.stores.split(","),
        es_url=args.es_url,
        es_samples=es_samples,
        es_levels=[int(c) for c in (args.es_clients or args.clients).split(",")],
        db=args.db,
        routes=[ROUTES[0], *(r for r in args.routes if r != ROUTES[0])],
    )


if __name__ == "__main__":
    main()
