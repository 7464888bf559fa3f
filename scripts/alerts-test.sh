#!/usr/bin/env bash
# Checks the Prometheus alert rules: syntax and templates (promtool check rules), their unit tests
# (promtool test rules dashboards/alerts-test.yaml), and that the Helm chart's copy is identical.
# promtool comes from Debian's `prometheus` package, installed here when missing (needs root
# then; with promtool on PATH it needs nothing). Not part of the default pytest run.
#   bash scripts/alerts-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v promtool >/dev/null; then
  [ "$(id -u)" = 0 ] || { echo "FAIL: promtool missing; run as root to apt-get install prometheus" >&2; exit 1; }
  echo "== installing promtool (Debian package prometheus)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  # The package's service is not wanted here; the binary is.
  if command -v systemctl >/dev/null && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus || true
  fi
fi
echo "== $(promtool --version 2>&1 | head -n1)"

echo "== promtool check rules dashboards/alerts.yaml"
promtool check rules dashboards/alerts.yaml

echo "== promtool test rules dashboards/alerts-test.yaml"
promtool test rules dashboards/alerts-test.yaml

echo "== the dashboard's PromQL parses (promtool check rules on it as recording rules)"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Grafana's variables are replaced by what Grafana would put there; JSON is YAML to promtool.
python3 - dashboards/reputation-monitor.json >"$work/dashboard-rules.yml" <<'PY'
import json, sys
board = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in board["panels"] for t in p.get("targets", [])]
subst = {"$__rate_interval": "2m", "$__interval": "1m", "$__range": "6h", "$tenant": ".*"}
rules = []
for i, e in enumerate(exprs):
    for k, v in subst.items():
        e = e.replace(k, v)
    rules.append({"record": f"dashboard:expr_{i}", "expr": e})
json.dump({"groups": [{"name": "dashboard", "rules": rules}]}, sys.stdout, indent=1)
PY
promtool check rules "$work/dashboard-rules.yml" | sed 's#'"$work"'/##'

echo "== the chart renders the same file"
cmp dashboards/alerts.yaml helm/reputation-monitor/files/alerts.yaml
echo "ok: helm/reputation-monitor/files/alerts.yaml is identical to dashboards/alerts.yaml"

alerts=$(grep -c '^ *- alert:' dashboards/alerts.yaml)
while read -r name; do
  anchor=$(printf '%s' "$name" | tr '[:upper:]' '[:lower:]')
  grep -q "^## $name\$" docs/runbook.md || { echo "FAIL: docs/runbook.md has no section '## $name'" >&2; exit 1; }
  grep -q "runbook_url: docs/runbook.md#$anchor\$" dashboards/alerts.yaml ||
    { echo "FAIL: $name has no runbook_url docs/runbook.md#$anchor" >&2; exit 1; }
done < <(sed -n 's/^ *- alert: *//p' dashboards/alerts.yaml)
echo "ok: every alert ($alerts) has a runbook section and a runbook_url pointing at it"
echo "== alerts-test: all checks passed"
