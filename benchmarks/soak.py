"""Soak, the full form: 20,000 mixed requests through one client, every outcome accounted for.

    python benchmarks/soak.py                     # 20,000 requests
    python benchmarks/soak.py --requests 2000     # a shorter one
    python benchmarks/soak.py --instant-retries   # retry waits take no time (as in the tests)

The driver and its checks live in tests/integration/soak.py (the suite runs it with 1,200
requests); this is its command line. Exit status 1 if a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
soak = importlib.import_module("integration.soak")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    defaults = soak.SoakConfig()
    parser.add_argument("--requests", type=int, default=defaults.requests)
    parser.add_argument("--max-connections", type=int, default=defaults.max_connections)
    parser.add_argument("--workers", type=int, default=defaults.workers)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--instant-retries", action="store_true", help="retry waits take no time")
    args = parser.parse_args(argv)
    config = soak.SoakConfig(
        requests=args.requests,
        max_connections=args.max_connections,
        workers=args.workers,
        seed=args.seed,
        instant_retries=args.instant_retries,
    )

    def progress(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    report = asyncio.run(soak.soak(config, progress))
    print(
        f"# Soak: {config.requests} requests, seed {config.seed}, "
        f"{config.workers} workers, max_connections={config.max_connections}, "
        f"fail/drop/slow rates {config.fail_rate}/{config.drop_rate}/{config.slow_rate}, "
        f"{'instant' if config.instant_retries else 'real'} retry waits\n"
    )
    print(report.table())
    problems = report.problems()
    for line in report.unexpected:
        print("\nunexpected:", line, file=sys.stderr)
    print("\n" + ("PASS" if not problems else "FAIL: " + "; ".join(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
