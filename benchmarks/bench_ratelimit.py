"""Rate-limited fan-out: share of requests completed, goodput vs capacity, 429s per completion."""

from __future__ import annotations

import argparse
import asyncio
import collections
import dataclasses
import gc
import inspect
import json
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from _clients import API_KEY, MODEL, import_openai
from _common import progress
from _report import Figure, Report, verdict
from _server import mock_server

from aiocometapi import AsyncCometAPI

CLIENTS = ("aiocometapi", "openai", "openai-retries5", "openai-aiohttp")
TRACE_EVERY = 0.5  # seconds between two samples of --trace


def openai_retries(name: str) -> int:
    """openai's own default (2: three tries in all), or 5 for openai-retries5 (six tries: at
    least as many as aiocometapi's five)."""
    openai, _ = import_openai()
    return 5 if name == "openai-retries5" else int(openai.DEFAULT_MAX_RETRIES)


def default_pool(name: str) -> int:
    """The connections a user gets without passing anything."""
    if name == "aiocometapi":
        return int(inspect.signature(AsyncCometAPI).parameters["max_connections"].default)
    openai, _ = import_openai()
    return int(openai.DEFAULT_CONNECTION_LIMITS.max_connections)


@dataclass(frozen=True)
class Case:
    requests: int
    concurrency: int
    capacity: int  # requests/s the server admits
    latency: float = 0.0  # seconds the server takes to answer an admitted request


@dataclass
class Outcome:
    """One client's run against a fresh rate-limited server."""

    name: str
    completed: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)
    wall: float = 0.0
    cpu: float = 0.0
    server: dict[str, Any] = field(default_factory=dict)
    client_429s: int | None = None  # aiocometapi's own count, as a cross-check
    trace: list[dict[str, float]] = field(default_factory=list)

    @property
    def rate_limited(self) -> int:
        return int(self.server.get("rate_limited", 0))


def prompt(index: int) -> str:
    return f"request number {index}"


def check(name: str, index: int, content: str | None) -> None:
    """The mock server echoes the prompt: a reply that does not is not a completion."""
    if content != f"Echo: {prompt(index)}":
        raise AssertionError(f"{name}: request {index} got the reply {content!r}")


def body(index: int) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt(index)}]}


# --------------------------------------------------------------------------- the clients


async def run_aiocometapi(
    url: str, case: Case, pool: int | None, outcome: Outcome, on_open: Callable[[Any], None]
) -> None:
    """``fan_out`` with the default retries (five tries in all), as its users would write it."""
    options: dict[str, Any] = {} if pool is None else {"max_connections": pool}
    async with AsyncCometAPI(api_key=API_KEY, base_url=url, **options) as client:
        on_open(client)
        requests = (body(i) for i in range(case.requests))
        async for result in client.chat.completions.fan_out(requests, concurrency=case.concurrency):
            if result.error is not None:
                outcome.failures[type(result.error).__name__] += 1
                continue
            assert result.completion is not None
            check(outcome.name, result.index, result.completion.choices[0].message.content)
            outcome.completed += 1
        outcome.client_429s = client.rate_state().rate_limited


async def run_openai(
    url: str, case: Case, pool: int | None, outcome: Outcome, on_open: Callable[[Any], None]
) -> None:
    """``AsyncOpenAI.create`` under an ``asyncio.Semaphore``, results gathered, errors counted."""
    name = outcome.name
    openai, httpx2 = import_openai()
    http: Any = None
    if pool is not None:
        limits = httpx2.Limits(max_connections=pool, max_keepalive_connections=pool)
        if name == "openai-aiohttp":
            http = openai.DefaultAioHttpClient(limits=limits)
        else:
            http = openai.DefaultAsyncHttpxClient(limits=limits)
    elif name == "openai-aiohttp":
        http = openai.DefaultAioHttpClient()
    client = openai.AsyncOpenAI(
        api_key=API_KEY, base_url=url, max_retries=openai_retries(name), http_client=http
    )
    limiter = asyncio.Semaphore(case.concurrency)

    async def one(index: int) -> None:
        async with limiter:
            try:
                completion = await client.chat.completions.create(**body(index))
            except Exception as exc:  # after openai's own retries: this request failed
                outcome.failures[type(exc).__name__] += 1
                return
        check(name, index, completion.choices[0].message.content)
        outcome.completed += 1

    try:
        on_open(client)
        await asyncio.gather(*(one(i) for i in range(case.requests)))
    finally:
        await client.close()


RUNNERS: dict[str, Callable[..., Awaitable[None]]] = {
    "aiocometapi": run_aiocometapi,
    "openai": run_openai,
    "openai-retries5": run_openai,
    "openai-aiohttp": run_openai,
}


# --------------------------------------------------------------------------- one run


class StatsReader:
    """Reads the server's counters (``GET /v1/mock/stats``) on a session of its own."""

    def __init__(self, url: str) -> None:
        self._url = url + "/mock/stats"
        self.reads = 0  # each read is a 200 the server counts too: subtract them

    async def __aenter__(self) -> StatsReader:
        self._session = aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {API_KEY}"},
            connector=aiohttp.TCPConnector(limit=1),
        )
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._session.close()

    async def read(self) -> dict[str, Any]:
        async with self._session.get(self._url) as resp:
            resp.raise_for_status()
            stats: dict[str, Any] = json.loads(await resp.read())
        stats["ok"] = int(stats["responses_by_status"].get("200", 0)) - self.reads
        self.reads += 1
        return stats


async def sample_trace(
    reader: StatsReader, outcome: Outcome, started: float, client: list[Any]
) -> None:
    """Every TRACE_EVERY s: the server's admitted/refused counts and aiocometapi's controller."""
    while True:
        await asyncio.sleep(TRACE_EVERY)
        stats = await reader.read()
        point = {
            "t": time.perf_counter() - started,
            "server_ok": stats["ok"],
            "server_429": stats["rate_limited"],
            "server_in_flight": stats["in_flight"],
            "completed": outcome.completed,
            "failed": sum(outcome.failures.values()),
        }
        if client and isinstance(client[0], AsyncCometAPI):
            state = client[0].rate_state()
            point.update(
                rate_limit=state.rate_limit,
                concurrency_limit=state.concurrency_limit,
                in_flight=state.in_flight,
                rate_limited=state.rate_limited,
                paused_for=state.paused_for,
                waits=state.waits,
            )
        outcome.trace.append(point)


async def run_one(name: str, url: str, case: Case, pool: int | None, trace: bool) -> Outcome:
    outcome = Outcome(name)
    opened: list[Any] = []
    async with StatsReader(url) as reader:
        before = await reader.read()
        if before["requests"] != 1:  # this read itself
            raise AssertionError(f"the server is not fresh: {before}")
        gc.collect()
        wall0, cpu0 = time.perf_counter(), time.process_time()
        sampler = None
        if trace:
            sampler = asyncio.ensure_future(sample_trace(reader, outcome, wall0, opened))
        try:
            await RUNNERS[name](url, case, pool, outcome, opened.append)
        finally:
            outcome.wall = time.perf_counter() - wall0
            outcome.cpu = time.process_time() - cpu0
            if sampler is not None:
                sampler.cancel()
                await asyncio.gather(sampler, return_exceptions=True)
        outcome.server = await reader.read()
    done = outcome.completed + sum(outcome.failures.values())
    if done != case.requests:
        raise AssertionError(f"{name}: {done} results for {case.requests} requests")
    return outcome


def run_client(name: str, case: Case, pool: int | None, trace: bool) -> Outcome:
    """One run on a fresh server process, so that every client starts on an empty window."""
    options: dict[str, Any] = {"rps_limit": case.capacity}
    if case.latency:
        options["latency"] = case.latency
    with mock_server(**options) as process:
        return asyncio.run(run_one(name, process.url, case, pool, trace))


# --------------------------------------------------------------------------- the report


def goodput(outcome: Outcome, case: Case) -> float:
    """Completed requests per second as a share of the server's capacity."""
    return outcome.completed / outcome.wall / case.capacity


def failures(outcome: Outcome) -> str:
    if not outcome.failures:
        return "0"
    parts = [f"{kind} {count:,}" for kind, count in outcome.failures.most_common()]
    return f"{sum(outcome.failures.values()):,}: " + ", ".join(parts)


def pool_label(name: str, pool: int | None) -> str:
    return f"{default_pool(name)} (default)" if pool is None else str(pool)


def tries_label(name: str) -> str:
    if name == "aiocometapi":
        return "5 (default)"
    retries = openai_retries(name)
    default = "" if name == "openai-retries5" else " (default)"
    return f"{retries + 1}{default}"


def _figure(outcomes: Sequence[Outcome], value: Callable[[Outcome], float]) -> Figure:
    return Figure(tuple(value(o) for o in outcomes))


def _percent(value: float) -> str:
    return f"{value:.1%}" if 0.995 <= value < 1 else f"{value:.0%}"


def print_table(case: Case, pool: int | None, runs: dict[str, list[Outcome]]) -> list[str]:
    """The table (each figure: median and min-max over the runs) and aiocometapi's targets."""
    repeat = max(len(outcomes) for outcomes in runs.values())
    pools = "each client's default pool" if pool is None else f"a pool of {pool} for every client"
    latency = f", answering in {case.latency:g} s" if case.latency else ""
    spread = (
        f"Each cell: median (min-max) over {repeat} runs per client, the clients interleaved."
        if repeat > 1
        else "One run per client: no spread (pass --repeat 3 or more to see one)."
    )
    lines = [
        f"### {case.requests:,} requests at concurrency {case.concurrency}, server capacity "
        f"{case.capacity} requests/s{latency} ({pools})",
        "",
        spread,
        "",
        "| client | tries | pool | completed | wall s | client CPU s | goodput (% of capacity) "
        "| 429s (server) | 429s / completed | failed |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, outcomes in runs.items():
        kinds: collections.Counter[str] = collections.Counter()
        for o in outcomes:
            kinds.update(o.failures)
        failed = _figure(outcomes, lambda o: sum(o.failures.values()))
        cells = [
            name,
            tries_label(name),
            pool_label(name, pool),
            _figure(outcomes, lambda o: o.completed / case.requests).show(_percent),
            _figure(outcomes, lambda o: o.wall).show(lambda v: f"{v:.1f}"),
            _figure(outcomes, lambda o: o.cpu).show(lambda v: f"{v:.1f}"),
            _figure(outcomes, lambda o: goodput(o, case)).show(_percent),
            _figure(outcomes, lambda o: o.rate_limited).show(lambda v: f"{v:,.0f}"),
            _figure(outcomes, per_completed).show(lambda v: f"{v:.2f}"),
            failed.show(lambda v: f"{v:,.0f}") + _kinds(kinds, len(outcomes)),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    ours = runs.get("aiocometapi")
    if ours:
        completed = _figure(ours, lambda o: o.completed / case.requests)
        good = _figure(ours, lambda o: goodput(o, case))
        own = _figure(ours, lambda o: (o.client_429s or 0) / max(1, o.completed))
        server = _figure(ours, per_completed)
        lines += [
            "",
            f"- aiocometapi completed: **{completed.show(_percent)}** (target 100%: "
            f"{verdict(completed, 1.0, 1.0)})",
            f"- aiocometapi goodput: **{good.show(_percent)}** of capacity (target >= 90%: "
            f"{verdict(good, 0.9, float('inf'))})",
            f"- aiocometapi 429s per completed request: **{server.show(_two)}** by the server's "
            f"count; **{own.show(_two)}** by the client's own",
        ]
    lines.append("")
    print("\n".join(lines), flush=True)
    return lines


def _kinds(kinds: collections.Counter[str], runs: int) -> str:
    """The error types of the failures, summed over every run."""
    if not kinds:
        return ""
    over = f"over {runs} runs: " if runs > 1 else ""
    return " (" + over + ", ".join(f"{k} {n:,}" for k, n in kinds.most_common()) + ")"


def _two(value: float) -> str:
    return f"{value:.2f}"


def per_completed(outcome: Outcome) -> float:
    """429s the server sent per completed request."""
    return outcome.rate_limited / max(1, outcome.completed)


def print_trace(outcome: Outcome) -> None:
    """The run every TRACE_EVERY s: what the server admitted and refused, what the client did."""
    lines = [
        f"#### trace: {outcome.name}",
        "",
        "| t s | server 200/s | server 429/s | server in flight | completed | failed "
        "| rate_limit | concurrency_limit | in_flight | rate_limited | paused_for | waits |",
        "|" + "---|" * 12,
    ]
    previous = {"t": 0.0, "server_ok": 0, "server_429": 0}
    for point in outcome.trace:
        span = point["t"] - previous["t"]
        cells = [
            f"{point['t']:.1f}",
            f"{(point['server_ok'] - previous['server_ok']) / span:.0f}",
            f"{(point['server_429'] - previous['server_429']) / span:.0f}",
            f"{point['server_in_flight']:.0f}",
            f"{point['completed']:.0f}",
            f"{point['failed']:.0f}",
        ]
        for key in ("rate_limit", "concurrency_limit", "in_flight", "rate_limited"):
            cells.append(f"{point[key]:.1f}" if key in point else "-")
        cells.append(f"{point['paused_for']:.2f}" if "paused_for" in point else "-")
        cells.append(f"{point['waits']:.0f}" if "waits" in point else "-")
        lines.append("| " + " | ".join(cells) + " |")
        previous = point
    lines.append("")
    print("\n".join(lines), flush=True)


# --------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=5_000)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--capacity", type=int, default=200, help="requests/s the server admits")
    parser.add_argument(
        "--quick", action="store_true", help="1,000 requests at concurrency 100, capacity 100"
    )
    parser.add_argument(
        "--only",
        default=",".join(CLIENTS),
        help=f"comma-separated clients to run (default: {','.join(CLIENTS)})",
    )
    parser.add_argument(
        "--pool",
        default="default",
        help="connections per client for every client, or 'default' for each library's own "
        "(aiocometapi 100, openai 1000; the default)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=0.0,
        help="seconds the server takes to answer an admitted request (default 0)",
    )
    parser.add_argument(
        "--repeat",
        type=int,
        default=3,
        help="runs per client, interleaved (default 3); median and min-max are shown",
    )
    parser.add_argument(
        "--save", metavar="FILE", help="also write the environment and every run as JSON"
    )
    parser.add_argument(
        "--trace",
        action="store_true",
        help=f"sample the server and aiocometapi's rate controller every {TRACE_EVERY:g} s",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.concurrency, args.capacity = 1_000, 100, 100
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(CLIENTS))
    if unknown or not only:
        parser.error(f"--only takes some of {', '.join(CLIENTS)}; got {args.only!r}")
    args.only = [name for name in CLIENTS if name in only]
    if args.pool == "default":
        args.pool = None
    else:
        try:
            args.pool = int(args.pool)
        except ValueError:
            parser.error(f"--pool takes a number or 'default', got {args.pool!r}")
        if args.pool < 1:
            parser.error("--pool must be at least 1")
    for flag in ("requests", "concurrency", "capacity", "repeat"):
        if getattr(args, flag) < 1:
            parser.error(f"--{flag} must be at least 1")
    if args.latency < 0:
        parser.error("--latency must not be negative")
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    case = Case(args.requests, args.concurrency, args.capacity, args.latency)
    floor = max(0, case.requests - case.capacity) / case.capacity + case.latency
    report = Report("Rate-limit benchmark", save=args.save)
    progress(
        f"{case.requests} requests at concurrency {case.concurrency} against {case.capacity} "
        f"requests/s; no client can finish in under {floor:.1f} s"
    )
    runs: dict[str, list[Outcome]] = {name: [] for name in args.only}
    names: list[str] = args.only
    for round_ in range(args.repeat):
        # Rotate the order each round, so that no client always runs first (or last).
        shift = round_ % len(names)
        for name in [*names[shift:], *names[:shift]]:
            outcome = run_client(name, case, args.pool, args.trace)
            runs[name].append(outcome)
            progress(
                f"  {name:<16} run {round_ + 1}/{args.repeat}: {outcome.completed} completed in "
                f"{outcome.wall:.1f} s (CPU {outcome.cpu:.1f} s), goodput "
                f"{goodput(outcome, case):.0%}, {outcome.rate_limited} 429s, "
                f"failed {failures(outcome)}"
            )
    print_table(case, args.pool, runs)
    if args.trace:
        for outcomes in runs.values():
            for outcome in outcomes:
                print_trace(outcome)
    report.add("case", dataclasses.asdict(case) | {"pool": args.pool})
    report.add(
        "runs",
        {
            name: [
                {
                    "completed": o.completed,
                    "failures": dict(o.failures),
                    "wall": o.wall,
                    "cpu": o.cpu,
                    "goodput": goodput(o, case),
                    "server": o.server,
                    "client_429s": o.client_429s,
                    **({"trace": o.trace} if o.trace else {}),
                }
                for o in outcomes
            ]
            for name, outcomes in runs.items()
        },
    )
    report.finish()
    walls = [o.wall for outcomes in runs.values() for o in outcomes]
    progress(f"done; median wall {statistics.median(walls):.1f} s per run")


if __name__ == "__main__":
    main()
