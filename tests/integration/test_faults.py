"""The fault matrix: every way a server or the network can fail, on real sockets on loopback.

Each case checks the error a user gets (its documented class and a message that says what
happened), how long it takes (bounded by the configured clocks), and that the client is still
usable afterwards with no connection left in use. Where HTTP itself must break, the server is
``rawserver.RawServer``: its first connection runs the faulty script, later ones answer properly.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from typing import Any

import anyio
import pytest

from aiocometapi import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncCometAPI,
    CometAPIError,
    IncompleteStreamError,
    InternalServerError,
    StreamError,
    Timeout,
)
from conftest import FAKE_KEY, user
from rawserver import (
    COMPLETION,
    LAST_CHUNK,
    Conn,
    RawServer,
    Script,
    chunk,
    content_chunk,
    event,
    head,
    healthy,
    response,
    sse_head,
    stall,
)

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"
CLOCKS = Timeout(total=0.5, connect=0.5, first_event=0.5, idle=0.3)
TICK = 0.05
"""The clock a test waits to run out: short, so that the suite does not sit idle. The other
clocks stay as in CLOCKS, so that only the one under test can run out."""
SLACK = 1.5
"""Seconds a loaded machine may add on top of a clock."""
EARLY = 0.01
"""A clock may fire this much before its time (timer granularity)."""
MODES = pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
FIRST = event(content_chunk("first "))
COMPLETION_BYTES = json.dumps(COMPLETION).encode()
PAGE = b"<html><head><title>502 Bad Gateway</title></head><body><h1>nginx</h1></body></html>"


# --------------------------------------------------------------------------- helpers


@contextlib.asynccontextmanager
async def serving(
    *scripts: Script, **options: Any
) -> AsyncIterator[tuple[RawServer, AsyncCometAPI]]:
    """A raw server running ``scripts`` and a client with small clocks and no retries."""
    options = {"timeout": CLOCKS, "max_retries": 0, **options}
    async with (
        RawServer(*scripts) as server,
        AsyncCometAPI(FAKE_KEY, base_url=server.url, **options) as client,
    ):
        yield server, client


async def ask(client: AsyncCometAPI, stream: bool, server: RawServer | None = None) -> str:
    """One request; its text (a stream's deltas joined, opening ``server.gate`` per chunk)."""
    if not stream:
        completion = await client.chat.completions.create(model=MODEL, messages=[user("hi")])
        return completion.choices[0].message.content or ""
    texts: list[str] = []
    async with await client.chat.completions.create(
        model=MODEL, messages=[user("hi")], stream=True
    ) as chunks:
        async for piece in chunks:
            texts += [choice.delta.content or "" for choice in piece.choices]
            if server is not None:
                server.gate.set()
    return "".join(texts)


async def fails(
    expected: type[Exception] | tuple[type[Exception], ...],
    client: AsyncCometAPI,
    stream: bool,
    server: RawServer | None = None,
) -> tuple[Any, float]:
    """The error one request raises (it must be ``expected``) and the seconds it took."""
    started = time.monotonic()
    with pytest.raises(expected) as info:
        await ask(client, stream, server)
    return info.value, time.monotonic() - started


async def usable_after(
    server: RawServer, client: AsyncCometAPI, stream: bool, *, closed: bool = True
) -> None:
    """No connection is left in use, the faulty one is closed, and the next request (through
    the same pool, with the usual CLOCKS) works."""
    assert client.pool_state().in_use == 0
    if closed:
        await server.closed(0)
    assert await ask(client.with_options(timeout=CLOCKS), stream) == "healthy"
    assert client.pool_state().in_use == 0


def ticking(which: str) -> Timeout:
    """CLOCKS with the ``which`` clock cut to TICK."""
    return replace(CLOCKS, **{which: TICK})


def answer(raw: bytes) -> Script:
    """Read the request, send ``raw`` as the answer, then serve the connection properly."""

    async def script(conn: Conn) -> None:
        await conn.request()
        await conn.send(raw)
        await healthy(conn)

    return script


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def check_timeout(error: APITimeoutError, which: str, clock: float, elapsed: float) -> None:
    assert error.which == which, error
    assert f"'{which}' clock" in str(error)
    assert clock - EARLY <= elapsed < clock + SLACK, elapsed


# --------------------------------------------------------------------------- refused, connect


@MODES
async def test_refused_connection(stream: bool) -> None:
    """A refused connection is an APIConnectionError naming the address, raised at once."""
    port = free_port()
    async with AsyncCometAPI(
        FAKE_KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout=CLOCKS, max_retries=0
    ) as client:
        error, elapsed = await fails(APIConnectionError, client, stream)
        assert not isinstance(error, APITimeoutError)
        assert f"Could not connect to 127.0.0.1:{port}" in str(error)
        assert type(error.__cause__).__module__.startswith("aiohttp")
        assert elapsed < SLACK
        assert (client.pool_state().in_use, client.pool_state().idle) == (0, 0)
        async with RawServer(port=port):  # the same client reaches the port once it listens
            assert await ask(client, stream) == "healthy"


@contextlib.contextmanager
def full_accept_queue() -> Iterator[int]:
    """A port whose listener never accepts and whose accept queue is full: SYNs get dropped."""
    with contextlib.ExitStack() as stack:
        listener = stack.enter_context(socket.socket())
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = int(listener.getsockname()[1])
        for _ in range(2):
            filler = stack.enter_context(socket.socket())
            filler.setblocking(False)
            with contextlib.suppress(BlockingIOError):
                filler.connect(("127.0.0.1", port))
        yield port


@pytest.mark.skipif(sys.platform != "linux", reason="relies on Linux dropping SYNs when full")
@MODES
async def test_handshake_that_never_completes_hits_the_connect_clock(stream: bool) -> None:
    """A server whose accept queue is full: APITimeoutError('connect') when the clock runs out."""
    clocks = ticking("connect")
    with full_accept_queue() as port:
        async with AsyncCometAPI(
            FAKE_KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout=clocks, max_retries=0
        ) as client:
            error, elapsed = await fails(APITimeoutError, client, stream)
            check_timeout(error, "connect", TICK, elapsed)
            assert (client.pool_state().in_use, client.pool_state().idle) == (0, 0)
    async with (
        AsyncCometAPI(
            FAKE_KEY, base_url=f"http://127.0.0.1:{port}/v1", timeout=clocks, max_retries=0
        ) as client,
        RawServer(port=port),
    ):
        assert await ask(client, stream) == "healthy"


# --------------------------------------------------------------------------- resets


async def reset_before_headers(conn: Conn) -> None:
    await conn.request()
    conn.reset()


async def reset_mid_json_body(conn: Conn) -> None:
    await conn.request()
    whole = response(COMPLETION_BYTES)
    await conn.send(whole[:-40])
    await conn.wait(0.05)
    conn.reset()


async def reset_mid_first_event(conn: Conn) -> None:
    await conn.request()
    await conn.send(sse_head() + chunk(b'data: {"choices": [{"index": 0, "del'))
    await conn.wait(0.05)
    conn.reset()


async def reset_mid_second_event(conn: Conn) -> None:
    await conn.request()
    await conn.send(sse_head() + FIRST)
    await conn.gate()
    await conn.send(chunk(b'data: {"choices": [{"index": 0, "del'))
    await conn.wait(0.05)
    conn.reset()


@MODES
async def test_reset_before_headers(stream: bool) -> None:
    """A reset before any header is an APIConnectionError saying the connection was reset."""
    async with serving(reset_before_headers) as (server, client):
        error, elapsed = await fails(APIConnectionError, client, stream)
        assert not isinstance(error, APITimeoutError)
        assert re.search(r"reset|closed the connection", str(error)), error
        assert elapsed < SLACK
        await usable_after(server, client, stream)


async def test_reset_mid_json_body() -> None:
    """A reset in the middle of a JSON body is an APIConnectionError saying it was cut off."""
    async with serving(reset_mid_json_body) as (server, client):
        error, elapsed = await fails(APIConnectionError, client, False)
        assert not isinstance(error, APITimeoutError)
        assert "cut off" in str(error)
        assert elapsed < SLACK
        await usable_after(server, client, False)


async def test_reset_mid_sse_event_after_a_chunk() -> None:
    """A reset inside an event after a chunk was yielded: IncompleteStreamError, not retried."""
    async with serving(reset_mid_second_event, max_retries=2) as (server, client):
        error, elapsed = await fails(IncompleteStreamError, client, True, server)
        assert "cut" in str(error) and "partial" in str(error)
        assert error.partial.choices[0].message.content == "first "
        assert len(server.requests) == 1
        assert elapsed < SLACK
        await usable_after(server, client, True)


async def test_reset_mid_sse_event_before_any_chunk() -> None:
    """A reset inside the first event, without retries: IncompleteStreamError with nothing."""
    async with serving(reset_mid_first_event) as (server, client):
        error, elapsed = await fails(IncompleteStreamError, client, True)
        assert error.partial is not None and error.partial.choices == []
        assert elapsed < SLACK
        await usable_after(server, client, True)


@pytest.mark.parametrize(
    ("script", "stream"),
    [
        (reset_before_headers, False),
        (reset_before_headers, True),
        (reset_mid_json_body, False),
        (reset_mid_first_event, True),
    ],
    ids=["before-headers-plain", "before-headers-stream", "mid-json", "mid-first-event"],
)
async def test_reset_before_anything_reached_the_caller_is_retried(
    script: Script, stream: bool, retry_waits: list[float]
) -> None:
    """A reset before anything reached the caller is retried on a new connection, invisibly."""
    async with serving(script, max_retries=2) as (server, client):
        assert await ask(client, stream) == "healthy"
        assert len(server.connections) == 2 and len(retry_waits) == 1
        assert client.pool_state().in_use == 0


# --------------------------------------------------------------------------- silence and trickles


async def headers_then_silence(conn: Conn) -> None:
    await conn.request()
    await conn.send(sse_head())
    await conn.wait(60)


async def chunk_then_silence(conn: Conn) -> None:
    await conn.request()
    await conn.send(sse_head() + FIRST)
    await conn.wait(60)


@pytest.mark.parametrize(
    ("script", "stream", "which"),
    [
        (stall, False, "total"),
        (stall, True, "first_event"),
        (headers_then_silence, True, "first_event"),
        (chunk_then_silence, True, "idle"),
    ],
    ids=["no-answer-plain", "no-answer-stream", "no-event", "silent-after-a-chunk"],
)
async def test_server_that_goes_silent(script: Script, stream: bool, which: str) -> None:
    """A server that stops sending: APITimeoutError from the right clock, on time, and closed."""
    async with serving(script, timeout=ticking(which)) as (server, client):
        error, elapsed = await fails(APITimeoutError, client, stream)
        check_timeout(error, which, TICK, elapsed)
        await usable_after(server, client, stream)


def trickling(before: bytes, trickled: bytes, every: float, framed: bool) -> Script:
    """Send ``before``, then ``trickled`` one byte every ``every`` s (each byte a chunk if
    ``framed``), until the client hangs up."""

    async def script(conn: Conn) -> None:
        await conn.request()
        await conn.send(before)
        for byte in trickled:
            piece = bytes([byte])
            await conn.send(chunk(piece) if framed else piece)
            if await conn.wait(every):
                return
        await conn.wait(60)

    return script


DATA_EVENT = b"data: " + json.dumps(content_chunk("late")).encode() + b"\n\n"
JSON_HEAD = head(200, {"Content-Type": "application/json",
                       "Content-Length": str(len(COMPLETION_BYTES))})  # fmt: skip
TRICKLES = {
    "headers-plain": (b"", response(COMPLETION_BYTES), False, False, "total"),
    "headers-stream": (b"", sse_head(), False, True, "first_event"),
    "json-body": (JSON_HEAD, COMPLETION_BYTES, False, False, "total"),
    "data-event": (sse_head(), DATA_EVENT, True, True, "first_event"),
    "comment-bytes": (sse_head(), b": keep-alive\n\n" * 50, True, True, "first_event"),
    "after-a-chunk": (sse_head() + FIRST, DATA_EVENT, True, True, "idle"),
}


@pytest.mark.parametrize(
    "every", [TICK / 10, 2 * TICK], ids=["ten-bytes-per-clock", "a-byte-per-two-clocks"]
)
@pytest.mark.parametrize("case", list(TRICKLES))
async def test_trickling_server(case: str, every: float) -> None:
    """Bytes trickling in do not keep a request alive: the clock that applies still runs out."""
    before, trickled, framed, stream, which = TRICKLES[case]
    script = trickling(before, trickled, every, framed)
    async with serving(script, timeout=ticking(which)) as (server, client):
        error, elapsed = await fails(APITimeoutError, client, stream)
        check_timeout(error, which, TICK, elapsed)
        await usable_after(server, client, stream)


def keepalives(before: bytes) -> Script:
    """Send ``before``, then a keep-alive comment ten times per TICK."""

    async def script(conn: Conn) -> None:
        await conn.request()
        await conn.send(sse_head() + before)
        while await conn.send(chunk(b": keep-alive\n\n")) and not await conn.wait(TICK / 10):
            pass

    return script


@pytest.mark.parametrize(
    ("before", "which"),
    [(b"", "first_event"), (FIRST, "idle")],
    ids=["before-any-event", "after-a-chunk"],
)
async def test_only_keepalive_comments(before: bytes, which: str) -> None:
    """A stream of nothing but keep-alive comments cannot stay open past its clock."""
    async with serving(keepalives(before), timeout=ticking(which)) as (server, client):
        error, elapsed = await fails(APITimeoutError, client, True)
        check_timeout(error, which, TICK, elapsed)
        await usable_after(server, client, True)


# --------------------------------------------------------------------------- truncated bodies


async def truncated_chunked_json(conn: Conn) -> None:
    await conn.request()
    fields = {"Content-Type": "application/json", "Transfer-Encoding": "chunked"}
    await conn.send(head(200, fields) + chunk(COMPLETION_BYTES[:50]) + b"40\r\n" + b"partial")
    await conn.close()


async def test_truncated_chunked_json_body() -> None:
    """A chunked JSON body that stops inside a chunk is an APIConnectionError: cut off."""
    async with serving(truncated_chunked_json) as (server, client):
        error, elapsed = await fails(APIConnectionError, client, False)
        assert not isinstance(error, APITimeoutError)
        assert "cut off" in str(error)
        assert elapsed < SLACK
        await usable_after(server, client, False)


def stream_ending(tail: bytes) -> Script:
    async def script(conn: Conn) -> None:
        await conn.request()
        await conn.send(sse_head() + FIRST)
        await conn.gate()
        await conn.send(tail)
        await conn.close()

    return script


@pytest.mark.parametrize(
    ("tail", "says"),
    [(b'40\r\ndata: {"cho', "cut"), (LAST_CHUNK, "ended")],
    ids=["inside-a-chunk", "cleanly-before-done"],
)
async def test_truncated_stream(tail: bytes, says: str) -> None:
    """A stream body that ends early after a chunk: IncompleteStreamError holding that chunk."""
    async with serving(stream_ending(tail), max_retries=2) as (server, client):
        error, elapsed = await fails(IncompleteStreamError, client, True, server)
        assert says in str(error) and "[DONE]" in str(error)
        assert error.partial.choices[0].message.content == "first "
        assert len(server.requests) == 1
        assert elapsed < SLACK
        await usable_after(server, client, True)


# --------------------------------------------------------------------------- sizes

MIB = 1 << 20


async def announces_100_mib(conn: Conn) -> None:
    await conn.request()
    await conn.send(head(200, {"Content-Type": "application/json",
                               "Content-Length": str(100 * MIB)}))  # fmt: skip
    piece = b" " * MIB
    for _ in range(100):
        if not await conn.send(piece):
            return
    await conn.wait(60)


async def endless_chunked_body(conn: Conn) -> None:
    await conn.request()
    await conn.send(head(200, {"Content-Type": "application/json",
                               "Transfer-Encoding": "chunked"}))  # fmt: skip
    piece = chunk(b" " * 65536)
    while await conn.send(piece):
        pass


async def test_body_far_over_the_size_bound() -> None:
    """A body announced at 100 MiB is refused from its header alone, naming the bound."""
    # A generous total clock: the bound, not the clock, must be what stops this request.
    async with serving(announces_100_mib, timeout=replace(CLOCKS, total=30)) as (server, client):
        error, elapsed = await fails(APIResponseValidationError, client, False)
        assert f"over the max_body_size of {64 * MIB} bytes" in str(error)
        assert "max_body_size to AsyncCometAPI" in str(error)
        assert server.connections[0].bytes_sent < 100 * MIB
        assert elapsed < 2
        await usable_after(server, client, False)


async def test_endless_chunked_body_is_cut_at_the_bound() -> None:
    """A chunked body that never ends is refused once it passes the bound, not read forever."""
    async with serving(
        endless_chunked_body, timeout=replace(CLOCKS, total=30), max_body_size=MIB
    ) as (server, client):
        error, elapsed = await fails(APIResponseValidationError, client, False)
        assert f"over the max_body_size of {MIB} bytes" in str(error)
        assert server.connections[0].bytes_sent < 16 * MIB
        assert elapsed < 10
        await usable_after(server, client, False)


async def test_over_size_refusal_is_not_retried() -> None:
    """Refusing an over-size body is final: the same answer is not fetched again."""
    async with serving(
        endless_chunked_body,
        endless_chunked_body,
        max_retries=1,
        timeout=replace(CLOCKS, total=30),
        max_body_size=MIB,
    ) as (server, client):
        await fails(APIResponseValidationError, client, False)
        assert len(server.requests) == 1


async def test_over_size_advice_names_a_real_option() -> None:
    """The over-size refusal's advice names an option AsyncCometAPI really takes."""
    async with serving(
        endless_chunked_body, timeout=replace(CLOCKS, total=30), max_body_size=MIB
    ) as (_, client):
        error, _ = await fails(APIResponseValidationError, client, False)
    named = re.search(r"Pass a larger (\w+) to AsyncCometAPI", str(error))
    assert named is not None, str(error)
    option: dict[str, Any] = {named.group(1): 2 * MIB}
    AsyncCometAPI(FAKE_KEY, **option)  # a TypeError if the client had no such option


def oversized_event(first: bytes) -> Script:
    async def script(conn: Conn) -> None:
        await conn.request()
        await conn.send(sse_head() + first)
        if first:
            await conn.gate()
        await conn.send(chunk(b"data: " + b"x" * 200_000 + b"\n\n"))
        await conn.wait(60)

    return script


async def endless_line(conn: Conn) -> None:
    await conn.request()
    await conn.send(sse_head())
    piece = chunk(b"y" * 65536)
    while await conn.send(piece):
        pass


@pytest.mark.parametrize(
    "script",
    [oversized_event(FIRST), oversized_event(b""), endless_line],
    ids=["after-a-chunk", "first-event", "endless-line"],
)
async def test_stream_event_over_max_event_size(script: Script) -> None:
    """An event over max_event_size is a StreamError naming the bound, raised before reading on."""
    async with serving(script, max_event_size=65536, max_retries=2) as (server, client):
        error, elapsed = await fails(StreamError, client, True, server)
        assert not isinstance(error, IncompleteStreamError)
        assert "max_event_size=65536" in str(error)
        assert len(server.requests) == 1
        assert server.connections[0].bytes_sent < 16 * MIB
        assert elapsed < SLACK
        await usable_after(server, client, True)


async def test_event_over_max_event_size_keeps_the_partial() -> None:
    """The StreamError for an oversized event still carries what arrived before it."""
    async with serving(oversized_event(FIRST), max_event_size=65536) as (server, client):
        error, _ = await fails(StreamError, client, True, server)
    assert error.partial is not None
    assert error.partial.choices[0].message.content == "first "


# --------------------------------------------------------------------------- encodings and types

BAD_UTF8_COMPLETION = (
    b'{"choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\xe9 ok"}}]}'
)
BAD_UTF8_CHUNK = b'data: {"choices": [{"index": 0, "delta": {"content": "caf\xe9 ok"}}]}\n\n'


async def test_invalid_utf8_in_json_body() -> None:
    """Invalid UTF-8 in a JSON string becomes U+FFFD, as in streams; the completion is kept."""
    async with serving(answer(response(BAD_UTF8_COMPLETION))) as (_, client):
        assert await ask(client, False) == "caf\ufffd ok"


async def test_invalid_utf8_in_stream_chunk() -> None:
    """Invalid UTF-8 in a stream chunk becomes U+FFFD, as the SSE rules say."""
    body = sse_head() + chunk(BAD_UTF8_CHUNK) + event("[DONE]") + LAST_CHUNK
    async with serving(answer(body)) as (_, client):
        assert await ask(client, True) == "caf\ufffd ok"


async def test_invalid_utf8_in_error_body() -> None:
    """An error body with invalid UTF-8 still gives the status error, its message readable."""
    raw = response(b'{"error": {"message": "Ung\xfcltiger Schl\xfcssel"}}', status=400)
    async with serving(answer(raw)) as (_, client):
        error, _ = await fails(APIStatusError, client, False)
    assert error.status_code == 400 and "Ung\ufffdltiger" in error.message


async def test_invalid_utf8_where_nothing_reads_it() -> None:
    """Invalid UTF-8 in fields the SDK ignores, comments and event names is harmless."""
    plain = b'{"gateway_note": "\xff\xfe", "choices": [{"message": {"content": "healthy"}}]}'
    async with serving(answer(response(plain))) as (server, client):
        assert await ask(client, False) == "healthy"
    streamed = (
        sse_head()
        + chunk(b": \xff\xfe comment\n\nevent: p\xffng\ndata: {}\n\n")
        + event(content_chunk("healthy"))
        + event("[DONE]")
        + LAST_CHUNK
    )
    async with serving(answer(streamed)) as (server, client):
        assert await ask(client, True) == "healthy"
        await usable_after(server, client, True, closed=False)


async def test_json_sent_as_text_plain() -> None:
    """A completion labelled text/plain is still read as the JSON it is."""
    async with serving(answer(response(COMPLETION_BYTES, content_type="text/plain"))) as (
        server,
        client,
    ):
        assert await ask(client, False) == "healthy"
        await usable_after(server, client, False, closed=False)


async def test_plain_request_answered_with_an_event_stream() -> None:
    """A plain request answered with an event stream is an APIResponseValidationError showing it."""
    body = sse_head() + event(content_chunk("healthy")) + event("[DONE]") + LAST_CHUNK
    async with serving(answer(body)) as (server, client):
        error, elapsed = await fails(APIResponseValidationError, client, False)
        assert "data: " in str(error) and error.body.startswith("data: ")
        assert elapsed < SLACK
        await usable_after(server, client, False, closed=False)


NOT_EVENT_STREAMS = {
    "json-error": (b'{"error": {"message": "quota exhausted", "code": "insufficient_quota"}}',
                   "application/json", "quota exhausted"),
    "json-completion": (COMPLETION_BYTES, "application/json", "application/json"),
    "html-page": (b"<html><body>Sign in to the hotel Wi-Fi</body></html>", "text/html",
                  "hotel Wi-Fi"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(NOT_EVENT_STREAMS))
async def test_stream_answered_with_something_else(case: str) -> None:
    """A 200 stream answer that is not an event stream shows what came, and is not re-sent."""
    body, content_type, says = NOT_EVENT_STREAMS[case]
    async with serving(answer(response(body, content_type=content_type)), max_retries=2) as (
        server,
        client,
    ):
        error, _ = await fails(CometAPIError, client, True)
        assert not isinstance(error, IncompleteStreamError), error
        assert says in str(error)
        assert len(server.requests) == 1


# --------------------------------------------------------------------------- redirects, pages


def redirect(location: str, status: int = 301) -> Script:
    return answer(response(b"", status, "text/html", {"Location": location}))


@MODES
async def test_redirect_is_not_followed(stream: bool) -> None:
    """A 301 is an APIStatusError naming its Location; it is neither followed nor retried."""
    async with serving(redirect("/v2/chat/completions"), max_retries=2) as (server, client):
        error, elapsed = await fails(APIStatusError, client, stream)
        assert type(error) is APIStatusError and error.status_code == 301
        assert "redirect to /v2/chat/completions" in str(error)
        assert [r.path for r in server.requests] == ["/v1/chat/completions"]
        assert elapsed < SLACK
        await usable_after(server, client, stream, closed=False)


@MODES
async def test_redirect_to_another_origin_gets_nothing(stream: bool) -> None:
    """A 307 to another origin sends it nothing, so the API key never reaches it."""
    async with RawServer(stall) as other:
        target = other.url + "/chat/completions"
        async with serving(redirect(target, 307)) as (server, client):
            error, _ = await fails(APIStatusError, client, stream)
            assert error.status_code == 307 and target in str(error)
            await usable_after(server, client, stream, closed=False)
        assert other.connections == []


@MODES
async def test_html_error_page(stream: bool) -> None:
    """An HTML 502 page is an InternalServerError whose message starts with the page."""
    async with serving(answer(response(PAGE, 502, "text/html"))) as (server, client):
        error, elapsed = await fails(InternalServerError, client, stream)
        assert error.status_code == 502
        assert error.message.startswith("<html><head><title>502 Bad Gateway</title>")
        assert error.body == PAGE.decode()
        assert elapsed < SLACK
        await usable_after(server, client, stream, closed=False)


@MODES
async def test_html_error_page_is_retried(stream: bool, retry_waits: list[float]) -> None:
    """A 502 page is retried like any 5xx, and the retry's answer is returned."""
    async with serving(answer(response(PAGE, 502, "text/html")), max_retries=1) as (
        server,
        client,
    ):
        assert await ask(client, stream) == "healthy"
        assert len(server.requests) == 2 and len(retry_waits) == 1


# --------------------------------------------------------------------------- not quite HTTP

# Each answer with what the message must say was wrong with it. aiohttp's parser words its
# complaint differently from version to version (3.10 names no "status line", and its
# ClientResponseError says nothing at all), so these are only what every version allowed says.
NOT_HTTP = {
    "not-http": (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", r"SSH-2\.0-OpenSSH"),
    "huge-header": (
        b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
        r"more than \d+ bytes",
    ),
    "bad-chunk-size": (sse_head() + b"zz\r\ndata: x\r\n", r"chunk size"),
}


@MODES
@pytest.mark.parametrize("case", list(NOT_HTTP))
async def test_answer_that_is_not_valid_http(case: str, stream: bool) -> None:
    """An answer that is not valid HTTP is an APIConnectionError saying so, and what was wrong."""
    raw, says = NOT_HTTP[case]

    async def script(conn: Conn) -> None:
        await conn.request()
        await conn.send(raw)
        await conn.wait(60)

    # A bad chunk in a stream fails at create() or, if it came in a later read, in the loop.
    expected = (APIConnectionError, IncompleteStreamError) if stream else APIConnectionError
    async with serving(script) as (server, client):
        error, elapsed = await fails(expected, client, stream)
        assert not isinstance(error, APITimeoutError)
        if isinstance(error, APIConnectionError):  # else cut mid-stream, which it names
            assert str(error).startswith("The server's answer is not valid HTTP: "), error
        assert re.search(says, str(error)), error
        assert elapsed < SLACK
        await usable_after(server, client, stream)


async def test_undecodable_gzip_body() -> None:
    """A body labelled gzip that is not gzip is an APIConnectionError naming the encoding."""
    raw = response(b"this is not gzip", headers={"Content-Encoding": "gzip"})
    async with serving(answer(raw)) as (server, client):
        error, elapsed = await fails(APIConnectionError, client, False)
        assert "gzip" in str(error)
        assert elapsed < SLACK
        await usable_after(server, client, False)


def answer_then_hang_up(reset: bool) -> Script:
    async def script(conn: Conn) -> None:
        await conn.request()
        await conn.send(response(COMPLETION_BYTES))
        await conn.wait(0.05)
        if reset:
            conn.reset()
        else:
            await conn.close()

    return script


@pytest.mark.parametrize("reset", [False, True], ids=["fin", "rst"])
async def test_pooled_connection_closed_by_the_server(reset: bool) -> None:
    """A keep-alive connection the server closed while idle is not reused: no error, no retry."""
    async with serving(answer_then_hang_up(reset)) as (server, client):
        assert await ask(client, False) == "healthy"
        await server.closed(0)
        await anyio.sleep(0.1)  # the close reached the client a while before its next request
        await usable_after(server, client, False)
        assert len(server.connections) == 2
