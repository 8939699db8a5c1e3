"""A raw TCP server on 127.0.0.1 for tests where HTTP itself must break: one script per connection.

``RawServer(script_a, script_b)`` runs ``script_a`` on the first connection it accepts,
``script_b`` on the second, and ``healthy`` (valid answers, keep-alive) on every later one. A
script gets a ``Conn`` and writes exactly the bytes it wants: a status line and no more, half a
chunked body, a byte a second, or nothing; ``Conn.reset()`` ends it with a TCP RST.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

__all__ = [
    "COMPLETION",
    "LAST_CHUNK",
    "Conn",
    "RawServer",
    "Request",
    "Script",
    "chunk",
    "content_chunk",
    "event",
    "head",
    "healthy",
    "response",
    "sse_head",
    "stall",
]

MODEL = "gpt-5.4-mini"
COMPLETION = {
    "id": "chatcmpl-raw", "object": "chat.completion", "created": 1, "model": MODEL,
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "healthy"},
                 "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}  # fmt: skip
LAST_CHUNK = b"0\r\n\r\n"


def content_chunk(text: str, finish: str | None = None) -> dict[str, Any]:
    """A chat.completion.chunk carrying ``text`` for choice 0."""
    return {
        "id": "chatcmpl-raw",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": finish}],
    }


def head(status: int = 200, headers: dict[str, str] | None = None, reason: str = "Status") -> bytes:
    """A status line and headers, up to and including the blank line."""
    lines = [f"HTTP/1.1 {status} {reason}"]
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response(
    body: bytes,
    status: int = 200,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A whole response with a Content-Length body."""
    fields = {"Content-Type": content_type, "Content-Length": str(len(body)), **(headers or {})}
    return head(status, fields) + body


def sse_head(content_type: str = "text/event-stream") -> bytes:
    """The head of a chunked event-stream answer."""
    return head(200, {"Content-Type": content_type, "Transfer-Encoding": "chunked"})


def chunk(data: bytes) -> bytes:
    """One chunk of a chunked body."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def event(payload: dict[str, Any] | str) -> bytes:
    """An SSE ``data:`` event, wrapped as one chunk."""
    text = payload if isinstance(payload, str) else json.dumps(payload)
    return chunk(f"data: {text}\n\n".encode())


@dataclass
class Request:
    """A request as it arrived: its request line, headers (lower-case names) and body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def stream(self) -> bool:
        try:
            return bool(json.loads(self.body).get("stream"))
        except (ValueError, AttributeError):
            return False


class Conn:
    """One accepted connection, as a script sees it."""

    def __init__(
        self,
        server: RawServer,
        number: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.number = number
        self.reader = reader
        self.writer = writer
        self.bytes_sent = 0
        self.requests: list[Request] = []
        self.closed = asyncio.Event()
        """Set once the connection is over: the client closed it or the script ended it."""

    async def request(self) -> Request | None:
        """The next request on this connection; ``None`` when the client closed it."""
        try:
            line = await self.reader.readline()
            if not line:
                return None
            method, path, _ = line.decode("latin-1").split(" ", 2)
            headers: dict[str, str] = {}
            while (raw := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            body = await self.reader.readexactly(int(headers.get("content-length", "0")))
        except (ConnectionError, asyncio.IncompleteReadError):
            return None
        request = Request(method, path, headers, body)
        self.requests.append(request)
        self.server.requests.append(request)
        return request

    async def send(self, data: bytes) -> bool:
        """Write ``data`` and wait until it is handed to the OS; ``False`` if the client left."""
        if self.writer.is_closing():
            return False
        self.writer.write(data)
        self.bytes_sent += len(data)
        try:
            await self.writer.drain()
        except ConnectionError:
            return False
        return True

    async def wait(self, seconds: float) -> bool:
        """Wait ``seconds``, or less if the client closes the connection; ``True`` if it did."""

        async def until_eof() -> None:
            while await self.reader.read(65536):
                pass

        try:
            await asyncio.wait_for(until_eof(), seconds)
        except asyncio.TimeoutError:
            return False
        except ConnectionError:
            pass
        return True

    def reset(self) -> None:
        """End the connection with a TCP RST (SO_LINGER 0, then abort)."""
        sock = self.writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()

    async def gate(self, within: float = 5.0) -> None:
        """Wait until the test opens ``server.gate`` (say, once it holds the first chunk)."""
        await asyncio.wait_for(self.server.gate.wait(), within)

    async def close(self) -> None:
        """End the connection with a FIN, as a server that is done would."""
        self.writer.close()
        with contextlib.suppress(ConnectionError):
            await self.writer.wait_closed()


Script = Callable[[Conn], Awaitable[None]]


async def healthy(conn: Conn) -> None:
    """Answer every request on the connection properly (JSON, or a short stream), keep-alive."""
    while (request := await conn.request()) is not None:
        if request.stream:
            body = sse_head() + event(content_chunk("healthy", "stop")) + event("[DONE]")
            ok = await conn.send(body + LAST_CHUNK)
        else:
            ok = await conn.send(response(json.dumps(COMPLETION).encode()))
        if not ok:
            return


async def stall(conn: Conn) -> None:
    """Read the request, then never answer (until the client gives up and closes)."""
    await conn.request()
    await conn.wait(60)


class RawServer:
    """``async with RawServer(*scripts) as server: server.url``; later connections are healthy."""

    def __init__(self, *scripts: Script, then: Script = healthy, port: int = 0) -> None:
        self._scripts = scripts
        self._then = then
        self._port = port
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections: list[Conn] = []
        self.requests: list[Request] = []
        self.gate = asyncio.Event()
        """Opened by the test when a script may go on (``Conn.gate()``)."""

    async def __aenter__(self) -> RawServer:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self._port)
        self._port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        assert self._server is not None
        self._server.close()
        for conn in self.connections:
            conn.writer.transport.abort()
        # An aborted connection ends its script at its next read or write; cancel any other.
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=1)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}/v1"

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        number = len(self.connections)
        conn = Conn(self, number, reader, writer)
        self.connections.append(conn)
        script = self._scripts[number] if number < len(self._scripts) else self._then
        try:
            await script(conn)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            # Cancelled by __aexit__ only: ending normally keeps asyncio from logging it.
            pass
        finally:
            conn.closed.set()
            writer.transport.abort()
            self._tasks.discard(task)

    async def closed(self, number: int, within: float = 2.0) -> None:
        """Wait until connection ``number`` is over (fails the test after ``within`` seconds)."""
        await asyncio.wait_for(self.connections[number].closed.wait(), within)
