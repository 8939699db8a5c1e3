"""``client.chat.completions``: create (plain or streamed), parse, run_tools, fan_out."""

from __future__ import annotations

import difflib
import sys
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
    Sequence,
)
from typing import Any, Literal, Protocol, TypedDict, TypeVar, cast, overload

import msgspec

from .._budget import Budget
from .._compat import check, streams_usage
from .._config import CALL_OPTIONS, CallOptions
from .._fanout import FanOutResult, fan_out
from .._params import (
    AudioParam,
    FunctionCallOption,
    ModerationParam,
    PredictionParam,
    PromptCacheOptions,
    ReasoningEffort,
    ServiceTier,
    Verbosity,
    WebSearchOptions,
)
from .._parsed_stream import ParsedAsyncStream
from .._raw import keep_raw_json
from .._raw_response import RawResponse, keep_headers, raw_call
from .._requester import Requester
from .._streaming import AsyncStream
from .._structured import parse_completion, response_format_for
from .._tool_runner import ToolErrors, ToolRun, ToolRunEvent, run_tools, run_tools_stream
from .._tools import Tool
from ..types import (
    Adjustment,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    CustomTool,
    FunctionDefinition,
    FunctionTool,
    Message,
    NamedToolChoice,
    ParsedChatCompletion,
    ResponseFormatJSONObject,
    ResponseFormatJSONSchema,
    ResponseFormatText,
    StreamOptions,
)

if sys.version_info >= (3, 11):
    from typing import Required, Unpack
else:  # pragma: no cover
    from typing_extensions import Required, Unpack

T = TypeVar("T")

__all__ = [
    "Chat",
    "CompletionCreateParams",
    "CompletionParseParams",
    "Completions",
    "CompletionsWithRawResponse",
    "RunToolsParams",
]


class _RequestParams(TypedDict, total=False):
    """The body parameters besides ``response_format`` and ``tools``, which parse() and
    run_tools() take in another form. Every parameter of OpenAI's chat-completions reference
    (as openai-python's ``completion_create_params.py`` lists it) has a name here."""

    model: Required[str]
    messages: Required[Sequence[Message]]
    audio: AudioParam
    frequency_penalty: float
    function_call: Literal["none", "auto"] | FunctionCallOption
    """Deprecated by OpenAI in favour of ``tool_choice``."""
    functions: Sequence[FunctionDefinition | dict[str, Any]]
    """Deprecated by OpenAI in favour of ``tools``."""
    logit_bias: dict[str, int]
    logprobs: bool
    max_completion_tokens: int
    max_tokens: int
    metadata: dict[str, str]
    modalities: Sequence[Literal["text", "audio"]]
    moderation: ModerationParam
    n: int
    parallel_tool_calls: bool
    prediction: PredictionParam
    presence_penalty: float
    prompt_cache_key: str
    prompt_cache_options: PromptCacheOptions
    prompt_cache_retention: Literal["in_memory", "24h"]
    reasoning_effort: ReasoningEffort | str
    safety_identifier: str
    seed: int
    service_tier: ServiceTier | str
    stop: str | list[str]
    store: bool
    stream_options: StreamOptions | dict[str, Any]
    temperature: float
    tool_choice: Literal["auto", "none", "required"] | NamedToolChoice | dict[str, Any]
    top_logprobs: int
    top_p: float
    user: str
    verbosity: Verbosity
    web_search_options: WebSearchOptions


class _ResponseFormatParam(TypedDict, total=False):
    response_format: (
        ResponseFormatText | ResponseFormatJSONObject | ResponseFormatJSONSchema | dict[str, Any]
    )


class _ToolsParam(TypedDict, total=False):
    tools: Sequence[FunctionTool | CustomTool | dict[str, Any]]


class CompletionParams(_RequestParams, _ResponseFormatParam, _ToolsParam, total=False):
    """The body parameters of ``POST /chat/completions``, as OpenAI's API reference names them."""


class CompletionCreateParams(CompletionParams, CallOptions, total=False):
    """Everything ``create()`` takes besides ``stream``."""


class CompletionParseParams(_RequestParams, _ToolsParam, CallOptions, total=False):
    """Everything ``parse()`` takes besides ``response_format`` and ``stream``."""


class RunToolsParams(_RequestParams, _ResponseFormatParam, CallOptions, total=False):
    """Everything ``run_tools()`` takes besides ``tools``, ``max_turns`` and ``tool_errors``."""


_BODY_KEYS = frozenset(CompletionParams.__annotations__)
_ALL_KEYS = _BODY_KEYS | CALL_OPTIONS
_PATH = "/chat/completions"

_INCLUDE_USAGE = {"include_usage": True}
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
        raise _unknown_parameters(sorted(unknown))
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
        if value is not None and value is not msgspec.UNSET and key not in CALL_OPTIONS
    }
    for message in messages:  # an answer appended as is, as users of the openai package do
        if isinstance(message, ChatCompletionMessage):
            body["messages"] = [
                m.to_message() if isinstance(m, ChatCompletionMessage) else m for m in messages
            ]
            break
    if stream:
        body["stream"] = True
    extra = params.get("extra_body")
    if extra:
        body.update(extra)
    try:
        return _encoder.encode(body)
    except (TypeError, msgspec.EncodeError) as exc:
        raise TypeError(f"create() parameters cannot be encoded as JSON: {exc}") from exc


def _unknown_parameters(names: list[str]) -> TypeError:
    """The error for parameters OpenAI's chat-completions reference does not have."""
    many = len(names) > 1
    hints = []
    for name in names:
        close = difflib.get_close_matches(name, _ALL_KEYS | {"stream"}, n=1, cutoff=0.75)
        if close:
            hints.append(
                f"{name!r}: did you mean {close[0]!r}?" if many else f"did you mean {close[0]!r}?"
            )
    what = (
        f"unexpected keyword arguments {', '.join(map(repr, names))}"
        if many
        else f"an unexpected keyword argument {names[0]!r}"
    )
    hint = f" ({'; '.join(hints)})" if hints else ""
    extra = ", ".join(f"{name!r}: ..." for name in names)
    return TypeError(
        f"create() got {what}{hint}: not in OpenAI's chat-completions reference. A provider's "
        f"own parameters go in extra_body: create(..., extra_body={{{extra}}})."
    )


def estimate_tokens(body: bytes, params: Mapping[str, Any]) -> int:
    """A rough token count for a request, before the server's ``usage`` corrects it.

    About four bytes of JSON per prompt token, plus the completion's cap (or 256) per choice.
    """
    cap = params.get("max_completion_tokens") or params.get("max_tokens") or 256
    return len(body) // 4 + int(cap) * int(params.get("n") or 1)


def _estimate_parts(params: Mapping[str, Any]) -> tuple[int, int]:
    """(prompt, completion) tokens a request may use, as ``estimate_tokens`` counts them."""
    try:
        size = len(encode_body({k: v for k, v in params.items() if k != "stream"}, stream=False))
    except (TypeError, ValueError):
        size = 0  # create() raises for it; nothing is sent
    cap = params.get("max_completion_tokens") or params.get("max_tokens") or 256
    return size // 4, int(cap) * int(params.get("n") or 1)


def _tokens_used(completion: ChatCompletion) -> int | None:
    usage = completion.usage
    return usage.total_tokens if usage is not None else None


class Completions:
    """``client.chat.completions``."""

    def __init__(self, requester: Requester) -> None:
        self._requester = requester

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
        ``timeout``, ``max_retries`` and ``compat`` apply to this call only.

        ``compat`` checks the parameters against the model family's rules before sending:
        ``"warn"`` sends them unchanged with a ``CompatibilityWarning``, ``"strict"`` raises,
        ``"adapt"`` rewrites them and lists the changes in the result's ``adjustments``,
        ``"off"`` checks nothing.

        Returns:
            A ``ChatCompletion``; with ``stream=True``, an ``AsyncStream`` returned once the
            response headers arrived (HTTP errors are raised here, after retries).

        Raises:
            APIStatusError: the server answered with an error (a subclass per status).
            APIConnectionError: no answer (``APITimeoutError`` when a clock ran out).
            APIResponseValidationError: a 2xx answer that is not a chat completion.
            CompatibilityError: ``compat="strict"`` and a parameter the model family does not
                take (raised before anything is sent).
        """
        requester = self._requester
        requester.ensure_open()
        sent: Mapping[str, Any] = params
        adjustments = None
        mode = params.get("compat", requester.compat)
        if mode != "off":
            sent, adjustments = check(params, mode)
        result, _, _ = await self._send(sent, adjustments, stream=stream)
        return result

    async def _send(
        self, sent: Mapping[str, Any], adjustments: list[Adjustment] | None, *, stream: bool
    ) -> tuple[ChatCompletion | AsyncStream[ChatCompletionChunk], int, Mapping[str, str]]:
        """Send checked parameters; the result with the answer's status and headers."""
        requester = self._requester
        model = sent.get("model")
        # A stream asks for its usage, so that the meter and budgets see its tokens.
        asks_usage = isinstance(model, str) and streams_usage(model)
        if stream and asks_usage and sent.get("stream_options") is None:
            sent = {**sent, "stream_options": _INCLUDE_USAGE}
        body = encode_body(sent, stream=stream)
        options = requester.options(sent, stream=stream)
        tokens = estimate_tokens(body, sent) if requester.needs_estimate else 0
        call = requester.start_call(str(model), sent, stream=stream)
        if stream:
            chunks = await requester.stream(
                _PATH,
                decoder=_chunk_decoder,
                options=options,
                body=body,
                tokens=tokens,
                call=call,
            )
            chunks.adjustments = adjustments
            # A stream is returned for a 2xx answer only, and keeps its headers, not its status.
            return chunks, 200, chunks.headers
        answer = await requester.request(
            "POST",
            _PATH,
            decoder=_completion_decoder,
            options=options,
            body=body,
            tokens=tokens,
            tokens_used=_tokens_used,
            call=call,
        )
        completion = answer.value
        completion.request_id = answer.request_id
        keep_headers(completion, answer.headers)
        keep_raw_json(completion, answer.body)
        if adjustments is not None:
            completion.adjustments = adjustments
        if call is not None:
            call.on_answer(completion)
        return completion, answer.status, answer.headers

    @property
    def with_raw_response(self) -> CompletionsWithRawResponse:
        """``create`` and ``parse`` returning a ``RawResponse``: the answer's ``headers``,
        ``status_code``, ``request_id``, ``elapsed`` and ``retries_taken``, and ``parse()``
        for the result, as with the openai package."""
        return CompletionsWithRawResponse(self._requester, self._send)

    @overload
    async def parse(
        self,
        *,
        response_format: type[T],
        stream: Literal[False] = False,
        **params: Unpack[CompletionParseParams],
    ) -> ParsedChatCompletion[T]: ...
    @overload
    async def parse(
        self,
        *,
        response_format: type[T],
        stream: Literal[True],
        **params: Unpack[CompletionParseParams],
    ) -> ParsedAsyncStream[T]: ...
    @overload
    async def parse(
        self,
        *,
        response_format: type[T],
        stream: bool,
        **params: Unpack[CompletionParseParams],
    ) -> ParsedChatCompletion[T] | ParsedAsyncStream[T]: ...
    async def parse(
        self,
        *,
        response_format: type[T],
        stream: bool = False,
        **params: Unpack[CompletionParseParams],
    ) -> ParsedChatCompletion[T] | ParsedAsyncStream[T]:
        """Create a completion whose answer is a ``response_format``, decoded into that type.

        ``response_format`` is a msgspec Struct, dataclass or TypedDict (anything msgspec
        describes as a JSON object); it is sent as a strict ``json_schema`` named after the type
        (see ``to_strict_json_schema``). The other parameters are ``create()``'s.

        Returns:
            A ``ParsedChatCompletion`` whose ``choices[i].message.parsed`` is a
            ``response_format`` (``None`` with a refusal: ``message.refusal`` says why); with
            ``stream=True``, a ``ParsedAsyncStream`` whose ``final()`` returns it.

        Raises:
            ContentParseError: the content is not JSON of that type (the message shows it and
                where it failed).
            TypeError: ``response_format`` is not an object type msgspec can describe.
            Exception: whatever ``create()`` raises.
        """
        request_format = response_format_for(response_format)
        if stream:
            chunks = await self.create(stream=True, response_format=request_format, **params)
            return ParsedAsyncStream(chunks, response_format)
        completion = await self.create(response_format=request_format, **params)
        parsed = parse_completion(completion, response_format)
        keep_headers(parsed, completion.headers)
        return parsed

    async def run_tools(
        self,
        *,
        tools: Sequence[Tool[..., Any] | Callable[..., Any]],
        max_turns: int = 10,
        tool_errors: ToolErrors = "send",
        **params: Unpack[RunToolsParams],
    ) -> ToolRun:
        """Call the model, run the tools it asks for, send their results back; repeat.

        The loop ends when the model answers without tool calls (whatever ``finish_reason``
        says: Gemini routes say ``stop`` after tool calls). Calls of one turn run concurrently;
        their ``tool`` messages follow the assistant message in call order. Only choice 0 is
        followed.

        Args:
            tools: Typed functions (sync ones run in a worker thread) or ``Tool`` objects
                from ``function_tool``. Arguments are decoded into the parameter types first.
                A ``custom_tool`` gets the model's free-form text as it is.
            max_turns: Model calls at most.
            tool_errors: ``"send"``: a tool that raises, bad arguments or an unknown tool name
                send ``"Error: <type>: <message>"`` back to the model as the call's result;
                ``"raise"``: that exception is raised (the turn's other calls are cancelled).
            params: ``create()``'s parameters (``stream`` aside).

        Returns:
            A ``ToolRun``: ``completion`` (the last), ``completions`` (one per turn),
            ``messages`` (the conversation, ready to be sent again) and ``turns``.

        Raises:
            MaxTurnsExceededError: the model still called tools in turn ``max_turns``; the
                tools of that turn were run and the error's ``messages`` holds everything.
        """
        return await run_tools(
            self.create, params, tools=tools, max_turns=max_turns, tool_errors=tool_errors
        )

    def run_tools_stream(
        self,
        *,
        tools: Sequence[Tool[..., Any] | Callable[..., Any]],
        max_turns: int = 10,
        tool_errors: ToolErrors = "send",
        **params: Unpack[RunToolsParams],
    ) -> AsyncGenerator[ToolRunEvent, None]:
        """``run_tools()`` with every turn streamed: yields events as they happen.

        Args:
            tools: As in ``run_tools()``.
            max_turns: As in ``run_tools()``.
            tool_errors: As in ``run_tools()``.
            params: ``create()``'s parameters (``stream`` aside).

        Yields:
            ``TextDelta`` (content of choice 0, as it arrives), ``ToolCallRequested`` (once a
            turn's stream ended), ``ToolCallCompleted`` (after the turn's calls all ran), and
            last ``RunCompleted`` holding the ``ToolRun``.

        Raises:
            MaxTurnsExceededError: as ``run_tools()``, after the last turn's events.

        Wrap the loop in ``contextlib.aclosing`` to free the connection at once on ``break``.
        """
        return run_tools_stream(
            self.create, params, tools=tools, max_turns=max_turns, tool_errors=tool_errors
        )

    def fan_out(
        self,
        requests: Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]],
        *,
        concurrency: int = 64,
        ordered: bool = False,
        window: int | None = None,
        stop_on_systemic_failure: bool = False,
        max_tokens_total: int | None = None,
        max_cost: float | None = None,
    ) -> AsyncGenerator[FanOutResult, None]:
        """Run many ``create()`` calls at once and yield one result per input as each completes.

        Args:
            requests: Dicts of ``create()`` parameters, from any iterable or async iterable;
                taken lazily, so a generator of millions runs in constant memory. A request
                with ``stream=True`` is streamed and its result holds the assembled completion.
            concurrency: Requests in flight at most (the client's rate controller may allow
                fewer after the server answers 429).
            ordered: Yield results in input order; at most ``window`` (default
                ``4 * concurrency``) inputs are taken ahead of the next result due.
            stop_on_systemic_failure: Stop taking inputs once the answers show that every
                further request would fail the same way, with nothing answered successfully
                so far: the first answer a 401 or 403 (the key is refused), the first result
                a connection failure after its retries (the host is unreachable), or the first
                8 answers the same client error (same status and code). The requests in
                flight still finish and yield their results; then ``SystemicFailureError``
                is raised. At most ``concurrency`` requests (plus 7 for the last rule) are
                sent before the stop. Off by default.
            max_tokens_total: Stop starting requests once the tokens the answers used, plus
                an estimate for those in flight and for the next one, would pass this. The
                estimate is the request's size (about four bytes a token) plus its completion
                cap (``max_completion_tokens`` or ``max_tokens``, else 256) per choice, scaled
                by what the answers so far used against their estimates. Requests in flight
                finish; then ``BudgetExceededError`` is raised. An answer without a usage
                counts at its estimate.
            max_cost: The same for cost at the client's ``prices``; a request to a model
                without a price stops the fan-out (its cost could not be kept to).

        Yields:
            ``FanOutResult`` with ``index``, ``request``, ``completion`` or ``error``,
            ``attempts`` and ``latency``: exactly one per input taken, failures included.
            Every input is taken unless ``stop_on_systemic_failure`` or a budget stops the
            fan-out.

        Raises:
            SystemicFailureError: ``stop_on_systemic_failure`` stopped the fan-out, after
                every input taken (``taken`` of them, the first ones) yielded its result;
                the rest of ``requests`` was not read. ``reason`` quotes the server.
            BudgetExceededError: a budget stopped the fan-out after ``taken`` inputs yielded
                their results; the inputs from index ``taken`` on were not sent.
            ValueError: a budget that is not a positive number.
            Exception: whatever iterating ``requests`` itself raised.

        ``compat`` applies to each request as in ``create()``, except that its warning for a
        given parameter and model family comes once per fan-out, not once per request.

        Leaving the loop early (``break``, an exception, cancellation) cancels the requests in
        flight and frees their connections; wrap the loop in ``contextlib.aclosing`` to have
        that happen before the next statement rather than on the next loop iteration.
        """
        budget = None
        if max_tokens_total is not None or max_cost is not None:
            budget = Budget(
                max_tokens_total=max_tokens_total,
                max_cost=max_cost,
                prices=self._requester.prices,
                estimate=_estimate_parts,
            )
        return fan_out(
            self.create,
            requests,
            concurrency=concurrency,
            ordered=ordered,
            window=window,
            stop_on_systemic_failure=stop_on_systemic_failure,
            budget=budget,
        )


class _Send(Protocol):
    """``Completions._send``, handed to the raw-response methods."""

    def __call__(
        self, sent: Mapping[str, Any], adjustments: list[Adjustment] | None, *, stream: bool
    ) -> Awaitable[
        tuple[ChatCompletion | AsyncStream[ChatCompletionChunk], int, Mapping[str, str]]
    ]: ...


class CompletionsWithRawResponse:
    """``client.chat.completions.with_raw_response``: ``create`` and ``parse`` returning a
    ``RawResponse`` (``headers``, ``status_code``, ``request_id``, ``elapsed``,
    ``retries_taken``) whose ``parse()`` gives what the plain method returns."""

    def __init__(self, requester: Requester, send: _Send) -> None:
        self._requester = requester
        self._send = send

    @overload
    async def create(
        self, *, stream: Literal[False] = False, **params: Unpack[CompletionCreateParams]
    ) -> RawResponse[ChatCompletion]: ...
    @overload
    async def create(
        self, *, stream: Literal[True], **params: Unpack[CompletionCreateParams]
    ) -> RawResponse[AsyncStream[ChatCompletionChunk]]: ...
    @overload
    async def create(
        self, *, stream: bool, **params: Unpack[CompletionCreateParams]
    ) -> RawResponse[ChatCompletion] | RawResponse[AsyncStream[ChatCompletionChunk]]: ...
    async def create(
        self, *, stream: bool = False, **params: Unpack[CompletionCreateParams]
    ) -> RawResponse[ChatCompletion] | RawResponse[AsyncStream[ChatCompletionChunk]]:
        """``create()`` (see there), its result behind ``RawResponse.parse()``."""
        self._requester.ensure_open()
        sent: Mapping[str, Any] = params
        adjustments = None
        mode = params.get("compat", self._requester.compat)
        if mode != "off":
            sent, adjustments = check(params, mode)
        raw = await raw_call(lambda: self._send(sent, adjustments, stream=stream))
        return cast(
            "RawResponse[ChatCompletion] | RawResponse[AsyncStream[ChatCompletionChunk]]", raw
        )

    async def parse(
        self, *, response_format: type[T], **params: Unpack[CompletionParseParams]
    ) -> RawResponse[ParsedChatCompletion[T]]:
        """``parse()`` (see there; not streamed), its result behind ``RawResponse.parse()``."""
        self._requester.ensure_open()
        request_format = response_format_for(response_format)
        sent: Mapping[str, Any] = {**params, "response_format": request_format}
        adjustments = None
        mode = params.get("compat", self._requester.compat)
        if mode != "off":
            sent, adjustments = check(sent, mode)
        raw = await raw_call(lambda: self._send(sent, adjustments, stream=False))
        completion = raw.parse()
        assert isinstance(completion, ChatCompletion)
        parsed = parse_completion(completion, response_format)
        keep_headers(parsed, raw.headers)
        return raw.with_value(parsed)


class Chat:
    """``client.chat``."""

    def __init__(self, requester: Requester) -> None:
        self.completions = Completions(requester)
