"""Process entry of execution controllers and workers (``NODE_TYPE``), without the CLI.

Environment (exactly what the rendered manifests and the local backend provide):
``NODE_TYPE`` (``execution_controller`` | ``worker``), ``EX`` (base64 JSON of the execution
record; raw JSON in ``job`` is accepted too), ``TERAFOUNDATION_CONFIG`` (config path, default
``/app/config/teraslice.yaml``; if that default file does not exist all defaults apply),
``POD_IP`` (this process's address), ``TERASLICE_SLICER_PORT`` (controller port override),
``TERASLICE_PARENT_PID`` (set by the local backend: shut down as on SIGTERM when the parent
process is gone).
The store comes from the config (``teraslice.storage``).

Exit codes: what the process returns (0 = terminal status written / clean stop, 1 = failure),
2 = bad environment, config or execution. ``python -m teraslice_k8s.runtime`` runs this
directly (the local backend does, to start fast); ``teraslice-k8s node`` wraps it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from teraslice_k8s.backend.local import PARENT_PID_ENV
from teraslice_k8s.errors import ValidationError
from teraslice_k8s.models.config import SysConfig, load_config, parse_config
from teraslice_k8s.runtime.signals import terminate_when_orphaned

DEFAULT_CONFIG = "/app/config/teraslice.yaml"
RUNTIME_NODE_TYPES = ("execution_controller", "worker")


def load_node_config(path: str | None = None) -> SysConfig:
    """``path`` (from ``--config`` or ``TERAFOUNDATION_CONFIG``), else the image's default file
    if present, else all defaults."""
    if path:
        return load_config(path)
    if Path(DEFAULT_CONFIG).exists():
        return load_config(DEFAULT_CONFIG)
    return parse_config({})


def main(environ: Mapping[str, str] | None = None, config_path: str | None = None) -> int:
    env = os.environ if environ is None else environ
    node_type = env.get("NODE_TYPE", "")
    if node_type not in RUNTIME_NODE_TYPES:
        print(
            f"NODE_TYPE: must be one of {', '.join(RUNTIME_NODE_TYPES)} (got {node_type!r})", file=sys.stderr
        )
        return 2

    from teraslice_k8s import logs
    from teraslice_k8s.runtime.assets import AssetUnavailable, load_execution_assets
    from teraslice_k8s.runtime.pipeline import check_operations
    from teraslice_k8s.runtime.settings import RuntimeSettings, decode_execution

    try:
        config = load_node_config(config_path or env.get("TERAFOUNDATION_CONFIG"))
        execution = decode_execution(env)
        log_format = logs.resolve_format(None, config.terafoundation.log_format, env)
    except ValidationError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 2
    except ValueError as exc:  # $TERASLICE_LOG_FORMAT
        print(exc, file=sys.stderr)
        return 2
    settings = RuntimeSettings.from_config(config, execution)
    # Logging before the assets load, so what loading them logs (fetch, unpack) is kept.
    logs.configure(
        settings.log_level,
        assignment=node_type,
        fmt=log_format,
        name=config.teraslice.name,
        context={"ex_id": execution.get("ex_id"), "job_id": execution.get("job_id")},
    )
    try:
        # The job's assets first: its operations may come from them.
        loaded = load_execution_assets(config, execution)
        check_operations(execution)
    except ValidationError as exc:
        for line in exc.lines:
            print(line, file=sys.stderr)
        return 2
    except AssetUnavailable as exc:
        print(exc, file=sys.stderr)
        return 1
    for asset in loaded:
        logging.getLogger(__name__).info(
            "asset %s (%s@%s) loaded from %s: %s",
            asset.id,
            asset.name,
            asset.version,
            asset.path,
            ", ".join(sorted(asset.operations)) or "no operations",
        )
    parent_pid = env.get(PARENT_PID_ENV, "")
    if parent_pid.isdigit():
        terminate_when_orphaned(int(parent_pid))
    if node_type == "worker":
        from teraslice_k8s.runtime.worker import Worker

        worker = Worker(execution, settings)
        logs.set_context(worker_id=worker.worker_id)
        return _run(worker.run())
    # Bound to the pod's own address where there is one: every pod has its own IP, and a
    # wildcard bind would also take the port on addresses that are not this pod's (pods
    # without network namespaces, e.g. several controllers on one host).
    host = env.get("POD_IP") or "0.0.0.0"
    return _run(_run_controller(config, execution, settings, host))


def _run(main: Coroutine[Any, Any, int]) -> int:
    """``asyncio.run(main)``, on uvloop where it is installed (``uvicorn[standard]`` brings it):
    its transports cost a fraction of asyncio's per websocket frame, and a 1-record slice is
    mostly two frames (benchmarks/runtime.py, docs/performance.md)."""
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard] on Linux/macOS
        return asyncio.run(main)
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        return runner.run(main)


async def _run_controller(config: SysConfig, execution: dict[str, Any], settings: Any, host: str) -> int:
    from teraslice_k8s.runtime.execution_controller import ExecutionController
    from teraslice_k8s.runtime.settings import slicer_port

    # Imported here: workers need no store, and the factory pulls in the Elasticsearch client.
    from teraslice_k8s.store.factory import open_store

    store = await asyncio.to_thread(open_store, config)
    try:
        controller = ExecutionController(execution, store, settings, host=host, port=slicer_port(execution))
        return await controller.run()
    finally:
        store.close()
