"""The reference's worked examples (../shared/reference/standard-asset.md) as ``ops run`` CASE
files (``cases/NAME.json``), each run through the real CLI (``teraslice-k8s ops run``) and
compared whole with ``cases/NAME.out.json``, which was written from the reference, not from
the code. An expected ``{"error": ...}`` means exit status 3.

``pytest --update-golden`` rewrites the ``.out.json`` files from the current output: only for
an intended change, checked against the reference.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from teraslice_k8s.cli import main

CASES = Path(__file__).parent / "cases"
NAMES = sorted(p.name.removesuffix(".json") for p in CASES.glob("*.json") if not p.name.endswith(".out.json"))


def test_there_are_cases() -> None:
    assert len(NAMES) >= 100
    assert all((CASES / f"{name}.out.json").is_file() for name in NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_case(name: str, capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest) -> None:
    code = main(["ops", "run", str(CASES / f"{name}.json")])
    captured = capsys.readouterr()
    answer = json.loads(captured.out)
    expected_file = CASES / f"{name}.out.json"
    if request.config.getoption("--update-golden"):
        expected_file.write_text(json.dumps(answer, indent=2, ensure_ascii=False) + "\n")
    expected = json.loads(expected_file.read_text())
    assert answer == expected
    assert code == (3 if "error" in expected else 0), captured.err


def test_console_script_exit_status_and_stdout_only_json(tmp_path: Path) -> None:
    """The installed command: the answer alone on stdout (what debug_routes prints goes to
    stderr), and exit 3 with the error as JSON when a slice fails."""
    ok = subprocess.run(
        [sys.executable, "-m", "teraslice_k8s", "ops", "run", str(CASES / "debug-routes.json")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == json.loads((CASES / "debug-routes.out.json").read_text())
    assert ok.stderr == "{ a: 1, b: 1, '<unknown>': 1 }\n"
    failed = subprocess.run(
        [sys.executable, "-m", "teraslice_k8s", "ops", "run", "-"],
        input=(CASES / "dedupe-no-key.json").read_text(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert (failed.returncode, json.loads(failed.stdout)) == (
        3,
        {"error": "No key has been set in the metadata"},
    )
