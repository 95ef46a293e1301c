"""Asset benchmarks (issue 11). Prints figures; asserts nothing.

1. Upload of a 10 MB bundle through the API (``POST /v1/assets?blocking=true`` on a real
   uvicorn master with SQLite: check, store, unpack), then the cost a controller or worker
   pays at start: fetching the zip from the store and unpacking it into an empty directory,
   and loading it when it is already unpacked on a shared volume (target < 0.5 s).
2. Job submit with one asset vs none (``POST /v1/jobs?start=false``: resolution + load +
   validation with the asset in scope).
3. Extra time to the first completed slice with one asset vs none (target < 0.5 s): the same
   job (``data_generator`` -> a processor, 1 worker) run to the end on the local backend, once
   with the built-in ``noop`` and once with the asset's ``uppercase``, alternately; from
   ``POST /v1/jobs`` to the first completed slice in the store. The master unpacked the asset
   at submit into ``assets_directory``, which the controller and worker share, so this is the
   "already unpacked on the shared volume" case: each process only imports it.
4. ``/cluster/state`` on Kubernetes with 1,000 workers (+100 controllers): building the state
   from the pod cache as Teraslice does (``assets: []``), decoding every pod's ``EX`` each
   time, and with :class:`~teraslice_k8s.kubernetes.state.PodAssetIds` (what the backend does:
   each pod decoded once).

The bundle is the example asset plus ~10 MB of incompressible data files.
Usage: ``.venv/bin/python benchmarks/assets.py [--mb 10] [--repeat 5] [--runs 5]``.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import os
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import yaml

from teraslice_k8s.cli.assets import build_bundle
from teraslice_k8s.kubernetes.state import PodAssetIds, gen_cluster_state
from teraslice_k8s.master.server import MasterServer, build_service
from teraslice_k8s.models.asset import asset_id
from teraslice_k8s.models.config import load_config, parse_config
from teraslice_k8s.runtime.assets import load_assets, unpack
from teraslice_k8s.runtime.operations import asset_ops
from teraslice_k8s.store.base import SliceFilter

EXAMPLE = Path(__file__).parents[1] / "examples" / "assets" / "example"
LOAD_TARGET_S = 0.5
FIRST_SLICE_TARGET_S = 0.5


def big_bundle(megabytes: int, salt: int) -> bytes:
    """The example asset with ``megabytes`` of random data files and a unique version."""
    _, base = build_bundle(EXAMPLE)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(base)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename == "asset.json":
                data = data.replace(b'"1.0.0"', f'"1.0.{salt}"'.encode())
            dst.writestr(info, data)
        for index in range(megabytes):
            dst.writestr(f"data/blob-{index}.bin", os.urandom(1024 * 1024))
    return out.getvalue()


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def report(label: str, seconds: list[float]) -> None:
    print(
        f"{label:<58} median {statistics.median(seconds) * 1000:8.1f} ms   best {min(seconds) * 1000:8.1f} ms"
    )


def first_slice_runs(root: Path, runs: int) -> tuple[list[float], list[float]]:
    """Seconds from ``POST /v1/jobs`` to the first completed slice, without and with one asset
    (local backend, real processes; runs alternate so load bursts hit both alike)."""
    config_path = root / "first-slice.yaml"
    settings = {
        "name": "bench-first-slice",
        "cluster_manager_type": "local",
        "shutdown_timeout": 10_000,
        "storage": {"type": "sqlite", "path": str(root / "first-slice.sqlite")},
        "assets_directory": str(root / "shared-assets"),
    }
    config_path.write_text(yaml.safe_dump({"teraslice": settings}), encoding="utf-8")
    service = build_service(load_config(config_path), config_path=config_path)
    server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
    service.start()
    base = {"lifecycle": "once", "workers": 1, "analytics": False}
    reader = {"_op": "data_generator", "size": 1000, "slice_size": 100}
    plain = {**base, "name": "no-asset", "operations": [reader, {"_op": "noop"}]}
    with_asset = {
        **base,
        "name": "one-asset",
        "assets": ["example"],
        "operations": [reader, {"_op": "uppercase", "fields": ["url"]}],
    }
    none: list[float] = []
    one: list[float] = []
    try:
        url = server.start()
        with httpx.Client(base_url=url, timeout=120) as http:
            _, data = build_bundle(EXAMPLE)
            response = http.post("/v1/assets", params={"blocking": "true"}, content=data)
            assert response.status_code in (200, 201), response.text
            for index in range(runs * 2 + 1):  # the first (warm-up) run is not counted
                job = plain if index % 2 else with_asset
                seconds = _run_to_first_slice(http, service.store, job)
                if index:
                    (one if job is with_asset else none).append(seconds)
    finally:
        server.stop()
        service.close()
    return none, one


def _run_to_first_slice(http: httpx.Client, store: Any, job: dict[str, Any]) -> float:
    started = time.perf_counter()
    response = http.post("/v1/jobs", json=job)
    assert response.status_code == 200, response.text
    ex_id = response.json()["ex_id"]
    first = None
    deadline = started + 120
    while time.perf_counter() < deadline:
        if first is None and store.count_slices(SliceFilter(ex_id=ex_id, states=("completed",))):
            first = time.perf_counter() - started
        status = store.get_execution(ex_id)["_status"]
        if status in ("completed", "failed", "terminated", "stopped"):
            assert status == "completed", store.get_execution(ex_id).get("_failureReason")
            assert first is not None
            return first
        time.sleep(0.002)  # polling interval, not synchronisation
    raise SystemExit(f"execution {ex_id} did not complete in 120 s")


def kube_pods(workers: int, per_ex: int = 10, assets: int = 1) -> list[dict[str, Any]]:
    """Running pods as the pod cache holds them: a controller per ``per_ex`` workers, each pod
    with the ``EX`` a master renders (an execution of ~2 KB naming ``assets`` asset ids)."""
    pods = []
    for w in range(workers):
        ex = w // per_ex
        execution = {
            "name": f"bench-{ex}",
            "lifecycle": "once",
            "workers": per_ex,
            "assets": [f"{ex:08x}{'a' * 32}"[:40] for _ in range(assets)],
            "operations": [
                {
                    "_op": "data_generator",
                    "size": 100000,
                    "_encoding": "json",
                    "_dead_letter_action": "throw",
                },
                {"_op": "uppercase", "fields": ["url", "userAgent"], "_encoding": "json"},
                {"_op": "elasticsearch_bulk", "index": f"bench-{ex}", "size": 500, "_encoding": "json"},
            ],
            "apis": [],
            "targets": [{"key": "zone", "value": "a"}],
            "env_vars": {f"VAR_{i}": "x" * 20 for i in range(10)},
            "labels": {"team": "bench"},
            "resources_requests_cpu": 1,
            "resources_limits_memory": 2147483648,
            "job_id": f"{ex:08d}-0000-4000-8000-000000000000",
            "ex_id": f"{ex:08d}-1111-4000-8000-000000000000",
            "metadata": {},
            "slicer_hostname": f"ts-exc-bench-{ex:08d}.ts-dev1",
            "slicer_port": 45680,
            "_status": "running",
            "_context": "ex",
            "_created": "2026-11-27T10:00:00.000Z",
            "_updated": "2026-11-27T10:00:01.000Z",
        }
        encoded = base64.b64encode(json.dumps(execution).encode()).decode()
        for assignment in (["execution_controller"] if w % per_ex == 0 else []) + ["worker"]:
            name = f"ts-{'exc' if assignment != 'worker' else 'wkr'}-bench-{ex:04d}-{w:05d}"
            pods.append(
                {
                    "metadata": {
                        "name": name,
                        "uid": f"uid-{name}",
                        "resourceVersion": str(w),
                        "labels": {
                            "app.kubernetes.io/name": "teraslice",
                            "app.kubernetes.io/component": assignment,
                            "teraslice.terascope.io/exId": execution["ex_id"],
                            "teraslice.terascope.io/jobId": execution["job_id"],
                        },
                    },
                    "spec": {
                        "containers": [
                            {
                                "name": "k8s-teraslice",
                                "image": "ghcr.io/terascope/teraslice:v3.18.0",
                                "env": [
                                    {"name": "NODE_TYPE", "value": assignment},
                                    {"name": "EX", "value": encoded},
                                    {
                                        "name": "POD_IP",
                                        "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}},
                                    },
                                ],
                            }
                        ]
                    },
                    "status": {
                        "phase": "Running",
                        "hostIP": f"10.0.0.{w % 20}",
                        "podIP": f"172.16.{w // 256}.{w % 256}",
                    },
                }
            )
    return pods


def bench_cluster_state(workers: int, repeat: int = 50) -> None:
    pods = kube_pods(workers)
    print(f"/cluster/state from the pod cache, {workers} workers + {workers // 10} controllers:")
    teraslice = [timed(lambda: gen_cluster_state(pods, lambda _pod: ())) for _ in range(repeat)]
    decode_all = [timed(lambda: gen_cluster_state(pods)) for _ in range(repeat)]
    cache = PodAssetIds()
    first = timed(lambda: cache.cluster_state(pods))
    cached = [timed(lambda: cache.cluster_state(pods)) for _ in range(repeat)]
    report("  assets: [] (Teraslice kubernetesV2)", teraslice)
    report("  assets decoded from every pod's EX, each time", decode_all)
    report("  PodAssetIds (the backend): first state (decodes all)", [first])
    report("  PodAssetIds (the backend): next states", cached)
    states = {json.dumps(gen_cluster_state(pods)), json.dumps(cache.cluster_state(pods))}
    assert len(states) == 1, "cached and uncached states differ"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=5, help="runs of each job for the first-slice figure")
    parser.add_argument("--workers", type=int, default=1000, help="worker pods for the cluster-state figure")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = parse_config(
            {
                "teraslice": {
                    "name": "bench",
                    "cluster_manager_type": "local",
                    "storage": {"type": "sqlite", "path": str(root / "state.sqlite")},
                    "assets_directory": str(root / "assets"),
                    "autoload_directory": str(root / "autoload"),
                }
            }
        )
        service = build_service(config)
        server = MasterServer(service, "127.0.0.1", 0, log_level="warning")
        service.start()
        url = server.start()
        try:
            bundles = [big_bundle(args.mb, i) for i in range(args.repeat)]
            size = len(bundles[0]) / 1e6
            print(f"bundle: {size:.1f} MB zipped, {args.mb} MB of data files + the example asset")
            with httpx.Client(base_url=url, timeout=120) as http:
                uploads = []
                for data in bundles:
                    started = time.perf_counter()
                    response = http.post(
                        "/v1/assets",
                        params={"blocking": "true"},
                        content=data,
                        headers={"Content-Type": "application/octet-stream"},
                    )
                    uploads.append(time.perf_counter() - started)
                    assert response.status_code == 201, response.text
                report(f"upload {args.mb} MB (check + store + unpack), API", uploads)

                assert service.assets is not None
                store = service.assets.store
                cold = []
                for index, data in enumerate(bundles):
                    target = root / f"cold-{index}"
                    cold.append(
                        timed(lambda d=data, t=target: unpack(store.get_zip(asset_id(d)), t, asset_id(d)))
                    )
                report("process start, not unpacked: fetch zip + unpack", cold)

                warm = []
                for data in bundles:
                    asset_ops._loaded.clear()  # a new process imports again
                    warm.append(
                        timed(lambda d=data: load_assets([asset_id(d)], store.get_zip, root / "assets"))
                    )
                report("process start, unpacked on the shared volume: load", warm)
                verdict = "met" if max(warm) < LOAD_TARGET_S else "MISSED"
                print(f"  target < {LOAD_TARGET_S * 1000:.0f} ms: {verdict}")

                job = {
                    "name": "bench",
                    "workers": 1,
                    "operations": [{"_op": "data_generator", "size": 10}, {"_op": "noop"}],
                }
                none = [
                    timed(lambda: http.post("/v1/jobs", params={"start": "false"}, json=job))
                    for _ in range(20)
                ]
                with_asset = {
                    **job,
                    "assets": ["example:1.0.0"],
                    "operations": [*job["operations"], {"_op": "uppercase"}],
                }
                one = [
                    timed(lambda: http.post("/v1/jobs", params={"start": "false"}, json=with_asset))
                    for _ in range(20)
                ]
                report("POST /v1/jobs, no asset", none)
                report("POST /v1/jobs, one asset (resolve + load + validate)", one)
        finally:
            server.stop()
            service.close()

        none_first, one_first = first_slice_runs(root, args.runs)
        report("POST /v1/jobs -> 1st completed slice, no asset (local)", none_first)
        report("POST /v1/jobs -> 1st completed slice, one asset (local)", one_first)
        extra = statistics.median(one_first) - statistics.median(none_first)
        best = min(one_first) - min(none_first)
        verdict = "met" if max(extra, best) < FIRST_SLICE_TARGET_S else "MISSED"
        print(
            f"  extra with one asset: {extra * 1000:.0f} ms (medians), {best * 1000:.0f} ms (bests);"
            f" target < {FIRST_SLICE_TARGET_S * 1000:.0f} ms: {verdict}"
        )

    bench_cluster_state(args.workers)


if __name__ == "__main__":
    main()
