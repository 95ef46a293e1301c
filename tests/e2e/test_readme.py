"""README.md's local walk-through, run from README.md itself: its code blocks marked
``<!-- readme-test: run -->`` (run with bash, in order) and ``<!-- readme-test: background -->``
(started, left running until the blocks after it are done, then stopped with Ctrl-C) are
extracted from the file and executed as written in a scratch directory holding a copy of
``examples/`` and the ``.venv`` the tests run in. The only change: the master's port 5678
becomes a free port (in the copied ``examples/teraslice-local.yaml`` and in the blocks), so the
test can run next to another master.

So the README cannot rot: a renamed flag, a missing example file or a command that answers 404
a second after the previous one fails here.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from support.local_master import wait_for

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
#: Bound of every command and wait here.
TIMEOUT = 120.0
_BLOCK = re.compile(r"<!-- readme-test: (run|background) -->\n```sh\n(.*?)```", re.DOTALL)


@dataclass(frozen=True)
class Block:
    kind: str
    text: str


def readme_blocks() -> list[Block]:
    return [Block(kind, text) for kind, text in _BLOCK.findall(README.read_text(encoding="utf-8"))]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def test_readme_marks_the_local_walk_through() -> None:
    # run, then the master in the background, the client commands and the asset walk-through
    # against it, then render
    assert [b.kind for b in readme_blocks()] == ["run", "background", "run", "run", "run"]


def _bash(script: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TERASLICE_MASTER_URL", "VIRTUAL_ENV")}
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=cwd,
        env={**env, "COLUMNS": "200"},
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def test_readme_local_walk_through_runs_as_written(tmp_path: Path) -> None:
    port = free_port()
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    (tmp_path / ".venv").symlink_to(Path(sys.prefix))
    local_config = tmp_path / "examples" / "teraslice-local.yaml"
    assert "port: 5678" in local_config.read_text(encoding="utf-8")
    local_config.write_text(local_config.read_text(encoding="utf-8").replace("5678", str(port)))

    master: subprocess.Popen[str] | None = None
    outputs: list[str] = []
    try:
        for block in readme_blocks():
            script = block.text.replace("5678", str(port))
            if block.kind == "background":
                master = subprocess.Popen(
                    ["bash", "-c", f"exec {script.strip()}"],
                    cwd=tmp_path,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    # its own process group: Ctrl-C goes to the master only
                    start_new_session=True,
                )
                _wait_until_serving(master, port)
                continue
            result = _bash(script, tmp_path)
            outputs.append(result.stdout)
            assert result.returncode == 0, f"{script}\nstdout:\n{result.stdout}\nstderr:\n{result.stderr}"
        # assets (while the master runs): the example asset deployed and listed, the job using
        # it ran to the exact count
        asset_id = _check_asset_walk_through(outputs[2], port)
    finally:
        master_log = ""
        if master is not None:
            master.send_signal(signal.SIGINT)  # Ctrl-C
            master_log = master.communicate(timeout=TIMEOUT)[0]
    assert master is not None and master.returncode == 0, master_log

    # run: the summary names a completed execution and its non-empty log files
    run_out = outputs[0]
    assert re.search(r"status\s+│ completed", run_out), run_out
    logs = Path(re.search(r"logs\s+│ (\S+)", run_out).group(1))  # type: ignore[union-attr]
    assert sorted(p.name for p in logs.iterdir()) == [
        "execution_controller.log",
        "worker-1.log",
        "worker-2.log",
        "worker-3.log",
    ]
    assert all(p.stat().st_size > 0 for p in logs.iterdir())

    # the client commands, line by line
    lines = outputs[1].splitlines()
    job_id = re.fullmatch(r"registered job persistent-generator as (\S+)", lines[0]).group(1)  # type: ignore[union-attr]
    ex_id = re.fullmatch(rf"started job {job_id}: execution (\S+)", lines[1]).group(1)  # type: ignore[union-attr]
    assert f"4 workers have been set for execution: {ex_id}" in lines
    assert lines[-1] == f"job {job_id}: stopped"
    assert any(ex_id in line for line in lines), "ex list shows the execution with its whole id"
    saved = (tmp_path / "my-job.json").read_text(encoding="utf-8")
    assert job_id in saved

    # render: the controller Job, its Service and the worker Deployment
    kinds = re.findall(r"^kind: (\w+)$", outputs[3], flags=re.M)
    assert kinds == ["Job", "Service", "Deployment"], outputs[3]

    # the master's log tells the story
    for expected in (
        f"job {job_id} (persistent-generator) registered",
        f"job {job_id} (persistent-generator): execution {ex_id} created, pending",
        f"execution {ex_id}: pending -> scheduling",
        f"execution {ex_id}: scheduling -> initializing",
        f"execution {ex_id}: stopping -> stopped",
    ):
        assert expected in master_log, master_log
    assert "Traceback" not in master_log, master_log
    assert (tmp_path / "assets" / asset_id / "asset.json").is_file()  # assets_directory: ./assets


def _check_asset_walk_through(out: str, port: int) -> str:
    """The README's asset block: ``assets deploy`` printed the id, ``assets list`` lists it, the
    job naming it completed with exactly 1000 records in 10 slices (waited for here, as a user
    would re-run ``jobs status``); returns the asset id."""
    ids = re.findall(r"\b[0-9a-f]{40}\b", out)
    assert ids, out
    asset_id = ids[0]
    assert re.search(rf"example\s.*1\.0\.0\s.*{asset_id}", out), out
    started = re.search(r"registered job example-counter as \S+, execution (\S+) started", out)
    assert started, out
    ex_id = started.group(1)
    url = f"http://127.0.0.1:{port}/v1/ex/{ex_id}"
    ex = wait_for(
        lambda: (r := httpx.get(url, timeout=10).json())["_status"] in ("completed", "failed") and r,
        "the asset job's execution to finish",
        TIMEOUT,
    )
    assert ex["_status"] == "completed", ex.get("_failureReason")
    assert ex["assets"] == [asset_id]
    stats = ex["_slicer_stats"]
    assert (stats["processed"], stats["failed"], stats["records"]) == (10, 0, 1000)
    return asset_id


def _wait_until_serving(master: subprocess.Popen[str], port: int) -> None:
    wait_for(lambda: _answers(port) or master.poll() is not None, "the master", TIMEOUT)
    assert master.poll() is None, master.communicate(timeout=TIMEOUT)[0]


def _answers(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/v1", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False
