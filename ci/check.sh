#!/usr/bin/env bash
# The whole test suite: tools, lint, types, chart lint, tests. README and .ci/run call this.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash ci/install-tools.sh
export PATH=$ROOT/.tools/bin:$ROOT/.venv/bin:$PATH
export CHECKOV=$ROOT/.venv-checkov/bin/checkov

echo "== ruff"
ruff check plugin tests benchmarks
ruff format --check plugin tests benchmarks
echo "== mypy (strict on plugin/)"
mypy
echo "== import layering (import-linter)"
lint-imports
echo "== chart lint (ct lint equivalent)"
bash ci/lint-chart.sh
echo "== pytest"
if [[ $# -gt 0 ]]; then
  exec pytest "$@"
fi
# The whole suite: the real-cluster tests (marker `cluster`: pods starting, probes, the API
# server's pace; mostly waiting) run in a second pytest session alongside the others, each with
# its own temporary directory, so the command stays well inside CI's 20 minutes on 2 cores.
# Their log is printed when both have finished; the command fails if either session does.
work=$(mktemp -d)
pytest -m cluster --basetemp="$work/cluster" >"$work/cluster.log" 2>&1 &
cluster_pid=$!
set +e
pytest -m "not cluster" --basetemp="$work/rest"
rest_status=$?
wait "$cluster_pid"
cluster_status=$?
set -e
echo "== pytest -m cluster (ran alongside; exit status $cluster_status)"
cat "$work/cluster.log"
rm -rf "$work"
if [[ $rest_status -ne 0 || $cluster_status -ne 0 ]]; then
  echo "pytest failed: not cluster -> $rest_status, cluster -> $cluster_status" >&2
  exit 1
fi
