"""CometAPI: the sync client, the async client's surface run in an event loop of its own.

Nothing here is a second implementation: each call runs the ``AsyncCometAPI`` call of the same
name as a task of the client's loop (a daemon thread, see ``_sync_loop``) and waits for it.
The client can be shared by any number of threads, called from a thread whose own event loop
is running (a notebook cell, an async framework's sync handler), and interrupted with Ctrl-C.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from types import TracebackType
from typing import Any, Literal, TypeVar, cast, overload

from ._client import AsyncCometAPI, PoolState
from ._compat import Mode, check
from ._config import RetryPolicy, Timeout
from ._fanout import FanOutResult
from ._parsed_stream import ParsedAsyncStream
from ._ratelimit import RateState
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

__all__ = ["CometAPI"]

T = TypeVar("T")


class CometAPI:
    """The CometAPI client for code that does not ``await``: ``client.chat.completions`` and
    ``client.models``, as in ``AsyncCometAPI`` but returning results (and plain iterators).

    It runs an ``AsyncCometAPI`` in an event loop of its own, in a daemon thread started at
    the first call and stopped by ``close()``, the ``with`` block's end, garbage collection
    or the interpreter's exit. One client serves any number of threads at once.

    Args:
        api_key: The CometAPI key; defaults to the ``COMETAPI_KEY`` environment variable.
        base_url: Defaults to ``COMETAPI_BASE_URL``, else ``https://api.cometapi.com/v1``.
        timeout: Seconds, or a ``Timeout`` with each clock.
        max_retries: Retries after a retryable failure (default 4).
        retry: A ``RetryPolicy`` for the waits between tries.
        max_connections: Size of the connection pool (default 100).
        default_headers: Headers sent with every request.
        trust_env: Honour ``HTTP(S)_PROXY`` / ``NO_PROXY`` (default True).
        max_event_size: Largest single stream event accepted, in bytes.
        max_body_size: Largest non-streamed answer accepted, in bytes.
        requests_per_minute: A budget of requests per minute (default none).
        tokens_per_minute: A budget of tokens per minute (default none).
        compat: How to treat parameters a model's family takes differently (``"warn"``,
            ``"strict"``, ``"adapt"`` or ``"off"``); see ``AsyncCometAPI``.

    Raises:
        ConfigurationError: no key, a malformed base URL or header, or an unknown compat mode.
    """

    chat: Chat
    models: Models

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        max_connections: int = 100,
        default_headers: Mapping[str, str] | None = None,
        trust_env: bool = True,
        max_event_size: int = 16 * 1024 * 1024,
        max_body_size: int = 64 * 1024 * 1024,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
        compat: Mode = "warn",
    ) -> None:
        client = AsyncCometAPI(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            max_connections=max_connections,
            default_headers=default_headers,
            trust_env=trust_env,
            max_event_size=max_event_size,
            max_body_size=max_body_size,
            requests_per_minute=requests_per_minute,
            tokens_per_minute=tokens_per_minute,
            compat=compat,
        )
        loop = EventLoopThread()
        self._init(client, loop, parent=None)
        # Neither argument refers to this object, so it can be collected; at exit the loop
        # is still running (its thread is a daemon) and closes the pool cleanly.
        self._finalizer = weakref.finalize(self, loop.stop, client.aclose)

    def _init(self, client: AsyncCometAPI, loop: EventLoopThread, parent: CometAPI | None) -> None:
        self._async = client
        self._loop = loop
        self._parent = parent  # a with_options copy keeps its owner (and the loop) alive
        self.chat = Chat(self)
        self.models = Models(self)

    # ------------------------------------------------------------------ configuration

    @property
    def api_key(self) -> str:
        """The key this client sends (never shown by ``repr()``, logs or errors)."""
        return self._async.api_key

    @property
    def base_url(self) -> str:
        """The API's base URL, without a trailing slash."""
        return self._async.base_url

    @property
    def timeout(self) -> Timeout:
        """The clocks of every request (a call's ``timeout=`` overrides them)."""
        return self._async.timeout

    @property
    def max_retries(self) -> int:
        """Retries after a retryable failure (a call's ``max_retries=`` overrides it)."""
        return self._async.max_retries

    @property
    def retry(self) -> RetryPolicy:
        """The retry policy: how many retries, and the bounds on the waits between them."""
        return self._async.retry

    def rate_state(self) -> RateState:
        """The shared rate controller's figures (see ``AsyncCometAPI.rate_state``)."""
        return self._async.rate_state()

    def pool_state(self) -> PoolState:
        """The connection pool's figures (see ``AsyncCometAPI.pool_state``)."""
        return self._async.pool_state()

    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | Timeout | None = None,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        compat: Mode | None = None,
    ) -> CometAPI:
        """A copy with other defaults that shares this client's loop and connection pool.

        The copy borrows both: closing it does nothing, closing this client closes both.
        Arguments left as ``None`` keep this client's value.

        Args:
            api_key: Another key to send (the copy gets a rate controller of its own).
            base_url: Another API base URL (a rate controller of its own too).
            timeout: Seconds, or a ``Timeout`` with each clock.
            max_retries: Retries after a retryable failure.
            retry: A whole ``RetryPolicy``.
            default_headers: Headers added to (or replacing) this client's.
            compat: The provider-parameter mode for the copy's calls.

        Returns:
            The new client.
        """
        copy = object.__new__(CometAPI)
        copy._init(
            self._async.with_options(
                api_key=api_key,
                base_url=base_url,
                timeout=timeout,
                max_retries=max_retries,
                retry=retry,
                default_headers=default_headers,
                compat=compat,
            ),
            self._loop,
            parent=self._parent or self,
        )
        return copy

    def __repr__(self) -> str:
        return f"CometAPI(base_url={self.base_url!r}, api_key='***')"

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Close the connection pool and stop the client's loop (idempotent). A
        ``with_options`` copy closes nothing."""
        if self._parent is None:
            self._finalizer()

    def __enter__(self) -> CometAPI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def _call(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        return self._loop.call(fn, *args, **kwargs)


class Completions:
    """``client.chat.completions`` of the sync client."""

    def __init__(self, client: CometAPI) -> None:
        self._client = client
        self._async = client._async.chat.completions

    @property
    def with_raw_response(self) -> CompletionsWithRawResponse:
        """``create`` and ``parse`` returning a ``RawResponse`` (headers, status, request id,
        elapsed), as with the openai package."""
        return CompletionsWithRawResponse(self._client)

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
        client = self._client
        mode = params.get("compat", client._async._config.compat)
        adjustments = None
        sent: Mapping[str, Any] = params
        if mode != "off":  # here, in the caller's thread, so that warnings point at its line
            sent, adjustments = check(params, mode)
        sent = {**sent, "compat": "off"}
        if stream:
            chunks: AsyncStream[ChatCompletionChunk] = client._call(
                self._async.create, stream=True, **sent
            )
            chunks.adjustments = adjustments
            return Stream(chunks, client._loop)
        completion: ChatCompletion = client._call(self._async.create, **sent)
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
        client = self._client
        mode = params.get("compat", client._async._config.compat)
        adjustments = None
        sent: Mapping[str, Any] = params
        if mode != "off":  # the response format is a json_schema, which every family takes
            sent, adjustments = check(params, mode)
        sent = {**sent, "compat": "off"}
        if stream:
            chunks: ParsedAsyncStream[T] = client._call(
                self._async.parse, response_format=response_format, stream=True, **sent
            )
            chunks.stream.adjustments = adjustments
            return ParsedStream(chunks, client._loop)
        parsed: ParsedChatCompletion[T] = client._call(
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
        result: ToolRun = self._client._call(
            self._async.run_tools, tools=tools, max_turns=max_turns, tool_errors=tool_errors,
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
        return SyncIterator(events, self._client._loop, events.aclose)

    def fan_out(
        self,
        requests: Iterable[Mapping[str, Any]],
        *,
        concurrency: int = 64,
        ordered: bool = False,
        window: int | None = None,
        stop_on_systemic_failure: bool = False,
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
        )
        return SyncIterator(results, self._client._loop, results.aclose)


class CompletionsWithRawResponse:
    """``client.chat.completions.with_raw_response`` of the sync client: ``create`` and
    ``parse`` returning a ``RawResponse`` (with ``stream=True``, ``parse()`` gives a
    ``Stream``)."""

    def __init__(self, client: CometAPI) -> None:
        self._client = client
        self._async = client._async.chat.completions.with_raw_response

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
        client = self._client
        mode = params.get("compat", client._async._config.compat)
        adjustments = None
        sent: Mapping[str, Any] = params
        if mode != "off":  # in the caller's thread, as create() does
            sent, adjustments = check(params, mode)
        sent = {**sent, "compat": "off"}
        raw: RawResponse[Any] = client._call(self._async.create, stream=stream, **sent)
        result = raw.parse()
        if isinstance(result, AsyncStream):
            result.adjustments = adjustments
            return raw.with_value(Stream(result, client._loop))
        if adjustments is not None:
            result.adjustments = adjustments
        return cast(RawResponse[ChatCompletion], raw)

    def parse(
        self, *, response_format: type[T], **params: Unpack[CompletionParseParams]
    ) -> RawResponse[ParsedChatCompletion[T]]:
        """``parse()`` (not streamed), its result behind ``RawResponse.parse()``."""
        client = self._client
        mode = params.get("compat", client._async._config.compat)
        adjustments = None
        sent: Mapping[str, Any] = params
        if mode != "off":  # in the caller's thread, as parse() does
            sent, adjustments = check(params, mode)
        sent = {**sent, "compat": "off"}
        raw: RawResponse[ParsedChatCompletion[T]] = client._call(
            self._async.parse, response_format=response_format, **sent
        )
        if adjustments is not None:
            raw.parse().adjustments = adjustments
        return raw


class Chat:
    """``client.chat`` of the sync client."""

    def __init__(self, client: CometAPI) -> None:
        self.completions = Completions(client)


class Models:
    """``client.models`` of the sync client."""

    def __init__(self, client: CometAPI) -> None:
        self._client = client

    def list(self) -> ModelList:
        """``GET /models``: every model the gateway serves (iterate it, or ``.data``)."""
        return cast(ModelList, self._client._call(self._client._async.models.list))

    def retrieve(self, model: str) -> Model:
        """``GET /models/{model}``: one model; ``NotFoundError`` if the gateway has no such id."""
        return cast(Model, self._client._call(self._client._async.models.retrieve, model))

    @property
    def with_raw_response(self) -> ModelsWithRawResponse:
        """``list`` and ``retrieve`` returning a ``RawResponse``."""
        return ModelsWithRawResponse(self._client)


class ModelsWithRawResponse:
    """``client.models.with_raw_response`` of the sync client."""

    def __init__(self, client: CometAPI) -> None:
        self._client = client

    def list(self) -> RawResponse[ModelList]:
        """``GET /models``, the ``ModelList`` behind ``RawResponse.parse()``."""
        raw = self._client._async.models.with_raw_response
        return cast(RawResponse[ModelList], self._client._call(raw.list))

    def retrieve(self, model: str) -> RawResponse[Model]:
        """``GET /models/{model}``, the ``Model`` behind ``RawResponse.parse()``."""
        raw = self._client._async.models.with_raw_response
        return cast(RawResponse[Model], self._client._call(raw.retrieve, model))

