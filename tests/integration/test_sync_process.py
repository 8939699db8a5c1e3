"""The sync client in a process of its own: Ctrl-C mid-request, and an exit without close()."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from aiocometapi.testing import MockServer
from conftest import FAKE_KEY
from rawserver import RawServer, stall


@pytest.fixture
def stalling_server() -> Iterator[RawServer]:
    """A raw server, on a loop in another thread, that reads each request and never answers."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    server = RawServer(stall, then=stall)
    asyncio.run_coroutine_threadsafe(server.__aenter__(), loop).result(5)
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.__aexit__(None, None, None), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def run_script(tmp_path: Path, source: str, base_url: str, **env: str) -> subprocess.Popen[str]:
    script = tmp_path / "script.py"
    script.write_text(textwrap.dedent(source), encoding="utf-8")
    environment = {**os.environ, "COMETAPI_KEY": FAKE_KEY, "COMETAPI_BASE_URL": base_url, **env}
    return subprocess.Popen(
        [sys.executable, "-W", "always::ResourceWarning", str(script)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT is POSIX's")
def test_ctrl_c_cancels_the_request_and_closes_its_connection(
    stalling_server: RawServer, tmp_path: Path
) -> None:
    """SIGINT during a request cancels it: the server sees the connection closed while the
    process still runs, and the process ends with the KeyboardInterrupt."""
    process = run_script(
        tmp_path,
        """
        import time
        from aiocometapi import CometAPI

        client = CometAPI()
        try:
            client.chat.completions.create(
                model="gpt-5.4-mini", messages=[{"role": "user", "content": "wait"}]
            )
        except KeyboardInterrupt:
            print("interrupted, connections in use:", client._async._transport.pool()[0],
                  flush=True)
            time.sleep(3)  # the server must see the close before this process ends
            raise
        """,
        stalling_server.url,
    )
    try:
        deadline = time.monotonic() + 20
        while not stalling_server.requests:
            assert time.monotonic() < deadline and process.poll() is None, "no request arrived"
            time.sleep(0.01)
        assert not stalling_server.connections[0].closed.is_set()
        process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + 2.5
        while not stalling_server.connections[0].closed.is_set():
            assert time.monotonic() < deadline, "the connection was not closed"
            time.sleep(0.01)
        assert process.poll() is None  # closed by the cancellation, not by the exit
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert "interrupted, connections in use: 0" in out
    assert process.returncode == -signal.SIGINT
    assert err.rstrip().endswith("KeyboardInterrupt"), err
    assert "Unclosed" not in err and "ResourceWarning" not in err


def test_never_closed_client_exits_quietly(threaded_server: MockServer, tmp_path: Path) -> None:
    """A module-level sync client that is never closed lets the process exit at once, silently."""
    process = run_script(
        tmp_path,
        """
        from aiocometapi import CometAPI

        client = CometAPI()
        completion = client.chat.completions.create(
            model="gpt-5.4-mini", messages=[{"role": "user", "content": "bye"}]
        )
        print(completion.choices[0].message.content)
        """,
        threaded_server.url,
    )
    started = time.monotonic()
    out, err = process.communicate(timeout=30)
    assert (process.returncode, out, err) == (0, "Echo: bye\n", "")
    assert time.monotonic() - started < 15
    deadline = time.monotonic() + 5
    while threaded_server.open_connections:
        assert time.monotonic() < deadline
        time.sleep(0.01)
