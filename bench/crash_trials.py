"""Crash trials: the daemon SIGKILLed at random moments and restarted, N times over.

    python bench/crash_trials.py --trials 20

Each trial (tests/fault/crash.py) runs `python -m monitor run` against moto SQS and the SES
stand-in on 127.0.0.1, kills it with SIGKILL after seeded random delays until a known event set
(with duplicates, some through another envelope) is consumed, lets a last run finish, and
checks that every tenant's counts are exact, the queue is empty and each crossing tenant was
paused exactly once. Prints one JSON line:

    {"trials": 20, "passed": N, "kills": K, "seconds": S, ...}

`passed` counts trials exact in every respect, including one SES pause call per crossing;
`resent_pause_seeds` lists trials exact but for the known outbox defect (a pause SES had
applied when the daemon was killed, made again at the next start), `failed_seeds` the rest.
A line per trial goes to stderr; exits 1 unless every trial passed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "fault"))

from crash import TrialResult, run_trial

from monitor.sandbox import Sandbox


async def trials(n: int, first_seed: int, workdir: Path) -> list[TrialResult]:
    out: list[TrialResult] = []
    with Sandbox() as sandbox:
        for i in range(n):
            seed = first_seed + i
            r = await run_trial(sandbox, workdir / f"trial-{seed}", seed=seed)
            out.append(r)
            status = "ok" if r.exact else "ok but a pause re-sent" if r.passed else "FAILED"
            print(
                f"trial {i + 1}/{n} seed {seed}: {status}, {r.kills} kills "
                f"({r.kills_serving} while serving), "
                f"{r.messages} messages, {r.seconds}s",
                file=sys.stderr,
            )
            for f in r.failures + [f"{t}: {n} pause call(s) re-sent" for t, n in r.resent.items()]:
                print(f"  {f}", file=sys.stderr)
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seed", type=int, default=1000, help="seed of the first trial")
    p.add_argument("--keep", type=Path, default=None, help="keep logs and state under this dir")
    args = p.parse_args()
    t0 = time.monotonic()
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(trials(args.trials, args.seed, args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="repmon-crash-") as d:
            results = asyncio.run(trials(args.trials, args.seed, Path(d)))
    passed = sum(r.exact for r in results)
    print(
        json.dumps(
            {
                "trials": len(results),
                "passed": passed,
                "kills": sum(r.kills for r in results),
                "kills_serving": sum(r.kills_serving for r in results),
                "seconds": round(time.monotonic() - t0, 1),
                "messages": sum(r.messages for r in results),
                "duplicates": sum(r.duplicates for r in results),
                "failed_seeds": [r.seed for r in results if not r.passed],
                # Trials exact but for the known defect: a pause SES had applied, made again
                # from the outbox by the next start (counted apart from `passed`).
                "resent_pause_seeds": [r.seed for r in results if r.passed and r.resent],
            }
        )
    )
    return 0 if passed == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
