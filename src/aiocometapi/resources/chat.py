"""``client.chat.completions``: create (plain or streamed)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypedDict, overload

import msgspec

from .._fanout import FanOutResult, fan_out
from .._streaming import AsyncStream
from .._transport import Timeout
from ..types import (
    ChatCompletion,
    ChatCompletionChunk,
    FunctionTool,
    Message,
    NamedToolChoice,
    ResponseFormatJSONObject,
    ResponseFormatJSONSchema,
    ResponseFormatText,
    StreamOptions,
)

if sys.version_info >= (3, 11):
    from typing import Required, Unpack
else:  # pragma: no cover
    from typing_extensions import Required, Unpack

if TYPE_CHECKING:
    from .._client import AsyncCometAPI, RequestOptions

__all__ = ["Chat", "CompletionCreateParams", "Completions"]


class CompletionParams(TypedDict, total=False):
    """The body parameters of ``POST /chat/completions``, as OpenAI's API reference names them."""

    model: Required[str]
    messages: Required[Sequence[Message]]
    temperature: float
    top_p: float
    n: int
    stop: str | list[str]
    max_tokens: int
    max_completion_tokens: int
    presence_penalty: float
    frequency_penalty: float
    logit_bias: dict[str, int]
    user: str
    response_format: (
        ResponseFormatText | ResponseFormatJSONObject | ResponseFormatJSONSchema | dict[str, Any]
    )
    tools: Sequence[FunctionTool | dict[str, Any]]
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | dict[str, Any]
    parallel_tool_calls: bool
    logprobs: bool
    top_logprobs: int
    reasoning_effort: Literal["minimal", "low", "medium", "high"] | str
    seed: int
    service_tier: str
    stream_options: StreamOptions | dict[str, Any]
    metadata: dict[str, str]


class CallOptions(TypedDict, total=False):
    """Per-call settings that are not part of the body."""

    extra_headers: Mapping[str, str]
    extra_query: Mapping[str, str]
    extra_body: Mapping[str, Any]
    """Merged into the JSON body last: for provider parameters this SDK does not name."""
    timeout: float | Timeout
    max_retries: int


class CompletionCreateParams(CompletionParams, CallOptions, total=False):
    """Everything ``create()`` takes besides ``stream``."""


_BODY_KEYS = frozenset(CompletionParams.__annotations__)
_OPTION_KEYS = frozenset(CallOptions.__annotations__)
_ALL_KEYS = _BODY_KEYS | _OPTION_KEYS

_encoder = msgspec.json.Encoder()
_completion_decoder = msgspec.json.Decoder(ChatCompletion)
_chunk_decoder = msgspec.json.Decoder(ChatCompletionChunk)


def encode_body(params: Mapping[str, Any], *, stream: bool) -> bytes:
    """The JSON body for ``create()`` parameters; ``None`` values are left out.

    Raises:
        TypeError: a required parameter is missing, an unknown one was given, or a value
            cannot be encoded as JSON.
        ValueError: ``model`` is empty or ``messages`` is not a list of messages.
    """
    unknown = params.keys() - _ALL_KEYS
    if unknown:
        raise TypeError(f"create() got unexpected keyword arguments: {', '.join(sorted(unknown))}")
    model = params.get("model")
    messages = params.get("messages")
    if model is None or messages is None:
        missing = [name for name in ("model", "messages") if params.get(name) is None]
        raise TypeError(f"create() missing required keyword arguments: {', '.join(missing)}")
    if not isinstance(model, str) or not model.strip():
        raise ValueError(f"model must be a non-empty string, got {model!r}")
    if isinstance(messages, (str, bytes, Mapping)) or not isinstance(messages, Sequence):
        raise ValueError("messages must be a list of messages (dicts or message Structs)")
    body = {
        key: value
        for key, value in params.items()
        if value is not None and value is not msgspec.UNSET and key not in _OPTION_KEYS
    }
    if stream:
        body["stream"] = True
    extra = params.get("extra_body")
    if extra:
        body.update(extra)
    try:
        return _encoder.encode(body)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"create() parameters cannot be encoded as JSON: {exc}") from exc


def estimate_tokens(body: bytes, params: Mapping[str, Any]) -> int:
    """A rough token count for a request, before the server's ``usage`` corrects it.

    About four bytes of JSON per prompt token, plus the completion's cap (or 256) per choice.
    """
    cap = params.get("max_completion_tokens") or params.get("max_tokens") or 256
    return len(body) // 4 + int(cap) * int(params.get("n") or 1)


class Completions:
    """``client.chat.completions``."""

    def __init__(self, client: AsyncCometAPI) -> None:
        self._client = client

    def _options(self, params: Mapping[str, Any], stream: bool) -> RequestOptions:
        client = self._client
        if params.keys().isdisjoint(_OPTION_KEYS):
            return client._default_options[stream]
        return client._options(
            stream=stream,
            extra_headers=params.get("extra_headers"),
            extra_query=params.get("extra_query"),
            timeout=params.get("timeout"),
            max_retries=params.get("max_retries"),
        )

    @overload
    async def create(
        self, *, stream: Literal[False] = False, **params: Unpack[CompletionCreateParams]
    ) -> ChatCompletion: ...
    @overload
    async def create(
        self, *, stream: Literal[True], **params: Unpack[CompletionCreateParams]
    ) -> AsyncStream[ChatCompletionChunk]: ...
    @overload
    async def create(
        self, *, stream: bool, **params: Unpack[CompletionCreateParams]
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]: ...
    async def create(
        self, *, stream: bool = False, **params: Unpack[CompletionCreateParams]
    ) -> ChatCompletion | AsyncStream[ChatCompletionChunk]:
        """Create a chat completion; with ``stream=True``, a stream of its chunks.

        Every parameter is keyword-only and named as in OpenAI's API reference; those not
        given are left out of the request. ``extra_headers``, ``extra_query``, ``extra_body``,
        ``timeout`` and ``max_retries`` apply to this call only.

        Returns:
            A ``ChatCompletion``; with ``stream=True``, an ``AsyncStream`` returned once the
            response headers arrived (HTTP errors are raised here, after retries).

        Raises:
            APIStatusError: the server answered with an error (a subclass per status).
            APIConnectionError: no answer (``APITimeoutError`` when a clock ran out).
            APIResponseValidationError: a 2xx answer that is not a chat completion.
        """
        client = self._client
        client._check_open()
        body = encode_body(params, stream=stream)
        options = self._options(params, stream)
        tokens = estimate_tokens(body, params) if client._rate.needs_estimate else 0
        if stream:
            return await client._stream(
                "/chat/completions",
                decoder=_chunk_decoder,
                options=options,
                body=body,
                tokens=tokens,
            )
        return await client._request(
            "POST",
            "/chat/completions",
            decoder=_completion_decoder,
            options=options,
            body=body,
            tokens=tokens,
        )


    def fan_out(
        self,
        requests: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        concurrency: int = 64,
        ordered: bool = False,
        window: int | None = None,
    ) -> AsyncIterator[FanOutResult]:
        """Run many ``create()`` calls at once and yield one result per input as each completes.

        Args:
            requests: Dicts of ``create()`` parameters, from any iterable or async iterable;
                taken lazily, so a generator of millions runs in constant memory. A request
                with ``stream=True`` is streamed and its result holds the assembled completion.
            concurrency: Requests in flight at most (the client's rate controller may allow
                fewer after the server answers 429).
            ordered: Yield results in input order; at most ``window`` (default
                ``4 * concurrency``) inputs are taken ahead of the next result due.

        Yields:
            ``FanOutResult`` with ``index``, ``request``, ``completion`` or ``error``,
            ``attempts`` and ``latency``: exactly one per input, failures included.

        Leaving the loop early (``break``, an exception, cancellation) cancels the requests in
        flight and frees their connections; wrap the loop in ``contextlib.aclosing`` to have
        that happen before the next statement rather than on the next loop iteration.
        """
        return fan_out(
            self.create, requests, concurrency=concurrency, ordered=ordered, window=window
        )


class Chat:
    """``client.chat``."""

    def __init__(self, client: AsyncCometAPI) -> None:
        self.completions = Completions(client)
