"""Fuzzing the decode paths: any bytes, any split, any JSON shape gives a result or our own error.

Properties feed the real paths (the local server, ``create()``, ``AsyncStream``, ``SSEDecoder``)
and check that nothing escapes but the SDK's documented errors. The last sections check that no
input shape makes time or memory grow faster than the input: 8x the input may cost up to 16x
the time, not 64x, and a long stream does not hold more memory than a short one.

Two input families have tests of their own rather than a place in the properties: invalid
UTF-8 inside JSON strings (in test_faults.py) and JSON nested deeper than ~1000 levels (below).
"""

from __future__ import annotations

import copy
import gc
import itertools
import json
import time
import tracemalloc
from collections.abc import AsyncIterator, Callable
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from aiocometapi import (
    APIResponseValidationError,
    APIStatusError,
    AsyncCometAPI,
    AuthenticationError,
    BadRequestError,
    CometAPIError,
    ConflictError,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
    UnprocessableEntityError,
)
from aiocometapi._accumulate import Accumulator
from aiocometapi.sse import EventTooLargeError, ServerSentEvent, SSEDecoder
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion, ChatCompletionChunk
from conftest import FAKE_KEY, user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"
NETWORK = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""Properties that make requests: few examples, no per-example deadline."""


@pytest.fixture
async def quiet_client(server: MockServer) -> AsyncIterator[AsyncCometAPI]:
    """A client that never retries, so that every scripted reply meets exactly one request."""
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, max_retries=0) as api:
        yield api


async def create(client: AsyncCometAPI) -> ChatCompletion:
    return await client.chat.completions.create(model=MODEL, messages=[user("hi")])


# --------------------------------------------------------------------------- JSON shapes

FIELDS = [
    "id", "object", "created", "model", "choices", "usage", "index", "message", "delta", "role",
    "content", "refusal", "reasoning_content", "tool_calls", "function", "name", "arguments",
    "type", "finish_reason", "logprobs", "token", "logprob", "bytes", "top_logprobs",
    "prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details",
    "cached_tokens", "error", "code", "param", "parsed", "system_fingerprint", "service_tier",
]  # fmt: skip
scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=12)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=24,
)

FULL_COMPLETION: dict[str, Any] = {
    "id": "chatcmpl-9", "object": "chat.completion", "created": 1_700_000_000, "model": MODEL,
    "system_fingerprint": "fp_1", "service_tier": "default",
    "choices": [{
        "index": 0, "finish_reason": "tool_calls",
        "message": {
            "role": "assistant", "content": "Let me look.", "refusal": None,
            "reasoning_content": "The user wants weather.",
            "tool_calls": [{"id": "call_1", "type": "function",
                            "function": {"name": "get_weather",
                                         "arguments": "{\"city\":\"Oslo\"}"}}],
        },
        "logprobs": {"content": [{"token": "Let", "logprob": -0.1, "bytes": [76, 101, 116],
                                  "top_logprobs": [{"token": "Let", "logprob": -0.1}]}]},
    }],
    "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21,
              "prompt_tokens_details": {"cached_tokens": 0},
              "completion_tokens_details": {"reasoning_tokens": 5}},
}  # fmt: skip
FULL_CHUNK: dict[str, Any] = {
    "id": "chatcmpl-9", "object": "chat.completion.chunk", "created": 1_700_000_000,
    "model": MODEL,
    "choices": [{
        "index": 0, "finish_reason": None,
        "delta": {"role": "assistant", "content": "Hel", "reasoning_content": "hm",
                  "tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                  "function": {"name": "f", "arguments": "{\"a\""}}]},
        "logprobs": {"content": [{"token": "Hel", "logprob": -0.2}]},
    }],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}  # fmt: skip


def swapped(value: Any) -> Any:
    """The same value as another JSON type."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, str):
        return len(value)
    if isinstance(value, list):
        return {"items": value}
    if isinstance(value, dict):
        return [value]
    return 0


def mutate(draw: st.DrawFn, node: Any) -> Any:
    """``node`` with one member, somewhere inside, dropped, nulled, replaced or retyped."""
    if not isinstance(node, (dict, list)) or not node:
        return draw(st.one_of(st.none(), st.just(swapped(node)), json_values))
    keys: list[Any] = sorted(node) if isinstance(node, dict) else list(range(len(node)))
    key = draw(st.sampled_from(keys))
    action = draw(st.sampled_from(["descend", "descend", "drop", "null", "replace", "swap"]))
    if action == "descend":
        node[key] = mutate(draw, node[key])
    elif action == "drop":
        del node[key]
    elif action == "null":
        node[key] = None
    elif action == "replace":
        node[key] = draw(json_values)
    else:
        node[key] = swapped(node[key])
    return node


def mutations(base: dict[str, Any]) -> st.SearchStrategy[Any]:
    @st.composite
    def build(draw: st.DrawFn) -> Any:
        value: Any = copy.deepcopy(base)
        for _ in range(draw(st.integers(1, 4))):
            value = mutate(draw, value)
        return value

    return build()


def encode(value: Any) -> bytes:
    return json.dumps(value).encode()


valid_completion = encode(FULL_COMPLETION)
response_bodies = st.one_of(
    json_values.map(encode),
    mutations(FULL_COMPLETION).map(encode),
    st.integers(0, len(valid_completion)).map(lambda n: valid_completion[:n]),
    st.text(max_size=40).map(str.encode),
)


# --------------------------------------------------------------------------- responses


async def expect_completion_or_validation_error(client: AsyncCometAPI, raw: bytes) -> None:
    try:
        completion = await create(client)
    except APIResponseValidationError as error:
        assert error.status_code == 200
        assert error.body == raw[:2000].decode("utf-8", "replace")
        assert "not the JSON the API promises" in str(error)
        assert error.request_id is not None
    else:
        assert isinstance(completion, ChatCompletion)
        assert all(isinstance(choice.message.content, (str, type(None)))
                   for choice in completion.choices)  # fmt: skip


@NETWORK
@given(raw=response_bodies)
async def test_any_200_body(server: MockServer, quiet_client: AsyncCometAPI, raw: bytes) -> None:
    """Any 200 body gives a completion or an APIResponseValidationError holding the body."""
    server.reply_json(raw)
    await expect_completion_or_validation_error(quiet_client, raw)


@NETWORK
@given(value=mutations(FULL_COMPLETION))
async def test_mutated_completion(
    server: MockServer, quiet_client: AsyncCometAPI, value: Any
) -> None:
    """A completion with fields dropped, nulled or retyped decodes or is a validation error."""
    raw = encode(value)
    server.reply_json(raw)
    await expect_completion_or_validation_error(quiet_client, raw)


STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError, 401: AuthenticationError, 403: PermissionDeniedError,
    404: NotFoundError, 409: ConflictError, 418: APIStatusError,
    422: UnprocessableEntityError, 429: RateLimitError, 500: InternalServerError,
    503: InternalServerError,
}  # fmt: skip
error_bodies = st.one_of(
    response_bodies,
    json_values.map(lambda v: encode({"error": v})),
    mutations({"error": {"message": "m", "type": "t", "code": "c", "param": "p"}}).map(encode),
)


@NETWORK
@given(raw=error_bodies, status=st.sampled_from(sorted(STATUS_CLASSES)))
async def test_any_error_body(
    server: MockServer, quiet_client: AsyncCometAPI, raw: bytes, status: int
) -> None:
    """Any error body gives the status's own APIStatusError with a non-empty message."""
    server.reply_json(raw, status=status)
    with pytest.raises(APIStatusError) as info:
        await create(quiet_client)
    error = info.value
    assert type(error) is STATUS_CLASSES[status] and error.status_code == status
    assert isinstance(error.message, str) and error.message
    assert str(error).startswith(f"Error code: {status} - ")


# --------------------------------------------------------------------------- stream chunks

chunk_values = st.one_of(json_values, mutations(FULL_CHUNK))


async def read_stream(client: AsyncCometAPI) -> tuple[list[ChatCompletionChunk], Any]:
    """Every chunk of one stream, and the completion (or the error) it ended with."""
    received: list[ChatCompletionChunk] = []
    async with await client.chat.completions.create(
        model=MODEL, messages=[user("hi")], stream=True
    ) as stream:
        try:
            async for piece in stream:
                received.append(piece)
        except StreamError as error:
            return received, error
    return received, stream.completion


@NETWORK
@given(values=st.lists(chunk_values, max_size=6), split=st.none() | st.integers(2, 64))
async def test_any_chunks(
    server: MockServer, quiet_client: AsyncCometAPI, values: list[Any], split: int | None
) -> None:
    """Any JSON as stream chunks gives chunks and a completion, or a StreamError with a partial."""
    server.reply_stream([b"data: " + encode(v) + b"\n\n" for v in values], split=split)
    received, end = await read_stream(quiet_client)
    assert len(received) <= len(values)
    if isinstance(end, StreamError):
        assert not isinstance(end, IncompleteStreamError), end  # [DONE] was sent
        assert end.partial is None or isinstance(end.partial, ChatCompletion)
    else:
        assert isinstance(end, ChatCompletion)


SSE_PIECES = [
    b"data: ", b"data:", b"data", b"event: error\n", b"event: ping\n", b"id: 7\n", b"retry: 5\n",
    b": keep-alive", b"\n", b"\r", b"\r\n", b"\n\n", b"{", b"}", b"[DONE]", b"x", b" ",
    b'{"choices": []}', b'{"error": {"message": "boom"}}', b'{"error": "plain"}',
    encode(FULL_CHUNK), encode({"choices": [{"index": 0, "delta": {"content": "h\u00e9"}}]}),
    "\u00e9\u20ac\U0001f600".encode(), b"\xef\xbb\xbf",
]  # fmt: skip
event_streams = st.lists(st.sampled_from(SSE_PIECES), max_size=40).map(b"".join)


async def outcome(
    server: MockServer, client: AsyncCometAPI, body: bytes, split: int | None, done: bool
) -> tuple[Any, ...]:
    server.reply_stream([body], split=split, done=done)
    received, end = await read_stream(client)
    ending = (type(end).__name__, str(end)) if isinstance(end, CometAPIError) else "completion"
    return [msgspec.json.encode(c) for c in received], ending


@NETWORK
@given(body=event_streams, split=st.integers(1, 16), done=st.booleans())
async def test_any_event_stream_bytes(
    server: MockServer, quiet_client: AsyncCometAPI, body: bytes, split: int, done: bool
) -> None:
    """Event-stream bytes in any order, written whole or in pieces, give the same outcome."""
    whole = await outcome(server, quiet_client, body, None, done)
    assert whole == await outcome(server, quiet_client, body, split, done)


@pytest.mark.parametrize(
    "split",
    [pytest.param(None, id="whole"), pytest.param(1, id="byte-by-byte")],
)
async def test_empty_spaced_data_event(
    server: MockServer, quiet_client: AsyncCometAPI, split: int | None
) -> None:
    """An empty ``data: `` event (space included) is a keep-alive, however the bytes arrive."""
    content = {"choices": [{"index": 0, "delta": {"content": "hi"}}]}
    server.reply_stream([b"data: \n\n", content, b"data: \r\n\r\n"], split=split)
    _, end = await read_stream(quiet_client)
    assert isinstance(end, ChatCompletion), end
    assert end.choices[0].message.content == "hi"


# --------------------------------------------------------------------------- the SSE decoder


def feed_all(chunks: list[bytes], payloads: bool, limit: int) -> list[tuple[str, str]] | None:
    """(event, data) of every event, or ``None`` if the bound was hit."""
    decoder = SSEDecoder(max_event_size=limit)
    events: list[tuple[str, str]] = []
    try:
        for piece in chunks:
            for item in decoder._feed_payloads(piece) if payloads else decoder.feed(piece):
                if isinstance(item, ServerSentEvent):
                    events.append((item.event, item.data))
                else:
                    events.append(("message", item.decode("utf-8", "replace")))
    except EventTooLargeError:
        return None
    decoder.end()
    return events


@settings(max_examples=300)
@given(
    stream=st.binary(max_size=300) | event_streams | st.binary(max_size=40).map(lambda b: b * 8),
    cuts=st.lists(st.integers(0, 400), max_size=10),
    limit=st.integers(1, 128) | st.just(1 << 30),
)
def test_decoder_on_any_bytes(stream: bytes, cuts: list[int], limit: int) -> None:
    """Any bytes, cut anywhere, under any bound: events or EventTooLargeError, both APIs agree."""
    bounds = sorted({min(c, len(stream)) for c in cuts} | {0, len(stream)})
    chunks = [stream[a:b] for a, b in itertools.pairwise(bounds)]
    assert feed_all(chunks, False, limit) == feed_all(chunks, True, limit)
    assert feed_all(chunks, False, limit) == feed_all([stream], False, limit)


# --------------------------------------------------------------------------- deep nesting

DEEP = 5000


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


async def test_deeply_nested_200_body(server: MockServer, quiet_client: AsyncCometAPI) -> None:
    """A 10 KB body nested 5000 deep decodes, or is an APIResponseValidationError; never a
    RecursionError. (Which one depends on how deep msgspec goes: Python 3.13 goes deeper.)"""
    server.reply_json(b'{"gateway_trace": ' + nested(DEEP) + b"}")
    try:
        completion = await create(quiet_client)
    except APIResponseValidationError as error:
        assert "recursion depth" in str(error) and '{"gateway_trace": [[[' in str(error)
        return
    assert completion.choices == []


async def test_deeply_nested_chunk(server: MockServer, quiet_client: AsyncCometAPI) -> None:
    """A stream chunk nested 5000 deep is a chunk, or a StreamError; never a RecursionError."""
    server.reply_stream([b'data: {"x": ' + nested(DEEP) + b"}\n\n"])
    received, end = await read_stream(quiet_client)
    if isinstance(end, StreamError):
        assert end.partial is not None and received == []
    else:
        assert len(received) == 1 and end.choices == []


async def test_deeply_nested_error_body(server: MockServer, quiet_client: AsyncCometAPI) -> None:
    """An error body nested 5000 deep still gives the status error."""
    server.reply_json(b'{"error": ' + nested(DEEP) + b"}", status=500)
    with pytest.raises(InternalServerError):
        await create(quiet_client)


async def test_nesting_below_the_limit_is_fine(
    server: MockServer, quiet_client: AsyncCometAPI
) -> None:
    """Nesting a few hundred levels deep in an ignored field decodes normally."""
    server.reply_json(b'{"gateway_trace": ' + nested(500) + b', "choices": []}')
    assert (await create(quiet_client)).choices == []


# --------------------------------------------------------------------------- time grows linearly


def best_time(run: Callable[[], object], repeat: int = 5) -> float:
    """The least CPU time of ``repeat`` runs: CPU time, because on a busy machine wall time
    charges a long run for every other process that got the core meanwhile."""
    best = float("inf")
    for _ in range(repeat):
        started = time.thread_time()
        run()
        best = min(best, time.thread_time() - started)
    return best


def growth(make_run: Callable[[int], Callable[[], object]], n: int) -> float:
    """How much longer 8x the input takes than 1x (GC off; the best of several runs).

    Measured up to five times, the least ratio kept: noise only ever adds, and a quadratic
    path gives ~64 every time.
    """
    small, big = make_run(n), make_run(8 * n)
    gc.collect()
    gc.disable()
    try:
        best_time(small, 1)  # warm up
        ratio = float("inf")
        for _ in range(5):  # three were not enough on CI with a load average of 12 on 2 cores
            ratio = min(ratio, best_time(big) / best_time(small))
            if ratio < 16:
                break
        return ratio
    finally:
        gc.enable()


SSE_SHAPES: dict[str, tuple[Callable[[int], bytes], int]] = {
    "tiny-events": (lambda n: b"data: x\n\n" * (n // 9), 1460),
    "data-lines-one-event": (lambda n: b"data: x\n" * (n // 8) + b"\n", 1460),
    "lone-crs": (lambda n: b"\r" * n, 1460),
    "crlf-split-in-two": (lambda n: b"data: x\r\n\r\n" * (n // 11), 10),
    "one-huge-line": (lambda n: b"data: " + b"x" * n + b"\n\n", 1460),
    "one-huge-line-tiny-reads": (lambda n: b"data: " + b"x" * n + b"\n\n", 16),
    "comments": (lambda n: b": c\n" * (n // 4), 1460),
    "blank-lines": (lambda n: b"\n" * n, 1460),
    "unknown-fields": (lambda n: b"x:y\n" * (n // 4) + b"\n", 1460),
    "ids": (lambda n: b"id: 1\n" * (n // 6) + b"data: x\n\n", 1460),
}


@pytest.mark.parametrize("shape", list(SSE_SHAPES))
def test_decoder_time_is_linear(shape: str) -> None:
    """8x the bytes of an adversarial event stream costs under 16x the time (not quadratic)."""
    build, piece = SSE_SHAPES[shape]

    def make_run(n: int) -> Callable[[], object]:
        data = build(n)
        chunks = [data[i : i + piece] for i in range(0, len(data), piece)]

        def run() -> None:
            decoder = SSEDecoder(max_event_size=1 << 40)
            for c in chunks:
                decoder._feed_payloads(c)
            decoder.end()

        return run

    ratio = growth(make_run, 1 << 15)
    assert ratio < 16, ratio


def chunks_of(*deltas: dict[str, Any]) -> list[ChatCompletionChunk]:
    return [msgspec.convert({"choices": [d]}, ChatCompletionChunk) for d in deltas]


def tool_delta(call: dict[str, Any]) -> dict[str, Any]:
    return {"index": 0, "delta": {"tool_calls": [call]}}


CHUNK_SHAPES: dict[str, Callable[[int], list[ChatCompletionChunk]]] = {
    "content": lambda k: chunks_of(*[{"index": 0, "delta": {"content": "ab"}}] * k),
    "many-choices": lambda k: chunks_of(
        *[{"index": i, "delta": {"content": "a"}} for i in range(k)]
    ),
    "indexed-fragments": lambda k: chunks_of(*[tool_delta(
        {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": "x"}})] * k),
    "whole-calls-without-index": lambda k: chunks_of(*[tool_delta(
        {"id": f"call_{i}", "function": {"name": "f", "arguments": "{}"}}) for i in range(k)]),
    "indexed-calls-then-bare-fragments": lambda k: chunks_of(
        *[tool_delta({"index": i, "id": f"c{i}", "function": {"name": "f"}}) for i in range(k)],
        *[tool_delta({"function": {"arguments": "x"}})] * k,
    ),
}  # fmt: skip


@pytest.mark.parametrize("shape", list(CHUNK_SHAPES))
def test_accumulation_time_is_linear(shape: str) -> None:
    """8x the chunks of any shape cost under 16x the time to assemble (not quadratic)."""

    def make_run(k: int) -> Callable[[], object]:
        chunks = CHUNK_SHAPES[shape](k)

        def run() -> None:
            accumulator = Accumulator()
            for c in chunks:
                accumulator.add(c)
            accumulator.completion()

        return run

    ratio = growth(make_run, 250)
    assert ratio < 16, ratio


# --------------------------------------------------------------------------- memory stays flat


def decoder_peak(events: int) -> int:
    data = b'data: {"choices":[{"index":0,"delta":{}}]}\n\n' * events
    chunks = [data[i : i + 1460] for i in range(0, len(data), 1460)]
    decoder = SSEDecoder()
    gc.collect()
    tracemalloc.start()
    try:
        for c in chunks:
            decoder._feed_payloads(c)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_decoder_memory_is_flat() -> None:
    """Decoding 80,000 small events needs no more memory at its peak than 10,000 do."""
    small, big = decoder_peak(10_000), decoder_peak(80_000)
    assert big < small * 1.5 + 4096, (small, big)


def huge_line_peak(size: int) -> int:
    data = b"data: " + b"x" * size + b"\n\n"
    chunks = [data[i : i + 1460] for i in range(0, len(data), 1460)]
    decoder = SSEDecoder(max_event_size=1 << 40)
    gc.collect()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        events = [e for c in chunks for e in decoder.feed(c)]
        assert len(events) == 1
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def test_huge_event_memory_is_linear() -> None:
    """One huge event costs a few times its size in memory, at any size."""
    for size in (1 << 18, 1 << 21):
        assert huge_line_peak(size) < 4 * size + 65536


CLIENT_CODE = [
    tracemalloc.Filter(True, "*/aiocometapi/*"),
    tracemalloc.Filter(False, "*/aiocometapi/testing/*"),
]


async def test_stream_memory_is_flat(server: MockServer, quiet_client: AsyncCometAPI) -> None:
    """Reading a 4 MB stream of small chunks, the SDK holds about one read, never the stream."""
    total = 16_000
    padded = {"choices": [{"index": 0, "delta": {}}], "gateway_padding": "x" * 200}
    body_size = total * len(b"data: " + encode(padded) + b"\n\n")
    server.reply_stream([padded] * total)
    held: list[int] = []

    def sdk_memory() -> int:
        snapshot = tracemalloc.take_snapshot().filter_traces(CLIENT_CODE)
        return sum(stat.size for stat in snapshot.statistics("filename"))

    gc.collect()
    tracemalloc.start()
    try:
        async with await quiet_client.chat.completions.create(
            model=MODEL, messages=[user("hi")], stream=True
        ) as stream:
            count = 0
            async for _ in stream:
                count += 1
                if count % 2000 == 0:
                    held.append(sdk_memory())
            after = sdk_memory()
    finally:
        tracemalloc.stop()
    assert count == total
    assert max(held) < body_size / 4, (held, body_size)
    assert after < 64 * 1024, after
