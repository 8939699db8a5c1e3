"""Shared fixtures: a real local server, a client pointed at it, and instant retry waits."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading
from collections.abc import AsyncIterator, Iterator

import pytest

from aiocometapi import AsyncCometAPI, instant_retries
from aiocometapi.testing import MockServer

FAKE_KEY = "sk-test-0123456789abcdef-fake"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(autouse=True)
def no_unclosed_resources(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail a test that leaves an aiohttp session or connector unclosed."""
    caplog.set_level(logging.ERROR, logger="asyncio")
    yield
    gc.collect()
    leaks = [r.getMessage() for r in caplog.records if "Unclosed" in r.getMessage()]
    assert not leaks, f"unclosed aiohttp resources: {leaks}"


@pytest.fixture(autouse=True)
def retry_waits(request: pytest.FixtureRequest) -> Iterator[list[float]]:
    """Retry back-off takes no time in tests (unless marked real_waits); waits are recorded."""
    if request.node.get_closest_marker("real_waits"):
        yield []
        return
    with instant_retries() as waits:
        yield waits


@pytest.fixture
async def server() -> AsyncIterator[MockServer]:
    async with MockServer() as mock:
        yield mock


@pytest.fixture
async def client(server: MockServer) -> AsyncIterator[AsyncCometAPI]:
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url) as api:
        yield api


@pytest.fixture
def threaded_server() -> Iterator[MockServer]:
    """A MockServer on a loop in another thread, so that cli.main can run its own loop here."""
    server = MockServer()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(5)
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}
