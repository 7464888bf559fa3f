"""`reputation-monitor tenants list|show|pause|resume`: a client of the daemon's admin API.

A client, not the daemon: it reads its token from `--token` or `REPMON_ADMIN_TOKEN` here, not
through the daemon's settings. Synchronous urllib keeps it quick to start. Exit codes: 0 done,
1 the API refused or could not be reached (its `error` message on stderr), 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from monitor.core.policy import format_duration

DEFAULT_URL = "http://127.0.0.1:9464"
TOKEN_ENV = "REPMON_ADMIN_TOKEN"  # noqa: S105 (a variable name, not a secret)
STATUSES = ("healthy", "warning", "paused", "probation")
CHANNELS = ("email", "sms")


class ApiError(Exception):
    pass


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    # The common options sit on each subcommand, so they go where users type them:
    # `tenants list --json`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--url", default=DEFAULT_URL, help=f"daemon (default {DEFAULT_URL})")
    common.add_argument("--token", default=None, help=f"admin token (default: ${TOKEN_ENV})")
    common.add_argument("--json", action="store_true", help="print the API's JSON")
    common.add_argument("--timeout", type=float, default=10.0, help="seconds (default 10)")

    tenants = sub.add_parser("tenants", help="list, show, pause and resume tenants (admin API)")
    cmds = tenants.add_subparsers(dest="tenants_command", required=True, metavar="SUBCOMMAND")
    ls = cmds.add_parser("list", parents=[common], help="every tenant seen, with its rates")
    ls.add_argument("--status", choices=STATUSES, help="only tenants in this status")
    show = cmds.add_parser("show", parents=[common], help="one tenant and its recent decisions")
    show.add_argument("tenant")
    for verb in ("pause", "resume"):
        p = cmds.add_parser(verb, parents=[common], help=f"{verb} a tenant by hand")
        p.add_argument("tenant")
        p.add_argument("--reason", required=True, help="recorded in the audit log")
        p.add_argument("--channel", choices=CHANNELS, help="one channel (default: all)")
    tenants.set_defaults(func=run)


def main(argv: Sequence[str], *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """`reputation-monitor tenants ARGV...`, with output to `out` and `err` (tests)."""
    parser = argparse.ArgumentParser(prog="reputation-monitor")
    add_parser(parser.add_subparsers(dest="command", required=True))
    try:
        args = parser.parse_args(["tenants", *argv])
    except SystemExit as e:  # usage errors (2) and --help (0)
        return e.code if isinstance(e.code, int) else 2
    return run(args, out=out, err=err)


def run(args: argparse.Namespace, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    out = out or sys.stdout
    err = err or sys.stderr
    if urllib.parse.urlsplit(args.url).scheme not in ("http", "https"):
        print(f"reputation-monitor: --url must be http(s)://HOST:PORT, not {args.url!r}", file=err)
        return 2
    token = args.token or os.environ.get(TOKEN_ENV) or None
    cmd = args.tenants_command
    try:
        if cmd == "list":
            query = f"?status={args.status}" if args.status else ""
            data = _call(args, "GET", f"/api/v1/tenants{query}", token)
            text = _list_table(data)
        elif cmd == "show":
            data = _call(args, "GET", _tenant_path(args.tenant), token)
            text = _show(data)
        else:
            body: dict[str, Any] = {"reason": args.reason}
            if args.channel:
                body["channel"] = args.channel
            data = _call(args, "POST", f"{_tenant_path(args.tenant)}/{cmd}", token, body)
            text = _mutated(cmd, data)
    except ApiError as e:
        print(f"reputation-monitor: {e}", file=err)
        return 1
    print(json.dumps(data, indent=2, sort_keys=True) if args.json else text, file=out)
    return 0


def _tenant_path(tenant: str) -> str:
    return "/api/v1/tenants/" + urllib.parse.quote(tenant, safe="")


def _call(
    args: argparse.Namespace,
    method: str,
    path: str,
    token: str | None,
    body: dict[str, Any] | None = None,
) -> Any:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    url = args.url.rstrip("/") + path
    # S310: run() has checked that the scheme is http(s).
    req = urllib.request.Request(url, data=data, headers=headers, method=method)  # noqa: S310
    try:
        with urllib.request.urlopen(req, timeout=args.timeout) as resp:  # noqa: S310
            return json.load(resp)
    except urllib.error.HTTPError as e:
        raise ApiError(f"{_error_message(e)} (HTTP {e.code})") from None
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ApiError(f"cannot reach {args.url}: {reason}") from None
    except ValueError as e:
        raise ApiError(f"{args.url} did not answer JSON: {e}") from None


def _error_message(e: urllib.error.HTTPError) -> str:
    try:
        payload = json.loads(e.read())
    except (ValueError, OSError):
        return str(e.reason)
    message = payload.get("error") if isinstance(payload, dict) else None
    return message if isinstance(message, str) else str(e.reason)


# --- output ---


def _pct(value: Any) -> str:
    return f"{value:.2%}" if isinstance(value, int | float) else "-"


def _when(t: Any) -> str:
    if not isinstance(t, int | float) or t <= 0:
        return "-"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in (header, *rows)]
    return "\n".join(line.rstrip() for line in lines)


LIST_HEADER = (
    "TENANT",
    "POLICY",
    "STATUS",
    "PAUSED",
    "BOUNCE",
    "COMPLAINT",
    "SMS FAIL",
    "OPT-OUT",
    "EMAIL SENT",
    "SMS SENT",
)


def _list_table(tenants: list[dict[str, Any]]) -> str:
    if not tenants:
        return "no tenants"
    rows = []
    for t in tenants:
        rates, volume = t.get("rates", {}), t.get("volume", {})
        rows.append(
            (
                str(t["tenant"]),
                str(t.get("policy", "-")),
                str(t.get("status", "-")),
                ",".join(t.get("paused_channels") or []) or "-",
                _pct(rates.get("email.bounce")),
                _pct(rates.get("email.complaint")),
                _pct(rates.get("sms.failure")),
                _pct(rates.get("sms.opt_out")),
                str(volume.get("email", 0)),
                str(volume.get("sms", 0)),
            )
        )
    return _table(LIST_HEADER, rows)


def _show(t: dict[str, Any]) -> str:
    window = t.get("window")
    fields = [
        ("tenant", str(t["tenant"])),
        ("policy", str(t.get("policy", "-"))),
        ("status", str(t.get("status", "-"))),
        ("paused", ", ".join(t.get("paused_channels") or []) or "-"),
        ("window", format_duration(window) if isinstance(window, int | float) else "-"),
        ("rates", "  ".join(f"{k} {_pct(v)}" for k, v in sorted(t.get("rates", {}).items()))),
        ("volume", "  ".join(f"{k} {v}" for k, v in sorted(t.get("volume", {}).items()))),
        ("updated", _when(t.get("updated_at"))),
    ]
    eta = t.get("pause_eta_seconds") or {}
    if eta:  # a warning tenant heading for its pause threshold
        fields.append(
            (
                "pause in",
                "  ".join(f"{k} ~{format_duration(round(v))}" for k, v in sorted(eta.items())),
            )
        )
    for outcome, top in sorted((t.get("top_domains") or {}).items()):
        if top:  # where the bounces or complaints go, by recipient domain
            shares = "  ".join(f"{d['domain']} {_pct(d['share'])}" for d in top)
            fields.append((f"{outcome.split('_')[0]}s to", shares))
    width = max(len(k) for k, _ in fields)
    lines = [f"{k.ljust(width)}  {v or '-'}" for k, v in fields]
    decisions = t.get("decisions") or []
    lines.append("")
    if not decisions:
        lines.append("no decisions")
        return "\n".join(lines)
    rows = [
        (
            _when(d.get("time")),
            str(d.get("decision", "-")),
            str(d.get("channel", "-")),
            str(d.get("actor", "-")),
            str(d.get("reason", "")),
            _actions(d.get("actions")),
        )
        for d in decisions
    ]
    lines.append(_table(("TIME", "DECISION", "CHANNEL", "ACTOR", "REASON", "ACTIONS"), rows))
    return "\n".join(lines)


def _actions(actions: Any) -> str:
    """`ses_tenant=ok`; `pending` while the actuator has not reported yet."""
    if not actions:
        return "-"
    parts = []
    for a in actions:
        if isinstance(a, dict):
            parts.append(f"{a.get('action')}={a.get('result', 'pending')}")
        else:  # a name still in the outbox
            parts.append(f"{a}=pending")
    return ", ".join(parts)


def _mutated(verb: str, t: dict[str, Any]) -> str:
    decisions = t.get("decisions") or []
    status = f"status {t.get('status', '-')}"
    if not decisions:
        return f"{t['tenant']}: nothing to {verb} ({status})"
    channels = ", ".join(str(d.get("channel")) for d in decisions)
    past = "paused" if verb == "pause" else "resumed"
    return (
        f"{t['tenant']}: {past} {channels} ({status}); actions run in the background, "
        f"see `reputation-monitor tenants show {t['tenant']}`"
    )
