"""A local CometAPI look-alike, a real aiohttp server, for tests, benchmarks and offline demos."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import random
import re
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import msgspec
from aiohttp import web

__all__ = [
    "Comment",
    "Drop",
    "MockServer",
    "MockStats",
    "Pause",
    "RecordedRequest",
    "StreamEvent",
    "mock_words",
    "run",
]

DEFAULT_MODELS = [
    "gpt-5.4-mini", "o3", "claude-sonnet-4-6", "gemini-3-flash-preview", "deepseek-v3.2"
]

_VOCABULARY = (
    "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf",
    "hotel", "india", "juliet", "kilo", "lima", "mike",
)
_BATCH_BYTES = 64 * 1024
_DONE = b"data: [DONE]\n\n"
_SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
_JSON_CONTENT_TYPE = "application/json"
_MODELS_CREATED = 1_700_000_000
_encode = msgspec.json.Encoder().encode


# --------------------------------------------------------------------------- public value types


@dataclass(frozen=True, slots=True)
class Comment:
    """An SSE comment line (``: text``), the keep-alive some gateways send while a model thinks."""

    text: str = "keep-alive"


@dataclass(frozen=True, slots=True)
class Pause:
    """A stall in a scripted stream: nothing is written for ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Drop:
    """The connection is closed at this point of a scripted stream, leaving the body truncated."""


StreamEvent = dict[str, Any] | str | bytes | Comment | Pause | Drop
"""One item of ``reply_stream``: a dict or str becomes a ``data:`` event, bytes go out raw."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    """Header names are lower-cased."""
    body: Any
    """The decoded JSON body, or ``None`` when the body is empty or not JSON."""
    raw: bytes


@dataclass
class MockStats:
    """Counters of what the server did since it started."""

    requests: int = 0
    responses_by_status: dict[int, int] = field(default_factory=dict)
    rate_limited: int = 0
    """Chat requests refused with 429 by ``rps_limit`` or ``max_in_flight``."""
    dropped: int = 0
    """Connections closed without a complete response (injected, ``reply_drop`` or ``Drop``)."""
    injected_failures: int = 0
    """Chat requests that ``fail_rate`` answered 500 or ``drop_rate`` dropped."""
    slowed: int = 0
    """Chat requests that ``slow_rate`` delayed."""
    in_flight: int = 0
    max_in_flight_seen: int = 0

    def count_status(self, status: int) -> None:
        """Count one response sent with ``status``."""
        self.responses_by_status[status] = self.responses_by_status.get(status, 0) + 1


def mock_words(n: int) -> str:
    """The reply content the server gives to a request whose body has ``{"mock": {"words": n}}``."""
    size = len(_VOCABULARY)
    return " ".join(_VOCABULARY[i % size] for i in range(n))


# --------------------------------------------------------------------------- reply builders


class _Dropped(Exception):
    """Raised inside a handler to have the connection closed with no (further) response."""


def _error_body(
    message: str, type: str | None, code: str | None = None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": type, "code": code, "param": param}}


def _sse(event: Any) -> bytes:
    return b"data: " + _encode(event) + b"\n\n"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [
            part["text"]
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
            and isinstance(part.get("text"), str)
        ]
        return " ".join(texts)
    return ""


def _word_pieces(text: str) -> list[str]:
    """Words with the whitespace after them, so that the pieces add up to ``text`` exactly."""
    return re.findall(r"\s*\S+\s*|\s+", text)


def _slices(text: str, parts: int) -> list[str]:
    parts = max(1, min(parts, len(text)))
    size = math.ceil(len(text) / parts) if text else 1
    return [text[i : i + size] for i in range(0, len(text), size)] or [text]


def _fragments(text: str) -> list[str]:
    """``text`` cut into several deltas: by words, or by characters when it has under three."""
    pieces = _word_pieces(text)
    return pieces if len(pieces) >= 3 else _slices(text, 3)


def _words(text: str | None) -> int:
    return len(text.split()) if text else 0


def _usage(prompt: int, completion: int) -> dict[str, int]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def _headers(content_type: str, request_id: str, extra: Mapping[str, str] | None) -> dict[str, str]:
    merged = {"Content-Type": content_type, "X-Request-Id": request_id}
    for name, value in (extra or {}).items():
        for same in [key for key in merged if key.lower() == name.lower()]:
            del merged[same]
        merged[name] = value
    return merged


def _invalid(body: Any) -> tuple[str, str | None] | None:
    """Why a chat request body cannot be answered, and the parameter at fault; None if it can."""
    if not isinstance(body, dict):
        return "We could not parse the JSON body of your request.", None
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter", "model"
    if not isinstance(body.get("messages"), list):
        return "Missing required parameter: 'messages'.", "messages"
    n = body.get("n", 1)
    if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
        return f"{n!r} is not a valid value for 'n': it must be an integer of at least 1.", "n"
    return None


@dataclass
class _Exchange:
    """One admitted chat request and what the replies need to know about it."""

    request: web.BaseRequest
    stats: MockStats
    number: int
    body: dict[str, Any]
    created: int = field(default_factory=lambda: int(time.time()))

    @property
    def request_id(self) -> str:
        return f"mock-{self.number}"

    @property
    def completion_id(self) -> str:
        return f"chatcmpl-mock-{self.number}"

    @property
    def model(self) -> str:
        return str(self.body["model"])

    @property
    def stream(self) -> bool:
        return self.body.get("stream") is True

    @property
    def include_usage(self) -> bool:
        options = self.body.get("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    @property
    def n(self) -> int:
        n = self.body.get("n")
        return n if isinstance(n, int) else 1

    @property
    def messages(self) -> list[dict[str, Any]]:
        return [m for m in self.body["messages"] if isinstance(m, dict)]

    @property
    def prompt_tokens(self) -> int:
        chars = sum(len(_text_of(m.get("content"))) for m in self.messages)
        return max(1, math.ceil(chars / 4))

    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _text_of(message.get("content"))
        return ""

    def chunk(
        self, delta: dict[str, Any], finish_reason: str | None = None, index: int = 0
    ) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ],
        }

    def usage_chunk(self, usage: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [],
            "usage": dict(usage),
        }

    def completion(
        self, messages: list[dict[str, Any]], finish_reason: str, usage: Mapping[str, Any]
    ) -> dict[str, Any]:
        return {
            "id": self.completion_id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [
                {"index": i, "message": m, "logprobs": None, "finish_reason": finish_reason}
                for i, m in enumerate(messages)
            ],
            "usage": dict(usage),
        }


def _response(
    request_id: str,
    status: int,
    body: Any,
    *,
    content_type: str = _JSON_CONTENT_TYPE,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    if isinstance(body, str):
        data = body.encode()
    elif isinstance(body, (bytes, bytearray, memoryview)):
        data = bytes(body)
    else:
        data = _encode(body)
    return web.Response(
        status=status, body=data, headers=_headers(content_type, request_id, headers)
    )


async def _write(resp: web.StreamResponse, chunks: list[bytes], split: int | None) -> None:
    data = b"".join(chunks)
    if not data:
        return
    if split is None:
        await resp.write(data)
        return
    for start in range(0, len(data), split):
        await resp.write(data[start : start + split])
        # Two turns of the loop let an in-process client read each piece on its own.
        await asyncio.sleep(0)
        await asyncio.sleep(0)


async def _write_stream(
    ex: _Exchange,
    pieces: Iterable[bytes | Pause | Drop],
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    coalesce: bool = True,
    split: int | None = None,
) -> web.StreamResponse:
    """Send ``pieces`` as a chunked body; ``coalesce`` batches events into few large writes."""
    resp = web.StreamResponse(
        status=status, headers=_headers(_SSE_CONTENT_TYPE, ex.request_id, headers)
    )
    resp.headers.setdefault("Cache-Control", "no-cache")
    resp.enable_chunked_encoding()
    await resp.prepare(ex.request)
    ex.stats.count_status(status)
    pending: list[bytes] = []
    size = 0
    for piece in pieces:
        if isinstance(piece, bytes):
            pending.append(piece)
            size += len(piece)
            if split is None and (not coalesce or size >= _BATCH_BYTES):
                await _write(resp, pending, None)
                pending.clear()
                size = 0
            continue
        await _write(resp, pending, split)
        pending.clear()
        size = 0
        if isinstance(piece, Pause):
            await asyncio.sleep(piece.seconds)
        else:
            raise _Dropped
    await _write(resp, pending, split)
    await resp.write_eof()
    return resp


def _default_stream(
    ex: _Exchange, content: str, usage: Mapping[str, Any], chunk_delay: float
) -> Iterator[bytes | Pause]:
    n = ex.n
    for index in range(n):
        yield _sse(ex.chunk({"role": "assistant", "content": ""}, index=index))
    # Content chunks differ only in their text: encode the frame once and splice the text in.
    head = _sse(ex.chunk({"content": "\x00"}))
    before, _, after = head.rpartition(b'"\\u0000"')
    prefixes = [before.replace(b'"index":0', b'"index":%d' % i, 1) for i in range(n)]
    encoded: dict[str, bytes] = {}
    for word in _word_pieces(content):
        text = encoded.get(word)
        if text is None:
            text = encoded[word] = _encode(word)
        for prefix in prefixes:
            yield prefix + text + after
        if chunk_delay > 0:
            yield Pause(chunk_delay)
    for index in range(n):
        yield _sse(ex.chunk({}, "stop", index=index))
    if ex.include_usage:
        yield _sse(ex.usage_chunk(usage))
    yield _DONE


# --------------------------------------------------------------------------- scripted replies


@dataclass
class _Scripted:
    delay: float

    async def send(self, ex: _Exchange) -> web.StreamResponse:
        raise NotImplementedError


@dataclass
class _BodyReply(_Scripted):
    status: int
    body: Any
    content_type: str
    headers: Mapping[str, str] | None

    async def send(self, ex: _Exchange) -> web.StreamResponse:
        return _response(
            ex.request_id, self.status, self.body,
            content_type=self.content_type, headers=self.headers,
        )


@dataclass
class _DropReply(_Scripted):
    async def send(self, ex: _Exchange) -> web.StreamResponse:
        raise _Dropped


@dataclass
class _StreamReply(_Scripted):
    events: list[StreamEvent]
    done: bool
    split: int | None
    status: int
    headers: Mapping[str, str] | None

    def pieces(self) -> Iterator[bytes | Pause | Drop]:
        for event in self.events:
            if isinstance(event, (Pause, Drop)):
                yield event
            elif isinstance(event, Comment):
                yield b": " + event.text.encode() + b"\n\n"
            elif isinstance(event, bytes):
                yield event
            elif isinstance(event, str):
                yield b"data: " + event.encode() + b"\n\n"
            else:
                yield _sse(event)
        if self.done:
            yield _DONE

    async def send(self, ex: _Exchange) -> web.StreamResponse:
        return await _write_stream(
            ex, self.pieces(), status=self.status, headers=self.headers,
            coalesce=False, split=self.split,
        )


@dataclass
class _TurnReply(_Scripted):
    content: str | None
    tool_calls: list[tuple[str, Mapping[str, Any] | str]]
    refusal: str | None
    reasoning_content: str | None
    finish_reason: str | None
    usage: Mapping[str, Any] | None
    index_base: int
    omit_index: bool

    def calls(self, ex: _Exchange) -> list[tuple[str, str, str]]:
        return [
            (
                f"call_{ex.number}_{i}",
                name,
                arguments if isinstance(arguments, str) else _encode(arguments).decode(),
            )
            for i, (name, arguments) in enumerate(self.tool_calls)
        ]

    def turn_usage(self, ex: _Exchange, calls: list[tuple[str, str, str]]) -> Mapping[str, Any]:
        if self.usage is not None:
            return self.usage
        texts = (self.content, self.refusal, self.reasoning_content)
        completion = sum(_words(t) for t in texts) + sum(math.ceil(len(a) / 4) for *_, a in calls)
        return _usage(ex.prompt_tokens, max(1, completion))

    def finish(self) -> str:
        if self.finish_reason is not None:
            return self.finish_reason
        return "tool_calls" if self.tool_calls else "stop"

    def message(self, calls: list[tuple[str, str, str]]) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant", "content": self.content, "refusal": self.refusal
        }
        if self.reasoning_content is not None:
            message["reasoning_content"] = self.reasoning_content
        if calls:
            message["tool_calls"] = [
                {"id": id, "type": "function", "function": {"name": name, "arguments": args}}
                for id, name, args in calls
            ]
        return message

    def events(self, ex: _Exchange, calls: list[tuple[str, str, str]]) -> Iterator[bytes]:
        yield _sse(ex.chunk({"role": "assistant", "content": None if self.content is None else ""}))
        for key in ("reasoning_content", "content", "refusal"):
            text = getattr(self, key)
            for piece in _fragments(text) if text else ():
                yield _sse(ex.chunk({key: piece}))
        for i, (id, name, args) in enumerate(calls):
            function = {"name": name, "arguments": args}
            if self.omit_index:
                whole = {"id": id, "type": "function", "function": function}
                yield _sse(ex.chunk({"tool_calls": [whole]}))
                continue
            index = self.index_base + i
            first = {
                "index": index, "id": id, "type": "function",
                "function": {"name": name, "arguments": ""},
            }
            yield _sse(ex.chunk({"tool_calls": [first]}))
            for fragment in _slices(args, max(3, len(args) // 12)):
                delta = {"tool_calls": [{"index": index, "function": {"arguments": fragment}}]}
                yield _sse(ex.chunk(delta))
        yield _sse(ex.chunk({}, self.finish()))
        if ex.include_usage:
            yield _sse(ex.usage_chunk(self.turn_usage(ex, calls)))
        yield _DONE

    async def send(self, ex: _Exchange) -> web.StreamResponse:
        calls = self.calls(ex)
        if ex.stream:
            return await _write_stream(ex, self.events(ex, calls), coalesce=False)
        body = ex.completion([self.message(calls)], self.finish(), self.turn_usage(ex, calls))
        return _response(ex.request_id, 200, body)


# --------------------------------------------------------------------------- the server


class _CountingServer(web.Server):
    """aiohttp's low-level server, counting the connections it accepts."""

    accepted = 0

    def connection_made(self, handler: web.RequestHandler, transport: asyncio.Transport) -> None:
        super().connection_made(handler, transport)
        self.accepted += 1


class MockServer:
    """A CometAPI look-alike on a local port: ``async with MockServer() as server: server.url``.

    It serves ``POST /v1/chat/completions``, ``GET /v1/models`` and ``GET /v1/models/{id}``
    (plus ``GET /v1/mock/stats``: ``stats`` as JSON, status counts keyed by strings),
    records every request in ``requests``, and answers a chat request in this order:

    1. **Auth**: with ``api_key`` set only ``Bearer <api_key>`` passes; without it any non-empty
       bearer token does. Otherwise 401.
    2. **Capacity**: above ``rps_limit`` (chat requests admitted per second, a sliding window)
       or ``max_in_flight`` (chat requests being answered at once), 429 with ``Retry-After`` and
       ``retry-after-ms``; ``retry_after`` replaces the computed wait.
    3. **Validation**: a body that is not a JSON object, or lacks ``model`` or ``messages``, 400.
    4. **Failure injection**: one draw from ``random.Random(seed)`` per chat request, in arrival
       order, picks a 500 (``fail_rate``), a dropped connection (``drop_rate``), a delay of
       ``slow_delay`` (``slow_rate``), or nothing. An injected 500 or drop does not use up a
       scripted reply. ``latency`` then delays every request that got this far.
    5. **Scripted replies** (``reply_json``, ``reply_stream``, ``reply_turn``, ...), one per
       request, first in first out.
    6. **The default reply**: ``"Echo: <text of the last user message>"`` (text parts joined by
       spaces), streamed if asked, its chunks ``chunk_delay`` apart. A body with
       ``{"mock": {"words": N}}`` gets ``mock_words(N)`` instead, for benchmarks that run the
       server in another process and cannot script it.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        api_key: str | None = None,
        models: Sequence[str] | None = None,
        rps_limit: float | None = None,
        max_in_flight: int | None = None,
        retry_after: float | None = None,
        seed: int = 0,
        fail_rate: float = 0.0,
        drop_rate: float = 0.0,
        slow_rate: float = 0.0,
        slow_delay: float = 1.0,
        latency: float = 0.0,
        chunk_delay: float = 0.0,
    ) -> None:
        if rps_limit is not None and rps_limit <= 0:
            raise ValueError(f"rps_limit must be positive, got {rps_limit!r}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight!r}")
        rates = {"fail_rate": fail_rate, "drop_rate": drop_rate, "slow_rate": slow_rate}
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")
        if sum(rates.values()) > 1.0:
            raise ValueError("fail_rate + drop_rate + slow_rate must not exceed 1")
        self._host = host
        self._bind_port = port
        self._api_key = api_key
        self._models = list(DEFAULT_MODELS if models is None else models)
        self._rps_limit = rps_limit
        # A sliding window of `capacity` admissions per `window` seconds gives exactly
        # rps_limit per second over time, fractional limits included (0.5 -> 1 per 2 s).
        self._window_capacity = max(1, math.floor(rps_limit)) if rps_limit else 0
        self._window = self._window_capacity / rps_limit if rps_limit else 0.0
        self._admitted: deque[float] = deque()
        self._max_in_flight = max_in_flight
        self._retry_after = retry_after
        self._rng = random.Random(seed)
        self._fail_rate = fail_rate
        self._drop_rate = drop_rate
        self._slow_rate = slow_rate
        self._slow_delay = slow_delay
        self._latency = latency
        self._chunk_delay = chunk_delay
        self._queue: deque[_Scripted] = deque()
        self._numbers = itertools.count(1)
        self._runner: web.ServerRunner | None = None
        self._server: _CountingServer | None = None
        self._port: int | None = None
        self.requests: list[RecordedRequest] = []
        """Every request received, in order."""
        self.stats = MockStats()

    # ----------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Start listening; does nothing if already started."""
        if self._runner is not None:
            return
        server = _CountingServer(self._handle, handler_cancellation=True, access_log=None)
        # A short shutdown: a handler stuck in a scripted Pause must not hold up close().
        runner = web.ServerRunner(server, shutdown_timeout=0.1)
        await runner.setup()
        try:
            site = web.TCPSite(runner, self._host, self._bind_port)
            await site.start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner, self._server = runner, server
        self._port = int(runner.addresses[0][1])

    async def close(self) -> None:
        """Stop listening and close every connection; does nothing if not running."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> MockServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def port(self) -> int:
        """The port listened on."""
        if self._port is None:
            raise RuntimeError("the mock server has not been started")
        return self._port

    @property
    def url(self) -> str:
        """The base URL to give clients, e.g. ``http://127.0.0.1:PORT/v1``."""
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}/v1"

    @property
    def open_connections(self) -> int:
        """TCP connections open right now."""
        if self._server is None or self._runner is None:
            return 0
        return len(self._server.connections)

    @property
    def connections_total(self) -> int:
        """TCP connections accepted since start."""
        return self._server.accepted if self._server is not None else 0

    # ----------------------------------------------------------------------- scripting

    def reply_json(
        self,
        body: Any,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next chat request with ``body`` as JSON (bytes or str are sent as-is)."""
        self._queue.append(_BodyReply(delay, status, body, _JSON_CONTENT_TYPE, headers))

    def reply_error(
        self,
        status: int,
        message: str = "error",
        *,
        type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next chat request with ``status`` and an OpenAI-style error body."""
        body = _error_body(message, type, code, param)
        self._queue.append(_BodyReply(delay, status, body, _JSON_CONTENT_TYPE, headers))

    def reply_raw(
        self,
        status: int,
        body: bytes | str,
        *,
        content_type: str = "text/plain",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next chat request with any body, e.g. a proxy's HTML error page."""
        self._queue.append(_BodyReply(delay, status, body, content_type, headers))

    def reply_drop(self, *, delay: float = 0.0) -> None:
        """Close the next chat request's connection without answering."""
        self._queue.append(_DropReply(delay))

    def reply_stream(
        self,
        events: Iterable[StreamEvent],
        *,
        done: bool = True,
        split: int | None = None,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next chat request with these SSE events, then ``data: [DONE]`` if ``done``.

        Each event is written as soon as it is reached; ``Pause`` stalls, ``Drop`` cuts the
        connection. ``split=k`` writes the bytes in pieces of ``k`` instead.
        """
        if split is not None and split < 1:
            raise ValueError(f"split must be at least 1, got {split!r}")
        self._queue.append(_StreamReply(delay, list(events), done, split, status, headers))

    def reply_turn(
        self,
        *,
        content: str | None = None,
        tool_calls: Sequence[tuple[str, Mapping[str, Any] | str]] | None = None,
        refusal: str | None = None,
        reasoning_content: str | None = None,
        finish_reason: str | None = None,
        usage: Mapping[str, Any] | None = None,
        tool_call_index_base: int = 0,
        omit_tool_call_index: bool = False,
        delay: float = 0.0,
    ) -> None:
        """Answer the next chat request with one assistant turn, streamed if it asks for that.

        Tool calls are ``(name, arguments)``; a dict of arguments is JSON-encoded, a str is sent
        as given. Streamed, each call comes as a head fragment then 3+ argument fragments,
        or whole in one delta without ``index`` if ``omit_tool_call_index`` (as Gemini routes do).
        """
        self._queue.append(_TurnReply(
            delay, content, list(tool_calls or []), refusal, reasoning_content, finish_reason,
            usage, tool_call_index_base, omit_tool_call_index,
        ))

    def clear(self) -> None:
        """Forget every scripted reply not yet used."""
        self._queue.clear()

    # ----------------------------------------------------------------------- handling

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        number = next(self._numbers)
        try:
            resp = await self._dispatch(request, number)
        except _Dropped:
            self.stats.dropped += 1
            if request.transport is not None:
                request.transport.close()
            # aiohttp fails to write this to the closed transport and ends the connection.
            return web.Response()
        except ConnectionError:
            return web.Response()
        if isinstance(resp, web.Response):
            # Streamed replies count themselves when their headers go out.
            self.stats.count_status(resp.status)
        return resp

    async def _dispatch(self, request: web.BaseRequest, number: int) -> web.StreamResponse:
        raw = await request.content.read()
        body: Any = None
        if raw:
            with contextlib.suppress(msgspec.DecodeError):
                body = msgspec.json.decode(raw)
        headers = {name.lower(): value for name, value in request.headers.items()}
        self.requests.append(
            RecordedRequest(request.method, request.path, dict(request.query), headers, body, raw)
        )
        self.stats.requests += 1
        request_id = f"mock-{number}"

        path = request.path.rstrip("/")
        if path == "/v1/chat/completions":
            allowed = "POST"
        elif path in ("/v1/models", "/v1/mock/stats") or path.startswith("/v1/models/"):
            allowed = "GET"
        else:
            message = f"Invalid URL ({request.method} {request.path})"
            error = _error_body(message, "invalid_request_error", "unknown_url")
            return _response(request_id, 404, error)
        if request.method != allowed:
            message = f"Method {request.method} not allowed on {request.path}"
            error = _error_body(message, "invalid_request_error", "method_not_allowed")
            return _response(request_id, 405, error, headers={"Allow": allowed})
        if not self._authorized(request.headers.get("Authorization", "")):
            error = _error_body("Invalid API key", "invalid_request_error", "invalid_api_key")
            return _response(request_id, 401, error)
        if path == "/v1/mock/stats":
            # ``stats`` as JSON, for a benchmark or test that runs the server in another process.
            return _response(request_id, 200, self.stats)
        if allowed == "GET":
            return self._models_reply(request_id, path)
        return await self._chat(request, number, body)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        return self._api_key is None or token == self._api_key

    def _models_reply(self, request_id: str, path: str) -> web.Response:
        def model(id: str) -> dict[str, Any]:
            return {"id": id, "object": "model", "created": _MODELS_CREATED, "owned_by": _owner(id)}

        if path == "/v1/models":
            models = {"object": "list", "data": [model(id) for id in self._models]}
            return _response(request_id, 200, models)
        wanted = path.removeprefix("/v1/models/")
        if wanted in self._models:
            return _response(request_id, 200, model(wanted))
        message = f"The model '{wanted}' does not exist"
        body = _error_body(message, "invalid_request_error", "model_not_found", "model")
        return _response(request_id, 404, body)

    def _refusal(self) -> tuple[float, str] | None:
        """The wait and message of a 429 if a chat request arriving now is over capacity."""
        now = time.monotonic()
        if self._rps_limit is not None:
            while self._admitted and self._admitted[0] <= now - self._window:
                self._admitted.popleft()
            if len(self._admitted) >= self._window_capacity:
                wait = self._admitted[0] + self._window - now
                limit = f"{self._rps_limit:g}"
                return wait, f"Rate limit reached on requests per second (RPS): Limit {limit}"
        if self._max_in_flight is not None and self.stats.in_flight >= self._max_in_flight:
            # How long until a slot frees is unknown; the configured latency is a fair hint.
            wait = max(0.1, self._latency)
            limit = str(self._max_in_flight)
            return wait, f"Rate limit reached on concurrent requests: Limit {limit}"
        if self._rps_limit is not None:
            self._admitted.append(now)
        return None

    async def _chat(self, request: web.BaseRequest, number: int, body: Any) -> web.StreamResponse:
        request_id = f"mock-{number}"
        refusal = self._refusal()
        if refusal is not None:
            wait, reason = refusal
            if self._retry_after is not None:
                wait = self._retry_after
            self.stats.rate_limited += 1
            message = f"{reason}. Please try again in {math.ceil(wait * 1000)}ms."
            headers = {
                "Retry-After": str(max(1, math.ceil(wait))),
                "retry-after-ms": str(max(0, math.ceil(wait * 1000))),
            }
            error = _error_body(message, "rate_limit_error", "rate_limit_exceeded")
            return _response(request_id, 429, error, headers=headers)

        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight_seen = max(stats.max_in_flight_seen, stats.in_flight)
        try:
            return await self._answer(request, number, body)
        finally:
            stats.in_flight -= 1

    async def _answer(self, request: web.BaseRequest, number: int, body: Any) -> web.StreamResponse:
        invalid = _invalid(body)
        if invalid is not None:
            message, param = invalid
            error = _error_body(message, "invalid_request_error", "invalid_request", param)
            return _response(f"mock-{number}", 400, error)
        ex = _Exchange(request, self.stats, number, body)

        roll = self._rng.random()
        fail = roll < self._fail_rate
        drop = not fail and roll < self._fail_rate + self._drop_rate
        slow = not (fail or drop) and roll < self._fail_rate + self._drop_rate + self._slow_rate
        scripted = self._queue.popleft() if self._queue and not (fail or drop) else None
        if fail or drop:
            self.stats.injected_failures += 1
        elif slow:
            self.stats.slowed += 1

        if self._latency > 0:
            await asyncio.sleep(self._latency)
        if fail:
            message = f"upstream error (request id: {ex.request_id})"
            error = _error_body(message, "server_error", "internal_error")
            return _response(ex.request_id, 500, error)
        if drop:
            raise _Dropped
        if slow:
            await asyncio.sleep(self._slow_delay)
        if scripted is not None:
            if scripted.delay > 0:
                await asyncio.sleep(scripted.delay)
            return await scripted.send(ex)
        return await self._default_reply(ex)

    async def _default_reply(self, ex: _Exchange) -> web.StreamResponse:
        mock = ex.body.get("mock")
        words = mock.get("words") if isinstance(mock, dict) else None
        if isinstance(words, int) and not isinstance(words, bool) and words >= 0:
            content = mock_words(words)
        else:
            content = f"Echo: {ex.last_user_text()}"
        usage = _usage(ex.prompt_tokens, _words(content) * ex.n)
        if ex.stream:
            return await _write_stream(ex, _default_stream(ex, content, usage, self._chunk_delay))
        message = {"role": "assistant", "content": content, "refusal": None}
        return _response(ex.request_id, 200, ex.completion([message] * ex.n, "stop", usage))


def _owner(model: str) -> str:
    owners = {"gpt": "openai", "o": "openai", "claude": "anthropic", "gemini": "google"}
    prefix = re.split(r"[-\d]", model, maxsplit=1)[0]
    return owners.get(prefix, prefix or "cometapi")


# --------------------------------------------------------------------------- command line


def run(host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve a ``MockServer`` with ``options`` until Ctrl-C or SIGTERM; blocks."""
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(host, port, options))


async def _serve(host: str, port: int, options: dict[str, Any]) -> None:
    stopped = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        # Windows has no loop signal handlers; Ctrl-C then ends asyncio.run instead.
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stopped.set)
    async with MockServer(host=host, port=port, **options) as server:
        print(f"aiocometapi mock server listening on {server.url}", flush=True)
        await stopped.wait()
