"""The `reputation-monitor` command line (contract: "Commands")."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

from monitor import __version__, logs
from monitor import replay as replay_cli
from monitor.cli import tenants as tenants_cli
from monitor.core.rules import Rules, RulesError
from monitor.rulesfile import load_rules_dir
from monitor.settings import Settings, SettingsError, fail, load_settings


def _add_setting_flags(p: argparse.ArgumentParser) -> None:
    """One `--flag` per setting (REPMON_X ↔ --x); flags win over the environment."""
    for name, field in Settings.model_fields.items():
        flag = "--" + name.replace("_", "-")
        help_ = f"REPMON_{name.upper()} (default: {field.default!r})"
        if field.annotation is bool:
            p.add_argument(
                flag, dest=name, action=argparse.BooleanOptionalAction, default=None, help=help_
            )
        else:
            p.add_argument(flag, dest=name, default=None, metavar=name.upper(), help=help_)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {k: getattr(args, k, None) for k in Settings.model_fields}
    try:
        return load_settings(**overrides)
    except SettingsError as e:
        fail(str(e))
        raise  # unreachable: fail() exits


def _rules(path: str) -> Rules:
    try:
        return load_rules_dir(path)
    except RulesError as e:
        print(str(e), file=sys.stderr)
        raise SystemExit(1) from None


def cmd_run(args: argparse.Namespace) -> int:
    from monitor.app import ConfigError, Daemon

    settings = _settings(args)
    logs.configure(settings.log_level, settings.log_format)
    rules = _rules(settings.rules_dir)

    async def main() -> int:
        return await Daemon(settings, rules).run()

    try:
        return asyncio.run(main())
    except ConfigError as e:
        fail(str(e))
        return 2


def cmd_rules_check(args: argparse.Namespace) -> int:
    try:
        rules = load_rules_dir(args.dir)
    except RulesError as e:
        print(str(e))
        return 1
    print(
        f"{args.dir}: ok: {len(rules.policies)} policies ({', '.join(sorted(rules.policies))}), "
        f"{len(rules.tenants)} tenant entries, default policy {rules.default_policy}"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from monitor.demo import run_demo

    if args.seconds <= 0 or args.tenants < 2:
        fail("demo needs --seconds > 0 and --tenants ≥ 2")
    return run_demo(seconds=args.seconds, tenants=args.tenants, http_port=args.http_port)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="reputation-monitor",
        description="Per-tenant sending-reputation guard for Amazon SES and End User Messaging.",
    )
    p.add_argument("--version", action="version", version=f"reputation-monitor {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="run the daemon")
    _add_setting_flags(run)
    run.set_defaults(func=cmd_run)

    demo = sub.add_parser(
        "demo", help="fully local demo: moto SQS + SES stand-in, one tenant goes bad"
    )
    demo.add_argument("--seconds", type=float, default=90.0, help="longest run (default 90)")
    demo.add_argument("--tenants", type=int, default=20, help="tenants (default 20)")
    demo.add_argument(
        "--http-port",
        type=int,
        default=9464,
        help="where /metrics is served (default 9464; 0: any)",
    )
    demo.set_defaults(func=cmd_demo)

    rules = sub.add_parser("rules", help="rules tools")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    check = rules_sub.add_parser("check", help="validate a rules directory")
    check.add_argument("dir", nargs="?", default="rules", type=str)
    check.set_defaults(func=cmd_rules_check)

    tenants_cli.add_parser(sub)
    replay_cli.add_parser(sub)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
