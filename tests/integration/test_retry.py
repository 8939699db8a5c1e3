"""All retrying in one place, against servers: stream reopening, shared tries, the test switch.

The arithmetic of tries and waits is in tests/unit/test_retry_maths.py.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aiocometapi import (
    AsyncCometAPI,
    IncompleteStreamError,
    InternalServerError,
    instant_retries,
)
from aiocometapi.testing import MockServer
from conftest import FAKE_KEY, user
from rawserver import Conn, RawServer, Script, response, sse_head

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"


async def _headers_then_close(conn: Conn) -> None:
    """A stream that sends its headers and ends before its first event."""
    await conn.request()
    await conn.send(sse_head())
    await conn.close()


async def _error_500(conn: Conn) -> None:
    await conn.request()
    await conn.send(response(b'{"error": {"message": "boom"}}', status=500))
    await conn.close()


async def _ask_stream(client: AsyncCometAPI) -> str:
    stream = await client.chat.completions.create(model=MODEL, messages=[user("hi")], stream=True)
    async with stream:
        return (await stream.final()).choices[0].message.content or ""


# --------------------------------------------------------------------------- stream reopening


async def test_stream_reopening_backs_off_more_each_time(retry_waits: list[float]) -> None:
    """A stream cut before its first chunk three times waits longer before each new try."""
    scripts: list[Script] = [_headers_then_close] * 3
    async with (
        RawServer(*scripts) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=3) as client,
    ):
        assert await _ask_stream(client) == "healthy"
    assert len(server.requests) == 4
    assert len(retry_waits) == 3
    assert retry_waits[0] < retry_waits[1] < retry_waits[2], retry_waits
    for number, wait in enumerate(retry_waits, start=1):  # 0.5 s doubling, 25% jitter at most
        assert 0.75 * 0.5 * 2 ** (number - 1) <= wait <= 0.5 * 2 ** (number - 1)


async def test_open_and_reopen_share_one_budget_of_tries(retry_waits: list[float]) -> None:
    """Failed opens and a body cut before the first chunk count against the same max_retries."""
    scripts: list[Script] = [_error_500, _headers_then_close, _error_500]
    async with (
        RawServer(*scripts) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=2) as client,
    ):
        with pytest.raises(InternalServerError):
            await _ask_stream(client)
    assert len(server.requests) == 3  # three tries in all, never a fourth
    assert len(retry_waits) == 2 and retry_waits[0] < retry_waits[1]


async def test_a_stream_out_of_tries_raises_what_cut_it(retry_waits: list[float]) -> None:
    """When the last try's body ends before any chunk, that IncompleteStreamError is raised."""
    scripts: list[Script] = [_headers_then_close] * 2
    async with (
        RawServer(*scripts) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=1) as client,
    ):
        with pytest.raises(IncompleteStreamError):
            await _ask_stream(client)
    assert len(server.requests) == 2 and len(retry_waits) == 1


async def test_fan_out_counts_a_reopened_streams_tries(retry_waits: list[float]) -> None:
    """A fan-out result's attempts include the tries that reopened its stream."""
    async with (
        RawServer(_headers_then_close) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as client,
    ):
        requests = [{"model": MODEL, "messages": [user("hi")], "stream": True}]
        results = [r async for r in client.chat.completions.fan_out(requests)]
    assert results[0].ok and results[0].attempts == 2


# --------------------------------------------------------------------------- the test switch


@pytest.mark.real_waits
def test_the_switch_reaches_a_client_in_another_thread() -> None:
    """instant_retries() in the test's thread also skips the waits of a loop in another thread."""
    outcome: list[object] = []

    async def in_thread() -> None:
        async with MockServer() as server, AsyncCometAPI(FAKE_KEY, base_url=server.url) as client:
            server.reply_error(429, "slow", headers={"Retry-After": "30"})
            completion = await client.chat.completions.create(model=MODEL, messages=[user("x")])
            outcome.append(completion.choices[0].message.content)

    def run() -> None:
        try:
            asyncio.run(in_thread())
        except BaseException as exc:  # reported below, in the test's thread
            outcome.append(exc)

    started = time.monotonic()
    with instant_retries() as waits:
        thread = threading.Thread(target=run)
        thread.start()
        thread.join(20)
    assert outcome == ["Echo: x"] and waits == [30.0]
    assert time.monotonic() - started < 10


@pytest.mark.real_waits
async def test_the_switch_makes_rate_limit_pauses_instant() -> None:
    """Inside instant_retries(), the rate controller's cool-down after a 429 takes no time."""
    async with MockServer() as server, AsyncCometAPI(FAKE_KEY, base_url=server.url) as client:
        server.reply_error(429, "slow", headers={"Retry-After": "20"})
        with instant_retries() as waits:
            started = time.monotonic()
            await client.chat.completions.create(model=MODEL, messages=[user("a")])
            await client.chat.completions.create(model=MODEL, messages=[user("b")])
            elapsed = time.monotonic() - started
        assert waits == [20.0] and client.rate_state().paused_for > 10
        assert client.rate_state().waits >= 1 and elapsed < 5
