"""The unit directory's guard works: opening a socket or sleeping fails the test that does it."""

from __future__ import annotations

import asyncio
import socket
import time

import anyio
import pytest

from unit.conftest import PureTestError

pytestmark = pytest.mark.anyio


def test_a_network_socket_is_refused() -> None:
    """socket.create_connection in a unit test fails before any packet is sent."""
    with pytest.raises(PureTestError, match="network socket"):
        socket.create_connection(("127.0.0.1", 9))


async def test_an_asyncio_connection_is_refused() -> None:
    """An asyncio (hence aiohttp) connection in a unit test fails the same way."""
    with pytest.raises(PureTestError, match="network socket"):
        await asyncio.open_connection("127.0.0.1", 9)


def test_a_blocking_sleep_is_refused() -> None:
    """time.sleep in a unit test fails instead of waiting."""
    with pytest.raises(PureTestError, match="slept"):
        time.sleep(0.01)


async def test_sleeping_is_refused_yielding_is_not() -> None:
    """A real sleep fails; a zero sleep (a yield to the loop) and a socket pair are fine."""
    with pytest.raises(PureTestError, match="slept"):
        await anyio.sleep(0.01)
    await anyio.sleep(0)
    left, right = socket.socketpair()
    left.close()
    right.close()
