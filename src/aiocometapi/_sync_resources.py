"""The sync client's resources: ``client.chat.completions`` and ``client.models`` of ``CometAPI``.

Each method runs the ``AsyncCometAPI`` method of the same name in the client's loop and waits.
Compat checks run here, in the caller's thread, so that a ``CompatibilityWarning`` names the
caller's line; the async call is then made with ``compat="off"``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar, cast, overload

from ._client import AsyncCometAPI
from ._compat import check
from ._fanout import FanOutResult
from ._parsed_stream import ParsedAsyncStream
from ._raw_response import RawResponse
from ._streaming import AsyncStream
from ._sync_loop import EventLoopThread
from ._sync_streams import ParsedStream, Stream, SyncIterator
from ._tool_runner import ToolErrors, ToolRun, ToolRunEvent
from ._tools import Tool
from .resources.chat import CompletionCreateParams, CompletionParseParams, RunToolsParams
from .types import ChatCompletion, ChatCompletionChunk, Model, ModelList, ParsedChatCompletion

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # pragma: no cover
    from typing_extensions import Unpack

__all__ = [
    "Chat",
    "Completions",
    "CompletionsWithRawResponse",
    "Models",
    "ModelsWithRawResponse",
]

T = TypeVar("T")


class Completions:
    """``client.chat.completions`` of the sync client."""

    def __init__(self, client: AsyncCometAPI, loop: EventLoopThread) -> None:
        self._client = client
        self._async = client.chat.completions
        self._loop = loop

    @property
    def with_raw_response(self) -> CompletionsWithRawResponse:
        """``create`` and ``parse`` returning a ``RawResponse`` (headers, status, request id,
        elapsed), as with the openai package."""
        return CompletionsWithRawResponse(self._client, self._loop)

    @overload
    def create(
        self, *, stream: Literal[False] = False, **params: Unpack[CompletionCreateParams]
    ) -> ChatCompletion: ...
    @overload
    def create(
        self, *, stream: Literal[True], **params: Unpack[CompletionCreateParams]
    ) -> Stream[ChatCompletionChunk]: ...
    @overload
    def create(
        self, *, stream: bool, **params: Unpack[CompletionCreateParams]
    ) -> ChatCompletion | Stream[ChatCompletionChunk]: ...
    def create(
        self, *, stream: bool = False, **params: Unpack[CompletionCreateParams]
    ) -> ChatCompletion | Stream[ChatCompletionChunk]:
        """``AsyncCometAPI.chat.completions.create()``, waited for; with ``stream=True``, a
        ``Stream`` (a plain iterator of chunks) returned once the response headers arrived.

        A ``CompatibilityWarning`` points at the caller's line, as with the async client.
        """
        mode = params.get("compat", self._client.compat)
        adjustments = None
        sent: Mapping[str, Any] = params
        if mode != "off":  # here, in the caller's thread, so that warnings point at its line
            sent, adjustments = check(params, mode)
        sent = {**sent, "compat": "off"}
        if stream:
            chunks: AsyncStream[ChatCompletionChunk] = self._loop.call(
                self._async.create, stream=True, **sent
            )
            chunks.adjustments = adjustments
            return Stream(chunks, self._loop)
        completion: ChatCompletion = self._loop.call(self._async.create, **sent)
        if adjustments is not None:
            completion.adjustments = adjustments
        return completion

    @overload
    def parse(
        self,
        *,
        response_format: type[T],
        stream: Literal[False] = False,
        **params: Unpack[CompletionParseParams],
    ) -> ParsedChatCompletion[T]: ...
    @overload
    def parse(
        self,
        *,
        response_format: type[T],
        stream: Literal[True],
        **params: Unpack[CompletionParseParams],
    ) -> ParsedStream[T]: ...
    @overload
    def parse(
        self,
        *,
        response_format: type[T],
        stream: bool,
        **params: Unpack[CompletionParseParams],
    ) -> ParsedChatCompletion[T] | ParsedStream[T]: ...
    def parse(
        self,
        *,
        response_format: type[T],
        stream: bool = False,
        **params: Unpack[CompletionParseParams],
    ) -> ParsedChatCompletion[T] | ParsedStream[T]:
        """``AsyncCometAPI.chat.completions.parse()``, waited for; with ``stream=True``, a
        ``ParsedStream`` whose ``final()`` parses."""
        mode = params.get("compat", self._client.compat)
        adjustments = None
        sent: Mapping[str, Any] = params
        if mode != "off":  # the response format is a json_schema, which every family takes
            sent, adjustments = check(params, mode)
        sent = {**sent, "compat": "off"}
        if stream:
            chunks: ParsedAsyncStream[T] = self._loop.call(
                self._async.parse, response_format=response_format, stream=True, **sent
            )
            chunks.stream.adjustments = adjustments
            return ParsedStream(chunks, self._loop)
        parsed: ParsedChatCompletion[T] = self._loop.call(
            self._async.parse, response_format=response_format, **sent
        )
        if adjustments is not None:
            parsed.adjustments = adjustments
        return parsed

    def run_tools(
        self,
        *,
        tools: Sequence[Tool[..., Any] | Callable[..., Any]],
        max_turns: int = 10,
        tool_errors: ToolErrors = "send",
        **params: Unpack[RunToolsParams],
    ) -> ToolRun:
        """``AsyncCometAPI.chat.completions.run_tools()``, waited for. Plain functions run in
        worker threads, as with the async client; see there for the arguments."""
        result: ToolRun = self._loop.call(
            self._async.run_tools,
            tools=tools,
            max_turns=max_turns,
            tool_errors=tool_errors,
            **params,
        )
        return result

    def run_tools_stream(
        self,
        *,
        tools: Sequence[Tool[..., Any] | Callable[..., Any]],
        max_turns: int = 10,
        tool_errors: ToolErrors = "send",
        **params: Unpack[RunToolsParams],
    ) -> SyncIterator[ToolRunEvent]:
        """``run_tools()`` with every turn streamed: a plain iterator of the async client's
        events (``TextDelta``, ``ToolCallRequested``, ``ToolCallCompleted``, ``RunCompleted``)."""
        events = self._async.run_tools_stream(
            tools=tools, max_turns=max_turns, tool_errors=tool_errors, **params
        )
        return SyncIterator(events, self._loop, events.aclose)

    def fan_out(
        self,
        requests: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = 64,
        ordered: bool = False,
        window: int | None = None,
        stop_on_systemic_failure: bool = False,
        max_tokens_total: int | None = None,
        max_cost: float | None = None,
    ) -> SyncIterator[FanOutResult]:
        """``AsyncCometAPI.chat.completions.fan_out()`` as a plain iterator of results.

        ``requests`` is taken lazily in the client's loop thread, so a generator of inputs
        should not block. ``close()`` (or the ``with`` block's end) cancels what is in flight.
        The arguments are the async ``fan_out()``'s.
        """
        results = self._async.fan_out(
            requests,
            concurrency=concurrency,
            ordered=ordered,
            window=window,
            stop_on_systemic_failure=stop_on_systemic_failure,
            max_tokens_total=max_tokens_total,
            max_cost=max_cost,
        )
        return SyncIterator(results, self._loop, results.aclose)


class CompletionsWithRawResponse:
    """``client.chat.completions.with_raw_response`` of the sync client: ``create`` and
    ``parse`` returning a ``RawResponse`` (with ``stream=True``, ``parse()`` gives a
    ``Stream``)."""

    def __init__(self, client: AsyncCometAPI, loop: EventLoopThread) -> None:
        self._client = client
        self._async = client.chat.completions.with_raw_response
        self._loop = loop

    @overload
    def create(
        self, *, stream: Literal[False] = False, **params: Unpack[CompletionCreateParams]
    ) -> RawResponse[ChatCompletion]: ...
    @overload
    def create(
        self, *, stream: Literal[True], **params: Unpack[CompletionCreateParams]
    ) -> RawResponse[Stream[ChatCompletionChunk]]: ...
    @overload
    def create(
        self, *, stream: bool, **params: Unpack[CompletionCreateParams]
    ) -> RawResponse[ChatCompletion] | RawResponse[Stream[ChatCompletionChunk]]: ...
    def create(
        self, *, stream: bool = False, **params: Unpack[CompletionCreateParams]
    ) -> RawResponse[ChatCompletion] | RawResponse[Stream[ChatCompletionChunk]]:
        """``create()``, its result behind ``RawResponse.parse()``."""
        mode = params.get("compat", self._client.compat)
        adjustments = None
        sent: Mapping[str, Any] = params
        if mode != "off":  # in the caller's thread, as create() does
            sent, adjustments = check(params, mode)
        sent = {**sent, "compat": "off"}
        raw: RawResponse[Any] = self._loop.call(self._async.create, stream=stream, **sent)
        result = raw.parse()
        if isinstance(result, AsyncStream):
            result.adjustments = adjustments
            return raw.with_value(Stream(result, self._loop))
        if adjustments is not None:
            result.adjustments = adjustments
        return cast(RawResponse[ChatCompletion], raw)

    def parse(
        self, *, response_format: type[T], **params: Unpack[CompletionParseParams]
    ) -> RawResponse[ParsedChatCompletion[T]]:
        """``parse()`` (not streamed), its result behind ``RawResponse.parse()``."""
        mode = params.get("compat", self._client.compat)
        adjustments = None
        sent: Mapping[str, Any] = params
        if mode != "off":  # in the caller's thread, as parse() does
            sent, adjustments = check(params, mode)
        sent = {**sent, "compat": "off"}
        raw: RawResponse[ParsedChatCompletion[T]] = self._loop.call(
            self._async.parse, response_format=response_format, **sent
        )
        if adjustments is not None:
            raw.parse().adjustments = adjustments
        return raw


class Chat:
    """``client.chat`` of the sync client."""

    def __init__(self, client: AsyncCometAPI, loop: EventLoopThread) -> None:
        self.completions = Completions(client, loop)


class Models:
    """``client.models`` of the sync client."""

    def __init__(self, client: AsyncCometAPI, loop: EventLoopThread) -> None:
        self._client = client
        self._loop = loop

    def list(self) -> ModelList:
        """``GET /models``: every model the gateway serves (iterate it, or ``.data``)."""
        return self._loop.call(self._client.models.list)

    def retrieve(self, model: str) -> Model:
        """``GET /models/{model}``: one model; ``NotFoundError`` if the gateway has no such id."""
        return self._loop.call(self._client.models.retrieve, model)

    @property
    def with_raw_response(self) -> ModelsWithRawResponse:
        """``list`` and ``retrieve`` returning a ``RawResponse``."""
        return ModelsWithRawResponse(self._client, self._loop)


class ModelsWithRawResponse:
    """``client.models.with_raw_response`` of the sync client."""

    def __init__(self, client: AsyncCometAPI, loop: EventLoopThread) -> None:
        self._client = client
        self._loop = loop

    def list(self) -> RawResponse[ModelList]:
        """``GET /models``, the ``ModelList`` behind ``RawResponse.parse()``."""
        raw = self._client.models.with_raw_response
        return self._loop.call(raw.list)

    def retrieve(self, model: str) -> RawResponse[Model]:
        """``GET /models/{model}``, the ``Model`` behind ``RawResponse.parse()``."""
        raw = self._client.models.with_raw_response
        return self._loop.call(raw.retrieve, model)
