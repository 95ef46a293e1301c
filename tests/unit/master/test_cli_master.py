"""``teraslice-k8s master`` as a process: serves the API on the configured port, stops on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.slow

TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_master_process_serves_and_stops_cleanly(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "teraslice.yaml"
    config.write_text(
        "teraslice:\n"
        "  name: clitest\n"
        "  cluster_manager_type: local\n"
        f"  port: {port}\n"
        "  storage:\n"
        f"    path: {tmp_path / 'state.sqlite'}\n",
        encoding="utf-8",
    )
    code = "from teraslice_k8s.cli import main; import sys; sys.exit(main(sys.argv[1:]))"
    process = subprocess.Popen(
        [sys.executable, "-c", code, "master", "--config", str(config), "--host", "127.0.0.1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        cwd=tmp_path,
    )
    try:
        # The process binds the port after importing; re-try connecting, bounded.
        deadline = time.monotonic() + TIMEOUT
        tick = threading.Event()
        body = None
        while body is None and time.monotonic() < deadline and process.poll() is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/v1", timeout=2).json()
            except httpx.HTTPError:
                tick.wait(0.1)
        assert body is not None, process.communicate(timeout=TIMEOUT)[0].decode()
        assert body["clustering_type"] == "local" and body["name"] == "clitest"
    finally:
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=TIMEOUT)[0].decode()
    assert process.returncode == 0, output
    assert f"listening on 127.0.0.1:{port}" in output
