"""Non-streaming: CPU per request and requests/s of four clients; fan_out vs a semaphore loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from _clients import CLIENT_NAMES, MODEL, POOL, BenchClient, CometClient, opened_clients
from _common import parse_args, progress, server
from _measure import Contender, Run, compare, shared
from _report import Report, Scale, Table, Target, cpu_per_unit, extra, rate, wall
from _server import MockProcess

from aiocometapi import AsyncCometAPI

SCALE = Scale("request", 1e3, "ms")
PROMPT = "What is the capital of France?"
CPU, RATE = cpu_per_unit(SCALE), rate(SCALE)
PEAK = extra("peak_connections", "peak connections (server)")
NEW = extra("new_connections", "connections opened in the run")


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    requests: int
    concurrency: int


def cases(quick: bool) -> dict[str, Case]:
    if quick:
        return {
            "c": Case("c", "(c) short completions", 200, 50),
            "fanout": Case("fanout", "(f) fan_out vs the loop it replaces", 200, 25),
        }
    return {
        "c": Case("c", "(c) short completions", 2_000, 200),
        "fanout": Case("fanout", "(f) fan_out vs the loop it replaces", 2_000, 200),
    }


def check(name: str, content: str | None) -> None:
    """The mock server echoes the last user message: a reply without it is not a completion."""
    if not content or PROMPT not in content:
        raise AssertionError(f"{name}: unexpected reply {content!r}")


# --------------------------------------------------------------------------- (c) four clients


async def run_case(client: BenchClient, case: Case) -> int:
    """Send the case's requests at its concurrency; the number of checked replies."""
    limiter = asyncio.Semaphore(case.concurrency)
    name = client.name

    async def one() -> int:
        async with limiter:
            content = await client.complete(PROMPT)
        check(name, content)
        return 1

    counts = await asyncio.gather(*(one() for _ in range(case.requests)))
    return sum(counts)


async def warm_up(client: BenchClient, concurrency: int) -> None:
    for _ in range(3):
        await run_case(client, Case("warm", "", 1, 1))
    # Open as many connections as the timed case will use.
    await run_case(client, Case("warm", "", concurrency, concurrency))


def client_targets() -> list[Target]:
    ours = "aiocometapi"
    found = [Target(f"CPU per request, {ours} ÷ floor", CPU, ours, "floor", "<=", 1.5)]
    for other in ("openai", "openai-aiohttp"):
        found.append(Target(f"requests/s, {ours} ÷ {other}", RATE, ours, other, ">=", 5))
        found.append(Target(f"CPU per request, {other} ÷ {ours}", CPU, other, ours, ""))
    return found


async def run_clients(report: Report, url: str, case: Case, args: argparse.Namespace) -> None:
    names: list[str] = args.only
    async with opened_clients(names, url) as clients:
        for name, client in clients.items():
            progress(f"warming up {name}")
            await warm_up(client, case.concurrency)
        progress(f"case {case.title}: {case.requests} requests at concurrency {case.concurrency}")

        def runner(client: BenchClient) -> Run:
            return lambda: run_case(client, case)

        contenders = [shared(name, runner(client)) for name, client in clients.items()]
        results = await compare(
            contenders, repeat=args.repeat, expected_units=case.requests, progress=progress
        )
    report.case(
        key=case.key,
        title=f"{case.title}: {case.requests:,} requests at concurrency {case.concurrency} "
        f"(pool {POOL} per client)",
        params={"requests": case.requests, "concurrency": case.concurrency, "pool": POOL},
        results=results,
        table=Table(
            metrics=[CPU, RATE, wall()],
            ratios=[(CPU, "floor"), (CPU, "aiocometapi"), (RATE, "aiocometapi")],
        ),
        targets=client_targets(),
    )


# --------------------------------------------------------------------------- (f) fan_out vs loop


def requests(count: int) -> Iterator[dict[str, Any]]:
    """The same ``create()`` parameters for both contenders, made as they are taken."""
    for _ in range(count):
        yield {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}


async def fan_out(client: AsyncCometAPI, count: int, concurrency: int) -> int:
    """``client.chat.completions.fan_out``, every result checked as it arrives."""
    done = 0
    async for result in client.chat.completions.fan_out(requests(count), concurrency=concurrency):
        if result.error is not None:
            raise result.error
        assert result.completion is not None
        check("fan_out", result.completion.choices[0].message.content)
        done += 1
    return done


async def semaphore_loop(client: AsyncCometAPI, count: int, concurrency: int) -> int:
    """What fan_out replaces: a task per request in a task group, ``create`` under a semaphore.

    Errors are kept per request, as fan_out keeps them. ``asyncio.TaskGroup`` needs Python
    3.11; on 3.10 ``asyncio.gather`` stands in for it.
    """
    limiter = asyncio.Semaphore(concurrency)
    done = 0

    async def one(request: dict[str, Any]) -> None:
        nonlocal done
        async with limiter:
            try:
                completion = await client.chat.completions.create(**request)
            except Exception as exc:
                raise AssertionError(f"semaphore loop: request failed: {exc!r}") from exc
        check("semaphore loop", completion.choices[0].message.content)
        done += 1

    if sys.version_info >= (3, 11):
        async with asyncio.TaskGroup() as group:
            for request in requests(count):
                group.create_task(one(request))
    else:  # Python 3.10
        await asyncio.gather(*(one(request) for request in requests(count)))
    return done


FanOutRun = Callable[[AsyncCometAPI, int, int], Awaitable[int]]


def fresh_client(
    name: str, url: str, process: MockProcess, how: FanOutRun, case: Case
) -> Contender:
    """A contender on a client of its own per round, so the server's counts are its alone.

    Before the clock: open the client (as case (c) opens aiocometapi), warm it up the way it
    will run (so its pool holds what that way of calling uses), and after: close it and wait
    until the server has seen every socket close.
    """

    @contextlib.asynccontextmanager
    async def session() -> AsyncIterator[Run]:
        bench = CometClient(url)
        await bench.open()
        try:
            sdk = bench.sdk
            for _ in range(3):
                await how(sdk, 1, 1)
            await how(sdk, 2 * case.concurrency, case.concurrency)
            yield lambda: how(sdk, case.requests, case.concurrency)
        finally:
            await bench.close()
            if process.counts_connections:
                await process.wait_for_no_connections()

    return Contender(name, session)


async def run_fan_out(
    report: Report, url: str, process: MockProcess, case: Case, args: argparse.Namespace
) -> None:
    progress(f"case {case.title}: {case.requests} requests at concurrency {case.concurrency}")
    if process.counts_connections:
        await process.wait_for_no_connections()
    contenders = [
        fresh_client("fan_out", url, process, fan_out, case),
        fresh_client("semaphore loop", url, process, semaphore_loop, case),
    ]
    probe = process.connection_probe() if process.counts_connections else None
    results = await compare(
        contenders,
        repeat=args.repeat,
        expected_units=case.requests,
        probe=probe,
        progress=progress,
    )
    group = "asyncio.TaskGroup" if sys.version_info >= (3, 11) else "asyncio.gather"
    report.case(
        key=case.key,
        title=f"{case.title}: {case.requests:,} requests at concurrency {case.concurrency}, "
        f"aiocometapi (pool {POOL}, a fresh client per run)",
        params={
            "requests": case.requests,
            "concurrency": case.concurrency,
            "pool": POOL,
            "loop": f"create() under asyncio.Semaphore({case.concurrency}) in {group}",
        },
        results=results,
        table=Table(
            metrics=[CPU, RATE, *([PEAK, NEW] if probe else [])],
            ratios=[(CPU, "semaphore loop"), (RATE, "semaphore loop")],
        ),
        targets=[
            Target(
                "CPU per request, fan_out ÷ semaphore loop",
                CPU,
                "fan_out",
                "semaphore loop",
                "<=",
                1.1,
            ),
            *(
                [
                    Target(
                        "peak connections, fan_out ÷ semaphore loop",
                        PEAK,
                        "fan_out",
                        "semaphore loop",
                        "~",
                        1.0,
                        0.1,
                    )
                ]
                if probe
                else []
            ),
        ],
        notes=[
            f"semaphore loop: `create()` under `asyncio.Semaphore({case.concurrency})`, one task "
            f"per request in an `{group}`; fan_out: `client.chat.completions.fan_out(requests, "
            f"concurrency={case.concurrency})`. Connections are counted by the server process: "
            "the most it held open at once during the run (sampled every millisecond), and how "
            "many it accepted during the run (exact).",
        ]
        if probe
        else [],
    )


# --------------------------------------------------------------------------- command line


async def main_async(report: Report, process: MockProcess, args: argparse.Namespace) -> None:
    all_cases = cases(args.quick)
    for key in args.cases:
        case = all_cases[key]
        if key == "c":
            await run_clients(report, process.url, case, args)
        elif "aiocometapi" in args.only:
            await run_fan_out(report, process.url, process, case, args)


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(__doc__ or "", CLIENT_NAMES, ("c", "fanout"), argv)
    report = Report("Request benchmark", save=args.save)
    with server(args.base_url) as process:
        asyncio.run(main_async(report, process, args))
    report.finish()


if __name__ == "__main__":
    main()
