"""Machine instructions per rendered execution (issue 2), counted by valgrind. Prints figures.

Timings on a shared machine move by +-30% from minute to minute; instruction counts do not
(the same code and input give the same count to within 0.1%). Use this to compare two
versions of the render path, e.g. a change against ``git worktree add /tmp/base HEAD``::

    .venv/bin/python benchmarks/render_instructions.py --plugin /tmp/base/plugin --plugin plugin

Each ``--plugin`` directory (default: this checkout's ``plugin``) is measured in its own
process running ``benchmarks/render.py``'s ``render_one`` (the three manifests of one
execution, fresh ``ex_id`` each) under ``valgrind --tool=callgrind``, counting only the
measured loop (instrumentation is switched on after warm-up with ``callgrind_control``).
Needs valgrind (``apt-get install valgrind``); slow: ~20 s per 300 executions.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_CHILD = """
import os, subprocess, sys
sys.path.insert(0, {benchmarks!r})
import render
for index in range(50):
    render.render_one(-index)  # warm up: templates compiled, caches and specialisations filled
subprocess.run(["callgrind_control", "-i", "on", str(os.getpid())], check=True, capture_output=True)
for index in range({count}):
    render.render_one(index)
subprocess.run(["callgrind_control", "-i", "off", str(os.getpid())], check=True, capture_output=True)
"""


def instructions(plugin: Path, count: int) -> int:
    """Instructions executed by ``count`` renders with ``plugin`` first on the import path."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        env = {**os.environ, "PYTHONPATH": str(plugin)}
        code = _CHILD.format(benchmarks=str(ROOT / "benchmarks"), count=count)
        valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no", f"--callgrind-out-file={out}"]
        subprocess.run(
            [*valgrind, sys.executable, "-c", code],
            check=True,
            env=env,
            capture_output=True,
        )
        report = subprocess.run(["callgrind_annotate", str(out)], check=True, capture_output=True, text=True)
    match = re.search(r"^([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", report.stdout, re.MULTILINE)
    if match is None:
        raise RuntimeError("callgrind_annotate printed no PROGRAM TOTALS line")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0] if __doc__ else None)
    parser.add_argument("--plugin", type=Path, action="append", help="plugin directory (repeatable)")
    parser.add_argument("--executions", type=int, default=300, help="executions counted (300)")
    args = parser.parse_args()
    tools = ("valgrind", "callgrind_control", "callgrind_annotate")
    missing = [tool for tool in tools if not shutil.which(tool)]
    if missing:
        sys.exit(f"render_instructions: needs {', '.join(missing)} (valgrind package)")
    plugins: list[Path] = args.plugin or [ROOT / "plugin"]
    first: float | None = None
    for plugin in plugins:
        per_execution = instructions(plugin.resolve(), args.executions) / args.executions
        ratio = "" if first is None else f"  ({per_execution / first:.3f}x the first)"
        first = first or per_execution
        print(f"{plugin}: {per_execution:,.0f} instructions per execution (Job, Service, Deployment){ratio}")


if __name__ == "__main__":
    main()
