"""Process entry: NODE_TYPE, EX (base64 JSON) / job (raw JSON), config path."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from teraslice_k8s.errors import Problem, ValidationError
from teraslice_k8s.runtime.node import main
from teraslice_k8s.runtime.settings import decode_execution, encode_execution

EX = {"ex_id": "e1", "job_id": "j1", "operations": [{"_op": "data_generator"}, {"_op": "noop"}]}


def test_ex_is_base64_json_and_job_raw_json_is_accepted() -> None:
    assert decode_execution({"EX": encode_execution(EX)}) == EX
    assert decode_execution({"job": json.dumps(EX)}) == EX
    assert base64.b64decode(encode_execution(EX)) == json.dumps(EX, separators=(",", ":")).encode()


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        ({}, Problem("EX", "is not set (base64 JSON of the execution record)")),
        ({"EX": base64.b64encode(b"[1]").decode()}, Problem("EX", "must hold a JSON object")),
        ({"EX": base64.b64encode(b'{"ex_id": "x"}').decode()}, Problem("EX.job_id", "is required")),
    ],
)
def test_bad_execution_env(env: dict[str, str], problem: Problem) -> None:
    with pytest.raises(ValidationError) as info:
        decode_execution(env)
    assert info.value.problems == (problem,)


def test_unknown_node_type_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main({"NODE_TYPE": "slicer"}) == 2
    assert capsys.readouterr().err == (
        "NODE_TYPE: must be one of execution_controller, worker (got 'slicer')\n"
    )


def test_bad_operations_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    ex = {**EX, "operations": [{"_op": "data_generator"}, {"_op": "nope"}]}
    config = tmp_path / "teraslice.yaml"
    config.write_text("teraslice: {}\n")
    env = {"NODE_TYPE": "worker", "EX": encode_execution(ex), "TERAFOUNDATION_CONFIG": str(config)}
    assert main(env) == 2
    assert capsys.readouterr().err == 'operations[1]._op: unknown operation "nope"\n'
    config.write_text("teraslice: {name: UPPER}\n")
    assert main(env) == 2
    assert capsys.readouterr().err == "teraslice.name: must be lowercase\n"


def test_python_m_teraslice_k8s_with_node_type_runs_the_node_entry() -> None:
    env = {**os.environ, "NODE_TYPE": "worker", "EX": "not base64!"}
    proc = subprocess.run(
        [sys.executable, "-m", "teraslice_k8s"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("EX: is not valid base64 JSON: ")
