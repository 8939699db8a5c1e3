"""The mock server in a process of its own, with a counter of the connections it holds open.

Run as a script (``python _server.py --port P --options JSON``) it is the child: an
``aiocometapi.testing.MockServer`` plus a small control app on a second port. Imported, it
is the parent side: ``mock_server()`` starts the child, waits for its "listening" lines and
always stops it, and ``MockProcess`` reads the counter.

The connection counter lives in the server process, so that counting costs the benchmark
process nothing. While armed (between ``/connections/reset`` and ``/connections/read``) it
reads ``MockServer.open_connections`` (the TCP connections the server holds open right now)
every ``SAMPLE_EVERY`` seconds and keeps the highest; ``connections_total`` gives, exactly,
how many connections were accepted in between. Clients keep their connections alive in a
pool, so a peak lasts many samples and is not missed. The control app listens on a port of
its own, so reading the counter adds no connection to what it counts.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

__all__ = ["SAMPLE_EVERY", "ConnectionProbe", "MockProcess", "mock_server"]

SAMPLE_EVERY = 0.001  # seconds between two reads of the open-connection count, while armed
_LISTENING = re.compile(r"listening on (http://\S+)")
_CONTROL = re.compile(r"control on (http://\S+)")


# --------------------------------------------------------------------------- the parent side


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class MockProcess:
    """A running mock server child: its base URL and its connection counter."""

    def __init__(self, url: str, control_url: str | None) -> None:
        self.url = url
        """The base URL to give clients (``http://127.0.0.1:PORT/v1``)."""
        self._control = control_url

    @property
    def counts_connections(self) -> bool:
        """Whether this server has the counter (a server given by ``--base-url`` has not)."""
        return self._control is not None

    async def _get(self, path: str) -> dict[str, Any]:
        # Imported here: the child side of this module must not need aiohttp's client.
        import aiohttp

        if self._control is None:
            raise RuntimeError("this mock server was not started by the benchmark: no counter")
        connector = aiohttp.TCPConnector(limit=1, force_close=True)
        async with (
            aiohttp.ClientSession(connector=connector) as session,
            session.get(self._control + path) as resp,
        ):
            resp.raise_for_status()
            result: dict[str, Any] = json.loads(await resp.read())
            return result

    async def reset_connections(self) -> dict[str, Any]:
        """Arm the counter: its peak starts from the connections open now."""
        return await self._get("/connections/reset")

    async def read_connections(self) -> dict[str, Any]:
        """Disarm the counter: ``open`` now, ``peak`` since the reset, ``accepted`` since it."""
        return await self._get("/connections/read")

    def connection_probe(self) -> ConnectionProbe:
        """A ``_measure.Probe`` that reads the counter around every timed run."""
        return ConnectionProbe(self)

    async def wait_for_no_connections(self, timeout: float = 10.0) -> None:
        """Wait until the server holds no connection open (a closed client's sockets are gone)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            state = await self._get("/connections/open")
            if state["open"] == 0:
                return
            if loop.time() > deadline:
                raise RuntimeError(f"the server still holds {state['open']} connections open")
            await asyncio.sleep(0.02)


class ConnectionProbe:
    """Around a timed run: the most connections the server held open, and how many it accepted."""

    def __init__(self, process: MockProcess) -> None:
        self._process = process

    async def start(self) -> None:
        await self._process.reset_connections()

    async def stop(self) -> dict[str, float]:
        state = await self._process.read_connections()
        return {"peak_connections": state["peak"], "new_connections": state["accepted"]}


@contextlib.contextmanager
def mock_server(
    *, port: int | None = None, startup_timeout: float = 30.0, **options: Any
) -> Iterator[MockProcess]:
    """Run a ``MockServer(**options)`` in a child process; yield it once it listens.

    The child is always terminated and waited for on the way out, error or not. Its output is
    drained by a thread so that a chatty server can never block on a full pipe.
    """
    port = port or _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-u", __file__, "--port", str(port), "--options", json.dumps(options)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    tail: collections.deque[str] = collections.deque(maxlen=40)
    found: dict[str, str] = {}
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            for key, pattern in (("url", _LISTENING), ("control", _CONTROL)):
                match = pattern.search(line)
                if match and key not in found:
                    found[key] = match.group(1).rstrip("/")
            if len(found) == 2:
                ready.set()
        ready.set()  # EOF: the child died (or closed its stdout); let the waiter look

    reader = threading.Thread(target=drain, name="mock-server-output", daemon=True)
    reader.start()
    try:
        if not ready.wait(startup_timeout) or len(found) < 2:
            output = "\n".join(tail) or "(no output)"
            raise RuntimeError(
                f"the mock server did not report 'listening' within {startup_timeout:g} s "
                f"(exit code {proc.poll()}); its output:\n{output}"
            )
        url = found["url"]
        if not url.endswith("/v1"):
            url += "/v1"
        yield MockProcess(url, found["control"])
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


# --------------------------------------------------------------------------- the child side


class _ConnectionCounter:
    """Samples the server's open connections while armed; see the module docstring."""

    def __init__(self, server: Any) -> None:
        self._server = server
        self._armed = asyncio.Event()
        self._peak = 0
        self._accepted_before = 0
        self._samples = 0

    async def run(self) -> None:
        while True:
            await self._armed.wait()
            self._sample()
            await asyncio.sleep(SAMPLE_EVERY)

    def _sample(self) -> None:
        self._samples += 1
        self._peak = max(self._peak, self._server.open_connections)

    def reset(self) -> dict[str, Any]:
        self._peak = self._server.open_connections
        self._accepted_before = self._server.connections_total
        self._samples = 0
        self._armed.set()
        return {"open": self._peak}

    def read(self) -> dict[str, Any]:
        self._sample()
        self._armed.clear()
        return {
            "open": self._server.open_connections,
            "peak": self._peak,
            "accepted": self._server.connections_total - self._accepted_before,
            "samples": self._samples,
        }


async def _serve(port: int, options: dict[str, Any]) -> None:
    from aiohttp import web

    from aiocometapi.testing import MockServer

    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopped.set)
    async with MockServer(host="127.0.0.1", port=port, **options) as server:
        counter = _ConnectionCounter(server)

        async def reset(request: web.Request) -> web.Response:
            return web.json_response(counter.reset())

        async def read(request: web.Request) -> web.Response:
            return web.json_response(counter.read())

        async def open_now(request: web.Request) -> web.Response:
            return web.json_response({"open": server.open_connections})

        app = web.Application()
        app.router.add_get("/connections/reset", reset)
        app.router.add_get("/connections/read", read)
        app.router.add_get("/connections/open", open_now)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        sampler = asyncio.create_task(counter.run())
        try:
            site = web.TCPSite(runner, "127.0.0.1", 0)
            await site.start()
            control_port = runner.addresses[0][1]
            print(f"aiocometapi mock server listening on {server.url}", flush=True)
            print(f"connection counter control on http://127.0.0.1:{control_port}", flush=True)
            await stopped.wait()
        finally:
            sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await sampler
            await runner.cleanup()


def _child_main() -> None:
    parser = argparse.ArgumentParser(description="the benchmarks' mock server process")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--options", default="{}", help="MockServer keyword arguments, as JSON")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, json.loads(args.options)))


if __name__ == "__main__":
    _child_main()
