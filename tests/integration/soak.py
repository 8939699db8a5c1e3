"""Soak: thousands of mixed requests through one client; pool, fds, memory and outcomes checked.

The driver, ``soak()``: tests/integration/test_soak.py runs it in its CI form (1,200 requests),
and ``python benchmarks/soak.py`` runs the full form (20,000) by hand.

One ``AsyncCometAPI(max_connections=20)`` against one in-process ``MockServer`` that injects
500s, dropped connections and slow replies. Each operation, picked by a seeded RNG, is one of:
a plain create; a stream read to its end; a stream left early (``break``); a request cancelled
part-way (``move_on_after``); a stream cancelled part-way (``CancelScope.cancel()`` from another
task); a request with a tiny timeout; a ``fan_out`` batch. A sampler notes the pool's size every
few ms. Checked at the end: the pool never went over its limit, every request has exactly one
outcome (a success, a documented error, or a cancellation), no other exception escaped, file
descriptors are back to where they started, and memory allocated after the warm-up and still
alive at the end is small. Exit status 1 if a check fails.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import random
import time
import traceback
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import anyio

from aiocometapi import (
    APIConnectionError,
    APITimeoutError,
    AsyncCometAPI,
    CometAPIError,
    IncompleteStreamError,
    InternalServerError,
    Timeout,
    instant_retries,
)
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion

__all__ = ["KINDS", "SoakConfig", "SoakReport", "soak"]

MODEL = "gpt-5.4-mini"
KEY = "sk-soak-0123456789abcdef"
FILLER = "alpha beta gamma delta epsilon zeta eta theta"
"""Words after the op number, so that an echoed stream comes in a dozen chunks."""

KINDS = (
    "create",
    "stream",
    "stream_break",
    "cancel_request",
    "cancel_stream",
    "timeout",
    "fan_out",
)
WEIGHTS = (30, 18, 14, 8, 8, 12, 3)
"""Operations by kind; a fan_out batch averages 7.5 requests, about a fifth of them all."""

EXPECTED_ERRORS: tuple[type[CometAPIError], ...] = (
    InternalServerError,  # an injected 500 on every try
    APIConnectionError,  # a dropped connection on every try; APITimeoutError is one of these
    IncompleteStreamError,  # a stream cut before [DONE]
)
"""The errors the injected faults may end a request with; anything else is a failure."""


@dataclass(frozen=True)
class SoakConfig:
    """What to run: how many requests, through what pool, against which faults."""

    requests: int = 20_000
    max_connections: int = 20
    workers: int = 48
    """Operations in flight at once (a fan_out batch adds up to 4 requests of its own)."""
    seed: int = 1
    max_retries: int = 2
    fail_rate: float = 0.04
    drop_rate: float = 0.02
    slow_rate: float = 0.03
    slow_delay: float = 0.2
    chunk_delay: float = 0.0005
    warmup: float = 0.1
    """Share of the requests run before the memory baseline is taken."""
    sample_every: float = 0.002
    instant_retries: bool = False
    max_memory_growth: int = 512 * 1024
    """Bytes allocated after the warm-up and still alive after closing that count as a leak.
    Measured: 70-100 KiB (caches and containers at their high-water mark), the same for 1,200
    and 20,000 requests; streams abandoned without ``aclose()`` would add ~800 bytes each."""
    fd_slack: int = 2
    """File descriptors allowed over the start, for something opened once on first use and
    kept (a resolver, an executor). Sockets just closed are waited for (2 s) instead."""
    max_close_lag: float = 5.0
    """Seconds the server may keep seeing a connection the client already closed; the server
    reaps it a few loop turns later, and a loop turn can take long on a busy machine (0.6 s
    measured with two cores oversubscribed)."""


@dataclass
class SoakReport:
    """The figures of one soak run."""

    config: SoakConfig
    outcomes: Counter[tuple[str, str]] = field(default_factory=Counter)
    """(kind, outcome) -> requests; outcome is "ok", "cancelled" or an error class name."""
    unexpected: list[str] = field(default_factory=list)
    """The first few failures: exceptions outside the documented set, wrong answers, lost or
    doubled results."""
    unexpected_count: int = 0
    max_in_use: int = 0
    max_pool: int = 0
    """Most connections the client held at once, in use plus idle."""
    max_server_connections: int = 0
    """Most connections the server saw open at once (see ``max_server_excess``)."""
    max_server_excess: int = 0
    """Most connections the server still saw open beyond those the client held: closed by the
    client, not yet reaped by the server."""
    longest_server_excess: float = 0.0
    """Longest stretch, in seconds, with the server seeing more connections than the client held."""
    server_open_after: int = -1
    idle_after: int = -1
    connections_total: int = 0
    server_requests: int = 0
    injected_failures: int = 0
    slowed: int = 0
    samples: int = 0
    in_use_after: int = -1
    """Connections still checked out once the last operation ended (a leak if not 0)."""
    rate_in_flight_after: int = -1
    fds_before: int = 0
    fds_after: int = 0
    tasks_before: int = 0
    tasks_after: int = 0
    rss_before: int = 0
    rss_after_warmup: int = 0
    rss_after: int = 0
    memory_growth: int = 0
    """tracemalloc: bytes allocated after the warm-up still alive once everything is closed."""
    memory_growth_open: int = 0
    """The same, measured before closing the client (idle pooled connections included)."""
    memory_peak: int = 0
    wall: float = 0.0

    @property
    def accounted(self) -> int:
        return sum(self.outcomes.values())

    def by_outcome(self) -> Counter[str]:
        totals: Counter[str] = Counter()
        for (_, outcome), count in self.outcomes.items():
            totals[outcome] += count
        return totals

    def problems(self) -> list[str]:
        """Every check that failed, as a sentence; empty when the soak passed."""
        config = self.config
        found = []
        if self.accounted != config.requests:
            found.append(f"{self.accounted} outcomes recorded for {config.requests} requests")
        if self.unexpected_count:
            found.append(f"{self.unexpected_count} unexpected results, first: {self.unexpected[0]}")
        if self.max_pool > config.max_connections:
            found.append(f"the pool held {self.max_pool} > {config.max_connections} connections")
        if self.longest_server_excess > config.max_close_lag:
            found.append(
                f"the server saw more connections open than the client held for "
                f"{self.longest_server_excess:.2f} s: a socket left open after its release"
            )
        if self.server_open_after != self.idle_after:
            found.append(
                f"after the last request the server saw {self.server_open_after} connections, "
                f"the pool held {self.idle_after}"
            )
        if self.in_use_after != 0:
            found.append(f"{self.in_use_after} connections still in use after the last request")
        if self.rate_in_flight_after != 0:
            found.append(f"the rate controller counts {self.rate_in_flight_after} in flight")
        if self.fds_after > self.fds_before + config.fd_slack:
            found.append(f"file descriptors {self.fds_before} -> {self.fds_after}")
        if self.tasks_after > self.tasks_before:
            found.append(f"tasks {self.tasks_before} -> {self.tasks_after}")
        if self.memory_growth > config.max_memory_growth:
            found.append(f"{self.memory_growth} bytes allocated after the warm-up still alive")
        return found

    def summary(self) -> str:
        """A few lines of figures (what the test prints)."""
        c = self.config
        outcomes = ", ".join(f"{name} {count}" for name, count in self.by_outcome().most_common())
        return "\n".join(
            [
                f"soak: {c.requests} requests in {self.wall:.1f} s, {self.accounted} accounted for "
                f"({outcomes}); {self.unexpected_count} unexpected",
                f"connections: max {self.max_pool} held ({self.max_in_use} in use) of "
                f"{c.max_connections}; server max {self.max_server_connections} open (at most "
                f"{self.max_server_excess} already closed by the client, for up to "
                f"{self.longest_server_excess * 1000:.0f} ms); {self.connections_total} opened in "
                f"all; {self.samples} samples",
                f"fds {self.fds_before} -> {self.fds_after}; tasks {self.tasks_before} -> "
                f"{self.tasks_after}; memory allocated after warm-up still alive: "
                f"{self.memory_growth / 1024:.1f} KiB closed, {self.memory_growth_open / 1024:.1f} "
                f"KiB open (peak {self.memory_peak / 1024 / 1024:.1f} MiB); RSS "
                f"{_mib(self.rss_before)} -> {_mib(self.rss_after_warmup)} -> "
                f"{_mib(self.rss_after)}",
            ]
        )

    def table(self) -> str:
        """Requests by kind and outcome, as Markdown, then the figures."""
        columns = [name for name, _ in self.by_outcome().most_common()]
        lines = [
            "| kind | " + " | ".join(columns) + " | total |",
            "| --- | " + " | ".join("---:" for _ in columns) + " | ---: |",
        ]
        for kind in KINDS:
            row = [self.outcomes.get((kind, name), 0) for name in columns]
            lines.append(f"| {kind} | " + " | ".join(map(str, row)) + f" | {sum(row)} |")
        totals = [self.by_outcome()[name] for name in columns]
        lines.append("| **all** | " + " | ".join(map(str, totals)) + f" | {self.accounted} |")
        c = self.config
        figures = [
            (
                "requests",
                f"{c.requests} ({self.accounted} accounted for, "
                f"{self.unexpected_count} unexpected)",
            ),
            ("wall time", f"{self.wall:.1f} s"),
            (
                "max connections (client pool)",
                f"{self.max_pool} held, {self.max_in_use} in use (limit {c.max_connections})",
            ),
            (
                "max connections (server side)",
                f"{self.max_server_connections} open, of which at most {self.max_server_excess} "
                f"already closed by the client (server not yet caught up; longest "
                f"{self.longest_server_excess * 1000:.0f} ms)",
            ),
            ("connections opened", str(self.connections_total)),
            (
                "server",
                f"{self.server_requests} requests received, {self.injected_failures} "
                f"injected 500s/drops, {self.slowed} slowed",
            ),
            ("file descriptors", f"{self.fds_before} before, {self.fds_after} after"),
            ("tasks", f"{self.tasks_before} before, {self.tasks_after} after"),
            (
                "memory (tracemalloc)",
                f"{self.memory_growth / 1024:.1f} KiB allocated after the "
                f"warm-up still alive after closing "
                f"({self.memory_growth_open / 1024:.1f} KiB before closing); "
                f"peak {self.memory_peak / 1024 / 1024:.1f} MiB",
            ),
            (
                "memory (RSS)",
                f"{_mib(self.rss_before)} before, {_mib(self.rss_after_warmup)} "
                f"after warm-up, {_mib(self.rss_after)} after",
            ),
        ]
        lines += ["", "| figure | value |", "| --- | --- |"]
        lines += [f"| {name} | {value} |" for name, value in figures]
        return "\n".join(lines)


# --------------------------------------------------------------------------- measuring


def open_fds() -> int:
    """File descriptors open in this process (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def rss() -> int:
    """Resident set size in bytes (Linux), 0 where /proc is missing."""
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def _mib(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MiB"


# --------------------------------------------------------------------------- the operations


@dataclass(frozen=True, slots=True)
class Op:
    number: int
    kind: str
    size: int
    """Requests this operation makes: 1, or a fan_out batch's size."""
    delay: float
    """Cancel kinds: seconds before the cancellation; timeout: the timeout."""
    stream: bool
    chunks: int
    """stream_break: chunks read before leaving the loop."""


def plan(requests: int, rng: random.Random, start: int = 0) -> Iterator[Op]:
    """Operations adding up to ``requests`` requests, numbered from ``start``, drawn lazily."""
    left, number = requests, start
    while left > 0:
        kind = rng.choices(KINDS, WEIGHTS)[0]
        size = min(left, rng.randint(3, 12)) if kind == "fan_out" else 1
        delay = rng.uniform(0.002, 0.05) if kind == "timeout" else rng.uniform(0.0, 0.1)
        yield Op(number, kind, size, delay, rng.random() < 0.5, rng.randint(0, 3))
        left -= size
        number += 1


def _text(op: Op) -> str:
    return f"op {op.number} {FILLER}"


def _messages(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


def _label(exc: BaseException) -> str:
    if isinstance(exc, APITimeoutError):
        return f"APITimeoutError({exc.which})"
    return type(exc).__name__


class _WrongAnswer(Exception):
    """A completion that is not the echo of its own request (a mix-up between requests)."""


def _check(completion: ChatCompletion, text: str) -> str:
    content = completion.choices[0].message.content if completion.choices else None
    if content != f"Echo: {text}":
        raise _WrongAnswer(f"expected the echo of {text!r}, got {content!r}")
    return "ok"


async def _create(client: AsyncCometAPI, op: Op, text: str) -> str:
    completion = await client.chat.completions.create(model=MODEL, messages=_messages(text))
    return _check(completion, text)


async def _stream(client: AsyncCometAPI, op: Op, text: str) -> str:
    stream = await client.chat.completions.create(
        model=MODEL, messages=_messages(text), stream=True
    )
    async with stream:
        return _check(await stream.final(), text)


async def _stream_break(client: AsyncCometAPI, op: Op, text: str) -> str:
    stream = await client.chat.completions.create(
        model=MODEL, messages=_messages(text), stream=True
    )
    async with stream:
        seen = 0
        async for _ in stream:
            if seen >= op.chunks:
                break
            seen += 1
    return "ok"


async def _cancel_request(client: AsyncCometAPI, op: Op, text: str) -> str:
    with anyio.move_on_after(op.delay):
        if op.stream:
            return await _stream(client, op, text)
        return await _create(client, op, text)
    return "cancelled"


async def _cancel_after(scope: anyio.CancelScope, delay: float) -> None:
    await anyio.sleep(delay)
    scope.cancel()


async def _cancel_stream(client: AsyncCometAPI, op: Op, text: str) -> str:
    copy = client.with_options(max_retries=1)
    stream = await copy.chat.completions.create(model=MODEL, messages=_messages(text), stream=True)
    async with stream:
        await anext(stream)  # the cancellation then comes mid-stream
        with anyio.CancelScope() as scope:
            async with anyio.create_task_group() as group:
                group.start_soon(_cancel_after, scope, op.delay)
                completion = await stream.final()
                group.cancel_scope.cancel()
        if scope.cancelled_caught:
            return "cancelled"
    return _check(completion, text)


async def _timeout(client: AsyncCometAPI, op: Op, text: str) -> str:
    if op.stream:
        clocks = Timeout(first_event=op.delay, idle=op.delay)
        stream = await client.chat.completions.create(
            model=MODEL, messages=_messages(text), stream=True, timeout=clocks, max_retries=0
        )
        async with stream:
            return _check(await stream.final(), text)
    completion = await client.chat.completions.create(
        model=MODEL, messages=_messages(text), timeout=op.delay, max_retries=0
    )
    return _check(completion, text)


_RUNNERS = {
    "create": _create,
    "stream": _stream,
    "stream_break": _stream_break,
    "cancel_request": _cancel_request,
    "cancel_stream": _cancel_stream,
    "timeout": _timeout,
}


class _Driver:
    """Runs operations and records exactly one outcome per request."""

    def __init__(self, client: AsyncCometAPI, report: SoakReport) -> None:
        self.client = client
        self.report = report
        self.done = 0

    def _record(self, kind: str, outcome: str) -> None:
        self.report.outcomes[(kind, outcome)] += 1
        self.done += 1

    def _unexpected(self, kind: str, what: str) -> None:
        report = self.report
        report.unexpected_count += 1
        if len(report.unexpected) < 20:
            report.unexpected.append(f"[{kind}] {what}")

    def _failure(self, kind: str, exc: BaseException) -> str:
        """The outcome for an exception: its class if documented, else a recorded failure."""
        if isinstance(exc, EXPECTED_ERRORS):
            return _label(exc)
        self._unexpected(kind, "".join(traceback.format_exception(exc)).strip())
        return f"UNEXPECTED {type(exc).__name__}"

    async def run(self, op: Op) -> None:
        if op.kind == "fan_out":
            await self._fan_out(op)
            return
        try:
            outcome = await _RUNNERS[op.kind](self.client, op, _text(op))
        except Exception as exc:
            outcome = self._failure(op.kind, exc)
        self._record(op.kind, outcome)

    async def _fan_out(self, op: Op) -> None:
        base = _text(op)
        requests = [
            {"model": MODEL, "messages": _messages(f"{base} {i}"), "stream": i % 3 == 0}
            for i in range(op.size)
        ]
        seen: set[int] = set()
        try:
            async for result in self.client.chat.completions.fan_out(requests, concurrency=4):
                if result.index in seen or not 0 <= result.index < op.size:
                    self._unexpected(
                        "fan_out",
                        f"result for index {result.index} of {op.size}"
                        f" (already seen: {result.index in seen})",
                    )
                    continue
                seen.add(result.index)
                if result.error is not None:
                    outcome = self._failure("fan_out", result.error)
                else:
                    assert result.completion is not None
                    try:
                        outcome = _check(result.completion, f"{base} {result.index}")
                    except _WrongAnswer as exc:
                        outcome = self._failure("fan_out", exc)
                self._record("fan_out", outcome)
        except Exception as exc:
            self._unexpected("fan_out", f"fan_out raised {exc!r}")
        for _ in range(op.size - len(seen)):
            self._unexpected("fan_out", "an input of the batch got no result")
            self._record("fan_out", "UNEXPECTED lost")

    async def phase(self, ops: Iterator[Op], workers: int) -> None:
        async def worker() -> None:
            for op in ops:  # one shared iterator: each operation is handed out once
                await self.run(op)

        async with anyio.create_task_group() as group:
            for _ in range(workers):
                group.start_soon(worker)


# --------------------------------------------------------------------------- the soak


async def _sample(
    client: AsyncCometAPI,
    server: MockServer,
    report: SoakReport,
    every: float,
    waits: list[float] | None,
    tick: Callable[[], None],
) -> None:
    excess_since: float | None = None
    while True:
        pool = client.pool_state()
        in_use, idle = pool.in_use, pool.idle
        held = in_use + idle
        seen = server.open_connections
        report.max_in_use = max(report.max_in_use, in_use)
        report.max_pool = max(report.max_pool, held)
        report.max_server_connections = max(report.max_server_connections, seen)
        # The server reaps a connection the client closed a few loop turns later, so its
        # count may run ahead of the pool for a moment; a socket the client forgot to close
        # would keep it ahead.
        now = time.perf_counter()
        if seen > held:
            report.max_server_excess = max(report.max_server_excess, seen - held)
            excess_since = now if excess_since is None else excess_since
            report.longest_server_excess = max(report.longest_server_excess, now - excess_since)
        else:
            excess_since = None
        report.samples += 1
        # The server records every request and instant_retries every wait: neither is ours
        # to measure, so they are kept from growing.
        if len(server.requests) > 256:
            server.requests.clear()
        if waits is not None and len(waits) > 256:
            waits.clear()
        tick()
        await anyio.sleep(every)


async def _settle(client: AsyncCometAPI, server: MockServer, seconds: float = 5.0) -> None:
    """Wait until no connection is checked out and the server holds only the idle ones."""
    with anyio.move_on_after(seconds):
        while True:
            pool = client.pool_state()
            if not pool.in_use and server.open_connections <= pool.idle:
                return
            await anyio.sleep(0.01)


async def _settle_fds(target: int, seconds: float = 2.0) -> None:
    # Closed transports give their sockets back on a later loop iteration.
    with anyio.move_on_after(seconds):
        while True:
            if open_fds() <= target:
                return
            await anyio.sleep(0.01)


async def soak(config: SoakConfig, progress: Callable[[str], None] | None = None) -> SoakReport:
    """Run the soak described by ``config``; return its figures (see ``SoakReport.problems``)."""
    report = SoakReport(config)
    rng = random.Random(config.seed)
    warm = max(1, int(config.requests * config.warmup))
    gc.collect()
    report.tasks_before = len(asyncio.all_tasks())
    report.fds_before = open_fds()
    report.rss_before = rss()
    started = time.perf_counter()
    marks = iter(range(1000, 10**9, 1000))
    next_mark = [next(marks)]
    driver: _Driver | None = None
    started_tracing = False
    baseline = 0

    def tick() -> None:
        if progress is not None and driver is not None and driver.done >= next_mark[0]:
            progress(
                f"{driver.done} / {config.requests} requests, {time.perf_counter() - started:.0f} s"
            )
            next_mark[0] = next(marks)

    retries = instant_retries() if config.instant_retries else contextlib.nullcontext()
    try:
        with retries as waits:
            async with MockServer(
                seed=config.seed,
                fail_rate=config.fail_rate,
                drop_rate=config.drop_rate,
                slow_rate=config.slow_rate,
                slow_delay=config.slow_delay,
                chunk_delay=config.chunk_delay,
            ) as server:
                client = AsyncCometAPI(
                    KEY,
                    base_url=server.url,
                    max_connections=config.max_connections,
                    max_retries=config.max_retries,
                )
                async with client:
                    driver = _Driver(client, report)
                    async with anyio.create_task_group() as group:
                        group.start_soon(
                            _sample, client, server, report, config.sample_every, waits, tick
                        )
                        await driver.phase(plan(warm, rng), config.workers)
                        await _settle(client, server)
                        gc.collect()
                        report.rss_after_warmup = rss()
                        if not tracemalloc.is_tracing():
                            tracemalloc.start()
                            started_tracing = True
                        baseline = tracemalloc.get_traced_memory()[0]
                        await driver.phase(
                            plan(config.requests - warm, rng, start=warm), config.workers
                        )
                        await _settle(client, server)
                        group.cancel_scope.cancel()
                    pool = client.pool_state()
                    report.in_use_after, report.idle_after = pool.in_use, pool.idle
                    report.server_open_after = server.open_connections
                    report.rate_in_flight_after = client.rate_state().in_flight
                    for _ in range(3):
                        gc.collect()
                        await anyio.sleep(0.01)
                    report.memory_growth_open = tracemalloc.get_traced_memory()[0] - baseline
                report.connections_total = server.connections_total
                report.server_requests = server.stats.requests
                report.injected_failures = server.stats.injected_failures
                report.slowed = server.stats.slowed
                server.requests.clear()
        driver = None
        await _settle_fds(report.fds_before)
        for _ in range(3):
            # Let finalizers that need the loop (async generators' aclose) run, then collect.
            gc.collect()
            await anyio.sleep(0.01)
        gc.collect()
        report.wall = time.perf_counter() - started
        current, report.memory_peak = tracemalloc.get_traced_memory()
        report.memory_growth = current - baseline
    finally:
        if started_tracing:
            tracemalloc.stop()
    report.fds_after = open_fds()
    report.tasks_after = len(asyncio.all_tasks())
    report.rss_after = rss()
    return report
