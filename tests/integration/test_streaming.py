"""Streams against the real local server: chunks, errors, clocks, retries and connections."""

from __future__ import annotations

import json
import time
from typing import Any

import anyio
import pytest

from aiocometapi import (
    APITimeoutError,
    AsyncCometAPI,
    BadRequestError,
    IncompleteStreamError,
    StreamError,
    Timeout,
)
from aiocometapi.testing import Comment, Drop, MockServer, Pause
from conftest import FAKE_KEY, user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"


def content_chunk(text: str, index: int = 0, finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": index, "delta": {"content": text}, "finish_reason": finish}],
    }


async def open_stream(client: AsyncCometAPI, text: str = "one two three", **kw: Any) -> Any:
    return await client.chat.completions.create(
        model=MODEL, messages=[user(text)], stream=True, **kw
    )


# --------------------------------------------------------------------------- the happy path


async def test_iterate_chunks(client: AsyncCometAPI, server: MockServer) -> None:
    """Iterating yields typed chunks whose content adds up to the reply."""
    async with await open_stream(client, "alpha beta") as stream:
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert "".join(pieces) == "Echo: alpha beta"
    assert stream.request_id is not None and stream.request_id.startswith("mock-")
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert server.requests[-1].body["stream"] is True


async def test_text_and_final(client: AsyncCometAPI) -> None:
    """text() yields content deltas; final() assembles the completion with usage."""
    async with await open_stream(client, "x y", stream_options={"include_usage": True}) as s:
        text = "".join([t async for t in s.text()])
    assert text == "Echo: x y"
    async with await open_stream(client, "x y", stream_options={"include_usage": True}) as s:
        completion = await s.final()
    assert completion.choices[0].message.content == "Echo: x y"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None and completion.usage.total_tokens > 0
    assert completion.request_id == s.request_id


async def test_final_after_some_chunks(client: AsyncCometAPI) -> None:
    """final() after a few chunks were read still returns the whole completion."""
    async with await open_stream(client, "a b c d e") as stream:
        await stream.__anext__()
        await stream.__anext__()
        completion = await stream.final()
    assert completion.choices[0].message.content == "Echo: a b c d e"


async def test_split_at_every_byte(client: AsyncCometAPI, server: MockServer) -> None:
    """Events written a few bytes at a time arrive whole and in order."""
    server.reply_stream([content_chunk("héllo "), content_chunk("wörld")], split=3)
    async with await open_stream(client) as stream:
        text = "".join([t async for t in stream.text()])
    assert text == "héllo wörld"


async def test_keepalives_and_usage_only_chunk(client: AsyncCometAPI, server: MockServer) -> None:
    """Comments, empty data events and a choices-less usage chunk do not break a stream."""
    usage = {
        "id": "c",
        "choices": [],
        "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3},
    }
    server.reply_stream(
        [
            Comment("keep-alive"),
            b"data:\n\n",
            content_chunk("ok", finish="stop"),
            usage,
        ]
    )
    async with await open_stream(client) as stream:
        assert stream.chunks_received == 0
        chunks = []
        async for chunk in stream:
            chunks.append(chunk)
            assert stream.chunks_received == len(chunks)  # keep-alives are not counted
    assert len(chunks) == 2 and chunks[1].choices == []
    assert stream.chunks_received == 2
    completion = stream.completion
    assert completion.usage is not None and completion.usage.total_tokens == 3


async def test_events_after_done_are_ignored(client: AsyncCometAPI, server: MockServer) -> None:
    """data: [DONE] ends the stream even if the server writes more after it."""
    server.reply_stream([content_chunk("a"), "[DONE]", content_chunk("b")], done=False)
    async with await open_stream(client) as stream:
        text = "".join([t async for t in stream.text()])
    assert text == "a"


# --------------------------------------------------------------------------- errors


async def test_http_error_raised_at_the_await(client: AsyncCometAPI, server: MockServer) -> None:
    """An error status raises when create() is awaited, not while iterating."""
    server.reply_error(400, "bad stream request", code="invalid_request")
    with pytest.raises(BadRequestError, match="bad stream request"):
        await open_stream(client)


async def test_429_on_stream_is_retried(
    client: AsyncCometAPI, server: MockServer, retry_waits: list[float]
) -> None:
    """A 429 before the stream starts is retried with the server's wait."""
    server.reply_error(429, "slow down", headers={"Retry-After": "1"})
    async with await open_stream(client, "z") as stream:
        text = "".join([t async for t in stream.text()])
    assert text == "Echo: z" and retry_waits == [1.0]


async def test_error_object_in_stream(client: AsyncCometAPI, server: MockServer) -> None:
    """A data event holding an error object raises StreamError with its fields."""
    error = {"error": {"message": "upstream overloaded", "type": "server_error", "code": "busy"}}
    server.reply_stream([content_chunk("partial "), error])
    async with await open_stream(client) as stream:
        with pytest.raises(StreamError) as info:
            async for _ in stream:
                pass
    assert "upstream overloaded" in str(info.value)
    assert (info.value.type, info.value.code) == ("server_error", "busy")
    assert info.value.partial is not None
    assert info.value.partial.choices[0].message.content == "partial "


async def test_error_event_in_stream(client: AsyncCometAPI, server: MockServer) -> None:
    """An 'event: error' raises StreamError, even when its data is plain text."""
    server.reply_stream([content_chunk("a"), b"event: error\ndata: quota exhausted\n\n"])
    async with await open_stream(client) as stream:
        with pytest.raises(StreamError, match="quota exhausted"):
            async for _ in stream:
                pass


async def test_content_mentioning_error_is_not_an_error(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A chunk whose text contains the word "error" in quotes is content, not an error."""
    server.reply_stream([content_chunk('the "error" field'), content_chunk("error")])
    async with await open_stream(client) as stream:
        text = "".join([t async for t in stream.text()])
    assert text == 'the "error" fielderror'


async def test_invalid_json_chunk(client: AsyncCometAPI, server: MockServer) -> None:
    """A chunk that is not JSON raises StreamError showing its start."""
    server.reply_stream([content_chunk("a"), "{not json at all"])
    async with await open_stream(client) as stream:
        with pytest.raises(StreamError, match="not json at all"):
            async for _ in stream:
                pass


async def test_body_ends_before_done(client: AsyncCometAPI, server: MockServer) -> None:
    """A stream cut after finish_reason but before [DONE] raises with the partial completion."""
    server.reply_stream([content_chunk("almost"), content_chunk("", finish="stop")], done=False)
    async with await open_stream(client) as stream:
        with pytest.raises(IncompleteStreamError) as info:
            async for _ in stream:
                pass
    partial = info.value.partial
    assert partial is not None and partial.choices[0].message.content == "almost"
    assert partial.choices[0].finish_reason == "stop"


async def test_drop_mid_stream_after_a_chunk_is_not_retried(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Once a chunk reached the caller, a dropped connection raises instead of retrying."""
    server.reply_stream([content_chunk("one "), Drop()])
    async with await open_stream(client) as stream:
        received = []
        with pytest.raises(IncompleteStreamError) as info:
            async for chunk in stream:
                received.append(chunk)
    assert len(received) == 1 and len(server.requests) == 1
    assert info.value.partial is not None
    assert info.value.partial.choices[0].message.content == "one "


async def test_drop_before_first_chunk_is_retried(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A stream that fails before yielding anything is sent again, invisibly to the caller."""
    server.reply_stream([Comment("warming up"), Drop()])
    async with await open_stream(client, "again") as stream:
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Echo: again"
    assert len(server.requests) == 2
    assert stream.chunks_received == len(chunks)  # the failed attempt counted nothing


# --------------------------------------------------------------------------- connections


async def test_completed_streams_reuse_one_connection(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Streams read to [DONE] hand their connection back: three streams, one connection."""
    for _ in range(3):
        async with await open_stream(client) as stream:
            async for _ in stream:
                pass
    assert server.connections_total == 1
    assert (client.pool_state().in_use, client.pool_state().idle) == (0, 1)


async def test_break_releases_the_connection(client: AsyncCometAPI, server: MockServer) -> None:
    """Breaking out of an unfinished stream closes its connection at once, on both ends."""
    server.reply_stream([content_chunk("a"), content_chunk("b"), Pause(10)])
    async with await open_stream(client) as stream:
        async for _ in stream:
            break
    assert (client.pool_state().in_use, client.pool_state().idle) == (0, 0)
    with anyio.fail_after(2):
        while server.open_connections:
            await anyio.sleep(0.01)


async def test_exception_in_loop_releases_the_connection(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """An exception raised by the caller's loop body frees the connection."""
    server.reply_stream([content_chunk("a"), Pause(10)])
    with pytest.raises(RuntimeError):
        async with await open_stream(client) as stream:
            async for _ in stream:
                raise RuntimeError("caller failed")
    assert (client.pool_state().in_use, client.pool_state().idle) == (0, 0)


async def test_cancellation_releases_the_connection(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Cancelling a task that is reading a stream frees its connection."""
    server.reply_stream([content_chunk("a"), Pause(10)])
    with anyio.move_on_after(0.05):
        async with await open_stream(client) as stream:
            async for _ in stream:
                pass
    assert (client.pool_state().in_use, client.pool_state().idle) == (0, 0)
    with anyio.fail_after(2):
        while server.open_connections:
            await anyio.sleep(0.01)


# --------------------------------------------------------------------------- clocks


async def expect_timeout(client: AsyncCometAPI, which: str, limit: float) -> float:
    started = time.monotonic()
    with pytest.raises(APITimeoutError) as info:
        async with await open_stream(client, max_retries=0) as stream:
            async for _ in stream:
                pass
    assert info.value.which == which, info.value
    assert which in str(info.value)
    elapsed = time.monotonic() - started
    assert elapsed < limit
    return elapsed


async def test_first_event_clock(server: MockServer) -> None:
    """Keep-alive comments do not count as a first event: the first_event clock expires."""
    server.reply_stream([Comment("ping"), Pause(0.02), Comment("ping"), Pause(5)])
    async with AsyncCometAPI(
        FAKE_KEY, base_url=server.url, timeout=Timeout(first_event=0.05, idle=10)
    ) as client:
        elapsed = await expect_timeout(client, "first_event", 1.55)
    assert elapsed >= 0.04


async def test_idle_clock_ignores_comments(server: MockServer) -> None:
    """Between data events only comments arrive: the idle clock still expires."""
    events: list[Any] = [content_chunk("a")]
    events += [x for _ in range(20) for x in (Pause(0.01), Comment("keep-alive"))]
    server.reply_stream(events)
    async with AsyncCometAPI(
        FAKE_KEY, base_url=server.url, timeout=Timeout(first_event=5, idle=0.05)
    ) as client:
        elapsed = await expect_timeout(client, "idle", 1.55)
    assert elapsed >= 0.04


async def test_stream_total_clock(server: MockServer) -> None:
    """A stream that keeps sending but runs past stream_total is cut on time."""
    server.reply_stream([x for i in range(50) for x in (content_chunk(str(i)), Pause(0.005))])
    async with AsyncCometAPI(
        FAKE_KEY, base_url=server.url, timeout=Timeout(idle=5, stream_total=0.06)
    ) as client:
        await expect_timeout(client, "stream_total", 1.56)


async def test_long_stream_outlives_request_total(server: MockServer) -> None:
    """The non-streaming total clock does not cut a stream that keeps making progress."""
    server.reply_stream([x for i in range(8) for x in (content_chunk(str(i)), Pause(0.01))])
    async with (
        AsyncCometAPI(FAKE_KEY, base_url=server.url, timeout=Timeout(total=0.03, idle=1)) as client,
        await open_stream(client) as stream,
    ):
        text = "".join([t async for t in stream.text()])
    assert text == "01234567"


async def test_slow_consumer_is_not_idle(server: MockServer) -> None:
    """Time the caller spends between chunks is not counted against the idle clock."""
    server.reply_stream([content_chunk("a"), content_chunk("b"), content_chunk("c")])
    async with (
        AsyncCometAPI(FAKE_KEY, base_url=server.url, timeout=Timeout(idle=0.05)) as client,
        await open_stream(client) as stream,
    ):
        text = []
        async for piece in stream.text():
            text.append(piece)
            await anyio.sleep(0.09)
    assert "".join(text) == "abc"


# --------------------------------------------------------------------------- tool calls


@pytest.mark.parametrize("omit_index", [False, True])
async def test_streamed_tool_calls(
    client: AsyncCometAPI, server: MockServer, omit_index: bool
) -> None:
    """Tool calls streamed as fragments (or whole, without index) assemble into calls."""
    server.reply_turn(
        tool_calls=[("get_weather", {"city": "Paris"}), ("get_time", {"tz": "CET"})],
        omit_tool_call_index=omit_index,
    )
    async with await open_stream(client) as stream:
        completion = await stream.final()
    calls = completion.choices[0].message.tool_calls or []
    assert [(c.function.name, json.loads(c.function.arguments)) for c in calls] == [
        ("get_weather", {"city": "Paris"}),
        ("get_time", {"tz": "CET"}),
    ]
    assert all(c.id for c in calls) and len({c.id for c in calls}) == 2
    assert completion.choices[0].message.content is None
