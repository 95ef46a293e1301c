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
pytest "$@"
