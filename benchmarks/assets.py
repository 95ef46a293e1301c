"""Asset benchmarks (issue 11). Prints figures; asserts nothing.

1. Upload of a 10 MB bundle through the API (``POST /v1/assets?blocking=true`` on a real
   uvicorn master with SQLite: check, store, unpack), then the cost a controller or worker
   pays at start: fetching the zip from the store and unpacking it into an empty directory,
   and loading it when it is already unpacked on a shared volume (target < 0.5 s).
2. Job submit with one asset vs none (``POST /v1/jobs?start=false``: resolution + load +
   validation with the asset in scope).

The bundle is the example asset plus ~10 MB of incompressible data files.
Usage: ``.venv/bin/python benchmarks/assets.py [--mb 10] [--repeat 5]``.
"""

from __future__ import annotations

import argparse
import io
import os
import statistics
import tempfile
import time
import zipfile
from collections.abc import Callable
from pathlib import Path

import httpx

from teraslice_k8s.cli.assets import build_bundle
from teraslice_k8s.master.server import MasterServer, build_service
from teraslice_k8s.models.asset import asset_id
from teraslice_k8s.models.config import parse_config
from teraslice_k8s.runtime.assets import load_assets, unpack
from teraslice_k8s.runtime.operations import asset_ops

EXAMPLE = Path(__file__).parents[1] / "examples" / "assets" / "example"
LOAD_TARGET_S = 0.5


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
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


if __name__ == "__main__":
    main()
