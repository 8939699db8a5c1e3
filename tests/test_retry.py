"""All retrying in one place: the tries of a request, stream reopening, and the test switch."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from aiocometapi import (
    AsyncCometAPI,
    IncompleteStreamError,
    InternalServerError,
    RetryPolicy,
    instant_retries,
)
from aiocometapi._retry import Retries, backoff, count_attempts, retry_after, wait_for
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


# --------------------------------------------------------------------------- the tries, alone


async def test_retries_object_counts_every_try() -> None:
    """Retries.run tries max_retries + 1 times in all, counting each in count_attempts too."""
    tries = Retries(RetryPolicy(max_retries=2))

    async def failing() -> None:
        raise InternalServerError("boom", status_code=500)

    with (
        count_attempts() as counted,
        instant_retries() as waits,
        pytest.raises(InternalServerError),
    ):
        await tries.run(failing)
    assert tries.tries == 3 and counted == [3] and len(waits) == 2 and tries.left == 0


async def test_resume_with_no_try_left_raises_the_failure_at_once() -> None:
    """Resuming a request whose tries are used up raises the failure given, without waiting."""
    tries = Retries(RetryPolicy(max_retries=0))

    async def fine() -> str:
        return "ok"

    assert await tries.run(fine) == "ok"
    failure = IncompleteStreamError("cut", partial=None)
    with instant_retries() as waits, pytest.raises(IncompleteStreamError) as info:
        await tries.resume(failure, fine)
    assert info.value is failure and waits == []


def test_backoff_doubles_up_to_its_cap() -> None:
    """Back-off starts at initial_wait, doubles per retry, stops at max_wait, jitter 25% below."""
    policy = RetryPolicy(initial_wait=0.5, max_wait=8.0)
    for number, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0), (5000, 8.0)]:
        assert 0.75 * base <= backoff(policy, number) <= base


def test_retry_after_wins_over_backoff_up_to_its_cap() -> None:
    """A status error's Retry-After is the wait, cut to max_retry_after; without one, back-off."""
    policy = RetryPolicy(max_retry_after=10.0)
    asked = InternalServerError("busy", status_code=503, headers={"retry-after": "3"})
    too_long = InternalServerError("busy", status_code=503, headers={"retry-after": "300"})
    assert wait_for(policy, asked, 4) == 3.0
    assert wait_for(policy, too_long, 1) == 10.0
    assert 0.375 <= wait_for(policy, None, 1) <= 0.5
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0


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


async def test_switch_off_again_after_the_block() -> None:
    """Leaving instant_retries() restores the switch as it was (nested blocks included)."""
    with instant_retries() as outer:
        with instant_retries() as inner:
            assert inner is not outer
        tries = Retries(RetryPolicy(max_retries=1))

        async def once() -> None:
            if tries.tries == 1:
                raise InternalServerError("boom", status_code=500)

        await tries.run(once)
    assert len(outer) == 1 and inner == []
