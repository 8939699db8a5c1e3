"""AsyncStream: body bytes -> SSE events -> typed chunks, under three clocks, always released."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Generic, Protocol, TypeVar

import msgspec

from . import _retry
from ._accumulate import Accumulator
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    IncompleteStreamError,
    StreamError,
)
from ._transport import Timeout
from .sse import EventTooLargeError, ServerSentEvent, SSEDecoder
from .types import ChatCompletion, ChatCompletionChunk, ErrorObject

__all__ = ["AsyncStream", "ByteSource"]

ChunkT = TypeVar("ChunkT", bound=ChatCompletionChunk)


class ByteSource(Protocol):
    """The body of a streamed response, as the transport hands it over."""

    async def read(self) -> bytes: ...
    async def drain(self) -> None: ...
    def abort(self) -> None: ...


class _ErrorEnvelope(msgspec.Struct):
    error: ErrorObject | str | None = None


_error_decoder = msgspec.json.Decoder(_ErrorEnvelope)

_CLOCK_NAMES = {
    "first_event": "no data event arrived within {:g} s of the request (the 'first_event' clock)",
    "idle": "no data event arrived for {:g} s (the 'idle' clock)",
    "stream_total": "the stream ran longer than {:g} s (the 'stream_total' clock)",
}


class AsyncStream(Generic[ChunkT]):
    """A streamed chat completion: iterate it for chunks, or use ``text()`` or ``final()``.

    Use it in ``async with`` (or call ``aclose()``) so that leaving early frees the connection;
    a stream read to its end hands its connection back to the pool by itself.
    """

    def __init__(
        self,
        source: ByteSource,
        *,
        decoder: msgspec.json.Decoder[ChunkT],
        timeout: Timeout,
        started: float,
        headers: Mapping[str, str],
        request_id: str | None,
        max_event_size: int = 16 * 1024 * 1024,
        reopen: Callable[[], Awaitable[tuple[ByteSource, Mapping[str, str], str | None]]]
        | None = None,
        policy: _retry.RetryPolicy | None = None,
    ) -> None:
        self._source = source
        self._decoder = decoder
        self._max_event_size = max_event_size
        self._sse = SSEDecoder(max_event_size=max_event_size)
        self._events: list[ServerSentEvent] = []
        self._next = 0
        self._accumulator = Accumulator()
        self._finished = False
        self._closed = False
        self._reopen = reopen
        self._policy = policy
        self.headers: Mapping[str, str] = headers
        """The response headers."""
        self.request_id = request_id
        """The request id the server gave, if any."""
        self.chunks_received = 0
        # Clocks: one timer per stream, re-armed lazily, instead of a timeout per read.
        self._loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._started = started
        self._idle = timeout.idle
        self._mark = started
        self._reading = False
        self._expired: str | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._clocks = (
            timeout.first_event is not None
            or timeout.idle is not None
            or timeout.stream_total is not None
        )

    # ------------------------------------------------------------------ iteration

    def __aiter__(self) -> AsyncStream[ChunkT]:
        return self

    async def __anext__(self) -> ChunkT:
        if self._finished or self._closed:
            raise StopAsyncIteration
        if self._idle is not None:
            self._mark = self._loop.time()
        while True:
            try:
                return await self._next_chunk()
            except StopAsyncIteration:
                raise
            except (APIConnectionError, IncompleteStreamError) as exc:
                # Nothing reached the caller yet: the request may be sent again.
                if self.chunks_received or not self._can_retry(exc):
                    self._abort()
                    raise
                await self._retry(exc)
            except BaseException:
                self._abort()
                raise

    async def _next_chunk(self) -> ChunkT:
        while True:
            events = self._events
            position = self._next
            if position < len(events):
                self._next = position + 1
                event = events[position]
                data = event.data
                if event.event != "message":
                    if event.event == "error":
                        raise self._error_from(data)
                    continue
                if not data:
                    continue
                if data == "[DONE]":
                    await self._finish()
                    raise StopAsyncIteration
                if '"error"' in data:
                    self._check_error(data)
                try:
                    chunk = self._decoder.decode(data)
                except msgspec.DecodeError as exc:
                    raise StreamError(
                        f"A stream chunk is not valid JSON ({exc}); it starts: {data[:200]!r}",
                        request_id=self.request_id,
                        partial=self._partial(),
                    ) from exc
                self._accumulator.add(chunk)
                if not self.chunks_received:
                    self._cancel_timer()  # the first_event clock stops; the idle clock starts
                self.chunks_received += 1
                return chunk
            data_in = await self._read()
            if not data_in:
                self._sse.end()
                raise IncompleteStreamError(
                    "The stream ended before 'data: [DONE]': the answer may be cut short, or "
                    "only its usage chunk lost. `partial` holds what arrived.",
                    request_id=self.request_id,
                    partial=self._partial(),
                )
            try:
                self._events = self._sse.feed(data_in)
            except EventTooLargeError as exc:
                raise StreamError(str(exc), request_id=self.request_id) from exc
            self._next = 0

    async def _read(self) -> bytes:
        if self._clocks and self._timer is None:
            self._arm()
        self._reading = True
        try:
            data = await self._source.read()
        except APIConnectionError as exc:
            if self._expired is not None:
                raise self._timeout_error() from exc
            if isinstance(exc, APITimeoutError):
                raise
            raise IncompleteStreamError(
                f"The stream was cut before 'data: [DONE]' ({exc}). `partial` holds what arrived.",
                request_id=self.request_id,
                partial=self._partial(),
            ) from exc
        finally:
            self._reading = False
        if self._expired is not None:
            raise self._timeout_error()
        return data

    # ------------------------------------------------------------------ errors inside the stream

    def _check_error(self, data: str) -> None:
        try:
            envelope = _error_decoder.decode(data)
        except (msgspec.DecodeError, msgspec.ValidationError):
            return
        if envelope.error is not None:
            raise self._error_from(data, envelope)

    def _error_from(self, data: str, envelope: _ErrorEnvelope | None = None) -> StreamError:
        if envelope is None:
            try:
                envelope = _error_decoder.decode(data)
            except (msgspec.DecodeError, msgspec.ValidationError):
                envelope = _ErrorEnvelope(error=data or "unknown error")
        error = envelope.error
        if not isinstance(error, ErrorObject):
            error = ErrorObject(message=str(error) if error is not None else data)
        code = None if error.code is None else str(error.code)
        return StreamError(
            f"The server sent an error inside the stream: {error.message or data[:200]}",
            code=code,
            type=error.type,
            param=error.param,
            request_id=self.request_id,
            partial=self._partial(),
        )

    def _partial(self) -> ChatCompletion:
        return self._accumulator.completion(self.request_id)

    # ------------------------------------------------------------------ retry before first chunk

    def _can_retry(self, exc: BaseException) -> bool:
        policy = self._policy
        return (
            self._reopen is not None
            and policy is not None
            and policy.max_retries > 0
            and (isinstance(exc, IncompleteStreamError) or _retry.is_retryable(exc))
        )

    async def _retry(self, failure: BaseException) -> None:
        assert self._reopen is not None and self._policy is not None
        self._source.abort()
        self._cancel_timer()
        policy = self._policy
        await _retry.sleep(_retry.wait_for(policy, failure, 1))
        self._policy = _retry.RetryPolicy(
            max_retries=policy.max_retries - 1,
            initial_wait=policy.initial_wait,
            max_wait=policy.max_wait,
            max_retry_after=policy.max_retry_after,
        )
        try:
            self._source, self.headers, self.request_id = await _retry.run_with_retries(
                self._reopen, self._policy
            )
        except (APIStatusError, APIConnectionError):
            self._closed = True
            raise
        self._sse = SSEDecoder(max_event_size=self._max_event_size)
        self._events, self._next = [], 0
        self._accumulator = Accumulator()
        self._started = self._mark = self._loop.time()
        self._expired = None

    # ------------------------------------------------------------------ clocks

    def _deadline(self) -> tuple[float, str] | None:
        timeout = self._timeout
        best: tuple[float, str] | None = None
        if timeout.stream_total is not None:
            best = (self._started + timeout.stream_total, "stream_total")
        if not self.chunks_received:
            if timeout.first_event is not None:
                candidate = (self._started + timeout.first_event, "first_event")
                best = candidate if best is None or candidate < best else best
        elif self._idle is not None:
            candidate = (self._mark + self._idle, "idle")
            best = candidate if best is None or candidate < best else best
        return best

    def _arm(self) -> None:
        deadline = self._deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline[0], self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed or self._finished or not self._reading:
            # Re-armed by the next read: a caller busy elsewhere is not an idle server.
            return
        deadline = self._deadline()
        if deadline is None:
            return
        if deadline[0] <= self._loop.time():
            self._expired = deadline[1]
            self._source.abort()
        else:
            self._timer = self._loop.call_at(deadline[0], self._on_timer)

    def _timeout_error(self) -> APITimeoutError:
        which = self._expired or "idle"
        seconds = getattr(self._timeout, which)
        return APITimeoutError(
            f"Stream timed out: {_CLOCK_NAMES[which].format(seconds)}.", which=which
        )

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ------------------------------------------------------------------ lifecycle

    async def _finish(self) -> None:
        self._finished = True
        self._cancel_timer()
        await self._source.drain()

    def _abort(self) -> None:
        self._cancel_timer()
        if not self._finished:
            self._closed = True
            self._source.abort()

    async def aclose(self) -> None:
        """Stop reading; the connection is closed unless the stream already ended cleanly."""
        self._abort()
        self._closed = True

    async def __aenter__(self) -> AsyncStream[ChunkT]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ conveniences

    async def text(self) -> AsyncIterator[str]:
        """The content deltas of choice 0, as they arrive."""
        async for chunk in self:
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta.content:
                    yield choice.delta.content

    async def final(self) -> ChatCompletion:
        """Read the rest of the stream and return the whole completion it adds up to.

        Raises:
            IncompleteStreamError: the stream ended before ``[DONE]`` (``partial`` has the rest).
            StreamError: the server sent an error inside the stream.
        """
        async for _ in self:
            pass
        return self._accumulator.completion(self.request_id)

    @property
    def completion(self) -> ChatCompletion:
        """The completion assembled from the chunks received so far."""
        return self._accumulator.completion(self.request_id)
