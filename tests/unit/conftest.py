"""Unit tests are pure: a test that opens a network socket or sleeps fails at once.

The event loop's own wake-up pipe (an AF_UNIX socket pair) and zero-length sleeps (which only
yield to the loop) stay allowed.
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from typing import Any

import anyio
import pytest

_NETWORK = (socket.AF_INET, socket.AF_INET6)


class PureTestError(AssertionError):
    """A unit test tried to do I/O or wait: it belongs in tests/integration/."""


@pytest.fixture(autouse=True)
def no_sockets_no_sleeps(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Refuse network sockets and real sleeps for the duration of each unit test."""
    original_init = socket.socket.__init__
    original_sleep = asyncio.sleep
    original_anyio_sleep = anyio.sleep

    def guarded_init(
        self: socket.socket, family: Any = -1, type: Any = -1, proto: int = -1, fileno: Any = None
    ) -> None:
        if fileno is None and (family in _NETWORK or family == -1):
            raise PureTestError("a unit test opened a network socket")
        original_init(self, family, type, proto, fileno)

    def guarded_sleep(seconds: float) -> None:
        if seconds > 0:
            raise PureTestError(f"a unit test slept {seconds} s")

    async def guarded_async_sleep(delay: float, result: Any = None) -> Any:
        if delay > 0:
            raise PureTestError(f"a unit test slept {delay} s")
        return await original_sleep(0, result)

    async def guarded_anyio_sleep(delay: float) -> None:
        if delay > 0:
            raise PureTestError(f"a unit test slept {delay} s")
        await original_anyio_sleep(0)

    monkeypatch.setattr(socket.socket, "__init__", guarded_init)
    monkeypatch.setattr(time, "sleep", guarded_sleep)
    monkeypatch.setattr(asyncio, "sleep", guarded_async_sleep)
    monkeypatch.setattr(anyio, "sleep", guarded_anyio_sleep)
    yield


@pytest.fixture(autouse=True)
def no_unclosed_resources() -> Iterator[None]:
    """Replaces the suite-wide check for unclosed aiohttp sessions: a unit test opens none
    (the guard above sees to it), so the garbage collection that check runs is skipped."""
    yield
