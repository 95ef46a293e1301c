"""Master benchmarks (issue 4). Prints figures; asserts nothing.

1. Overhead per execution start, excluding the Kubernetes API's own time: ``_start`` of a stored
   job (validation + execution record) plus the allocator's work (status writes + the backend
   calls, where the stubbed backend renders the Job, Service and Deployment manifests exactly as
   the Kubernetes backend does and sends nowhere). p50/p99, target p99 < 10 ms.
2. ``GET /v1/jobs`` and ``GET /v1/cluster/state`` over real HTTP with 10,000 stored jobs and
   1,000 running workers in the cluster state, 50 concurrent clients: p50/p99, target p99 < 100 ms.
   The master runs in its own process (uvicorn, as in production); the clients are bare asyncio
   HTTP/1.1 keep-alive connections. ``GET /v1/`` shows the floor (the event loop's queueing).

Usage: ``.venv/bin/python benchmarks/master.py [--starts N] [--jobs N] [--workers N]
[--clients N] [--requests N] [--synchronous FULL|NORMAL]``.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import tempfile
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
HTTP_P99_TARGET_MS = 100.0

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


# -- 2. HTTP listing latency under 50 clients ----------------------------------------------------


def _serve(db: str, workers: int, port_queue: Any) -> None:
    cfg = config()
    store = SqliteStore(db, synchronous="NORMAL")
    service = MasterService(
        store, RenderingBackend(cfg, workers), MasterSettings.from_config(cfg), job_validator(cfg)
    )
    server = MasterServer(service, "127.0.0.1", 0, log_level="error")
    port_queue.put(server.port)
    server.run()


def seed(db: Path, jobs: int) -> None:
    store = SqliteStore(db, synchronous="NORMAL")
    for i in range(jobs):
        store.create_job({**JOB, "name": f"generator-{i}", "job_id": str(uuid.uuid4())})
    store.close()


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


def bench_http(jobs: int, workers: int, clients: int, requests: int) -> None:
    ctx = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "state.sqlite"
        t0 = time.perf_counter()
        seed(db, jobs)
        print(
            f"2. HTTP latency, {clients} concurrent clients x {requests} requests "
            f"({jobs} jobs seeded in {time.perf_counter() - t0:.1f} s, {workers} workers in cluster state)"
        )
        ports = ctx.Queue()
        process = ctx.Process(target=_serve, args=(str(db), workers, ports), daemon=True)
        process.start()
        try:
            port = ports.get(timeout=60)
            # ``ex=`` listings are never cached: they show the store + render cost of every request.
            for path in ("/v1/", "/v1/jobs", "/v1/jobs?ex=_status,ex_id", "/v1/cluster/state"):
                samples = asyncio.run(_load(port, path, clients, requests))
                report(f"GET {path}", samples, HTTP_P99_TARGET_MS)
            for path in ("/v1/jobs?sort=_created:asc", "/v1/cluster/state"):
                single = asyncio.run(_load(port, path, 1, requests))
                report(f"GET {path} (1 client)", single, HTTP_P99_TARGET_MS)
        finally:
            process.terminate()
            process.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--starts", type=int, default=500)
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=1_000)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--synchronous", choices=("FULL", "NORMAL"), default="FULL")
    args = parser.parse_args()
    bench_starts(args.starts, args.synchronous)
    bench_http(args.jobs, args.workers, args.clients, args.requests)


if __name__ == "__main__":
    main()
