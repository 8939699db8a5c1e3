"""The API key stays secret (reprs, errors, logs, CLI); redirects; header and base URL checks."""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import secrets
import socket
import sys
import traceback
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import anyio
import pytest
from aiohttp import web
from aiohttp.test_utils import RawTestServer

from aiocometapi import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncCometAPI,
    AuthenticationError,
    BadRequestError,
    ClientClosedError,
    ConfigurationError,
    ConflictError,
    IncompleteStreamError,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    StreamError,
    Timeout,
    UnprocessableEntityError,
)
from aiocometapi.testing import Drop, MockServer
from conftest import user

pytestmark = pytest.mark.anyio

KEY = "sk-SECRET-" + secrets.token_hex(16)
MODEL = "gpt-5.4-mini"
README = Path(__file__).resolve().parents[2] / "README.md"
CHUNK = {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}
COMPLETION = {
    "id": "c1",
    "object": "chat.completion",
    "created": 1,
    "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hi"}}],
}

# Text taken from an error answer (a JSON message, the body kept in .body, an HTML page's
# snippet, a non-JSON 200 body, an error event in a stream) was once not scrubbed of the key, so
# a gateway or proxy that echoed the Authorization header put the key into str(exc), repr(exc),
# tracebacks, retry log lines and CLI output. Since the fix the key is replaced with "***" in
# response bytes before any exception is built from them (_decode.status_error and
# decode_answer, AsyncStream._error_from and _decode_slowly); these tests keep it so.


def chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every error reachable from it: causes, contexts, errors held as values."""
    found: list[BaseException] = []
    todo = [exc]
    while todo:
        link = todo.pop()
        if any(link is seen for seen in found):
            continue
        found.append(link)
        held = [*link.args, *vars(link).values(), link.__cause__, link.__context__]
        todo += [value for value in held if isinstance(value, BaseException)]
    return found


def exposed(exc: BaseException) -> str:
    """All a user can see of an exception: its traceback, and the str, repr, args and attributes
    of every error in its chain."""
    parts = ["".join(traceback.format_exception(exc))]
    for link in chain(exc):
        parts += [str(link), repr(link), repr(link.args), repr(vars(link))]
    return "\n".join(parts)


def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


Reply = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


class Origin:
    """A bare HTTP server on 127.0.0.1 answering every request with ``reply``; records headers."""

    def __init__(self, reply: Reply) -> None:
        self.reply = reply
        self.requests: list[dict[str, str]] = []
        self._server = RawTestServer(self._handle, host="127.0.0.1")

    async def _handle(self, request: web.BaseRequest) -> web.StreamResponse:
        self.requests.append({name.lower(): value for name, value in request.headers.items()})
        await request.read()
        return await self.reply(request)

    @property
    def url(self) -> str:
        return str(self._server.make_url("/v1"))

    async def __aenter__(self) -> Origin:
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._server.close()


async def complete(client: AsyncCometAPI, *, stream: bool = False, **extra: Any) -> Any:
    """One chat completion, read to its end when streamed."""
    if not stream:
        return await client.chat.completions.create(model=MODEL, messages=[user("hi")], **extra)
    chunks = await client.chat.completions.create(
        model=MODEL, messages=[user("hi")], stream=True, **extra
    )
    async with chunks:
        return await chunks.final()


# --------------------------------------------------------------------------- repr and str


async def test_no_key_in_repr_or_str_of_any_object(server: MockServer) -> None:
    """repr() and str() of the client, its copies, config, options, streams and results hide it."""
    async with AsyncCometAPI(KEY, base_url=server.url) as client:
        copy = client.with_options(timeout=5, max_retries=1, default_headers={"X-Tag": "t"})
        completion = await complete(client)
        stream = await client.chat.completions.create(
            model=MODEL, messages=[user("hi")], stream=True
        )
        async with stream:
            first = await anext(stream)
            mid_stream = f"{stream!r} {stream}"
            final = await stream.final()
        server.reply_error(401, "Invalid API key", type="invalid_request_error")
        results = [
            r
            async for r in client.chat.completions.fan_out(
                [{"model": MODEL, "messages": [user(str(i))]} for i in range(2)], concurrency=1
            )
        ]
        objects = [
            client,
            copy,
            client._config,
            copy._config,
            client._requester,
            copy._requester,
            client._requester.options(stream=False),
            copy._requester.options(stream=True),
            client._requester.options({"extra_headers": {"X-A": "b"}}, stream=True),
            client.chat,
            client.chat.completions,
            client.models,
            client.pool_state(),
            client.timeout,
            client.rate_state(),
            stream,
            first,
            completion,
            final,
            *results,
            await client.models.list(),
        ]
        text = mid_stream + "\n".join(f"{obj!r}\n{obj}" for obj in objects)
    assert any(r.error is not None for r in results)
    assert KEY not in text


# --------------------------------------------------------------------------- exceptions

Scenario = Callable[[MockServer, AsyncCometAPI], Awaitable[object]]


def status_reply(status: int) -> Scenario:
    async def run(server: MockServer, client: AsyncCometAPI) -> object:
        server.reply_error(status, "Request refused", type="invalid_request_error")
        return await complete(client)

    return run


async def refused(server: MockServer, client: AsyncCometAPI) -> object:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    async with AsyncCometAPI(KEY, base_url=url, max_retries=1) as other:
        return await complete(other)


async def retries_exhausted(server: MockServer, client: AsyncCometAPI) -> object:
    for _ in range(3):
        server.reply_error(503, "overloaded")
    return await complete(client, max_retries=2)


async def slow(server: MockServer, client: AsyncCometAPI) -> object:
    server.reply_turn(content="late", delay=1.0)
    return await complete(client, timeout=0.2)


async def slow_stream(server: MockServer, client: AsyncCometAPI) -> object:
    server.reply_turn(content="late", delay=1.0)
    return await complete(client, stream=True, timeout=Timeout(first_event=0.2))


async def dropped(server: MockServer, client: AsyncCometAPI) -> object:
    server.reply_drop()
    return await complete(client)


async def cut_stream(server: MockServer, client: AsyncCometAPI) -> object:
    server.reply_stream([CHUNK, Drop()])
    return await complete(client, stream=True)


async def error_event(server: MockServer, client: AsyncCometAPI) -> object:
    server.reply_stream([CHUNK, {"error": {"message": "overloaded", "type": "server_error"}}])
    return await complete(client, stream=True)


async def not_json(server: MockServer, client: AsyncCometAPI) -> object:
    server.reply_raw(200, "<html><body>Maintenance</body></html>", content_type="text/html")
    return await complete(client)


async def closed_client(server: MockServer, client: AsyncCometAPI) -> object:
    await client.aclose()
    return await complete(client)


FAULTS = [
    *(
        pytest.param(status_reply(status), error, id=f"status-{status}")
        for status, error in [
            (400, BadRequestError),
            (401, AuthenticationError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
            (409, ConflictError),
            (418, APIStatusError),
            (422, UnprocessableEntityError),
            (429, RateLimitError),
            (500, InternalServerError),
            (503, InternalServerError),
        ]
    ),
    pytest.param(retries_exhausted, InternalServerError, id="retries-exhausted"),
    pytest.param(refused, APIConnectionError, id="refused"),
    pytest.param(slow, APITimeoutError, id="timeout"),
    pytest.param(slow_stream, APITimeoutError, id="stream-timeout"),
    pytest.param(dropped, APIConnectionError, id="dropped"),
    pytest.param(cut_stream, IncompleteStreamError, id="cut-stream"),
    pytest.param(error_event, StreamError, id="error-event"),
    pytest.param(not_json, APIResponseValidationError, id="not-json"),
    pytest.param(closed_client, ClientClosedError, id="closed-client"),
]


@pytest.mark.parametrize(("scenario", "error"), FAULTS)
async def test_no_key_in_errors(scenario: Scenario, error: type[Exception]) -> None:
    """Every error of the fault paths hides the key: str, repr, traceback, chain, attributes."""
    async with (
        MockServer() as server,
        AsyncCometAPI(KEY, base_url=server.url, max_retries=0) as client,
    ):
        with pytest.raises(error) as caught:
            await scenario(server, client)
    assert type(caught.value) is error
    assert KEY not in exposed(caught.value)
    assert KEY not in repr(vars(caught.value))


def echo(form: str, status: int) -> Reply:
    """A gateway that puts the request's Authorization header into its answer."""

    async def reply(request: web.BaseRequest) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        if form == "json":
            error = {"message": f"Invalid token: {auth}", "type": "invalid_request_error"}
            return web.json_response({"error": error}, status=status)
        if form == "field":
            body = {"error": {"message": "Forbidden"}, "request": {"authorization": auth}}
            return web.json_response(body, status=status)
        if form == "html":
            page = f"<html><body><h1>Error</h1><pre>Authorization: {auth}</pre></body></html>"
            return web.Response(status=status, text=page, content_type="text/html")
        if form == "text":
            return web.Response(status=status, text=f"echo: Authorization: {auth}")
        event = f'event: error\ndata: {{"error": {{"message": "token {auth} revoked"}}}}\n\n'
        return web.Response(status=status, text=event, content_type="text/event-stream")

    return reply


ECHOES = [
    *(
        pytest.param("json", status, False, error, id=f"json-{status}")
        for status, error in [
            (400, BadRequestError),
            (401, AuthenticationError),
            (403, PermissionDeniedError),
            (404, NotFoundError),
            (409, ConflictError),
            (422, UnprocessableEntityError),
            (429, RateLimitError),
            (500, InternalServerError),
            (503, InternalServerError),
        ]
    ),
    pytest.param("json", 401, True, AuthenticationError, id="json-401-stream"),
    pytest.param("field", 403, False, PermissionDeniedError, id="body-field-403"),
    pytest.param("html", 407, False, APIStatusError, id="html-407-proxy"),
    pytest.param("html", 502, False, InternalServerError, id="html-502"),
    pytest.param("text", 200, False, APIResponseValidationError, id="not-json-200"),
    pytest.param("event", 200, True, StreamError, id="stream-error-event"),
]


@pytest.mark.parametrize(("form", "status", "stream", "error"), ECHOES)
async def test_echoed_key_never_reaches_the_user(
    form: str, status: int, stream: bool, error: type[Exception]
) -> None:
    """A gateway echoing the Authorization header back does not put the key in the error."""
    async with (
        Origin(echo(form, status)) as origin,
        AsyncCometAPI(KEY, base_url=origin.url, max_retries=0) as client,
    ):
        with pytest.raises(error) as caught:
            await complete(client, stream=stream)
    assert origin.requests[0]["authorization"] == f"Bearer {KEY}"
    assert type(caught.value) is error
    assert KEY not in exposed(caught.value)
    assert KEY not in repr(vars(caught.value))


MALFORMED = {
    "bad-content-length": b"HTTP/1.1 200 OK\r\nContent-Length: abc\r\n\r\nhello",
    "not-http": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
    "huge-header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n",
    "bad-chunk-size": b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Transfer-Encoding: chunked\r\n\r\nzz\r\ndata: x\r\n",
}


# aiohttp answers these with a ClientResponseError that keeps the request's headers in its
# request_info, args and history, and shows them in its repr (aiohttp 3.10 keeps request_info
# in an attrs class, later versions in a named tuple).
@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("answer", list(MALFORMED))
async def test_no_key_in_the_chained_error_of_a_malformed_answer(answer: str, stream: bool) -> None:
    """An answer that is not valid HTTP gives an APIConnectionError whose chain hides the key."""

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        writer.write(MALFORMED[answer])
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    try:
        async with AsyncCometAPI(
            KEY, base_url=f"http://127.0.0.1:{port}/v1", max_retries=0
        ) as client:
            with pytest.raises((APIConnectionError, IncompleteStreamError)) as caught:
                await complete(client, stream=stream)
    finally:
        listener.close()
        await listener.wait_closed()
    assert caught.value.__cause__ is not None  # aiohttp's error is still there to read, scrubbed
    assert KEY not in exposed(caught.value)


PROXY_ANSWERS = {
    "407": (
        b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n",
        b"",
        "The proxy refused the connection: 407 Proxy Authentication Required",
    ),
    "tunnel-to-plain-http": (
        b"HTTP/1.1 200 Connection established\r\n\r\n",
        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n",
        "Could not connect to api.example.com:443",
    ),
}


# Through a proxy, aiohttp's errors keep the proxy's credentials: a refused CONNECT keeps its
# Proxy-Authorization header, a failed tunnel its connection key with the proxy's password.
@pytest.mark.parametrize("answer", list(PROXY_ANSWERS))
async def test_no_proxy_password_in_a_proxy_error(
    answer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A proxy that refuses or breaks the tunnel gives an error showing no proxy password."""
    reply, then, says = PROXY_ANSWERS[answer]
    password = "proxy-PASSWORD-" + secrets.token_hex(8)
    encoded = base64.b64encode(f"user:{password}".encode()).decode()

    async def proxy(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(reply)
        if then:  # what answers the client's TLS hello through the tunnel
            await reader.read(1)
            writer.write(then)
        await writer.drain()
        writer.close()

    listener = await asyncio.start_server(proxy, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    for name in ("NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", f"http://user:{password}@127.0.0.1:{port}")
    try:
        async with AsyncCometAPI(
            KEY, base_url="https://api.example.com/v1", max_retries=0
        ) as client:
            with pytest.raises(APIConnectionError) as caught:
                await complete(client)
    finally:
        listener.close()
        await listener.wait_closed()
    assert says in str(caught.value)
    assert caught.value.__cause__ is not None
    text = exposed(caught.value)
    assert password not in text and encoded not in text


class Opaque:
    """A value of a shape no scrubbing knows, whose repr and str show what it holds."""

    def __init__(self, secret: str) -> None:
        self.secret = secret

    def __repr__(self) -> str:
        return f"Opaque({self.secret})"


def test_a_foreign_error_that_would_still_show_the_key_is_not_chained() -> None:
    """Should a later aiohttp keep the key where no scrubbing reaches, the error hides it anyway."""
    from aiocometapi._transport import _converted

    foreign = aiohttp.ClientOSError(Opaque(f"Bearer {KEY}"))
    try:
        raise foreign
    except aiohttp.ClientOSError as exc:
        error = _converted(exc, sent={"Authorization": f"Bearer {KEY}"})
    with pytest.raises(APIConnectionError) as caught:
        raise error
    assert caught.value.__cause__ is None and caught.value.__context__ is None
    assert "Connection error: Opaque(Bearer ***)" in str(caught.value)
    assert KEY not in exposed(caught.value)


# --------------------------------------------------------------------------- redirects


CALLS: dict[str, Callable[[AsyncCometAPI], Awaitable[object]]] = {
    "create": lambda client: complete(client),
    "stream": lambda client: complete(client, stream=True),
    "models": lambda client: client.models.list(),
}


@pytest.mark.parametrize("call", list(CALLS))
@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_redirect_to_another_origin_is_not_followed(status: int, call: str) -> None:
    """A redirect to another origin is not followed: that server gets nothing, no key, no socket."""
    async with MockServer() as other:
        target = f"{other.url}/chat/completions"

        async def redirect(request: web.BaseRequest) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": target})

        async with Origin(redirect) as origin, AsyncCometAPI(KEY, base_url=origin.url) as client:
            with pytest.raises(APIStatusError) as caught:
                await CALLS[call](client)
        assert other.requests == [] and other.connections_total == 0
    assert type(caught.value) is APIStatusError
    assert caught.value.status_code == status
    assert target in str(caught.value)
    assert len(origin.requests) == 1  # a 3xx is not retried either


async def test_same_origin_redirect_is_not_followed_either() -> None:
    """A redirect is not followed even within the origin: the caller gets it as an error."""

    async def redirect(request: web.BaseRequest) -> web.StreamResponse:
        if request.path.startswith("/v2/"):
            return web.json_response(COMPLETION)  # what following it would have given
        return web.Response(status=307, headers={"Location": "/v2/chat/completions"})

    async with Origin(redirect) as origin, AsyncCometAPI(KEY, base_url=origin.url) as client:
        with pytest.raises(APIStatusError) as caught:
            await complete(client)
    assert caught.value.status_code == 307
    assert "/v2/chat/completions" in str(caught.value)
    assert len(origin.requests) == 1


# --------------------------------------------------------------------------- control characters


CONTROL = ["\r\n", "\r", "\n", "\x00", "\x1b", "\x7f"]
CONTROL_IDS = ["crlf", "cr", "lf", "nul", "esc", "del"]


@pytest.mark.parametrize("char", CONTROL, ids=CONTROL_IDS)
def test_control_character_in_default_headers_refused(char: str) -> None:
    """default_headers (name or value) and with_options headers with a control char are refused."""
    value = f"a{char}Injected: {KEY}"
    with pytest.raises(ConfigurationError, match="control character") as caught:
        AsyncCometAPI(KEY, base_url="http://127.0.0.1:9/v1", default_headers={"X-Tag": value})
    assert KEY not in exposed(caught.value)
    with pytest.raises(ConfigurationError, match="control character"):
        AsyncCometAPI(KEY, base_url="http://127.0.0.1:9/v1", default_headers={f"X{char}Y": "v"})
    client = AsyncCometAPI(KEY, base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ConfigurationError, match="control character"):
        client.with_options(default_headers={"X-Tag": value})


@pytest.mark.parametrize("stream", [False, True], ids=["create", "stream"])
@pytest.mark.parametrize("char", CONTROL, ids=CONTROL_IDS)
async def test_control_character_in_extra_headers_refused(
    server: MockServer, char: str, stream: bool
) -> None:
    """Per-call extra_headers with a control character are refused before anything is sent."""
    async with AsyncCometAPI(KEY, base_url=server.url) as client:
        with pytest.raises(ConfigurationError, match="control character"):
            await complete(client, stream=stream, extra_headers={"X-Tag": f"a{char}Injected: 1"})
        with pytest.raises(ConfigurationError, match="control character"):
            await complete(client, stream=stream, extra_headers={f"X{char}Y": "v"})
    assert server.requests == [] and server.connections_total == 0


@pytest.mark.parametrize("char", CONTROL, ids=CONTROL_IDS)
def test_control_character_in_key_refused_without_showing_it(char: str) -> None:
    """A key with a control character inside is refused, and the error does not show the key."""
    with pytest.raises(ConfigurationError) as caught:
        AsyncCometAPI(f"{KEY}{char}X-Injected: 1", base_url="http://127.0.0.1:9/v1")
    assert KEY not in exposed(caught.value)


@pytest.mark.parametrize("char", [*CONTROL, "\t", " "], ids=[*CONTROL_IDS, "tab", "space"])
async def test_control_character_in_base_url_refused(
    server: MockServer, char: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A base URL with a control character, tab or space is refused, as argument or variable."""
    for url in (f"{server.url}{char}X-Injected: 1", f"{server.url}/a{char}b", server.url + char):
        with pytest.raises(ConfigurationError):
            AsyncCometAPI(KEY, base_url=url)
        if "\x00" in url:
            continue  # the environment cannot hold a NUL
        monkeypatch.setenv("COMETAPI_BASE_URL", url)
        with pytest.raises(ConfigurationError):
            AsyncCometAPI(KEY)
    assert server.requests == [] and server.connections_total == 0


async def test_line_breaks_in_extra_query_are_encoded(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """extra_query values are percent-encoded: CR/LF there cannot add a header."""
    await complete(client, extra_query={"tag": "a\r\nX-Injected: 1"})
    request = server.requests[-1]
    assert request.query == {"tag": "a\r\nX-Injected: 1"}
    assert "x-injected" not in request.headers


async def test_tab_inside_a_header_value_is_sent(client: AsyncCometAPI, server: MockServer) -> None:
    """A tab inside a header value is legal HTTP and is sent as given."""
    await complete(client, extra_headers={"X-Tag": "a\tb"})
    assert server.requests[-1].headers["x-tag"] == "a\tb"


# --------------------------------------------------------------------------- plain http


REMOTE = [
    "http://api.example.com/v1",
    "http://api.cometapi.com/v1",
    "http://10.0.0.5:8080/v1",
    "http://[2001:db8::1]:8000/v1",
]


@pytest.mark.parametrize("url", REMOTE)
def test_plain_http_to_a_remote_host_warns(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A plain-http base URL to a non-loopback host warns, as argument or variable; no key shown."""
    with pytest.warns(UserWarning, match="plain http") as record:
        AsyncCometAPI(KEY, base_url=url)
    monkeypatch.setenv("COMETAPI_BASE_URL", url)
    with pytest.warns(UserWarning, match="plain http"):
        AsyncCometAPI(KEY)
    assert KEY not in str(record[0].message)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1",
        "http://127.0.0.2/v1",
        "http://localhost:8000/v1",
        "http://LOCALHOST/v1",
        "http://[::1]:8000/v1",
        "https://api.example.com/v1",
    ],
)
def test_loopback_or_https_does_not_warn(url: str) -> None:
    """Plain http to a loopback address, or https anywhere, gives no warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AsyncCometAPI(KEY, base_url=url)


# _client._normalize_base_url warned with stacklevel=4, one frame too many, so the warning named
# the caller's caller and per-module warning filters misfired. It was fixed with stacklevel=3;
# now every warning walks out of the package's frames to the caller's line (_callsite.warn).
def test_plain_http_warning_points_at_the_callers_line() -> None:
    """The plain-http warning names the line that built the client."""
    with pytest.warns(UserWarning, match="plain http") as record:
        AsyncCometAPI(KEY, base_url="http://api.example.com/v1")
    assert record[0].filename == __file__


# --------------------------------------------------------------------------- logging


async def test_debug_log_has_no_key_and_says_what_happened(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At DEBUG the aiocometapi logger tells status and request id, never the key."""
    caplog.set_level(logging.DEBUG, logger="aiocometapi")
    async with (
        MockServer() as server,
        AsyncCometAPI(KEY, base_url=server.url, max_retries=1) as client,
    ):
        ok = await complete(client)
        server.reply_error(500, "upstream hiccup")
        await complete(client)  # retried, then fine
        server.reply_drop()
        await complete(client)  # retried, then fine
        server.reply_error(400, "bad parameter")
        with pytest.raises(BadRequestError):
            await complete(client)
        server.reply_error(503, "overloaded")
        server.reply_error(503, "overloaded")
        with pytest.raises(InternalServerError):
            await complete(client)
        streamed = await complete(client, stream=True)
        server.reply_stream([CHUNK, Drop()])
        with pytest.raises(IncompleteStreamError):
            await complete(client, stream=True)
        await client.models.list()
    async with AsyncCometAPI(
        KEY, base_url=f"http://127.0.0.1:{closed_port()}/v1", max_retries=1
    ) as client:
        with pytest.raises(APIConnectionError):
            await complete(client)
    records = [r for r in caplog.records if r.name.startswith("aiocometapi")]
    formatter = logging.Formatter("%(levelname)s %(name)s %(message)s")
    text = "\n".join(formatter.format(r) + repr(vars(r)) for r in records)
    assert KEY not in text
    assert any(r.levelno == logging.DEBUG for r in records)
    for useful in (ok.request_id, streamed.request_id, "200", "500", "400", "503"):
        assert useful and useful in text, useful


# tenacity asks for the wait before it checks the stop condition, so _retry's wait callback
# also logged "retrying in X s" after the last try, when no retry followed. The fix logs from a
# before_sleep callback, which tenacity calls only when a retry will happen.
async def test_log_announces_only_the_retries_made(
    server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Each retry is announced once in the log; giving up is not announced as a retry."""
    caplog.set_level(logging.DEBUG, logger="aiocometapi")
    async with AsyncCometAPI(KEY, base_url=server.url, max_retries=1) as client:
        server.reply_error(503, "overloaded")
        server.reply_error(503, "overloaded")
        with pytest.raises(InternalServerError):
            await complete(client)
    assert len(server.requests) == 2
    retrying = [r for r in caplog.records if "retrying" in r.getMessage()]
    assert len(retrying) == 1


async def test_log_hides_a_key_the_server_echoes(caplog: pytest.LogCaptureFixture) -> None:
    """A retried 503 whose message echoes the Authorization header does not log the key."""
    caplog.set_level(logging.DEBUG, logger="aiocometapi")
    async with (
        Origin(echo("json", 503)) as origin,
        AsyncCometAPI(KEY, base_url=origin.url, max_retries=1) as client,
    ):
        with pytest.raises(InternalServerError):
            await complete(client)
    assert len(origin.requests) == 2
    records = [r for r in caplog.records if r.name.startswith("aiocometapi")]
    assert records
    assert KEY not in "\n".join(r.getMessage() + repr(vars(r)) for r in records)


@pytest.mark.parametrize("level", ["debug", "info", ""])
async def test_log_switched_on_by_environment_never_shows_key(level: str) -> None:
    """AIOCOMETAPI_LOG=debug|info makes the CLI log to stderr (without the key); unset, silence."""
    async with MockServer() as server:
        server.reply_error(429, "slow down", headers={"retry-after-ms": "10"})
        env = {"COMETAPI_KEY": KEY, "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        if level:
            env["AIOCOMETAPI_LOG"] = level
        with anyio.fail_after(60):
            result = await anyio.run_process(
                [
                    sys.executable,
                    "-m",
                    "aiocometapi",
                    "chat",
                    "--base-url",
                    server.url,
                    "--no-stream",
                    "hi",
                ],
                env=env,
                check=False,
            )
    out, err = result.stdout.decode(), result.stderr.decode()
    assert result.returncode == 0, err
    assert out == "Echo: hi\n"
    assert KEY not in out + err
    if level:
        assert "aiocometapi" in err and "429" in err
    else:
        assert err == ""


def test_logging_switch_is_documented() -> None:
    """The README names the AIOCOMETAPI_LOG variable that switches logging on."""
    assert "AIOCOMETAPI_LOG" in README.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- command line


async def run_cli(base_url: str) -> tuple[int, str]:
    """``python -m aiocometapi chat`` with the key in the environment and debug logging on."""
    env = {
        "COMETAPI_KEY": KEY,
        "AIOCOMETAPI_LOG": "debug",
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    }
    with anyio.fail_after(60):
        result = await anyio.run_process(
            [
                sys.executable,
                "-m",
                "aiocometapi",
                "chat",
                "--base-url",
                base_url,
                "--max-retries",
                "0",
                "hi",
            ],
            env=env,
            check=False,
        )
    return result.returncode, result.stdout.decode() + result.stderr.decode()


async def test_cli_error_output_never_shows_key() -> None:
    """A 401 from the server prints one error line and debug logs, neither with the key."""
    async with MockServer(api_key="sk-some-other-key") as server:
        status, output = await run_cli(server.url)
    assert status == 1
    assert "aiocometapi: error: AuthenticationError" in output
    assert KEY not in output


async def test_cli_output_hides_a_key_the_server_echoes() -> None:
    """A 401 whose message echoes the Authorization header does not put the key on screen."""
    async with Origin(echo("json", 401)) as origin:
        status, output = await run_cli(origin.url)
    assert origin.requests[0]["authorization"] == f"Bearer {KEY}"
    assert status == 1
    assert "AuthenticationError" in output
    assert KEY not in output
