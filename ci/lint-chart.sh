#!/usr/bin/env bash
# `ct lint` reproduced offline for charts/teraslice, then schema validation of what it renders.
#
#   1. version bump against the merge base with $CT_TARGET (default origin/main), when the chart
#      changed and git history allows it (ct's check-version-increment)
#   2. yamale: Chart.yaml against ci/chart_schema.yaml
#   3. yamllint (ci/lintconf.yaml): Chart.yaml, values.yaml and every values-examples/*.yaml
#   4. maintainers present in Chart.yaml
#   5. helm lint --strict with the defaults and with each values example
#   6. helm template with each of them, piped to kubernetes-validate --strict for every Kubernetes
#      version it ships from 1.25 on; a WARN (unknown kind) fails unless the kind is a
#      monitoring.coreos.com CRD, which is only rendered when that API exists.
#
# Uses .tools/bin/helm and .venv/bin/* (ci/install-tools.sh); any missing tool is a failure.
# Environment: CHART (chart directory), CT_TARGET (git ref for the version check), KUBE_VERSIONS
# (space-separated Kubernetes versions instead of all shipped ones >= 1.25).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
export PATH="$ROOT/.tools/bin:$ROOT/.venv/bin:$PATH"

CHART=${CHART:-charts/teraslice}
TARGET=${CT_TARGET:-origin/main}
RELEASE=ts-lint
NAMESPACE=ts-lint
LINTCONF=ci/lintconf.yaml
SCHEMA=ci/chart_schema.yaml

fail() { echo "lint-chart: FAILED: $*" >&2; exit 1; }
for tool in helm yamale yamllint kubernetes-validate python git; do
  command -v "$tool" >/dev/null 2>&1 || fail "'$tool' is not installed (run: bash ci/install-tools.sh)"
done
[[ -f $CHART/Chart.yaml ]] || fail "$CHART/Chart.yaml not found"

chart_field() { # $1=field, stdin=Chart.yaml
  python -c 'import sys, yaml; print(yaml.safe_load(sys.stdin).get(sys.argv[1]) or "")' "$1"
}

shopt -s nullglob
examples=(values-examples/*.yaml)
((${#examples[@]})) || fail "no values-examples/*.yaml"

echo "== version bump (against $TARGET)"
if ! git rev-parse --verify --quiet "$TARGET^{commit}" >/dev/null; then
  echo "skipped: $TARGET does not exist in this clone (ct compares with it in CI)"
elif ! base=$(git merge-base "$TARGET" HEAD 2>/dev/null); then
  echo "skipped: no merge base between $TARGET and HEAD (shallow clone?)"
elif ! git cat-file -e "$base:$CHART/Chart.yaml" 2>/dev/null; then
  echo "new chart since $base: no previous version to compare"
elif git diff --quiet "$base" -- "$CHART"; then
  echo "chart unchanged since $base"
else
  old=$(git show "$base:$CHART/Chart.yaml" | chart_field version)
  new=$(chart_field version <"$CHART/Chart.yaml")
  python - "$old" "$new" <<'PY' || fail "chart version not ok. Needs a version bump! ($CHART changed since the merge base)"
import sys
from packaging.version import Version
old, new = sys.argv[1:]
print(f"version {old} -> {new}")
sys.exit(0 if Version(new) > Version(old) else 1)
PY
fi

echo "== yamale ($SCHEMA)"
yamale --schema "$SCHEMA" "$CHART/Chart.yaml" || fail "Chart.yaml does not match $SCHEMA"

echo "== yamllint ($LINTCONF)"
yamllint --strict --config-file "$LINTCONF" "$CHART/Chart.yaml" "$CHART/values.yaml" "${examples[@]}" \
  || fail "yamllint"

echo "== maintainers"
python - "$CHART/Chart.yaml" <<'PY' || fail "chart doesn't have maintainers"
import sys, yaml
maintainers = yaml.safe_load(open(sys.argv[1])).get("maintainers") or []
if not maintainers or not all(isinstance(m, dict) and m.get("name") for m in maintainers):
    sys.exit(1)
print(", ".join(m["name"] for m in maintainers))
PY

echo "== helm lint --strict"
helm lint --strict "$CHART" --namespace "$NAMESPACE" || fail "helm lint (default values)"
for values in "${examples[@]}"; do
  helm lint --strict "$CHART" --namespace "$NAMESPACE" --values "$values" || fail "helm lint --values $values"
done

echo "== helm template | kubernetes-validate --strict"
if [[ -n ${KUBE_VERSIONS:-} ]]; then
  read -r -a versions <<<"$KUBE_VERSIONS"
else
  mapfile -t versions < <(python - <<'PY'
from kubernetes_validate.utils import all_versions
found = sorted({v for v in all_versions()}, key=lambda v: tuple(int(p) for p in v.split(".")))
print("\n".join(v for v in found if tuple(int(p) for p in v.split("."))[:2] >= (1, 25)))
PY
  )
fi
((${#versions[@]})) || fail "kubernetes-validate ships no schema for 1.25 or later"
workdir=$(mktemp -d)
trap 'rm -rf "$workdir"' EXIT
rendered=()
for values in "" "${examples[@]}"; do
  name=$(basename "${values:-default.yaml}" .yaml)
  out=$workdir/$name.yaml
  args=(template "$RELEASE" "$CHART" --namespace "$NAMESPACE" --api-versions monitoring.coreos.com/v1)
  [[ -n $values ]] && args+=(--values "$values")
  helm "${args[@]}" >"$out" || fail "helm template ${values:-(defaults)}"
  rendered+=("$out")
done
for version in "${versions[@]}"; do
  log=$workdir/validate-$version.log
  if ! kubernetes-validate --strict --quiet -k "$version" "${rendered[@]}" >"$log" 2>&1; then
    cat "$log" >&2
    fail "kubernetes-validate --strict -k $version"
  fi
  if grep '^WARN' "$log" | grep -v 'with api version monitoring\.coreos\.com/' >&2; then
    fail "kubernetes-validate -k $version has no schema for the kinds above"
  fi
  echo "Kubernetes $version: ${#rendered[@]} renders valid"
done
echo "lint-chart: OK"
