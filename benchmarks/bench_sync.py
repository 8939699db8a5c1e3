"""The sync client's cost per request: aiocometapi.CometAPI beside openai.OpenAI.

Both clients talk to the mock server (``aiocometapi.testing.run``) in a process of its own, so
the CPU measured (``time.process_time``: every thread of this process, the sync client's event
loop thread included) is the client's alone. Three cases, each run by both clients in turn,
``--repeat`` times, the order alternating so that neither always runs first:

- ``plain``: sequential non-streamed requests; CPU µs and wall µs per request.
- ``stream``: streamed requests of ``--words`` words each; CPU µs per chunk.
- ``threads``: ``--threads`` threads sharing one client, each sending requests; CPU µs per
  request and requests/s.

The report gives the median and the min-max of the repeats. Run it by hand:
``python benchmarks/bench_sync.py`` (about a minute), ``--quick`` for a smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import importlib.metadata
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

MODEL = "gpt-5.4-mini"
KEY = "sk-bench-not-a-real-key"
MESSAGES = [{"role": "user", "content": "Say something short."}]


# --------------------------------------------------------------------------- the server


@contextlib.contextmanager
def mock_server() -> Iterator[str]:
    """The mock server in a child process; its base URL. Always stopped on the way out."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    code = f"from aiocometapi.testing import run; run(host='127.0.0.1', port={port})"
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            found = re.search(r"listening on (http://\S+)", line)
            if found:
                threading.Thread(target=proc.stdout.read, daemon=True).start()  # keep draining
                yield found.group(1)
                return
        raise RuntimeError("the mock server did not start")
    finally:
        proc.terminate()
        proc.wait(10)


# --------------------------------------------------------------------------- the clients


class Client:
    """One SDK's sync client, driven the same way for both."""

    name: str
    api: Any

    def plain(self) -> None:
        completion = self.api.chat.completions.create(model=MODEL, messages=MESSAGES)
        assert completion.choices[0].message.content

    def stream(self, words: int) -> int:
        chunks = 0
        stream = self.api.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, extra_body={"mock": {"words": words}}
        )
        with stream:
            for _ in stream:
                chunks += 1
        return chunks

    def close(self) -> None:
        self.api.close()


class Comet(Client):
    name = "aiocometapi.CometAPI"

    def __init__(self, base_url: str) -> None:
        from aiocometapi import CometAPI

        self.api = CometAPI(KEY, base_url=base_url, max_retries=0)


class OpenAI(Client):
    name = "openai.OpenAI"

    def __init__(self, base_url: str) -> None:
        import openai

        self.api = openai.OpenAI(api_key=KEY, base_url=base_url, max_retries=0)


# --------------------------------------------------------------------------- the cases


def timed(work: Callable[[], int]) -> tuple[float, float, int]:
    """(CPU seconds, wall seconds, units of work) of one run, with the collector quiet."""
    gc.collect()
    gc.disable()
    try:
        cpu, wall = time.process_time(), time.perf_counter()
        units = work()
        return time.process_time() - cpu, time.perf_counter() - wall, units
    finally:
        gc.enable()


def plain(client: Client, n: int) -> int:
    for _ in range(n):
        client.plain()
    return n


def streamed(client: Client, n: int, words: int) -> int:
    return sum(client.stream(words) for _ in range(n))


def threaded(client: Client, n: int, threads: int) -> int:
    with ThreadPoolExecutor(threads) as pool:
        for future in [pool.submit(plain, client, n) for _ in range(threads)]:
            future.result()
    return n * threads


def spread(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--streams", type=int, default=40)
    parser.add_argument("--words", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--quick", action="store_true", help="small sizes, a smoke run")
    args = parser.parse_args()
    if args.quick:
        args.repeat, args.requests, args.streams, args.words = 2, 40, 4, 50

    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}"
        for name in ("aiocometapi", "openai", "aiohttp", "anyio", "msgspec")
    )
    print(f"Python {platform.python_version()} on {platform.machine()}, {versions}")
    print(f"{args.repeat} repeats, alternating order; median (min-max)\n")

    cases: dict[str, Callable[[Client], int]] = {
        "plain": lambda c: plain(c, args.requests),
        "stream": lambda c: streamed(c, args.streams, args.words),
        "threads": lambda c: threaded(c, args.requests // args.threads, args.threads),
    }
    results: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
    with mock_server() as url:
        clients: list[Client] = [Comet(url), OpenAI(url)]
        try:
            for client in clients:  # warm up: connections, imports, caches
                client.plain()
                client.stream(10)
            for repeat in range(args.repeat):
                order = clients if repeat % 2 == 0 else clients[::-1]
                for case, run in cases.items():
                    for client in order:
                        results.setdefault((case, client.name), []).append(
                            timed(lambda: run(client))  # noqa: B023 - run at once
                        )
                print(f"repeat {repeat + 1}/{args.repeat} done", file=sys.stderr)
        finally:
            for client in clients:
                client.close()

    units = {"plain": "request", "stream": "chunk", "threads": "request"}
    print("| case | client | CPU µs per unit | wall µs per unit | units/s |")
    print("| --- | --- | --- | --- | --- |")
    for (case, name), runs in results.items():
        cpu = [c / u * 1e6 for c, _, u in runs]
        wall = [w / u * 1e6 for _, w, u in runs]
        rate = [u / w for _, w, u in runs]
        print(
            f"| {case} ({units[case]}) | {name} | {spread(cpu)} | {spread(wall)} | {spread(rate)} |"
        )


if __name__ == "__main__":
    main()
