"""The contributor path (issue 12 item 6): the Makefile's targets run the same commands as
ci/check.sh, pre-commit runs the same tools, CONTRIBUTING.md covers what a newcomer looks for,
and the README says how to install for single tests."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1].parent


def make(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def check_sh_commands(section: str) -> list[str]:
    """The commands of one ``echo "== <section>"`` part of ci/check.sh."""
    parts = re.split(r'^echo "== ', (ROOT / "ci" / "check.sh").read_text(encoding="utf-8"), flags=re.M)
    (part,) = [p for p in parts if p.startswith(section)]
    return [line for line in part.splitlines()[1:] if line and not line.startswith("#")]


def test_make_lint_runs_the_checks_of_ci_check_sh() -> None:
    result = make("-n", "lint")
    assert result.returncode == 0, result.stderr
    expected = [
        *check_sh_commands("ruff"),
        *check_sh_commands("mypy"),
        *check_sh_commands("import layering"),
        *check_sh_commands("chart lint"),
    ]
    assert result.stdout.splitlines() == expected


def test_make_test_is_the_test_command() -> None:
    assert make("-n", "test").stdout.splitlines() == ["bash ci/check.sh"]


def test_make_fmt_formats_and_fixes() -> None:
    assert make("-n", "fmt").stdout.splitlines() == [
        "ruff format plugin tests benchmarks",
        "ruff check --fix plugin tests benchmarks",
    ]


def test_make_test_one_runs_one_test_file() -> None:
    result = make("test-one", "T=tests/unit/test_execution_status.py::test_table_covers_every_pair")
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(r"^1 passed in ", result.stdout, flags=re.M), result.stdout


def test_make_test_one_without_a_test_says_how() -> None:
    result = make("test-one")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == "usage: make test-one T=tests/path/test_x.py[::test_name]"


def test_pre_commit_runs_the_project_tools_from_the_venv() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    (repo,) = config["repos"]
    entries = {hook["id"]: hook["entry"] for hook in repo["hooks"]}
    assert entries == {
        "ruff-check": ".venv/bin/ruff check --force-exclude",
        "ruff-format": ".venv/bin/ruff format --check --force-exclude",
        "mypy": ".venv/bin/mypy",
        "import-linter": ".venv/bin/lint-imports",
    }
    # the same tools ci/check.sh runs (its PATH puts .venv/bin first)
    ci = "\n".join(check_sh_commands("ruff") + check_sh_commands("mypy") + check_sh_commands("import"))
    for entry in entries.values():
        tool = entry.split()[0].removeprefix(".venv/bin/")
        assert re.search(rf"^{tool}\b", ci, flags=re.M), tool


def test_contributing_covers_the_newcomer_questions() -> None:
    text = (ROOT / "CONTRIBUTING.md").read_text(encoding="utf-8")
    headings = re.findall(r"^## (.+)$", text, flags=re.M)
    assert headings == [
        "Set up, test, lint",
        "Layout",
        "Adding an operation",
        "Adding an API route",
        "Adding a chart value",
        "Golden files",
        "Tests",
    ]
    for needle in (
        "make test-one T=",
        "--update-golden",
        "UPDATE_GOLDEN=1",
        "tests/golden/render/",
        "tests/chart/golden/",
    ):
        assert needle in text, needle
    # every path it names exists
    for path in re.findall(r"`((?:plugin|tests|charts|docs)/[\w./-]+?)`", text):
        assert (ROOT / path.split("::")[0]).exists(), path


def test_readme_says_how_to_install_for_single_tests() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install -e '.[test]'" in readme
    assert "make test-one" in readme
