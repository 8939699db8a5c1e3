"""Streaming: client CPU per chunk and chunks/s for aiocometapi, openai (httpx, aiohttp), floor."""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
from collections.abc import Sequence
from dataclasses import dataclass

from _clients import CLIENT_NAMES, BenchClient, opened_clients
from _common import parse_args, progress, server
from _measure import Run, compare, shared
from _report import Report, Scale, Table, Target, cpu_per_unit, rate, wall

# Besides one chunk per word the mock server sends a role chunk first and a finish chunk last
# (no usage chunk: the benchmark does not ask for stream_options.include_usage).
FRAME_CHUNKS = 2
SCALE = Scale("chunk", 1e6, "µs")


@dataclass(frozen=True)
class Case:
    key: str
    title: str
    streams: int
    words: int
    concurrency: int

    @property
    def chunks(self) -> int:
        return self.streams * (self.words + FRAME_CHUNKS)


def cases(quick: bool) -> dict[str, Case]:
    if quick:
        return {
            "a": Case("a", "(a) one long stream", 1, 1_000, 1),
            "b": Case("b", "(b) many short streams", 50, 20, 25),
        }
    return {
        "a": Case("a", "(a) one long stream", 1, 20_000, 1),
        "b": Case("b", "(b) many short streams", 500, 50, 100),
    }


async def run_case(client: BenchClient, case: Case) -> int:
    """Run the case's streams at its concurrency; the number of chunks received."""
    words = case.words

    async def one() -> int:
        chunks, content = await client.stream(words)
        if content != words or chunks != words + FRAME_CHUNKS:
            raise AssertionError(
                f"{client.name}: a stream of {words} words gave {chunks} chunks "
                f"({content} with content); expected {words + FRAME_CHUNKS} ({words})"
            )
        return chunks

    if case.streams == 1:
        return await one()
    limiter = asyncio.Semaphore(case.concurrency)

    async def limited() -> int:
        async with limiter:
            return await one()

    counts = await asyncio.gather(*(limited() for _ in range(case.streams)))
    return sum(counts)


async def warm_up(client: BenchClient, concurrency: int) -> None:
    for _ in range(3):
        await run_case(client, Case("warm", "", 1, 50, 1))
    # Fill the connection pool as the concurrent case will use it.
    await run_case(client, Case("warm", "", concurrency, 5, concurrency))


async def profile(client: BenchClient, words: int, top: int = 25) -> None:
    """cProfile one long stream; print the hottest functions and aiocometapi's share."""
    await run_case(client, Case("warm", "", 1, 1_000, 1))
    profiler = cProfile.Profile()
    profiler.enable()
    chunks = await run_case(client, Case("profile", "", 1, words, 1))
    profiler.disable()
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    print(f"### cProfile: {client.name}, one stream of {chunks:,} chunks\n")
    print("```")
    print(out.getvalue().strip())
    print("```\n")
    total = sum(row[2] for row in stats.stats.values())  # type: ignore[attr-defined]
    by_file: dict[str, float] = {}
    by_function: list[tuple[float, str]] = []
    for (filename, line, function), row in stats.stats.items():  # type: ignore[attr-defined]
        if "/aiocometapi/" not in filename:
            continue
        short = filename.rsplit("/aiocometapi/", 1)[1]
        by_file[short] = by_file.get(short, 0.0) + row[2]
        by_function.append((row[2], f"{short}:{line}:{function}"))
    print(f"Own time (tottime) inside aiocometapi, share of all {total:.3f} s profiled:\n")
    for name, seconds in sorted(by_file.items(), key=lambda item: -item[1]):
        print(f"- {name}: {seconds / total:.1%} ({seconds / chunks * 1e6:.2f} µs/chunk)")
    print()
    for seconds, where in sorted(by_function, reverse=True)[:top]:
        if seconds / total >= 0.001:
            print(f"- {where}: {seconds / total:.1%} ({seconds / chunks * 1e6:.2f} µs/chunk)")
    print()


CPU, RATE = cpu_per_unit(SCALE), rate(SCALE)
TARGETS = [
    Target("CPU per chunk, aiocometapi ÷ floor", CPU, "aiocometapi", "floor", "<=", 1.5),
    Target("CPU per chunk, openai ÷ aiocometapi", CPU, "openai", "aiocometapi", ">=", 25),
    Target(
        "CPU per chunk, openai-aiohttp ÷ aiocometapi",
        CPU,
        "openai-aiohttp",
        "aiocometapi",
        ">=",
        25,
    ),
]


async def main_async(
    report: Report, base_url: str, names: Sequence[str], args: argparse.Namespace
) -> None:
    all_cases = cases(args.quick)
    selected = [all_cases[key] for key in args.cases]
    async with opened_clients(names, base_url) as clients:
        if args.profile:
            await profile(clients["aiocometapi"], all_cases["a"].words)
            return
        concurrency = max(case.concurrency for case in selected)
        for name, client in clients.items():
            progress(f"warming up {name}")
            await warm_up(client, concurrency)
        for case in selected:
            progress(
                f"case {case.title}: {case.streams} x {case.words} words "
                f"at concurrency {case.concurrency}"
            )

            def runner(client: BenchClient, case: Case = case) -> Run:
                return lambda: run_case(client, case)

            results = await compare(
                [shared(name, runner(client)) for name, client in clients.items()],
                repeat=args.repeat,
                expected_units=case.chunks,
                progress=progress,
            )
            report.case(
                key=case.key,
                title=f"{case.title}: {case.streams:,} stream(s) x {case.words:,} words "
                f"({case.chunks:,} chunks) at concurrency {case.concurrency}",
                params={
                    "streams": case.streams,
                    "words": case.words,
                    "chunks": case.chunks,
                    "concurrency": case.concurrency,
                },
                results=results,
                table=Table(
                    metrics=[CPU, RATE, wall()],
                    ratios=[(CPU, "floor"), (CPU, "aiocometapi"), (RATE, "aiocometapi")],
                ),
                targets=TARGETS,
            )


def main(argv: Sequence[str] | None = None) -> None:
    def profile_flag(parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--profile",
            action="store_true",
            help="instead of benchmarking, cProfile aiocometapi on one case-(a) stream",
        )

    args = parse_args(__doc__ or "", CLIENT_NAMES, ("a", "b"), argv, extra=profile_flag)
    names = ["aiocometapi"] if args.profile else args.only
    report = Report("Streaming benchmark", save=args.save)
    with server(args.base_url) as process:
        asyncio.run(main_async(report, process.url, names, args))
    report.finish()


if __name__ == "__main__":
    main()
