"""The one aiohttp boundary: the session, sending requests, and turning aiohttp errors into ours."""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import re
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Mapping
from typing import Any, cast

import aiohttp
import aiohttp.helpers
import anyio
import multidict
import yarl

from ._config import DEFAULT_TIMEOUT, Timeout
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    ClientClosedError,
    CometAPIError,
    ConfigurationError,
)

__all__ = ["Reply", "StreamBody", "Transport", "deadline"]

DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024

if sys.version_info >= (3, 11):
    deadline = asyncio.timeout
    """A block that raises ``TimeoutError`` after some seconds (``None``: never). asyncio's own
    costs a few µs where anyio's cancel scope costs tens, and it runs once per request."""
else:  # pragma: no cover

    @contextlib.asynccontextmanager
    async def deadline(seconds: float | None) -> AsyncIterator[None]:
        with anyio.fail_after(seconds):
            yield


@functools.lru_cache(maxsize=64)
def _client_timeout(timeout: Timeout, stream: bool) -> aiohttp.ClientTimeout:
    # aiohttp's own clocks: its total would cut long streams, so a stream gets only connect.
    if stream:
        return aiohttp.ClientTimeout(total=None, connect=timeout.connect, sock_read=None)
    return aiohttp.ClientTimeout(total=timeout.total, connect=timeout.connect, sock_read=None)


_Target = tuple[yarl.URL, "yarl.URL | None", "aiohttp.BasicAuth | None"]


class Reply:
    """A fully read response."""

    __slots__ = ("body", "headers", "status")

    def __init__(self, status: int, headers: Mapping[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body


class StreamBody:
    """A response whose headers arrived and whose body is read piece by piece."""

    __slots__ = ("_content", "_response", "headers", "status")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self._content = response.content
        self.status = response.status
        self.headers: Mapping[str, str] = response.headers

    async def read(self) -> bytes:
        """The next bytes of the body, as they arrive; ``b""`` at its end."""
        try:
            return await self._content.readany()
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = _converted(exc, sent=self._response.request_info.headers)
        raise error  # outside the except block: see _converted

    async def read_all(self, limit: int = DEFAULT_MAX_BODY_SIZE) -> bytes:
        """The rest of the body, or its first ``limit + 1`` bytes if it is longer than that."""
        body = bytearray()
        while len(body) <= limit:
            piece = await self.read()
            if not piece:
                break
            body += piece
        del body[limit + 1 :]
        return bytes(body)

    async def drain(self, limit: float = 2.0) -> None:
        """Read what is left of the body so the connection can go back to the pool.

        A server that keeps the body open after the stream's end gets ``limit`` seconds,
        then the connection is closed instead.
        """
        content = self._content
        if content.at_eof():
            self._response.release()
            return
        try:
            async with deadline(limit):
                while await content.readany():
                    pass
        except (aiohttp.ClientError, OSError, TimeoutError, asyncio.TimeoutError):
            self._response.close()
            return
        self._response.release()

    def abort(self) -> None:
        """Close the connection now; a pending ``read()`` fails at once."""
        self._response.close()


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class Transport:
    """One aiohttp session per event loop in turn, created lazily inside it, and its pool.

    A session belongs to the loop it was opened in. Used from another loop, the transport
    opens a new session there and drops the old one, provided the old loop has stopped (as
    it has between two ``asyncio.run()`` calls, or once a thread that used it ended); a
    loop still running in another thread keeps its session and the newcomer gets a
    ``ConfigurationError``. A session is closed by its loop's end (``asyncio.run`` finalizes
    async generators before closing the loop) or when the transport is garbage-collected,
    so a client that is never closed prints nothing and leaves no socket behind.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        trust_env: bool = True,
        max_body_size: int = DEFAULT_MAX_BODY_SIZE,
    ) -> None:
        if max_connections < 1:
            raise ConfigurationError(f"max_connections must be at least 1, got {max_connections}")
        self.max_connections = max_connections
        self.trust_env = trust_env
        self.max_body_size = max_body_size
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._keeper: AsyncGenerator[None, None] | None = None
        self._finalizer: weakref.finalize[Any, Any] | None = None
        self._lock = threading.Lock()
        self._state = _State.UNOPENED
        self._targets: dict[str, _Target] = {}

    @property
    def state(self) -> str:
        """``"unopened"``, ``"opened"`` or ``"closed"``."""
        return self._state.value

    def ensure_open(self) -> None:
        """Raise ``ClientClosedError`` once ``aclose()`` ran: the one place that says so."""
        if self._state is _State.CLOSED:
            raise ClientClosedError()

    def _session_here(self) -> aiohttp.ClientSession:
        """The session of the running event loop: opened, or moved here, if need be."""
        loop = asyncio.get_running_loop()
        with self._lock:  # two threads, each with its own loop, may get here at once
            session = self._session
            if session is not None and self._loop is loop and not session.closed:
                return session
            self.ensure_open()
            old = self._loop
            if session is not None and old is not loop:
                if old is not None and old.is_running():
                    raise ConfigurationError(
                        "This client's connections belong to an event loop that is running in "
                        "another thread, and one client serves one running loop at a time. "
                        "Create a client per event loop (per thread), or call from threads "
                        "through the thread-safe sync client, aiocometapi.CometAPI."
                    )
                self._forget()
                _discard(session, old)
            return self._open(loop)

    def _open(self, loop: asyncio.AbstractEventLoop) -> aiohttp.ClientSession:
        connector = aiohttp.TCPConnector(limit=self.max_connections, ttl_dns_cache=300)
        session = aiohttp.ClientSession(connector=connector, trust_env=False, auto_decompress=True)
        keeper = _close_at_loop_end(session)
        with contextlib.suppress(StopIteration):
            keeper.asend(None).send(None)  # runs to its yield: the loop now tracks it
        self._session, self._loop, self._keeper = session, loop, keeper
        # The registry of weakref.finalize holds the session, so that a collected transport
        # never takes it (and its connector, which would warn) down in the same sweep.
        self._finalizer = weakref.finalize(self, _release, session, loop)
        self._state = _State.OPENED
        return session

    def _forget(self) -> None:
        if self._finalizer is not None:
            self._finalizer.detach()
            self._finalizer = None

    def pool(self) -> tuple[int, int]:
        """Connections ``(in use, idle in the pool)``; ``(0, 0)`` before the first request."""
        if self._session is None or self._session.closed:
            return (0, 0)
        connector = self._session.connector
        # aiohttp has no public counter for these; both attributes exist since aiohttp 3.0.
        in_use = len(getattr(connector, "_acquired", ()))
        # A pooled connection the server has closed stays listed until the pool next looks
        # at it: it is not a connection held open, so it does not count.
        idle = sum(
            1
            for waiting in getattr(connector, "_conns", {}).values()
            for protocol, _ in waiting
            if protocol.is_connected()
        )
        return (in_use, idle)

    async def aclose(self) -> None:
        """Close the session and every pooled connection; later calls do nothing."""
        with self._lock:
            session, self._session = self._session, None
            keeper, self._keeper = self._keeper, None
            loop, self._loop = self._loop, None
            self._state = _State.CLOSED
            self._forget()
        if session is None or session.closed or keeper is None:
            return
        if loop is asyncio.get_running_loop():
            await keeper.aclose()  # its finally closes the session
        elif loop is not None and loop.is_running():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(keeper.aclose(), loop))
        else:
            _discard(session, loop)

    def _target(self, url: str) -> _Target:
        # A client calls the same few URLs over and over: parse each, and look up its proxy
        # in the environment, once. (aiohttp's own trust_env does that lookup in a worker
        # thread on every request, which costs more than the rest of the request.)
        target = self._targets.get(url)
        if target is None:
            if len(self._targets) > 256:
                self._targets.clear()
            parsed = yarl.URL(url)
            target = (parsed, None, None)
            if self.trust_env:
                with contextlib.suppress(LookupError):
                    target = (parsed, *aiohttp.helpers.get_env_proxy_for_url(parsed))
            self._targets[url] = target
        return target

    async def _send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None,
        timeout: Timeout,
        stream: bool,
        params: Mapping[str, str] | None,
    ) -> aiohttp.ClientResponse:
        session = self._session
        if session is None or self._loop is not asyncio.get_running_loop() or session.closed:
            session = self._session_here()
        parsed, proxy, proxy_auth = self._target(url)
        try:
            return await session.request(
                method,
                parsed,
                proxy=proxy,
                proxy_auth=proxy_auth,
                headers=headers,
                data=body,
                params=params,
                timeout=_client_timeout(timeout, stream),
                allow_redirects=False,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            error = _converted(exc, sent=headers)
        except RuntimeError as exc:
            if session.closed:
                raise ClientClosedError("The client was closed during the request.") from exc
            raise
        raise error  # outside the except block: see _converted

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        params: Mapping[str, str] | None = None,
    ) -> Reply:
        """Send a request and read its whole answer."""
        response = await self._send(
            method, url, headers=headers, body=body, timeout=timeout, stream=False, params=params
        )
        try:
            length = response.content_length
            if length is not None and length <= self.max_body_size:
                data = await response.read()
            elif length is not None:
                raise self._too_large(length)
            else:
                data = await StreamBody(response).read_all(self.max_body_size)
                if len(data) > self.max_body_size:
                    raise self._too_large(None)
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            response.close()
            error = _converted(exc, sent=headers)
        except BaseException:
            response.close()
            raise
        else:
            response.release()
            return Reply(response.status, response.headers, data)
        raise error  # outside the except block: see _converted

    def _too_large(self, length: int | None) -> APIResponseValidationError:
        size = f"{length} bytes" if length is not None else "longer"
        return APIResponseValidationError(
            f"The response body is {size}, over the max_body_size of {self.max_body_size} "
            "bytes; refused. Pass a larger max_body_size to AsyncCometAPI if this answer is "
            "expected.",
            body="",
        )

    async def open(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str],
        body: bytes | None = None,
        timeout: Timeout = DEFAULT_TIMEOUT,
        params: Mapping[str, str] | None = None,
    ) -> StreamBody:
        """Send a request and return once its headers arrived; the body is read by the caller."""
        response = await self._send(
            method, url, headers=headers, body=body, timeout=timeout, stream=True, params=params
        )
        return StreamBody(response)


async def _close_at_loop_end(session: aiohttp.ClientSession) -> AsyncGenerator[None, None]:
    """Waits, suspended, for the end of ``session``: the loop's ``shutdown_asyncgens()``
    (``asyncio.run`` and ``anyio.run`` call it before closing the loop), the loop's
    finalizer once the transport holding it is collected, or ``Transport.aclose()``."""
    try:
        yield
    finally:
        if not session.closed:
            await session.close()


_closing: set[asyncio.Task[None]] = set()


def _release(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop) -> None:
    """Close the session of a transport that was collected, or still open at exit."""
    if session.closed:
        return
    if loop.is_running():
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            loop.call_soon_threadsafe(_close_soon, session)
    else:
        _discard(session, loop)


def _close_soon(session: aiohttp.ClientSession) -> None:
    task = asyncio.ensure_future(session.close())
    _closing.add(task)  # the loop holds tasks weakly
    task.add_done_callback(_closing.discard)


def _discard(session: aiohttp.ClientSession, loop: asyncio.AbstractEventLoop | None) -> None:
    """Drop a session whose loop has stopped, without that loop's help: each connection is
    closed here and the connector marked closed, so nothing warns when they are collected."""
    connector = session.connector
    if connector is None or connector.closed:
        return
    # aiohttp has no public way to close a connector outside its loop; these exist since 3.0.
    protocols = [proto for conns in connector._conns.values() for proto, _ in conns]
    protocols += connector._acquired
    for proto in protocols:
        if proto.transport is not None:
            _close_transport(proto.transport, loop)
    with contextlib.suppress(Exception):
        connector._close()


def _close_transport(transport: asyncio.Transport, loop: asyncio.AbstractEventLoop | None) -> None:
    if loop is not None and not loop.is_closed():
        transport.abort()  # done when that loop runs again
        return
    # A closed loop cannot schedule the last step of a close (closing the socket), so it is
    # taken here; on a TLS connection, on the socket transport under the TLS layer.
    raw: Any = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None) or transport
    for part in (transport, raw):
        with contextlib.suppress(Exception):
            part.abort()  # fails at the scheduling, after the rest is done
    if getattr(raw, "_sock", None) is not None:
        with contextlib.suppress(Exception):
            raw._call_connection_lost(None)


# --------------------------------------------------------------------------- error conversion
#
# aiohttp's errors keep what was sent: a ClientResponseError holds the request's headers
# (Authorization included) in request_info, args and history, and shows them in its repr; a
# connection error holds the proxy's credentials in its connection key. How each aiohttp version
# stores and prints these differs (3.10 keeps request_info in an attrs class, later versions in
# a named tuple), so the chained error is scrubbed wherever it keeps values (args and attributes,
# down its whole __cause__ / __context__ chain), then checked against the secrets actually sent:
# a chain that would still show one is not chained at all.

_SECRET_HEADER = re.compile(r"auth|cookie|key|token|secret|session", re.IGNORECASE)
_MASK = "***"


def _secrets(sent: Mapping[str, str]) -> tuple[str, ...]:
    """The words of the secret headers sent (the key of ``Bearer <key>``), longest first."""
    found = {
        word
        for name, value in sent.items()
        if _SECRET_HEADER.search(name)
        for word in value.split()
        if len(word) >= 8  # a scheme such as "Bearer" is no secret
    }
    return tuple(sorted(found, key=len, reverse=True))


def _hide(text: str, *, secrets: tuple[str, ...]) -> str:
    for secret in secrets:
        text = text.replace(secret, _MASK)
    return text


def _chain(exc: BaseException) -> list[BaseException]:
    """``exc`` and every error reachable from it: causes, contexts, errors kept as values."""
    found: list[BaseException] = []
    seen: set[int] = set()
    todo = [exc]
    while todo:
        link = todo.pop()
        if id(link) in seen:
            continue
        seen.add(id(link))
        found.append(link)
        held = [*link.args, *_attributes(link).values(), link.__cause__, link.__context__]
        todo += [value for value in held if isinstance(value, BaseException)]
    return found


def _attributes(exc: BaseException) -> dict[str, object]:
    return getattr(exc, "__dict__", {})


def _with(value: object, **changes: object) -> object:
    """A copy of a named tuple or attrs instance with some fields changed; ``value`` if neither."""
    replace = getattr(value, "_replace", None)
    if callable(replace):
        return replace(**changes)
    fields = getattr(type(value), "__attrs_attrs__", None)  # aiohttp < 3.11 uses attrs classes
    if fields is not None:
        kept = {field.name: getattr(value, field.name) for field in fields}
        return cast("Callable[..., object]", type(value))(**{**kept, **changes})
    return value


def _scrubbed(value: object) -> object:
    """``value`` with the header values and credentials it carries masked."""
    if isinstance(value, (multidict.MultiDict, multidict.MultiDictProxy)):
        masked = multidict.CIMultiDict[object]()
        for name, item in value.items():
            masked.add(name, _MASK if _SECRET_HEADER.search(name) else item)
        return multidict.CIMultiDictProxy(masked)
    if isinstance(value, dict):
        return {
            name: _MASK if _SECRET_HEADER.search(str(name)) else _scrubbed(item)
            for name, item in value.items()
        }
    if isinstance(value, aiohttp.BasicAuth):
        return _with(value, password=_MASK)  # not BasicAuth(): aiohttp 3.14 deprecates building one
    if isinstance(value, aiohttp.RequestInfo):
        return _with(value, headers=_scrubbed(value.headers))
    if getattr(value, "proxy_auth", None) is not None:  # aiohttp's connection key
        return _with(value, proxy_auth=_scrubbed(getattr(value, "proxy_auth", None)))
    if isinstance(value, (tuple, list)) and type(value) in (tuple, list):
        # A response (in a redirect history) holds its request's headers: it is left out.
        kept = (item for item in value if not isinstance(item, aiohttp.ClientResponse))
        return type(value)(_scrubbed(item) for item in kept)
    return value


def _scrub(exc: BaseException) -> None:
    """Mask, in place, the request headers and credentials held anywhere in ``exc``'s chain.

    A value of a shape this does not know is left as it is, for ``_shows_any`` to judge.
    """
    for link in _chain(exc):
        with contextlib.suppress(Exception):
            link.args = tuple(_scrubbed(value) for value in link.args)
        attributes = _attributes(link)
        for name, value in list(attributes.items()):
            if isinstance(value, BaseException):
                continue  # scrubbed as a link of the chain
            with contextlib.suppress(Exception):
                attributes[name] = () if name == "history" else _scrubbed(value)


def _shows_any(exc: BaseException, secrets: tuple[str, ...]) -> bool:
    """Whether the str, repr, args or attributes of any error in ``exc``'s chain show a secret."""
    if not secrets:
        return False
    for link in _chain(exc):
        try:
            text = f"{link}\n{link!r}\n{link.args!r}\n{_attributes(link)!r}"
        except Exception:  # a repr that fails cannot be checked: treat it as showing the key
            return True
        if any(secret in text for secret in secrets):
            return True
    return False


def _parser_complaint(exc: BaseException) -> str:
    """What aiohttp's HTTP parser said about the answer, on one line (``""`` if it said nothing).

    aiohttp 3.10 leaves the ClientResponseError's message empty and keeps the parser's words on
    the error it chains; later versions copy them up.
    """
    for link in _chain(exc):
        message = getattr(link, "message", "")
        if isinstance(message, str) and message.strip():
            lines = (line.strip() for line in message.splitlines())
            return " ".join(line for line in lines if line.strip("^ "))
    return ""


def _error_for(exc: BaseException, hide: Callable[[str], str]) -> CometAPIError:
    """The aiocometapi error for an aiohttp / OS / timeout error; its text goes through ``hide``."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return APITimeoutError(
            "Timed out connecting to the server (the 'connect' clock).", which="connect"
        )
    if isinstance(exc, asyncio.TimeoutError):
        return APITimeoutError("The request timed out (the 'total' clock).", which="total")
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        reason = os_error.strerror or str(os_error) or type(os_error).__name__
        return APIConnectionError(hide(f"Could not connect to {exc.host}:{exc.port}: {reason}"))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return APIConnectionError(
            "The server closed the connection before the response was complete."
        )
    if isinstance(exc, aiohttp.ClientPayloadError):
        return APIConnectionError(hide(f"The response body was cut off: {exc}"))
    if isinstance(exc, aiohttp.InvalidURL):
        return ConfigurationError(hide(f"Invalid URL: {exc}"))
    if isinstance(exc, aiohttp.ClientHttpProxyError):
        return APIConnectionError(
            hide(f"The proxy refused the connection: {exc.status} {exc.message}".rstrip())
        )
    if isinstance(exc, aiohttp.ClientResponseError):
        complaint = _parser_complaint(exc) or f"status {exc.status}"
        return APIConnectionError(hide(f"The server's answer is not valid HTTP: {complaint}"))
    return APIConnectionError(hide(f"Connection error: {exc or type(exc).__name__}"))


def _converted(exc: BaseException, *, sent: Mapping[str, str]) -> CometAPIError:
    """The aiocometapi error for an aiohttp / OS / timeout error, chained to a scrubbed ``exc``.

    ``sent`` are the request's headers: none of their secret values shows in the error or in
    what it chains. Raise the result outside the ``except`` block that caught ``exc``: raised
    inside it, Python would set ``exc`` as its ``__context__`` even where it is not chained.
    """
    secrets = _secrets(sent)
    _scrub(exc)
    error = _error_for(exc, functools.partial(_hide, secrets=secrets))
    error.__cause__ = None if _shows_any(exc, secrets) else exc
    error.__suppress_context__ = True
    return error
