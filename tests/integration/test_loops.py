"""One client across event loops: asyncio.run() after asyncio.run(), threads, and never closing."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from aiocometapi import AsyncCometAPI, ConfigurationError
from aiocometapi.testing import MockServer
from conftest import FAKE_KEY, user

MODEL = "gpt-5.4-mini"


async def ask(client: AsyncCometAPI, text: str = "hi") -> str | None:
    completion = await client.chat.completions.create(model=MODEL, messages=[user(text)])
    return completion.choices[0].message.content


def wait_for(condition: Callable[[], bool], within: float = 5.0) -> None:
    """Poll ``condition`` (the server's counters, read from another thread) until it holds."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.01)


def test_module_level_client_across_three_asyncio_runs(
    threaded_server: MockServer, tmp_path: Path
) -> None:
    """A module-level client serves three asyncio.run() calls, never closed, with stderr empty."""
    script = tmp_path / "three_runs.py"
    script.write_text(
        textwrap.dedent(
            """
            import asyncio
            from aiocometapi import AsyncCometAPI

            client = AsyncCometAPI()

            async def main(i):
                c = await client.chat.completions.create(
                    model="gpt-5.4-mini", messages=[{"role": "user", "content": f"run {i}"}]
                )
                print(c.choices[0].message.content)
                if i == 2:  # and one that streams, and a second client never closed
                    stream = await client.chat.completions.create(
                        model="gpt-5.4-mini", messages=[{"role": "user", "content": "s"}],
                        stream=True,
                    )
                    print((await stream.final()).choices[0].message.content)
                    other = AsyncCometAPI()
                    print(len(await other.models.list()))

            for i in range(3):
                asyncio.run(main(i))
            """
        ),
        encoding="utf-8",
    )
    env = {**os.environ, "COMETAPI_KEY": FAKE_KEY, "COMETAPI_BASE_URL": threaded_server.url}
    done = subprocess.run(
        # -W always::ResourceWarning: an unclosed socket or transport would print too.
        [sys.executable, "-W", "always::ResourceWarning", str(script)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split("\n") == [
        "Echo: run 0",
        "Echo: run 1",
        "Echo: run 2",
        "Echo: s",
        "5",
        "",
    ]
    assert done.stderr == ""
    assert threaded_server.connections_total == 4  # a pool per loop, and the second client's


def test_next_loop_after_one_closed_without_finalizing(threaded_server: MockServer) -> None:
    """After a loop closed without asyncio.run's clean-up, the next loop works; the old
    connection is closed quietly."""
    client = AsyncCometAPI(FAKE_KEY, base_url=threaded_server.url)
    loop = asyncio.new_event_loop()
    assert loop.run_until_complete(ask(client, "first")) == "Echo: first"
    loop.close()  # no shutdown_asyncgens(): the client's pool is left in a dead loop
    assert threaded_server.open_connections == 1
    assert asyncio.run(ask(client, "second")) == "Echo: second"
    wait_for(lambda: threaded_server.open_connections == 0)
    asyncio.run(client.aclose())
    gc.collect()  # ResourceWarnings are errors under the project's filters


def test_next_loop_in_another_thread(threaded_server: MockServer) -> None:
    """A client used by a thread that ended works from the main thread's loop, and back."""
    client = AsyncCometAPI(FAKE_KEY, base_url=threaded_server.url)
    answers: list[str | None] = []
    worker = threading.Thread(target=lambda: answers.append(asyncio.run(ask(client, "thread"))))
    worker.start()
    worker.join(10)
    answers.append(asyncio.run(ask(client, "main")))
    worker = threading.Thread(target=lambda: answers.append(asyncio.run(ask(client, "again"))))
    worker.start()
    worker.join(10)
    assert answers == ["Echo: thread", "Echo: main", "Echo: again"]
    wait_for(lambda: threaded_server.open_connections == 0)
    asyncio.run(client.aclose())


def test_two_running_loops_get_a_clear_error(threaded_server: MockServer) -> None:
    """While the client's loop runs in another thread, a second loop gets a ConfigurationError
    naming the fix, and the first loop's use goes on unharmed."""
    client = AsyncCometAPI(FAKE_KEY, base_url=threaded_server.url)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        first = asyncio.run_coroutine_threadsafe(ask(client, "one"), loop).result(10)
        with pytest.raises(ConfigurationError) as raised:
            asyncio.run(ask(client, "two"))
        assert "per event loop" in str(raised.value)
        assert "aiocometapi.CometAPI" in str(raised.value)
        again = asyncio.run_coroutine_threadsafe(ask(client, "three"), loop).result(10)
        assert (first, again) == ("Echo: one", "Echo: three")
        asyncio.run(client.aclose())  # from another loop: closed in its own
        wait_for(lambda: threaded_server.open_connections == 0)
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


@pytest.mark.anyio
async def test_dropped_client_closes_its_connections(server: MockServer) -> None:
    """A client dropped without aclose() closes its pooled connections once collected."""
    client = AsyncCometAPI(FAKE_KEY, base_url=server.url)
    assert await ask(client) == "Echo: hi"
    assert server.open_connections == 1
    del client
    gc.collect()
    for _ in range(200):
        if server.open_connections == 0:
            break
        await asyncio.sleep(0.01)
    assert server.open_connections == 0
