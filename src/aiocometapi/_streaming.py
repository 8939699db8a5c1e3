"""AsyncStream: body bytes -> SSE events -> typed chunks, under three clocks, always released."""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping
from types import TracebackType
from typing import Any, Generic, Protocol, TypeVar, cast

import msgspec

from . import _retry
from ._accumulate import Accumulator
from ._config import Timeout
from ._decode import DECODE_ERRORS, ErrorEnvelope, error_envelope, recover
from ._exceptions import (
    APIConnectionError,
    APITimeoutError,
    IncompleteStreamError,
    StreamError,
    redact,
)
from .sse import EventTooLargeError, ServerSentEvent, SSEDecoder
from .types import Adjustment, ChatCompletion, ChatCompletionChunk, ErrorObject, _with_json

__all__ = ["AsyncStream", "ByteSource"]

ChunkT = TypeVar("ChunkT", bound=ChatCompletionChunk)


class ByteSource(Protocol):
    """The body of a streamed response, as the transport hands it over."""

    async def read(self) -> bytes: ...
    async def drain(self) -> None: ...
    def abort(self) -> None: ...


_CLOCK_NAMES = {
    "first_event": "no data event arrived within {:g} s of the request (the 'first_event' clock)",
    "idle": "no data event arrived for {:g} s (the 'idle' clock)",
    "stream_total": "the stream ran longer than {:g} s (the 'stream_total' clock)",
}


def _fire(stream: weakref.ref[Any]) -> None:
    # The timer holds the stream weakly, so a stream the caller dropped is not kept alive.
    target = stream()
    if target is not None:
        target._on_timer()


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
        retries: _retry.Retries | None = None,
        secret: bytes = b"",
    ) -> None:
        self._source = source
        self._decoder = decoder
        self._max_event_size = max_event_size
        self._sse = SSEDecoder(max_event_size=max_event_size)
        self._accumulator = Accumulator()
        self._pending = self._accumulator.pending
        self._finished = False
        self._closed = False
        self._repaired = False
        self._reopen = reopen
        self._retries = retries
        self._secret = secret
        self.headers: Mapping[str, str] = headers
        """The response headers."""
        self.request_id = request_id
        """The request id the server gave, if any."""
        self.adjustments: list[Adjustment] | None = None
        """With ``compat="adapt"``, the changes made to the request; carried by ``final()``."""
        self.keep_raw_json = False
        """Set it to ``True`` before iterating and each chunk keeps the JSON it came as (by
        reference): ``chunk.raw_json``, and ``chunk.extra`` for the fields the types do not
        name. Off by default, as it costs each chunk an instance dict; it takes effect from
        the next read of the body."""
        self._json_decoder_: msgspec.json.Decoder[ChunkT] | None = None
        self._chunks = self._generate()
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

    def __aiter__(self) -> AsyncIterator[ChunkT]:
        return self._chunks

    def __anext__(self) -> Awaitable[ChunkT]:
        return self._chunks.__anext__()

    async def _generate(self) -> AsyncGenerator[ChunkT, None]:
        # One generator per stream, shared by every loop over it: an async generator steps
        # faster than a coroutine per __anext__, and its state can live in locals. Nothing
        # here yields inside a try block.
        decode = self._decoder.decode
        first = True  # no chunk has reached the caller yet
        keep_json = False
        json_type: object = None
        while not (self._finished or self._closed):
            try:
                events = await self._refill()
            except (APIConnectionError, IncompleteStreamError) as exc:
                # Nothing reached the caller yet: the request may be sent again.
                if not first or not self._can_retry(exc):
                    self._abort()
                    raise
                await self._retry(exc)
                continue
            except BaseException:
                self._abort()
                raise
            keep = self._pending.append
            if self.keep_raw_json is not keep_json:  # looked at once per read, not per chunk
                keep_json = self.keep_raw_json
                decoder = self._json_decoder() if keep_json else self._decoder
                decode, json_type = decoder.decode, decoder.type
            for event in events:
                try:
                    data: bytes | str
                    if isinstance(event, bytes):
                        data = event
                        if not data:
                            continue  # "data: " alone: a keep-alive
                        if data == b"[DONE]":
                            await self._finish()
                            self._check_finish()
                            return
                    else:
                        data = self._other_event(event)
                        if not data:
                            continue
                        if data == "[DONE]":
                            await self._finish()
                            self._check_finish()
                            return
                    try:
                        chunk = decode(data)
                    except DECODE_ERRORS as exc:
                        if not data.strip():
                            continue  # whitespace only: a keep-alive too
                        chunk = self._decode_slowly(data, exc)
                    if keep_json:
                        if type(chunk) is not json_type:  # a repaired chunk is a plain one
                            chunk = self._with_json(chunk)
                        chunk._raw_json = data  # by reference: decoded only if asked
                    if chunk.error is not None:
                        # Wherever the chunk has it, with choices or without (OpenRouter
                        # sends an error mid-stream beside finish_reason "error").
                        keep(chunk)
                        raise self._error_from(data)
                except BaseException:
                    self._abort()
                    raise
                keep(chunk)
                if first:
                    first = False
                    self._cancel_timer()  # the first_event clock stops; the idle clock starts
                yield chunk

    def _json_decoder(self) -> msgspec.json.Decoder[ChunkT]:
        decoder = self._json_decoder_
        if decoder is None:
            with_json = _with_json(cast("type[ChunkT]", self._decoder.type))
            decoder = self._json_decoder_ = msgspec.json.Decoder(with_json)
        return decoder

    def _with_json(self, chunk: ChunkT) -> ChunkT:
        """``chunk`` as an instance of the type that can hold its JSON."""
        with_json = cast("type[ChunkT]", self._json_decoder().type)
        return with_json(**msgspec.structs.asdict(chunk))

    @property
    def chunks_received(self) -> int:
        """Chunks handed to the caller so far."""
        return self._accumulator.chunks_seen + len(self._pending)

    async def _refill(self) -> list[bytes | ServerSentEvent]:
        """Read until the body gives at least one event (the caller is waiting: idle runs)."""
        # Fold the chunks of the last read into the running completion: once per read, so the
        # per-chunk path only appends, and the chunks held stay bounded by one read's worth.
        self._accumulator.fold()
        if self._idle is not None:
            self._mark = self._loop.time()
        while True:
            data = await self._read()
            if not data:
                self._sse.end()
                raise self._incomplete("the body ended")
            try:
                events = self._sse._feed_payloads(data)
            except EventTooLargeError as exc:
                raise StreamError(
                    str(exc), request_id=self.request_id, partial=self._partial()
                ) from exc
            if events:
                return events

    def _other_event(self, event: ServerSentEvent) -> str:
        """The data of an event that is not a plain payload ('' to skip it)."""
        if event.event == "message":
            return event.data
        if event.event == "error":
            raise self._error_from(event.data)
        return ""  # other event types (pings and the like) carry nothing for us

    def _incomplete(self, why: str) -> IncompleteStreamError:
        return IncompleteStreamError(
            f"The stream ended before 'data: [DONE]' ({why}): the answer may be cut short, "
            "or only its usage chunk lost. `partial` holds what arrived.",
            request_id=self.request_id,
            partial=self._partial(),
        )

    def _redact(self, data: bytes | str) -> bytes:
        raw = data.encode("utf-8", "surrogateescape") if isinstance(data, str) else data
        return redact(raw, self._secret)

    def _decode_slowly(self, data: bytes | str, failure: BaseException) -> ChunkT:
        # A provider that drifts does so in every chunk: one log line per stream.
        what = "a stream chunk (later ones of this stream are repaired without a log line)"
        try:
            chunk = recover(self._decoder, data, failure, what=what, quiet=self._repaired)
        except DECODE_ERRORS as exc:
            text = self._redact(data).decode("utf-8", "replace")
            raise StreamError(
                f"A stream chunk is not valid JSON ({exc}); it starts: {text[:200]!r}",
                request_id=self.request_id,
                partial=self._partial(),
            ) from exc
        self._repaired = True
        return chunk

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

    def _check_finish(self) -> None:
        """A stream whose choice ended with finish_reason "error" did not end normally, even
        without an error object (OpenRouter's mid-stream failures may come that way)."""
        if "error" in self._accumulator.finish_reasons():
            raise StreamError(
                "The stream ended with finish_reason 'error': the provider failed mid-answer. "
                "`partial` holds what arrived.",
                request_id=self.request_id,
                partial=self._partial(),
            )

    def _error_from(self, data: bytes | str) -> StreamError:
        raw = self._redact(data)
        text = raw.decode("utf-8", "replace")
        envelope = error_envelope(text) or ErrorEnvelope(error=text or "unknown error")
        error = envelope.error
        if not isinstance(error, ErrorObject):
            error = ErrorObject(message=str(error) if error is not None else text)
        code = None if error.code is None else str(error.code)
        return StreamError(
            f"The server sent an error inside the stream: {error.message or text[:200]}",
            code=code,
            type=error.type,
            param=error.param,
            request_id=self.request_id,
            partial=self._partial(),
        )

    def _partial(self) -> ChatCompletion:
        completion = self._accumulator.completion(self.request_id)
        completion.adjustments = self.adjustments
        return completion

    # ------------------------------------------------------------------ retry before first chunk

    def _can_retry(self, exc: BaseException) -> bool:
        retries = self._retries
        return (
            self._reopen is not None
            and retries is not None
            and retries.left > 0
            and (isinstance(exc, IncompleteStreamError) or _retry.is_retryable(exc))
        )

    async def _retry(self, failure: BaseException) -> None:
        # The request's own Retries object: this wait and the tries after it continue the
        # count of the tries that opened the stream, so the back-off keeps growing.
        assert self._reopen is not None and self._retries is not None
        self._source.abort()
        self._cancel_timer()
        try:
            self._source, self.headers, self.request_id = await self._retries.resume(
                failure, self._reopen
            )
        except BaseException:
            self._closed = True
            raise
        self._sse = SSEDecoder(max_event_size=self._max_event_size)
        self._accumulator = Accumulator()
        self._pending = self._accumulator.pending
        self._started = self._mark = self._loop.time()
        self._expired = None

    # ------------------------------------------------------------------ clocks

    def _deadline(self) -> tuple[float, str] | None:
        """The clock that runs out first: (when, which), or None with every clock off."""
        timeout = self._timeout
        clocks: list[tuple[float, str]] = []
        if timeout.stream_total is not None:
            clocks.append((self._started + timeout.stream_total, "stream_total"))
        if not self.chunks_received:
            if timeout.first_event is not None:
                clocks.append((self._started + timeout.first_event, "first_event"))
        elif self._idle is not None:
            clocks.append((self._mark + self._idle, "idle"))
        return min(clocks, default=None)

    def _arm(self) -> None:
        deadline = self._deadline()
        if deadline is not None:
            self._timer = self._loop.call_at(deadline[0], _fire, weakref.ref(self))

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
            self._timer = self._loop.call_at(deadline[0], _fire, weakref.ref(self))

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
        self._accumulator.fold()  # the last read's chunks are not kept past the end
        await self._source.drain()

    def _abort(self) -> None:
        self._cancel_timer()
        if not self._finished:
            self._closed = True
            self._source.abort()

    def __del__(self) -> None:
        # A stream dropped unfinished without aclose() still gives its connection up.
        if not (self._finished or self._closed):
            with contextlib.suppress(Exception):
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
        return self._partial()

    @property
    def completion(self) -> ChatCompletion:
        """The completion assembled from the chunks received so far."""
        return self._partial()
