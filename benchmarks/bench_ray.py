"""Ray Data fan-out against a rate-limited server: rows answered, goodput, 429s per answered row.

Four ways to answer the same rows with the same Ray workers (4 actors x concurrency 64 by
default), each against a fresh server process that admits ``--capacity`` requests/s and answers
the rest 429 with ``Retry-After``:

- ``aiocometapi``: ``aiocometapi.ray.chat_completions``, one rate budget shared by the workers;
- ``independent``: the same, each worker's client controlling its rate alone;
- ``openai``: an ``openai.AsyncOpenAI`` per actor in ``map_batches``, its default retries;
- ``ray-llm``: Ray's own ``ray.data.llm.HttpRequestProcessorConfig``, ``qps`` = capacity / workers.

Goodput is measured at the server, from its first chat request to its last 200 (actor start-up
on a small machine takes seconds and is not the client's doing); wall time is shown beside it.
Run by hand: ``python benchmarks/bench_ray.py`` (``--quick`` for a smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import inspect
import json
import os
import platform
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

MODEL = "gpt-5.4-mini"
API_KEY = "sk-bench-fake-key"
VARIANTS = ("aiocometapi", "independent", "openai", "ray-llm")


def prompt(index: int) -> str:
    return f"request number {index}"


def body(index: int) -> dict[str, Any]:
    return {"model": MODEL, "messages": [{"role": "user", "content": prompt(index)}]}


# --------------------------------------------------------------------------- the server


def serve(port: int, capacity: float) -> None:
    """The child process: a MockServer that also records its first request and last answer."""
    from dataclasses import dataclass as plain_dataclass

    from aiohttp import web

    from aiocometapi.testing import MockServer, MockStats

    @plain_dataclass
    class TimedStats(MockStats):
        first_request: float = 0.0
        last_answer: float = 0.0

    class TimedServer(MockServer):
        def __init__(self, **options: Any) -> None:
            super().__init__(**options)
            self.stats = TimedStats()

        async def _chat(
            self, request: web.BaseRequest, number: int, body: Any
        ) -> web.StreamResponse:
            stats = self.stats
            assert isinstance(stats, TimedStats)
            if not stats.first_request:
                stats.first_request = time.time()
            response = await super()._chat(request, number, body)
            if response.status == 200:
                stats.last_answer = time.time()
            return response

    async def main() -> None:
        async with TimedServer(port=port, rps_limit=capacity):
            print(f"listening on {port}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())


@contextlib.contextmanager
def server(capacity: float) -> Iterator[str]:
    """A fresh server process (an empty rate window); its base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), str(capacity)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        if "listening" not in line:
            raise RuntimeError(f"the server did not start: {line!r}")
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        child.terminate()
        child.wait(10)


def server_stats(url: str) -> dict[str, Any]:
    request = urllib.request.Request(
        url + "/mock/stats", headers={"Authorization": f"Bearer {API_KEY}"}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    return stats


# --------------------------------------------------------------------------- the variants


class OpenAIWorker:
    """What users write today: an ``openai.AsyncOpenAI`` per actor, a semaphore per actor."""

    def __init__(self, base_url: str, concurrency: int) -> None:
        self._base_url = base_url
        self._concurrency = concurrency
        self._client: Any = None
        self._gate: asyncio.Semaphore | None = None

    async def __call__(self, batch: Any) -> Any:
        import openai
        import pyarrow as pa

        if self._client is None:
            self._client = openai.AsyncOpenAI(
                api_key=os.environ["COMETAPI_KEY"], base_url=self._base_url
            )
            self._gate = asyncio.Semaphore(self._concurrency)
        gate = self._gate
        assert gate is not None

        async def one(index: int) -> tuple[str | None, str | None]:
            async with gate:
                try:
                    completion = await self._client.chat.completions.create(**body(index))
                except Exception as exc:  # after openai's own retries
                    return None, type(exc).__name__
            return completion.choices[0].message.content, None

        indexes = batch.column("i").to_pylist()
        results = await asyncio.gather(*(one(i) for i in indexes))
        yield pa.table(
            {
                "i": indexes,
                "content": [content for content, _ in results],
                "error": [error for _, error in results],
            }
        )


@dataclass
class Outcome:
    name: str
    answered: int = 0
    failed: int = 0
    wall: float = 0.0
    stopped_by: str | None = None
    server: dict[str, Any] = field(default_factory=dict)

    @property
    def span(self) -> float:
        first, last = self.server.get("first_request", 0.0), self.server.get("last_answer", 0.0)
        return last - first if first and last > first else 0.0


def run_variant(name: str, url: str, args: argparse.Namespace) -> Outcome:
    import ray.data

    from aiocometapi.ray import chat_completions

    outcome = Outcome(name)
    rows = ray.data.from_items([{"i": i, "request": body(i)} for i in range(args.rows)])
    if name in ("aiocometapi", "independent"):
        planned = chat_completions(
            rows,
            workers=args.workers,
            concurrency=args.concurrency,
            base_url=url,
            shared_budget=name == "aiocometapi",
        )

        def answer(row: dict[str, Any]) -> str | None:
            return None if row["error"] is not None else row["content"]
    elif name == "openai":
        # The same actors as aiocometapi.ray's: a quarter of a CPU, four batches at once.
        strategy: dict[str, Any] = {"size": args.workers}
        remote: dict[str, Any] = {}
        if (
            "max_concurrent_calls_per_actor"
            in inspect.signature(ray.data.ActorPoolStrategy).parameters
        ):
            strategy["max_concurrent_calls_per_actor"] = 4
        else:
            remote["max_concurrency"] = 4
        planned = rows.drop_columns(["request"]).map_batches(
            OpenAIWorker,
            fn_constructor_kwargs={"base_url": url, "concurrency": args.concurrency},
            compute=ray.data.ActorPoolStrategy(**strategy),
            batch_size=args.concurrency,
            batch_format="pyarrow",
            num_cpus=0.25,
            **remote,
        )

        def answer(row: dict[str, Any]) -> str | None:
            return None if row["error"] is not None else row["content"]
    else:
        from ray.data.llm import HttpRequestProcessorConfig, build_processor

        config = HttpRequestProcessorConfig(
            url=url + "/chat/completions",
            headers={"Authorization": f"Bearer {API_KEY}"},
            qps=max(1, int(args.capacity // args.workers)),
            concurrency=args.workers,
            batch_size=args.concurrency,
        )
        processor = build_processor(
            config,
            preprocess=lambda row: {"i": row["i"], "payload": row["request"]},
            postprocess=lambda row: {
                "i": row["i"],
                "content": row["http_response"]["choices"][0]["message"]["content"],
            },
        )
        planned = processor(rows)

        def answer(row: dict[str, Any]) -> str | None:
            content: str | None = row["content"]
            return content

    started = time.perf_counter()
    try:
        for batch in planned.iter_batches(batch_format="pyarrow", batch_size=None):
            for row in batch.to_pylist():
                if answer(row) == f"Echo: {prompt(row['i'])}":
                    outcome.answered += 1
                else:
                    outcome.failed += 1
    except Exception as exc:  # the job failed: what came out before counts
        outcome.stopped_by = f"{type(exc).__name__}: {str(exc).splitlines()[0][:120]}"
    outcome.wall = time.perf_counter() - started
    outcome.server = server_stats(url)
    return outcome


# --------------------------------------------------------------------------- the report


def versions() -> str:
    found = []
    for package in ("aiocometapi", "ray", "aiohttp", "openai", "pyarrow"):
        try:
            found.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            found.append(f"{package} (absent)")
    return (
        f"Python {platform.python_version()} on {platform.machine()}, {os.cpu_count()} CPUs; "
        + ", ".join(found)
    )


def _share(part: int, whole: int) -> str:
    """A percentage that shows 100% only when it is."""
    share = part / whole if whole else 0.0
    return f"{share:.0%}" if part == whole else f"{min(share, 0.9999):.2%}"


def print_table(outcomes: list[Outcome], args: argparse.Namespace) -> None:
    lines = [
        f"### {args.rows:,} rows, {args.workers} Ray workers x concurrency {args.concurrency}, "
        f"server capacity {args.capacity:g} requests/s with Retry-After",
        "",
        "| variant | rows answered | goodput (% of capacity) | 429s | 429s per answered row "
        "| server span s | wall s | stopped by |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        ok = int(o.server.get("responses_by_status", {}).get("200", 0))
        goodput = ok / o.span / args.capacity if o.span else 0.0
        refused = int(o.server.get("rate_limited", 0))
        per_row = f"{refused / o.answered:.3f}" if o.answered else "-"
        lines.append(
            f"| {o.name} | {o.answered:,} ({_share(o.answered, args.rows)}) | {goodput:.0%} | "
            f"{refused:,} | {per_row} | {o.span:.1f} | {o.wall:.1f} | {o.stopped_by or '-'} |"
        )
    ours = next((o for o in outcomes if o.name == "aiocometapi"), None)
    if ours is not None and ours.span:
        ok = int(ours.server.get("responses_by_status", {}).get("200", 0))
        goodput = ok / ours.span / args.capacity
        per_row = ours.server.get("rate_limited", 0) / max(1, ours.answered)
        lines += [
            "",
            f"- aiocometapi rows answered: **{_share(ours.answered, args.rows)}** (target 100%: "
            f"{'met' if ours.answered == args.rows else 'MISSED'})",
            f"- aiocometapi goodput: **{goodput:.0%}** (target >= 90%: "
            f"{'met' if goodput >= 0.9 else 'MISSED'})",
            f"- aiocometapi 429s per answered row: **{per_row:.3f}** (target <= 0.1: "
            f"{'met' if per_row <= 0.1 else 'MISSED'})",
        ]
    print("\n".join([*lines, ""]), flush=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--capacity", type=float, default=200.0)
    parser.add_argument("--only", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true", help="1,000 rows")
    args = parser.parse_args(argv)
    if args.quick:
        args.rows = 1000
    only = [name for name in VARIANTS if name in args.only.split(",")]
    os.environ["COMETAPI_KEY"] = API_KEY  # the local workers inherit it from here
    import ray

    ray.init(num_cpus=os.cpu_count() or 2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    print(f"## Ray fan-out benchmark\n\n{versions()}\n", flush=True)
    outcomes = []
    for name in only:
        with server(args.capacity) as url:
            outcome = run_variant(name, url, args)
        outcomes.append(outcome)
        print(
            f"  {name}: {outcome.answered} answered, {outcome.failed} failed, span "
            f"{outcome.span:.1f} s, wall {outcome.wall:.1f} s, 429s "
            f"{outcome.server.get('rate_limited')}, stopped by {outcome.stopped_by}",
            file=sys.stderr,
            flush=True,
        )
    print_table(outcomes, args)
    ray.shutdown()


def _entry(argv: list[str]) -> Callable[[], None]:
    if len(argv) == 4 and argv[1] == "--serve":
        return lambda: serve(int(argv[2]), float(argv[3]))
    return lambda: main(argv[1:])


if __name__ == "__main__":
    _entry(sys.argv)()
