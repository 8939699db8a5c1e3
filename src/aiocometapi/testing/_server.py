"""``MockServer``, the aiohttp server: lifecycle, scripting, routing, auth, recording; ``run``."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import signal
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from aiohttp import web

from ._conditions import Conditions
from ._default import default_reply, models_reply
from ._exchange import Exchange, invalid
from ._scripted import BodyReply, DropReply, Scripted, StreamReply, TurnReply
from ._values import MockStats, RecordedRequest, StreamEvent
from ._wire import JSON_CONTENT_TYPE, Dropped, error_body, response

__all__ = ["DEFAULT_MODELS", "MockServer", "run"]

DEFAULT_MODELS = [
    "gpt-5.4-mini",
    "o3",
    "claude-sonnet-4-6",
    "gemini-3-flash-preview",
    "deepseek-v3.2",
]


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

    Args:
        host: The address to listen on (default loopback).
        port: The port; 0 (the default) picks a free one, which ``port`` and ``url`` tell.
        api_key: The only key accepted; ``None`` accepts any non-empty bearer token.
        models: The model ids ``GET /v1/models`` lists (default ``DEFAULT_MODELS``).
        rps_limit: Chat requests admitted per second; more are answered 429.
        max_in_flight: Chat requests answered at once; more are answered 429.
        retry_after: The ``Retry-After`` of those 429s, in seconds, instead of the computed wait.
        seed: Seeds the draws of the failure injection, so that a run can be repeated.
        fail_rate: The share of chat requests answered 500.
        drop_rate: The share of chat requests whose connection is closed unanswered.
        slow_rate: The share of chat requests delayed by ``slow_delay`` seconds.
        slow_delay: See ``slow_rate``.
        latency: Seconds every chat request waits before it is answered.
        chunk_delay: Seconds between the chunks of a default (unscripted) streamed reply.
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
        self._conditions = Conditions(
            rps_limit=rps_limit,
            max_in_flight=max_in_flight,
            seed=seed,
            fail_rate=fail_rate,
            drop_rate=drop_rate,
            slow_rate=slow_rate,
            slow_delay=slow_delay,
            latency=latency,
        )
        self._host = host
        self._bind_port = port
        self._api_key = api_key
        self._models = list(DEFAULT_MODELS if models is None else models)
        self._retry_after = retry_after
        self._chunk_delay = chunk_delay
        self._queue: deque[Scripted] = deque()
        self._reasoned: dict[str, str] = {}
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
        """Answer the next chat request with ``body`` as JSON (bytes or str are sent as-is).

        Args:
            body: The answer: any JSON value, or bytes or text sent as given.
            status: The HTTP status.
            headers: Headers added to the answer.
            delay: Seconds to wait before answering.
        """
        self._queue.append(BodyReply(delay, status, body, JSON_CONTENT_TYPE, headers))

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
        """Answer the next chat request with ``status`` and an OpenAI-style error body.

        Args:
            status: The HTTP status, e.g. 429.
            message: The body's ``error.message``.
            type: The body's ``error.type``.
            code: The body's ``error.code``.
            param: The body's ``error.param``.
            headers: Headers added to the answer, e.g. ``{"Retry-After": "2"}``.
            delay: Seconds to wait before answering.
        """
        body = error_body(message, type, code, param)
        self._queue.append(BodyReply(delay, status, body, JSON_CONTENT_TYPE, headers))

    def reply_raw(
        self,
        status: int,
        body: bytes | str,
        *,
        content_type: str = "text/plain",
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next chat request with any body, e.g. a proxy's HTML error page.

        Args:
            status: The HTTP status.
            body: The body, sent as given.
            content_type: The ``Content-Type`` header.
            headers: Headers added to the answer.
            delay: Seconds to wait before answering.
        """
        self._queue.append(BodyReply(delay, status, body, content_type, headers))

    def reply_drop(self, *, delay: float = 0.0) -> None:
        """Close the next chat request's connection without answering, ``delay`` seconds
        after it arrived."""
        self._queue.append(DropReply(delay))

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

        Args:
            events: Dicts or text (each sent as one ``data:`` event), raw bytes, ``Comment``,
                ``Pause`` and ``Drop``.
            done: End with ``data: [DONE]``.
            split: Write the body in pieces of this many bytes.
            status: The HTTP status.
            headers: Headers added to the answer.
            delay: Seconds to wait before the headers.
        """
        if split is not None and split < 1:
            raise ValueError(f"split must be at least 1, got {split!r}")
        self._queue.append(StreamReply(delay, list(events), done, split, status, headers))

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

        Args:
            content: The text of the turn.
            tool_calls: The calls the turn makes, as ``(name, arguments)`` pairs.
            refusal: A refusal instead of content.
            reasoning_content: Reasoning text, sent as DeepSeek does; a ``deepseek-...``
                model then refuses a later request whose copy of this turn lacks it.
            finish_reason: As sent; by default ``tool_calls`` when there are calls, else
                ``stop``.
            usage: The ``usage`` object; by default one counted from the words.
            tool_call_index_base: The ``index`` of the first streamed call (some providers
                start at 1).
            omit_tool_call_index: Stream each call whole without ``index``.
            delay: Seconds to wait before answering.
        """
        self._queue.append(
            TurnReply(
                delay,
                content,
                list(tool_calls or []),
                refusal,
                reasoning_content,
                finish_reason,
                usage,
                tool_call_index_base,
                omit_tool_call_index,
            )
        )

    def clear(self) -> None:
        """Forget every scripted reply not yet used."""
        self._queue.clear()

    # ----------------------------------------------------------------------- handling

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        number = next(self._numbers)
        try:
            resp = await self._dispatch(request, number)
        except Dropped:
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
            error = error_body(message, "invalid_request_error", "unknown_url")
            return response(request_id, 404, error)
        if request.method != allowed:
            message = f"Method {request.method} not allowed on {request.path}"
            error = error_body(message, "invalid_request_error", "method_not_allowed")
            return response(request_id, 405, error, headers={"Allow": allowed})
        if not self._authorized(request.headers.get("Authorization", "")):
            error = error_body("Invalid API key", "invalid_request_error", "invalid_api_key")
            return response(request_id, 401, error)
        if path == "/v1/mock/stats":
            # ``stats`` as JSON, for a benchmark or test that runs the server in another process.
            return response(request_id, 200, self.stats)
        if allowed == "GET":
            return models_reply(request_id, path, self._models)
        return await self._chat(request, number, body)

    def _authorized(self, header: str) -> bool:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            return False
        return self._api_key is None or token == self._api_key

    async def _chat(self, request: web.BaseRequest, number: int, body: Any) -> web.StreamResponse:
        request_id = f"mock-{number}"
        refusal = self._conditions.refusal(self.stats.in_flight)
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
            error = error_body(message, "rate_limit_error", "rate_limit_exceeded")
            return response(request_id, 429, error, headers=headers)

        stats = self.stats
        stats.in_flight += 1
        stats.max_in_flight_seen = max(stats.max_in_flight_seen, stats.in_flight)
        try:
            return await self._answer(request, number, body)
        finally:
            stats.in_flight -= 1

    async def _answer(self, request: web.BaseRequest, number: int, body: Any) -> web.StreamResponse:
        problem = invalid(body)
        if problem is not None:
            message, param = problem
            error = error_body(message, "invalid_request_error", "invalid_request", param)
            return response(f"mock-{number}", 400, error)
        ex = Exchange(request, self.stats, number, body, self._reasoned)
        missing = ex.missing_reasoning()
        if missing is not None:
            error = error_body(missing, "invalid_request_error", "invalid_request_error")
            return response(ex.request_id, 400, error)

        fail, drop, slow = self._conditions.draw()
        scripted = self._queue.popleft() if self._queue and not (fail or drop) else None
        if fail or drop:
            self.stats.injected_failures += 1
        elif slow:
            self.stats.slowed += 1

        if self._conditions.latency > 0:
            await asyncio.sleep(self._conditions.latency)
        if fail:
            message = f"upstream error (request id: {ex.request_id})"
            error = error_body(message, "server_error", "internal_error")
            return response(ex.request_id, 500, error)
        if drop:
            raise Dropped
        if slow:
            await asyncio.sleep(self._conditions.slow_delay)
        if scripted is not None:
            if scripted.delay > 0:
                await asyncio.sleep(scripted.delay)
            return await scripted.send(ex)
        calls = ex.default_tool_calls()
        if calls:
            turn = TurnReply(0.0, None, list(calls), None, None, None, None, 0, False)
            return await turn.send(ex)
        return await default_reply(ex, self._chunk_delay)


# --------------------------------------------------------------------------- command line


def run(host: str = "127.0.0.1", port: int = 8000, **options: Any) -> None:
    """Serve a ``MockServer`` with ``options`` until Ctrl-C or SIGTERM; blocks.

    Args:
        host: The address to listen on.
        port: The port to listen on.
        options: ``MockServer``'s other arguments (``rps_limit``, ``fail_rate``, ...).
    """
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
