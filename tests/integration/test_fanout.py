"""fan_out and the client-wide rate controller, against the real local server."""

from __future__ import annotations

import asyncio
import contextlib
import time
import tracemalloc
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

from aiocometapi import (
    APIConnectionError,
    AsyncCometAPI,
    AuthenticationError,
    CometAPIError,
    FanOutResult,
    SystemicFailureError,
)
from aiocometapi._fanout import fan_out
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion
from conftest import FAKE_KEY, user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"


def requests(n: int, **extra: Any) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"model": MODEL, "messages": [user(f"request {i}")], **extra}


def client_tasks() -> int:
    """Tasks in this loop other than the local server's connection handlers."""
    return sum(
        1
        for t in asyncio.all_tasks()
        if getattr(t.get_coro(), "__qualname__", "") != "RequestHandler.start"
    )


async def settle(client: AsyncCometAPI, server: MockServer, baseline: int) -> None:
    """Wait (2 s at most) until no task is left over and only idle pooled connections remain."""
    with anyio.fail_after(2):
        while (
            client.pool_state().in_use
            or server.open_connections > client.pool_state().idle
            or client_tasks() > baseline
        ):
            await anyio.sleep(0.01)


async def collect(results: AsyncIterator[FanOutResult]) -> list[FanOutResult]:
    return [r async for r in results]


async def test_one_result_per_input_under_failures() -> None:
    """With 500s and dropped connections injected, every input still yields exactly one result."""
    async with (
        MockServer(fail_rate=0.3, drop_rate=0.1, seed=7) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=2) as client,
    ):
        results = await collect(client.chat.completions.fan_out(requests(300), concurrency=25))
    assert sorted(r.index for r in results) == list(range(300))
    for r in results:
        assert (r.completion is None) != (r.error is None)
        assert r.attempts >= 1 and r.latency >= 0
        if r.completion is not None:
            assert r.completion.choices[0].message.content == f"Echo: request {r.index}"
            assert r.request["messages"][0]["content"] == f"request {r.index}"
        else:
            assert isinstance(r.error, CometAPIError)
            assert r.attempts == 3
    assert any(r.attempts > 1 for r in results)
    assert sum(r.ok for r in results) > 250


async def test_ordered_mode(client: AsyncCometAPI) -> None:
    """ordered=True yields results in input order even when replies finish out of order."""
    async with (
        MockServer(slow_rate=0.3, slow_delay=0.05, seed=3) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as slow_client,
    ):
        results = await collect(
            slow_client.chat.completions.fan_out(requests(120), concurrency=16, ordered=True)
        )
    assert [r.index for r in results] == list(range(120))


async def test_ordered_window_bounds_read_ahead(client: AsyncCometAPI, server: MockServer) -> None:
    """In ordered mode inputs are taken at most `window` ahead of the next result due."""
    taken: list[int] = []
    server.reply_json({"choices": []}, delay=0.3)  # input 0 is slow; the rest are quick

    def source() -> Iterator[dict[str, Any]]:
        for i, request in enumerate(requests(100)):
            taken.append(i)
            yield request

    results = client.chat.completions.fan_out(source(), concurrency=4, ordered=True, window=8)
    first = await results.__anext__()
    assert first.index == 0
    assert max(taken) < 8 + 1
    rest = await collect(results)
    assert [r.index for r in rest] == list(range(1, 100))


async def test_async_iterable_input_and_bad_item(client: AsyncCometAPI) -> None:
    """An async generator works as input; an item that is not a dict fails alone."""

    async def source() -> AsyncIterator[Any]:
        yield {"model": MODEL, "messages": [user("a")]}
        yield "not a request"
        yield {"model": MODEL, "messages": [user("c")]}

    results = sorted(
        await collect(client.chat.completions.fan_out(source())), key=lambda r: r.index
    )
    assert [r.ok for r in results] == [True, False, True]
    assert isinstance(results[1].error, TypeError)


async def test_streaming_requests(client: AsyncCometAPI) -> None:
    """Streaming requests are fanned out too; each result holds the assembled completion."""
    results = await collect(client.chat.completions.fan_out(requests(20, stream=True)))
    assert len(results) == 20
    for r in results:
        assert r.completion is not None
        assert r.completion.choices[0].message.content == f"Echo: request {r.index}"


async def test_failing_input_iterable_raises() -> None:
    """An error raised by the caller's own iterable ends the fan-out with that error."""

    def source() -> Iterator[dict[str, Any]]:
        yield {"model": MODEL, "messages": [user("a")]}
        raise KeyError("broken input")

    async def create(**request: Any) -> ChatCompletion:
        return ChatCompletion()

    with pytest.raises(KeyError, match="broken input"):
        await collect(fan_out(create, source(), concurrency=2))


async def test_break_cancels_in_flight(client: AsyncCometAPI, server: MockServer) -> None:
    """Breaking out of the loop cancels requests in flight and leaves no task or connection."""
    baseline = client_tasks()
    for _ in range(40):
        server.reply_json({"choices": []}, delay=5)
    async with contextlib.aclosing(
        client.chat.completions.fan_out(requests(1000), concurrency=20)
    ) as results:
        server.clear()
        async for _ in results:
            break
    assert client.pool_state().in_use == 0
    await settle(client, server, baseline)


async def test_plain_break_cleans_up_soon(client: AsyncCometAPI, server: MockServer) -> None:
    """A plain `break` without aclosing also cancels everything within a few loop turns."""
    baseline = client_tasks()
    server.reply_json({"choices": []})
    for _ in range(30):
        server.reply_json({"choices": []}, delay=5)
    async for _ in client.chat.completions.fan_out(requests(500), concurrency=10):
        break
    await settle(client, server, baseline)


async def test_consumer_cancellation(client: AsyncCometAPI, server: MockServer) -> None:
    """Cancelling the consuming task cancels the fan-out's requests and frees connections."""
    baseline = client_tasks()
    for _ in range(20):
        server.reply_json({"choices": []}, delay=5)
    seen = 0
    with anyio.move_on_after(0.3):
        async for _ in client.chat.completions.fan_out(requests(20), concurrency=20):
            seen += 1
    assert seen == 0
    assert client.pool_state().in_use == 0
    await settle(client, server, baseline)


async def test_lazy_input_constant_memory() -> None:
    """Peak memory does not grow with the number of inputs: they are taken lazily."""

    async def create(**request: Any) -> ChatCompletion:
        await anyio.sleep(0)
        return ChatCompletion(id="x")

    def source(n: int) -> Iterator[dict[str, Any]]:
        for i in range(n):
            yield {"model": MODEL, "messages": [user("x" * 100 + str(i))]}

    async def peak(n: int) -> int:
        tracemalloc.start()
        count = 0
        async for _ in fan_out(create, source(n), concurrency=32):
            count += 1
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert count == n
        return top

    small = await peak(2_000)
    large = await peak(40_000)
    assert large < small * 1.5, (small, large)


@pytest.mark.real_waits
async def test_shared_cool_down_across_workers() -> None:
    """A 429 anywhere slows every worker: the fan-out converges on capacity, losing nothing."""
    async with (
        MockServer(rps_limit=100, seed=1) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as client,
    ):
        started = time.monotonic()
        results = await collect(client.chat.completions.fan_out(requests(300), concurrency=100))
        elapsed = time.monotonic() - started
        state = client.rate_state()
    assert all(r.ok for r in results) and len(results) == 300
    assert state.rate_limited == server.stats.rate_limited > 0
    assert state.rate_limit < 1000  # pacing took over from the stampede
    # The burst overshoots once; after that the workers are paced instead of stampeding.
    assert server.stats.rate_limited < 150, server.stats.rate_limited
    assert elapsed < 300 / 100 * 2.5


@pytest.mark.real_waits
async def test_shared_cool_down_for_a_burst_of_plain_calls() -> None:
    """A burst of concurrent create() calls overshoots once too, then is paced: nothing lost."""
    async with (
        MockServer(rps_limit=100, seed=1) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as client,
    ):
        limiter = asyncio.Semaphore(100)

        async def one(request: dict[str, Any]) -> ChatCompletion:
            async with limiter:
                return await client.chat.completions.create(**request)

        completions = await asyncio.gather(*(one(request) for request in requests(300)))
    assert len(completions) == 300
    assert server.stats.rate_limited < 150, server.stats.rate_limited


@pytest.mark.real_waits
async def test_cool_down_applies_to_plain_calls() -> None:
    """After a 429 with Retry-After, a concurrent plain create() waits out the pause too."""
    async with MockServer() as server, AsyncCometAPI(FAKE_KEY, base_url=server.url) as client:
        server.reply_error(429, "slow down", headers={"retry-after-ms": "400"})
        started = time.monotonic()
        first = asyncio.ensure_future(
            client.chat.completions.create(model=MODEL, messages=[user("a")])
        )
        await anyio.sleep(0.1)
        await client.chat.completions.create(model=MODEL, messages=[user("b")])
        waited = time.monotonic() - started
        await first
    assert waited >= 0.35
    assert client.rate_state().rate_limited == 1


async def test_budgets_pace_requests() -> None:
    """A requests-per-minute budget makes requests past its burst wait; usage is counted."""
    async with (
        MockServer() as server,
        AsyncCometAPI(
            FAKE_KEY, base_url=server.url, requests_per_minute=60, tokens_per_minute=100_000
        ) as client,
    ):
        results = await collect(client.chat.completions.fan_out(requests(30), concurrency=30))
        state = client.rate_state()
    assert len(results) == 30 and all(r.ok for r in results)
    assert state.waits >= 20  # a burst of ten seconds' worth (10), then paced
    assert state.tokens_used == sum(r.completion.usage.total_tokens for r in results)  # type: ignore[union-attr]
    assert state.in_flight == 0


# --------------------------------------------------------------------------- early stop


class CountingSource:
    """Requests taken lazily, counting how many the fan-out has read."""

    def __init__(self, n: int) -> None:
        self.read = 0
        self._n = n

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for request in requests(self._n):
            self.read += 1
            yield request


async def run_until_stopped(
    results: AsyncIterator[FanOutResult],
) -> tuple[list[FanOutResult], SystemicFailureError]:
    seen: list[FanOutResult] = []
    with pytest.raises(SystemicFailureError) as caught:
        async for result in results:
            seen.append(result)
    return seen, caught.value


async def test_stop_when_every_request_is_refused() -> None:
    """With a refused key, the fan-out sends one wave of requests, yields them, then stops."""
    source = CountingSource(320)
    async with (
        MockServer(api_key="sk-the-right-key") as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as client,
    ):
        seen, stopped = await run_until_stopped(
            client.chat.completions.fan_out(source, concurrency=16, stop_on_systemic_failure=True)
        )
        sent = server.stats.requests
    assert sent <= 16
    assert stopped.taken == source.read == len(seen) == sent
    assert sorted(r.index for r in seen) == list(range(stopped.taken))
    assert all(isinstance(r.error, AuthenticationError) for r in seen)
    assert "401" in stopped.reason and "Invalid API key" in stopped.reason
    assert isinstance(stopped.error, AuthenticationError)
    assert "not sent" in str(stopped)


async def test_stop_when_the_host_is_unreachable(closed_port: int) -> None:
    """Against a closed port the fan-out stops once the first requests ran out of retries."""
    source = CountingSource(320)
    started = time.monotonic()
    async with AsyncCometAPI(FAKE_KEY, base_url=f"http://127.0.0.1:{closed_port}/v1") as client:
        seen, stopped = await run_until_stopped(
            client.chat.completions.fan_out(source, concurrency=16, stop_on_systemic_failure=True)
        )
    assert stopped.taken == source.read == len(seen) <= 16
    assert all(isinstance(r.error, APIConnectionError) and r.attempts == 5 for r in seen)
    assert "no request so far got an answer" in stopped.reason
    assert str(closed_port) in stopped.reason
    assert time.monotonic() - started < 5


async def test_stop_after_the_same_client_error_on_the_first_answers(server: MockServer) -> None:
    """The same 4xx on the first 8 answers (here a base URL without /v1) stops the fan-out."""
    source = CountingSource(200)
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url.removesuffix("/v1")) as client:
        seen, stopped = await run_until_stopped(
            client.chat.completions.fan_out(source, concurrency=4, stop_on_systemic_failure=True)
        )
    assert 8 <= stopped.taken == len(seen) == server.stats.requests <= 4 + 7
    assert "the first 8 answers were all 404" in stopped.reason
    assert "Invalid URL" in stopped.reason


async def test_no_stop_once_a_request_succeeded(client: AsyncCometAPI, server: MockServer) -> None:
    """After one success, refusals and client errors are per-input results; nothing stops."""
    server.reply_turn(content="fine")
    for _ in range(12):
        server.reply_error(401, "Invalid API key")
    results = await collect(
        client.chat.completions.fan_out(requests(30), concurrency=1, stop_on_systemic_failure=True)
    )
    assert len(results) == 30
    assert sum(isinstance(r.error, AuthenticationError) for r in results) == 12


async def test_differing_client_errors_do_not_stop(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """First answers that fail in different ways are not taken as a systemic failure."""
    for i in range(10):
        server.reply_error(400, f"bad {i}", code="bad_value" if i % 2 else "bad_param")
    results = await collect(
        client.chat.completions.fan_out(requests(20), concurrency=2, stop_on_systemic_failure=True)
    )
    assert len(results) == 20 and sum(r.ok for r in results) == 10


async def test_refusals_do_not_stop_by_default() -> None:
    """Without the option, every input yields its result, however they fail."""
    async with (
        MockServer(api_key="sk-the-right-key") as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as client,
    ):
        results = await collect(client.chat.completions.fan_out(requests(40), concurrency=8))
    assert sorted(r.index for r in results) == list(range(40))
    assert server.stats.requests == 40


async def test_ordered_stop_yields_what_was_taken_in_order() -> None:
    """In ordered mode a stop wakes workers waiting for room, and yields in input order."""
    async with (
        MockServer(api_key="sk-the-right-key") as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url) as client,
    ):
        seen, stopped = await run_until_stopped(
            client.chat.completions.fan_out(
                requests(100),
                concurrency=4,
                ordered=True,
                window=4,
                stop_on_systemic_failure=True,
            )
        )
    assert [r.index for r in seen] == list(range(stopped.taken))
    assert stopped.taken <= 4


async def test_all_workers_start_together() -> None:
    """fan_out has `concurrency` requests running at once, as a semaphore loop would."""
    running = peak = 0

    async def create(**request: Any) -> ChatCompletion:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0)
        running -= 1
        return ChatCompletion(id="x")

    results = await collect(fan_out(create, requests(1000), concurrency=100))
    assert len(results) == 1000 and peak == 100


async def test_async_input_and_ordered_mode_keep_every_worker_busy() -> None:
    """With an async iterable or in ordered mode, workers still overlap up to `concurrency`."""
    running = peak = 0

    async def create(**request: Any) -> ChatCompletion:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.005)
        running -= 1
        return ChatCompletion(id="x")

    async def source() -> AsyncIterator[dict[str, Any]]:
        for request in requests(200):
            yield request

    results = await collect(fan_out(create, source(), concurrency=20))
    assert len(results) == 200 and peak == 20
    peak = 0
    ordered = await collect(fan_out(create, requests(200), concurrency=20, ordered=True))
    assert [r.index for r in ordered] == list(range(200)) and peak == 20


async def test_slow_consumer_holds_the_workers_back() -> None:
    """Results wait for a slow consumer in a bounded buffer: inputs are not read far ahead."""
    taken = 0

    def source() -> Iterator[dict[str, Any]]:
        nonlocal taken
        for request in requests(300):
            taken += 1
            yield request

    async def create(**request: Any) -> ChatCompletion:
        await asyncio.sleep(0)
        return ChatCompletion(id="x")

    received = 0
    ahead = 0
    async for _ in fan_out(create, source(), concurrency=10):
        received += 1
        ahead = max(ahead, taken - received)
        await asyncio.sleep(0.001)
    assert received == 300
    assert ahead <= 2 * 10 + 1
