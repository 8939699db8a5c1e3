"""The cost of usage metering and OpenTelemetry: client CPU per request and per stream chunk.

Four configurations run against the same mock server (its own process, so that its CPU is not
counted), interleaved round by round so that load on the machine falls on all of them alike:

    off     the usage meter removed and no instrumentation (the baseline)
    meter   the default: every client's usage meter
    otel    no meter, ``aiocometapi.otel`` with the SDK and in-memory exporters
    both    the meter and OpenTelemetry

Each round times ``--requests`` plain requests and ``--streams`` streams of ``--words``
chunks per configuration with ``time.process_time``; the report gives the median and the
min-max over rounds, and each configuration's overhead against ``off``. Target: the meter
within 3 %.

    python benchmarks/bench_usage.py [--rounds 21] [--requests 200] [--streams 10] [--words 200]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import platform
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator

from aiocometapi import AsyncCometAPI, otel

CONFIGS = ("off", "meter", "otel", "both")
MODEL = "gpt-4o-mini"
KEY = "sk-bench-not-a-real-key"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def mock_server() -> Iterator[str]:
    """The mock server in a child process; yields its base URL."""
    port = _free_port()
    command = [sys.executable, "-m", "aiocometapi", "mock-server", "--port", str(port)]
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError("the mock server did not start")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        child.terminate()
        child.wait(10)


def _telemetry() -> tuple[object, object]:
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[InMemoryMetricReader()])
    return tracer_provider, meter_provider, exporter  # type: ignore[return-value]


class Bench:
    def __init__(self, url: str, args: argparse.Namespace) -> None:
        self.url = url
        self.args = args
        self.tracer_provider, self.meter_provider, self.exporter = _telemetry()  # type: ignore[misc]

    def _configure(self, client: AsyncCometAPI, config: str) -> None:
        if config in ("off", "otel"):
            # No public switch turns the meter off (it is always on); the benchmark detaches it.
            client._requester._meter = None
        if config in ("otel", "both"):
            otel.instrument(
                tracer_provider=self.tracer_provider,  # type: ignore[arg-type]
                meter_provider=self.meter_provider,  # type: ignore[arg-type]
            )
        else:
            otel.uninstrument()

    async def requests(self, client: AsyncCometAPI, count: int) -> None:
        messages = [{"role": "user", "content": "hello there"}]
        sem = asyncio.Semaphore(32)

        async def one() -> None:
            async with sem:
                await client.chat.completions.create(model=MODEL, messages=messages)

        await asyncio.gather(*(one() for _ in range(count)))

    async def streams(self, client: AsyncCometAPI, count: int, words: int) -> int:
        messages = [{"role": "user", "content": "hello there"}]
        chunks = 0

        async def one() -> None:
            nonlocal chunks
            stream = await client.chat.completions.create(
                model=MODEL, messages=messages, stream=True, extra_body={"mock": {"words": words}}
            )
            async with stream:
                async for _ in stream:
                    chunks += 1

        await asyncio.gather(*(one() for _ in range(count)))
        return chunks

    async def round(self, config: str) -> tuple[float, float]:
        """CPU µs per request and per chunk for one configuration."""
        args = self.args
        async with AsyncCometAPI(KEY, base_url=self.url, max_connections=64) as client:
            self._configure(client, config)
            await self.requests(client, 20)  # warm the pool
            started = time.process_time()
            await self.requests(client, args.requests)
            per_request = (time.process_time() - started) / args.requests * 1e6
            started = time.process_time()
            chunks = await self.streams(client, args.streams, args.words)
            per_chunk = (time.process_time() - started) / chunks * 1e6
        otel.uninstrument()
        self.exporter.clear()  # type: ignore[attr-defined]
        return per_request, per_chunk


def _line(name: str, values: list[float], base: float | None) -> str:
    median = statistics.median(values)
    spread = f"{min(values):7.1f} - {max(values):7.1f}"
    over = "" if base is None else f"  {100 * (median / base - 1):+6.1f} %"
    return f"  {name:<6} {median:8.1f} µs  ({spread}){over}"


async def main(args: argparse.Namespace) -> None:
    with mock_server() as url:
        bench = Bench(url, args)
        per_request: dict[str, list[float]] = {c: [] for c in CONFIGS}
        per_chunk: dict[str, list[float]] = {c: [] for c in CONFIGS}
        for number in range(args.rounds):
            order = CONFIGS if number % 2 == 0 else tuple(reversed(CONFIGS))
            for config in order:
                request_us, chunk_us = await bench.round(config)
                per_request[config].append(request_us)
                per_chunk[config].append(chunk_us)
            print(f"round {number + 1}/{args.rounds} done", file=sys.stderr)
    print(
        f"bench_usage: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"{args.rounds} rounds of {args.requests} requests and {args.streams} streams x "
        f"{args.words} chunks; client CPU (process_time), median (min - max), vs off"
    )
    for title, table in (("per request", per_request), ("per chunk", per_chunk)):
        print(title)
        base = statistics.median(table["off"])
        for config in CONFIGS:
            print(_line(config, table[config], None if config == "off" else base))


def _args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--streams", type=int, default=10)
    parser.add_argument("--words", type=int, default=200)
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(_args()))
