"""Shared by the benches: realistic SES traffic as SQS bodies, rules, and the result line.

Not a test module (no `test_` prefix, and `bench/` is outside pytest's testpaths).
"""

from __future__ import annotations

import bisect
import itertools
import json
import os
import platform
import random
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Runnable from a fresh clone without installing: put the repository root on sys.path.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from monitor.core.rules import Rules  # noqa: E402
from monitor.core.rulesparse import parse_rules  # noqa: E402
from monitor.rulesfile import embedded_presets_text, write_rules_dir  # noqa: E402
from monitor.sandbox.traffic import TenantProfile, Traffic, sns  # noqa: E402

# Tenants whose name starts with t09 are on the strict policy: a glob, as operators write them.
BENCH_RULES = """\
tenants:
  "t09*": {policy: strict}
"""


def rules() -> Rules:
    return parse_rules([("presets.yaml", embedded_presets_text()), ("bench.yaml", BENCH_RULES)])


def rules_dir(path: Path) -> Path:
    """The same rules as files, for a daemon or `replay` process."""
    return write_rules_dir(path, {"bench.yaml": BENCH_RULES})


def tenant_name(i: int) -> str:
    return f"t{i:04d}"


def profiles(n: int, *, seed: int = 7) -> list[TenantProfile]:
    """`n` tenants with a skewed share of the traffic (Zipf-like, as real providers see) and
    1 in 20 of them bouncing and complaining enough to warn or pause."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        bad = i % 20 == 7
        out.append(
            TenantProfile(
                name=tenant_name(i),
                bounce=rng.uniform(0.03, 0.08) if bad else rng.uniform(0.002, 0.01),
                complaint=rng.uniform(0.0005, 0.002) if bad else rng.uniform(0.00005, 0.0002),
                transient=rng.uniform(0.002, 0.01),
                weight=1.0 / (i + 1) ** 0.6,
            )
        )
    return out


class Records:
    """SES event-publishing records (Send, Delivery per recipient, some Bounce and Complaint)
    for a set of tenants, with event times from `start` rising by `step_s` per mail."""

    def __init__(self, tenants: list[TenantProfile], *, seed: int = 7) -> None:
        self.tenants = tenants
        self.traffic = Traffic(tenants, seed=seed)
        self.cum = list(itertools.accumulate(t.weight for t in tenants))
        self.rng = random.Random(seed + 1)

    def pick(self) -> TenantProfile:
        x = self.rng.random() * self.cum[-1]
        return self.tenants[bisect.bisect_right(self.cum, x)]

    def iter(self, start: float, step_s: float) -> Iterator[dict[str, Any]]:
        t = start
        while True:
            mail = self.traffic.mail(t, self.pick())
            yield from self.traffic.records(mail, t)
            t += step_s


def sns_bodies(n: int, tenants: int, *, start: float, span_s: float, seed: int = 7) -> list[bytes]:
    """`n` SNS-wrapped SES records as UTF-8 bytes, spread over `span_s` from `start`."""
    recs = Records(profiles(tenants, seed=seed), seed=seed)
    step = span_s / max(1, n) * 1.6  # ~1.6 records per mail
    return [sns(r).encode() for r in itertools.islice(recs.iter(start, step), n)]


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
    }


def emit(result: dict[str, Any]) -> None:
    """The bench's result: one JSON object, the last line of its output."""
    print(json.dumps(result, separators=(", ", ": ")), flush=True)


def stamp() -> float:
    return time.perf_counter()
