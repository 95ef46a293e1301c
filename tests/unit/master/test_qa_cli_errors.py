"""``teraslice-k8s jobs errors`` shows what went wrong with each slice.

Slice errors written by our workers are Python tracebacks, whose first line is always
``Traceback (most recent call last):``; the table must show the exception line instead (the
last line), while a Teraslice-style ``Error: …\\n    at …`` stack keeps its first line.
"""

from __future__ import annotations

import argparse
from typing import Any

import httpx
import pytest

from teraslice_k8s.cli import client as client_cli
from teraslice_k8s.master.service import MasterService
from teraslice_k8s.store.sqlite import SqliteStore

from .fakes import job_spec, settle

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/worker.py", line 214, in _run_slice\n'
    "    batch = await proc.process(batch, request)\n"
    "elastic_transport.ConnectionError: Connection refused\n"
)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="teraslice-k8s")
    client_cli.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    code: int = args.handler(args)
    return code


def _error_slice(ex_id: str, n: int, error: str) -> dict[str, Any]:
    return {
        "slice_id": f"slice-{n}",
        "slicer_id": 0,
        "slicer_order": n,
        "request": '{"count":5}',
        "state": "error",
        "ex_id": ex_id,
        "error": error,
    }


def test_errors_table_shows_the_exception_line(
    master_url: str,
    service: MasterService,
    store: SqliteStore,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    ids = httpx.post(f"{master_url}/v1/jobs", json=job_spec(name="errs"), timeout=30).json()
    settle(service)
    store.create_slices(
        [
            _error_slice(ids["ex_id"], 1, TRACEBACK),
            _error_slice(ids["ex_id"], 2, "Error: Uh-oh\n    at op (file.js:1:1)"),
        ]
    )
    assert cli("jobs", "errors", ids["job_id"], "--url", master_url) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "slice-" in line]
    assert len(rows) == 2
    by_slice = {row.split()[1]: row for row in rows}
    assert "elastic_transport.ConnectionError: Connection refused" in by_slice["slice-1"]
    assert "Traceback" not in by_slice["slice-1"]
    assert "Error: Uh-oh" in by_slice["slice-2"]
