"""Log lines of real processes (issue 12 item 3): ``teraslice-k8s run`` with the local backend
leaves an execution controller log and worker logs that tell the story at INFO, in text or in
bunyan JSON; a failing slice is logged with its error; the master with an unreachable
Elasticsearch prints one line per attempt and a clear final error."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
MAIN_JOB = ROOT / "examples" / "jobs" / "data-generator.json"
CLI = [sys.executable, "-m", "teraslice_k8s"]
TIMEOUT = 180.0
TIME = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
WORKER_ID = r"[\w.:-]+__[\w-]{8}"


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "TERASLICE_LOG_FORMAT"}
    return subprocess.run(
        [*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


def run_job(tmp_path: Path, *extra: str, job: Path = MAIN_JOB) -> tuple[dict[str, Any], Path]:
    result = run_cli("run", str(job), "--json", "--data-dir", str(tmp_path / "data"), *extra, cwd=tmp_path)
    summary = json.loads(result.stdout.splitlines()[-1])
    return summary, Path(summary["logs"])


def test_run_leaves_controller_and_worker_logs_that_tell_the_story(tmp_path: Path) -> None:
    summary, logs = run_job(tmp_path)
    assert summary["status"] == "completed"
    ex = summary["ex_id"]
    controller = (logs / "execution_controller.log").read_text().splitlines()
    prefix = rf"{TIME} INFO execution_controller\[{ex[:8]}\] runtime.execution_controller: "
    patterns = [
        rf"{prefix}execution {ex}: initializing -> running",
        rf"{prefix}worker {WORKER_ID} joined \([123] connected\)",
        rf"{prefix}execution {ex}: running -> completed \(20 slices processed, 0 failed, 100000 records\)",
        rf"{prefix}worker {WORKER_ID} left \([012] connected\)",
    ]
    for pattern in patterns:
        assert any(re.fullmatch(pattern, line) for line in controller), (pattern, controller)
    assert all(any(re.fullmatch(p, line) for p in patterns) for line in controller), controller
    assert sum("joined" in line for line in controller) == 3
    assert sum(" left " in line for line in controller) == 3

    processed = 0
    for n in (1, 2, 3):
        lines = (logs / f"worker-{n}.log").read_text().splitlines()
        wprefix = rf"{TIME} INFO worker\[{ex[:8]}\] runtime.worker: worker ({WORKER_ID}) "
        assert len(lines) == 2, lines
        connected = re.fullmatch(
            rf"{wprefix}connected to the execution controller at ws://[\d.]+:\d+/worker", lines[0]
        )
        done = re.fullmatch(rf"{wprefix}done: (\d+) slices processed", lines[1])
        assert connected and done, lines
        assert connected.group(1) == done.group(1)
        processed += int(done.group(2))
    assert processed == 20


def test_json_logs_are_bunyan_records(tmp_path: Path) -> None:
    summary, logs = run_job(tmp_path, "--log-format", "json")
    assert summary["status"] == "completed"
    files = sorted(logs.iterdir())
    assert [f.name for f in files] == [
        "execution_controller.log",
        "worker-1.log",
        "worker-2.log",
        "worker-3.log",
    ]
    for path in files:
        lines = path.read_text().splitlines()
        assert lines, path
        for line in lines:
            record = json.loads(line)
            role = "execution_controller" if path.name.startswith("execution") else "worker"
            assert list(record)[:3] == ["name", "hostname", "pid"]
            assert list(record)[-3:] == ["msg", "time", "v"]
            assert record["name"] == "teracluster" and record["v"] == 0
            assert record["hostname"] == socket.gethostname() and isinstance(record["pid"], int)
            assert record["assignment"] == role
            assert record["module"] == f"runtime.{role}"
            assert record["ex_id"] == summary["ex_id"] and record["job_id"] == summary["job_id"]
            assert record["level"] == 30
            assert re.fullmatch(TIME, record["time"])
            if role == "worker":
                assert re.fullmatch(WORKER_ID, record["worker_id"])
                assert record["msg"].startswith(f"worker {record['worker_id']} ")


def test_a_failing_slice_is_logged_with_its_error(tmp_path: Path) -> None:
    # elasticsearch_bulk to a closed port: the slice fails with a connection error
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "teraslice.yaml"
    config.write_text(
        "terafoundation:\n  connectors:\n    elasticsearch-next:\n      default:\n"
        f"        node: http://127.0.0.1:{port}\n        maxRetries: 0\n"
        "teraslice:\n  name: failtest\n"
    )
    job = tmp_path / "fails.json"
    job.write_text(
        json.dumps(
            {
                "name": "fails",
                "workers": 1,
                "max_retries": 0,
                "analytics": False,
                "operations": [
                    {"_op": "data_generator", "size": 10},
                    {"_op": "elasticsearch_bulk", "index": "out", "size": 10},
                ],
            }
        )
    )
    summary, logs = run_job(tmp_path, "--config", str(config), job=job)
    assert summary["status"] == "failed"
    # no teraslice.storage.path in the config: the state stays under --data-dir
    assert (tmp_path / "data" / "state.sqlite").is_file()
    assert not list(tmp_path.glob("*.sqlite"))
    controller = (logs / "execution_controller.log").read_text()
    assert re.search(
        rf"^{TIME} ERROR execution_controller\[\w+\] runtime.execution_controller: slice {UUID} failed: "
        r"elastic_transport.ConnectionError: Connection error$",
        controller,
        flags=re.M,
    ), controller
    ex = summary["ex_id"]
    assert (
        f"execution {ex}: running -> failed (execution: {ex} had 1 slice failure(s) during processing; "
        "1 slices processed, 1 failed, 0 records)"
    ) in controller
    worker = (logs / "worker-1.log").read_text()
    assert re.search(
        rf"^{TIME} ERROR worker\[\w+\] runtime.worker: slice {UUID} failed: "
        r"ConnectionError: Connection error\nTraceback \(most recent call last\):\n",
        worker,
        flags=re.M,
    ), worker


def test_master_with_unreachable_elasticsearch_gives_up_with_one_line_per_attempt(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "teraslice.yaml"
    config.write_text(
        f"terafoundation:\n  connectors:\n    elasticsearch-next:\n      default:\n        node: http://127.0.0.1:{port}\n"
        "teraslice:\n  name: esdown\n  cluster_manager_type: local\n"
        "  storage:\n    type: elasticsearch\n    startup_timeout: 5 seconds\n"
    )
    result = run_cli("master", "--config", str(config), "--port", "0", "--log-format", "json", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stdout == ""
    records = [json.loads(line) for line in result.stderr.splitlines()]
    refused = f"http://127.0.0.1:{port}: [Errno 111] Connection refused"
    *retries, final = records
    assert 2 <= len(retries) <= 3  # 2-4 s apart within 5 s
    for n, record in enumerate(retries, start=1):
        assert (record["level"], record["module"]) == (40, "store.elasticsearch")
        assert re.fullmatch(
            rf"Elasticsearch not ready for index esdown__jobs \(attempt {n}, {re.escape(refused)}\); "
            r"retrying for up to \d s more",
            record["msg"],
        )
    assert (final["level"], final["module"], final["assignment"], final["name"]) == (
        50,
        "cli.master",
        "cluster_master",
        "esdown",
    )
    assert re.fullmatch(
        rf"cannot start the master: cannot reach Elasticsearch to create esdown__jobs: {re.escape(refused)} "
        rf"\(gave up after 5 s, {len(retries) + 1} attempts: teraslice.storage.startup_timeout\)",
        final["msg"],
    )
