"""ParsedAsyncStream: the ``AsyncStream`` of ``parse(stream=True)``, whose ``final()`` parses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Mapping
from types import TracebackType
from typing import Generic, TypeVar

from ._streaming import AsyncStream
from ._structured import parse_completion
from .types import Adjustment, ChatCompletion, ChatCompletionChunk, ParsedChatCompletion

__all__ = ["ParsedAsyncStream"]

T = TypeVar("T")


class ParsedAsyncStream(Generic[T]):
    """The stream ``parse(stream=True)`` returns: an ``AsyncStream`` whose ``final()`` parses.

    Iterate it for chunks or use ``text()`` as with any ``AsyncStream`` (``stream`` is the
    stream itself); ``await final()`` returns a ``ParsedChatCompletion``.
    """

    def __init__(self, stream: AsyncStream[ChatCompletionChunk], response_format: type[T]):
        self.stream = stream
        """The underlying stream of chunks."""
        self.response_format = response_format

    def __aiter__(self) -> AsyncIterator[ChatCompletionChunk]:
        return self.stream.__aiter__()

    def __anext__(self) -> Awaitable[ChatCompletionChunk]:
        return self.stream.__anext__()

    @property
    def headers(self) -> Mapping[str, str]:
        """The response headers."""
        return self.stream.headers

    @property
    def request_id(self) -> str | None:
        """The request id the server gave, if any."""
        return self.stream.request_id

    @property
    def adjustments(self) -> list[Adjustment] | None:
        """With ``compat="adapt"``, the changes made to the request (else ``None``)."""
        return self.stream.adjustments

    @property
    def completion(self) -> ChatCompletion:
        """The completion assembled so far, not parsed (its content may be cut mid-JSON)."""
        return self.stream.completion

    def text(self) -> AsyncIterator[str]:
        """The content deltas of choice 0 (pieces of the JSON answer), as they arrive."""
        return self.stream.text()

    async def final(self) -> ParsedChatCompletion[T]:
        """Read the rest of the stream and return the completion, its content parsed.

        Raises:
            ContentParseError: the content is not JSON of the requested type.
            StreamError: as ``AsyncStream.final()``.
        """
        return parse_completion(await self.stream.final(), self.response_format)

    async def aclose(self) -> None:
        """Stop reading and free the connection (see ``AsyncStream.aclose``)."""
        await self.stream.aclose()

    async def __aenter__(self) -> ParsedAsyncStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stream.aclose()
