"""The sync client's iterators: streams of chunks, fan-out results and tool-run events."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

from ._parsed_stream import ParsedAsyncStream
from ._streaming import AsyncStream
from ._sync_loop import EventLoopThread
from .types import Adjustment, ChatCompletion, ChatCompletionChunk, ParsedChatCompletion

__all__ = ["ParsedStream", "Stream", "SyncIterator"]

T = TypeVar("T")
ChunkT = TypeVar("ChunkT", bound=ChatCompletionChunk)


class SyncIterator(Generic[T]):
    """An async iterator of the client's loop, stepped from this thread: a plain iterator.

    Use it in ``with`` (or call ``close()``) so that leaving the loop early stops the work
    behind it at once; one dropped unfinished is closed in the background.
    """

    def __init__(
        self,
        source: AsyncIterator[T],
        loop: EventLoopThread,
        close: Callable[[], Awaitable[Any]],
    ) -> None:
        self._source = source
        self._loop = loop
        self._close = close
        self._finished = False
        self._closed = False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        if self._finished:
            raise StopIteration
        try:
            return self._loop.call(self._source.__anext__)
        except StopAsyncIteration:
            self._finished = True
            raise StopIteration from None
        except BaseException:
            self._finished = True  # an error (or Ctrl-C) ends the iteration
            raise

    def close(self) -> None:
        """Stop: the work behind the iterator is cancelled and its connections freed."""
        if self._closed:
            return
        self._closed = self._finished = True
        self._loop.call(self._close)

    def __enter__(self) -> SyncIterator[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # In the loop's thread, whichever thread the collection happens in.
        if not self._closed:
            self._loop.spawn(self._close)


class _StreamBase(SyncIterator[ChatCompletionChunk]):
    _stream: AsyncStream[Any] | ParsedAsyncStream[Any]

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers."""
        return self._stream.headers

    @property
    def request_id(self) -> str | None:
        """The request id the server gave, if any."""
        return self._stream.request_id

    @property
    def adjustments(self) -> list[Adjustment] | None:
        """With ``compat="adapt"``, the changes made to the request (else ``None``)."""
        return self._stream.adjustments

    @property
    def completion(self) -> ChatCompletion:
        """The completion assembled from the chunks received so far."""
        return self._stream.completion

    def text(self) -> Iterator[str]:
        """The content deltas of choice 0, as they arrive."""
        for chunk in self:
            for choice in chunk.choices:
                if choice.index == 0 and choice.delta.content:
                    yield choice.delta.content


class Stream(_StreamBase, Generic[ChunkT]):
    """A streamed chat completion of the sync client: iterate it for chunks, or use ``text()``
    or ``final()``; ``with`` (or ``close()``) frees the connection when leaving early."""

    def __init__(self, stream: AsyncStream[ChunkT], loop: EventLoopThread) -> None:
        super().__init__(stream, loop, stream.aclose)
        self._stream = stream

    def __iter__(self) -> Iterator[ChunkT]:
        return self

    def __next__(self) -> ChunkT:
        return super().__next__()  # type: ignore[return-value]

    def __enter__(self) -> Stream[ChunkT]:
        return self

    def final(self) -> ChatCompletion:
        """Read the rest of the stream and return the whole completion it adds up to.

        Raises:
            IncompleteStreamError: the stream ended before ``[DONE]`` (``partial`` has the rest).
            StreamError: the server sent an error inside the stream.
        """
        try:
            return self._loop.call(self._stream.final)
        finally:
            self._finished = True


class ParsedStream(_StreamBase, Generic[T]):
    """The stream ``parse(stream=True)`` returns: a ``Stream`` whose ``final()`` parses."""

    def __init__(self, stream: ParsedAsyncStream[T], loop: EventLoopThread) -> None:
        super().__init__(stream.__aiter__(), loop, stream.aclose)
        self._stream = self._parsed = stream

    def __enter__(self) -> ParsedStream[T]:
        return self

    def final(self) -> ParsedChatCompletion[T]:
        """Read the rest of the stream and return the completion, its content parsed.

        Raises:
            ContentParseError: the content is not JSON of the requested type.
            StreamError: as ``Stream.final()``.
        """
        try:
            return self._loop.call(self._parsed.final)
        finally:
            self._finished = True
