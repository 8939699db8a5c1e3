"""Non-streaming: requests/s and client CPU per request at high concurrency, four clients."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass

from _clients import CLIENT_NAMES, POOL, BenchClient, opened_clients
from _common import (
    Sample,
    Scale,
    compare_and_report,
    cpu_per_unit,
    environment_line,
    parse_args,
    progress,
    rate,
    server_url,
)

SCALE = Scale("request", 1e3, "ms")
PROMPT = "What is the capital of France?"


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    requests: int
    concurrency: int


def cases(quick: bool) -> dict[str, Case]:
    if quick:
        return {"c": Case("c", "short completions", 300, 100)}
    return {"c": Case("c", "short completions", 2_000, 200)}


async def run_case(client: BenchClient, case: Case) -> int:
    """Send the case's requests at its concurrency; the number of checked replies."""
    limiter = asyncio.Semaphore(case.concurrency)
    name = client.name

    async def one() -> int:
        async with limiter:
            content = await client.complete(PROMPT)
        # The mock server echoes the last user message by default.
        if not content or PROMPT not in content:
            raise AssertionError(f"{name}: unexpected reply {content!r}")
        return 1

    counts = await asyncio.gather(*(one() for _ in range(case.requests)))
    return sum(counts)


async def warm_up(client: BenchClient, concurrency: int) -> None:
    for _ in range(3):
        await run_case(client, Case("warm", "", 1, 1))
    # Open as many connections as the timed case will use.
    await run_case(client, Case("warm", "", concurrency, concurrency))


def targets(results: dict[str, list[Sample]]) -> list[tuple[str, float, str, float]]:
    found: list[tuple[str, float, str, float]] = []
    if "aiocometapi" not in results:
        return found
    ours = results["aiocometapi"]
    ours_cpu, ours_rate = cpu_per_unit(ours, SCALE), rate(ours)
    if "floor" in results:
        floor_cpu = cpu_per_unit(results["floor"], SCALE)
        found.append(("CPU per request, aiocometapi / floor", ours_cpu / floor_cpu, "<=", 1.5))
    for other in ("openai", "openai-aiohttp"):
        if other in results:
            other_rate = rate(results[other])
            other_cpu = cpu_per_unit(results[other], SCALE)
            found.append((f"requests/s, aiocometapi / {other}", ours_rate / other_rate, ">=", 5))
            found.append((f"CPU per request, {other} / aiocometapi", other_cpu / ours_cpu, "", 0))
    return found


async def main_async(base_url: str, args: argparse.Namespace) -> None:
    all_cases = cases(args.quick)
    selected = [all_cases[key] for key in args.cases]
    repeat: int = args.repeat
    names: list[str] = args.only
    async with opened_clients(names, base_url) as clients:
        concurrency = max(case.concurrency for case in selected)
        for name, client in clients.items():
            progress(f"warming up {name}")
            await warm_up(client, concurrency)
        for case in selected:
            progress(
                f"case {case.title}: {case.requests} requests at concurrency {case.concurrency}"
            )

            async def run(name: str, case: Case = case) -> int:
                return await run_case(clients[name], case)

            title = (
                f"{case.title}: {case.requests:,} requests at concurrency {case.concurrency} "
                f"(pool {POOL} per client), median of {repeat}"
            )
            await compare_and_report(
                names, run, repeat=repeat, expected_units=case.requests, title=title,
                scale=SCALE, targets=targets,
            )


def main(argv: Sequence[str] | None = None) -> None:
    # One case only; --case is accepted for symmetry with bench_stream.py.
    args = parse_args(__doc__ or "", CLIENT_NAMES, ("c",), argv)
    print(f"## Request benchmark\n\n{environment_line()}\n", flush=True)
    with server_url(args.base_url) as url:
        asyncio.run(main_async(url, args))


if __name__ == "__main__":
    main()
