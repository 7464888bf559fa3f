"""Checks on the Helm chart's rendered manifests beyond the Kubernetes schemas (chart-test.sh).

    chart_check.py case VALUES RENDERED OUTDIR   what one values file must produce; writes the
                                                 rules ConfigMap's files to OUTDIR/rules/ and the
                                                 PrometheusRule's groups to OUTDIR/rules.yml
    chart_check.py env README RENDERED...        every REPMON_* setting of the README is set by
                                                 the chart in at least one rendering

Prints one `ok:` line per check; exits 1 with `FAIL:` lines otherwise. Needs PyYAML and
jsonschema (both come with kubernetes-validate).
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path
from typing import Any

import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[1]
ALERTS = ROOT / "dashboards" / "alerts.yaml"
STATE_DIR = "/var/lib/reputation-monitor"
TMP_DIR = "/tmp"  # noqa: S108 (the pod's /tmp mount path, not a file of ours)
GRACE_EXTRA_S = 10

# The fields of monitoring.coreos.com/v1 ServiceMonitor that the chart uses (offline: no CRD
# schema is at hand); an unknown or misspelt field fails.
SERVICE_MONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {"type": "object", "required": ["name"]},
        "spec": {
            "type": "object",
            "additionalProperties": False,
            "required": ["selector", "endpoints"],
            "properties": {
                "selector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {"matchLabels": {"type": "object"}},
                },
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                        "any": {"type": "boolean"},
                    },
                },
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "path": {"type": "string"},
                            "interval": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "scrapeTimeout": {"type": "string", "pattern": "^[0-9]+(ms|s|m|h)$"},
                            "relabelings": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {
                                        "action": {"enum": ["replace", "keep", "drop", "labelmap"]},
                                        "sourceLabels": {"type": "array"},
                                        "targetLabel": {"type": "string"},
                                        "replacement": {"type": "string"},
                                        "regex": {"type": "string"},
                                    },
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}

failures: list[str] = []


def check(cond: object, what: str) -> None:
    if cond:
        print(f"ok: {what}")
    else:
        print(f"FAIL: {what}", file=sys.stderr)
        failures.append(what)


def load_all(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    found = [d for d in docs if d["kind"] == kind]
    return found[0] if found else None


def dig(d: dict[str, Any], *keys: str) -> Any:
    cur: Any = d
    for k in keys:
        cur = cur.get(k, {}) if isinstance(cur, dict) else {}
    return cur


def merged_values(values_file: Path) -> dict[str, Any]:
    base = yaml.safe_load((ROOT / "helm" / "reputation-monitor" / "values.yaml").read_text())
    over = yaml.safe_load(values_file.read_text()) or {}

    def merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
        out = dict(a)
        for k, v in b.items():
            out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
        return out

    return merge(base, over)


def case(values_file: Path, rendered: Path, out: Path) -> None:
    values = merged_values(values_file)
    docs = load_all(rendered)
    kinds = sorted(d["kind"] for d in docs)
    print(f"-- {values_file.name}: {', '.join(kinds)}")
    deploy = one(docs, "Deployment")
    if deploy is None:
        check(False, "a Deployment is rendered")
        return
    pod = deploy["spec"]["template"]
    spec = pod["spec"]
    [container] = spec["containers"]
    env = {e["name"]: e for e in container.get("env", [])}
    env_value = {k: e.get("value") for k, e in env.items()}
    psc, csc = spec.get("securityContext", {}), container.get("securityContext", {})

    check(deploy["spec"]["replicas"] == values["replicaCount"], "replicas from values")
    check(
        psc.get("runAsNonRoot") is True and csc.get("runAsNonRoot") is True,
        "runAsNonRoot (pod and container)",
    )
    check(psc.get("runAsUser") == 10001 and psc.get("fsGroup") == 10001, "uid and fsGroup 10001")
    check(csc.get("readOnlyRootFilesystem") is True, "readOnlyRootFilesystem")
    check(csc.get("allowPrivilegeEscalation") is False, "allowPrivilegeEscalation false")
    check(dig(csc, "capabilities", "drop") == ["ALL"], "capabilities drop ALL")
    check(
        dig(psc, "seccompProfile", "type") == "RuntimeDefault"
        and dig(csc, "seccompProfile", "type") == "RuntimeDefault",
        "seccomp RuntimeDefault",
    )
    check(spec.get("automountServiceAccountToken") is False, "no Kubernetes API token mounted")
    check(dig(container, "livenessProbe", "httpGet", "path") == "/healthz", "liveness /healthz")
    check(dig(container, "readinessProbe", "httpGet", "path") == "/readyz", "readiness /readyz")
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    check(
        ports.get("http") == values["config"]["httpPort"] == int(env_value["REPMON_HTTP_PORT"]),
        "container port http = REPMON_HTTP_PORT",
    )
    timeout = float(env_value["REPMON_SHUTDOWN_TIMEOUT"])
    grace = spec["terminationGracePeriodSeconds"]
    check(
        grace == math.ceil(values["config"]["shutdownTimeout"]) + GRACE_EXTRA_S and grace > timeout,
        f"terminationGracePeriodSeconds {grace} > REPMON_SHUTDOWN_TIMEOUT {timeout:g} (+10 s)",
    )
    check(
        env_value.get("REPMON_HTTP_HOST") == "0.0.0.0",
        "REPMON_HTTP_HOST=0.0.0.0 (probes reach the pod)",
    )
    check(
        env_value["REPMON_QUEUE_URLS"] == ",".join(values["config"]["queueUrls"]),
        "REPMON_QUEUE_URLS from config.queueUrls",
    )

    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in spec["volumes"]}
    check("emptyDir" in volumes[mounts[TMP_DIR]], f"{TMP_DIR} is an emptyDir")
    state = volumes[mounts[STATE_DIR]]
    persistence = values["persistence"]
    if persistence["enabled"]:
        claim = persistence["existingClaim"] or f"{deploy['metadata']['name']}-state"
        check(
            dig(state, "persistentVolumeClaim", "claimName") == claim,
            f"state volume is the PVC {claim}",
        )
        pvc = one(docs, "PersistentVolumeClaim")
        check(
            (pvc is None) == bool(persistence["existingClaim"]),
            "a PVC is rendered unless existingClaim is given",
        )
    else:
        check("emptyDir" in state, "state volume is an emptyDir")
    state_url = env_value["REPMON_STATE_URL"]
    if state_url.startswith("sqlite:"):
        check(
            state_url.startswith(f"sqlite:///{STATE_DIR}/"), "SQLite state file on the state volume"
        )
        check(
            deploy["spec"]["strategy"]["type"] == "Recreate",
            "SQLite: Recreate strategy (one owner)",
        )
    else:
        check(deploy["spec"]["strategy"]["type"] == "RollingUpdate", "shared state: RollingUpdate")
    rules_dir = env_value["REPMON_RULES_DIR"]
    rules_volume = volumes[mounts[rules_dir]]
    cm_name = dig(rules_volume, "configMap", "name")
    cm = next(
        (d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == cm_name), None
    )
    check(cm is not None, f"rules ConfigMap {cm_name} mounted at REPMON_RULES_DIR {rules_dir}")
    if cm is not None:
        rules_out = out / "rules"
        rules_out.mkdir(parents=True, exist_ok=True)
        for name, text in cm["data"].items():
            (rules_out / name).write_text(text + "\n")
        want = {"presets.yaml"} if values["rules"]["presets"] else set()
        want |= set(values["rules"]["files"])
        check(set(cm["data"]) == want, f"rules files: {', '.join(sorted(cm['data']))}")
        if values["rules"]["presets"]:
            shipped = (ROOT / "rules" / "presets.yaml").read_text()
            check(
                cm["data"]["presets.yaml"] + "\n" == shipped, "presets.yaml is rules/presets.yaml"
            )

    labels = pod["metadata"]["labels"]
    service = one(docs, "Service")
    check(
        service is not None
        and all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
        and service["spec"]["ports"][0]["targetPort"] == "http",
        "Service selects the pods, port http",
    )

    sa_name = spec["serviceAccountName"]
    sa = one(docs, "ServiceAccount")
    if values["serviceAccount"]["create"]:
        check(sa is not None and sa["metadata"]["name"] == sa_name, f"ServiceAccount {sa_name}")
        role = values["serviceAccount"]["roleArn"]
        if sa is not None and role:
            check(
                dig(sa, "metadata", "annotations").get("eks.amazonaws.com/role-arn") == role,
                "IRSA annotation eks.amazonaws.com/role-arn",
            )
    else:
        check(
            sa is None and sa_name == values["serviceAccount"]["name"],
            f"existing ServiceAccount {sa_name}",
        )

    secrets = values["secrets"]
    token_ref = dig(env.get("REPMON_ADMIN_TOKEN", {}), "valueFrom", "secretKeyRef")
    if secrets["existingSecret"]:
        check(
            token_ref.get("name") == secrets["existingSecret"] and one(docs, "Secret") is None,
            "admin token from the existing Secret",
        )
    elif secrets["adminToken"]:
        secret = one(docs, "Secret")
        check(
            secret is not None
            and token_ref.get("name") == secret["metadata"]["name"]
            and token_ref.get("key") in secret["data"],
            "admin token from the chart's Secret",
        )
    else:
        check(
            "REPMON_ADMIN_TOKEN" not in env and one(docs, "Secret") is None,
            "no admin token: admin mutations disabled",
        )
    plain = {k for k, e in env.items() if "value" in e}
    check(not {k for k in plain if "TOKEN" in k or "SECRET" in k}, "no secret in plain env values")

    pdb = one(docs, "PodDisruptionBudget")
    if values["podDisruptionBudget"]["enabled"]:
        check(
            pdb is not None
            and all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()),
            "PodDisruptionBudget selects the pods",
        )
    else:
        check(pdb is None, "no PodDisruptionBudget")

    sm = one(docs, "ServiceMonitor")
    if values["serviceMonitor"]["enabled"]:
        try:
            assert sm is not None
            jsonschema.validate(sm, SERVICE_MONITOR_SCHEMA)
            valid = True
        except (AssertionError, jsonschema.ValidationError) as e:
            print(f"  {e}", file=sys.stderr)
            valid = False
        check(valid, "ServiceMonitor valid (the fields the chart uses)")
        if sm is not None:
            relabel = sm["spec"]["endpoints"][0].get("relabelings", [])
            check(
                {"action": "replace", "targetLabel": "job", "replacement": "reputation-monitor"}
                in relabel,
                'ServiceMonitor sets job="reputation-monitor" (the alerts select it)',
            )
    else:
        check(sm is None, "no ServiceMonitor")

    rule = one(docs, "PrometheusRule")
    if values["prometheusRule"]["enabled"]:
        check(rule is not None, "PrometheusRule rendered")
        if rule is not None:
            groups = rule["spec"]["groups"]
            (out / "rules.yml").write_text(yaml.safe_dump({"groups": groups}, sort_keys=False))
            source = yaml.safe_load(ALERTS.read_text())["groups"]
            base = values["prometheusRule"]["runbookBaseUrl"].rstrip("/")
            if base:
                for g in source:
                    for r in g["rules"]:
                        a = r["annotations"]
                        a["runbook_url"] = a["runbook_url"].replace("docs/runbook.md", base, 1)
            check(groups == source, "PrometheusRule groups are dashboards/alerts.yaml's")
    else:
        check(rule is None, "no PrometheusRule")


def env_coverage(readme: Path, rendered: list[Path]) -> None:
    table = readme.read_text().split("### Settings", 1)[1].split("\n## ", 1)[0]
    names: set[str] = set()
    for line in table.splitlines():
        m = re.match(r"\| (`[A-Z_]+`(?: / `[A-Z_]+`)*) \|", line)
        if m:
            names |= {f"REPMON_{n}" for n in re.findall(r"`([A-Z_]+)`", m.group(1))}
    seen: set[str] = set()
    for path in rendered:
        for d in load_all(path):
            if d["kind"] == "Deployment":
                for c in d["spec"]["template"]["spec"]["containers"]:
                    seen |= {e["name"] for e in c.get("env", [])}
    missing = sorted(names - seen)
    check(
        len(names) >= 15 and not missing,
        f"every README setting ({len(names)}) is set by the chart"
        + (f"; missing {missing}" if missing else ""),
    )


def main(argv: list[str]) -> int:
    if len(argv) == 5 and argv[1] == "case":
        case(Path(argv[2]), Path(argv[3]), Path(argv[4]))
    elif len(argv) >= 4 and argv[1] == "env":
        env_coverage(Path(argv[2]), [Path(p) for p in argv[3:]])
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
