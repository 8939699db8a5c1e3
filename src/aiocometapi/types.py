"""msgspec Structs for chat-completion requests, responses and stream chunks.

Field names mirror OpenAI's, so code written against the ``openai`` package reads the same.
Response types are tolerant: unknown fields are ignored (gateways add their own), and every
field a provider may leave out defaults to ``None``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, TypeVar, cast

import msgspec
from msgspec import UNSET, Struct, UnsetType

from . import _dump
from ._params import (
    AudioParam,
    FunctionCallOption,
    ModerationParam,
    PredictionParam,
    PromptCacheOptions,
    ReasoningEffort,
    ServiceTier,
    Verbosity,
    VoiceID,
    WebSearchLocation,
    WebSearchOptions,
    WebSearchUserLocation,
)
from ._raw import extra_fields

__all__ = [
    "Adjustment",
    "AssistantMessage",
    "AudioParam",
    "ChatCompletion",
    "ChatCompletionChunk",
    "ChatCompletionMessage",
    "ChatCompletionTokenLogprob",
    "Choice",
    "ChoiceDelta",
    "ChoiceDeltaToolCall",
    "ChoiceDeltaToolCallCustom",
    "ChoiceDeltaToolCallFunction",
    "ChoiceLogprobs",
    "ChunkChoice",
    "CompletionTokensDetails",
    "ContentPart",
    "CustomCall",
    "CustomTool",
    "CustomToolCallParam",
    "CustomToolDefinition",
    "DeveloperMessage",
    "ErrorObject",
    "Function",
    "FunctionCallOption",
    "FunctionDefinition",
    "FunctionTool",
    "ImageURL",
    "ImagePart",
    "InputAudio",
    "InputAudioPart",
    "JSONSchema",
    "Message",
    "Model",
    "ModelList",
    "ModerationParam",
    "NamedToolChoice",
    "NamedToolChoiceFunction",
    "ParsedChatCompletion",
    "ParsedChatCompletionMessage",
    "ParsedChoice",
    "PredictionParam",
    "PromptCacheOptions",
    "PromptTokensDetails",
    "ReasoningEffort",
    "ResponseFormatJSONObject",
    "ResponseFormatJSONSchema",
    "ResponseFormatText",
    "ServiceTier",
    "StreamOptions",
    "SystemMessage",
    "TextPart",
    "ToolCall",
    "ToolMessage",
    "TopLogprob",
    "UNSET",
    "Usage",
    "UserMessage",
    "Verbosity",
    "VoiceID",
    "WebSearchLocation",
    "WebSearchOptions",
    "WebSearchUserLocation",
]


class _Request(Struct, kw_only=True, omit_defaults=True):
    """Base of the request-side Structs: fields left at their default are not sent."""


class _Response(Struct, kw_only=True, gc=False):
    """Base of the response-side Structs (unknown fields are ignored by msgspec).

    Each has ``to_dict()`` / ``to_json()`` as in the openai package, and ``model_dump()`` /
    ``model_dump_json()`` with pydantic's defaults, so code written for either runs as is.
    What the server sent is read from its JSON where it was kept (``raw_json``), else from
    the values: then a field whose default is ``None`` counts as not sent when it is ``None``,
    and every other field as sent. Fields the SDK fills in (``request_id``, ``adjustments``,
    the response ``headers``) are not part of the output.
    """

    _sdk_fields: ClassVar[frozenset[str]] = frozenset()

    def to_dict(
        self,
        *,
        mode: Literal["json", "python"] = "python",
        use_api_names: bool = True,
        exclude_unset: bool = True,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        """This object as a dict, as the server sent it: ``json.dumps()`` takes it as is.

        Args:
            mode: ``"json"`` turns any value JSON lacks (a ``datetime`` in a parsed answer)
                into its JSON form; ``"python"`` keeps it.
            use_api_names: Keys as the API names them (they are the field names here).
            exclude_unset: Leave out fields the server did not send (default ``True``).
            exclude_defaults: Leave out fields equal to their default.
            exclude_none: Leave out every field that is ``None``.
        """
        return _dump.dump(
            self,
            mode=mode,
            by_alias=use_api_names,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
        )

    def to_json(
        self,
        *,
        indent: int | None = 2,
        use_api_names: bool = True,
        exclude_unset: bool = True,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
    ) -> str:
        """This object as JSON text, indented by ``indent`` spaces (``None``: compact).

        The other arguments are ``to_dict()``'s.
        """
        return _dump.dump_json(
            self,
            indent=indent,
            by_alias=use_api_names,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
        )

    def model_dump(
        self,
        *,
        mode: Literal["json", "python"] = "python",
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        by_alias: bool = False,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
    ) -> dict[str, Any]:
        """pydantic's name for ``to_dict()``, with pydantic's defaults (every field included).

        ``include`` / ``exclude`` take sets of top-level field names.
        """
        return _dump.dump(
            self,
            mode=mode,
            by_alias=by_alias,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
            include=include,
            exclude=exclude,
        )

    def model_dump_json(
        self,
        *,
        indent: int | None = None,
        include: Collection[str] | None = None,
        exclude: Collection[str] | None = None,
        by_alias: bool = False,
        exclude_unset: bool = False,
        exclude_defaults: bool = False,
        exclude_none: bool = False,
    ) -> str:
        """pydantic's name for ``to_json()``, with pydantic's defaults (compact, every field)."""
        return _dump.dump_json(
            self,
            indent=indent,
            by_alias=by_alias,
            exclude_unset=exclude_unset,
            exclude_defaults=exclude_defaults,
            exclude_none=exclude_none,
            include=include,
            exclude=exclude,
        )


# --------------------------------------------------------------------------- request content


class TextPart(_Request, tag_field="type", tag="text"):
    """A text part of a message's content."""

    text: str


class ImageURL(_Request):
    """An image by URL or as a ``data:`` URL; ``detail`` picks the resolution the model sees."""

    url: str
    detail: Literal["auto", "low", "high"] | UnsetType = UNSET


class ImagePart(_Request, tag_field="type", tag="image_url"):
    """An image part of a user message's content."""

    image_url: ImageURL


class InputAudio(_Request):
    """Audio sent to an audio model."""

    data: str
    """Base64-encoded audio."""
    format: Literal["wav", "mp3"]


class InputAudioPart(_Request, tag_field="type", tag="input_audio"):
    """An audio part of a user message's content."""

    input_audio: InputAudio


ContentPart = TextPart | ImagePart | InputAudioPart
"""A part of a user message's content: text, an image or audio."""


class Function(_Response):
    """The function a tool call invokes: its name and its JSON-encoded arguments."""

    name: str = ""
    arguments: str = ""


class CustomCall(_Response):
    """The custom tool a call invokes: its name and its free-form input (any text, not JSON)."""

    name: str = ""
    input: str = ""


class ToolCall(_Response):
    """A tool call of an answer: ``type`` is ``"function"`` (see ``function``) or
    ``"custom"`` (OpenAI's custom tools: see ``custom``)."""

    id: str = ""
    type: str = "function"
    function: Function = msgspec.field(default_factory=Function)
    """The function called and its JSON arguments; left empty by a custom call."""
    extra_content: dict[str, Any] | UnsetType = UNSET
    """Provider data that must go back with the call unchanged: Gemini 3 puts its
    ``{"google": {"thought_signature": ...}}`` here and answers 400 to a conversation whose
    tool calls lost it. Kept from the response (streamed or not) and sent again when this
    call is part of an ``AssistantMessage``; ``UNSET`` (and not sent) when there is none."""
    custom: CustomCall | UnsetType = UNSET
    """A custom call's tool name and raw input; ``UNSET`` (and not sent) for a function call."""

    def __post_init__(self) -> None:
        # A call that carries a custom part and no function is a custom call, whatever
        # the (missing, hence defaulted) type says.
        if self.type == "function" and self.custom is not UNSET and not self.function.name:
            self.type = "custom"


class SystemMessage(_Request, tag_field="role", tag="system"):
    """Instructions for the model, at the start of the conversation."""

    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class DeveloperMessage(_Request, tag_field="role", tag="developer"):
    """Instructions for the model from the developer (``system`` on older models: see
    ``compat``)."""

    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class UserMessage(_Request, tag_field="role", tag="user"):
    """What the user says: text, or parts of text, images and audio."""

    content: str | list[ContentPart]
    name: str | UnsetType = UNSET


class CustomToolCallParam(_Request, tag_field="type", tag="custom"):
    """A custom tool call as it goes back to the API in an ``AssistantMessage``.

    ``AssistantMessage`` turns a ``ToolCall`` of type ``"custom"`` into this form by itself:
    the API takes a custom call with its ``custom`` part only, no ``function``.
    """

    id: str
    custom: CustomCall


class AssistantMessage(_Request, tag_field="role", tag="assistant"):
    """A turn of the model's, sent back as part of the conversation (an answer's
    ``ChatCompletionMessage`` can be sent as is: it becomes one of these)."""

    content: str | list[TextPart] | None = None
    tool_calls: Sequence[ToolCall | CustomToolCallParam] | UnsetType = UNSET
    """The calls of this turn: a ``ToolCall`` of type ``"custom"`` is sent in the custom form."""
    refusal: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    """The reasoning behind a turn that called tools, where the provider wants it back:
    DeepSeek's thinking mode answers 400 to a tool-calling turn sent back without it."""

    def __post_init__(self) -> None:
        calls = self.tool_calls
        if calls is not UNSET and any(_is_custom(call) for call in calls):
            self.tool_calls = [_custom_param(call) if _is_custom(call) else call for call in calls]


def _is_custom(call: ToolCall | CustomToolCallParam) -> bool:
    return isinstance(call, ToolCall) and call.type == "custom"


def _custom_param(call: ToolCall | CustomToolCallParam) -> ToolCall | CustomToolCallParam:
    if isinstance(call, ToolCall):
        custom = call.custom if call.custom is not UNSET else CustomCall()
        return CustomToolCallParam(id=call.id, custom=custom)
    return call


class ToolMessage(_Request, tag_field="role", tag="tool"):
    """The result of a tool call, sent back with the call's ``tool_call_id``."""

    content: str | list[TextPart]
    tool_call_id: str


# --------------------------------------------------------------------------- request options


class FunctionDefinition(_Request):
    """A function the model may call: its name, description and JSON-schema parameters."""

    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class FunctionTool(_Request, tag_field="type", tag="function"):
    """A function tool for ``create(tools=[...])``; ``function_tool()`` builds one from a
    Python function."""

    function: FunctionDefinition


class CustomToolDefinition(_Request):
    """What a ``CustomTool`` declares: its name, what it is for, and how its input is written."""

    name: str
    description: str | UnsetType = UNSET
    format: dict[str, Any] | UnsetType = UNSET
    """How the model writes the input: ``{"type": "text"}`` (free text, the default) or
    ``{"type": "grammar", "grammar": {"syntax": "lark" | "regex", "definition": ...}}``."""


class CustomTool(_Request, tag_field="type", tag="custom"):
    """A custom tool (OpenAI): the model calls it with free-form text instead of JSON."""

    custom: CustomToolDefinition


class NamedToolChoiceFunction(_Request):
    """The function ``NamedToolChoice`` forces."""

    name: str


class NamedToolChoice(_Request, tag_field="type", tag="function"):
    """``tool_choice`` that makes the model call one named function."""

    function: NamedToolChoiceFunction


class JSONSchema(_Request):
    """The schema of a ``json_schema`` response format."""

    name: str
    schema: dict[str, Any] | UnsetType = UNSET
    description: str | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class ResponseFormatText(_Request, tag_field="type", tag="text"):
    """``response_format``: plain text (the default)."""

    pass


class ResponseFormatJSONObject(_Request, tag_field="type", tag="json_object"):
    """``response_format``: any JSON object."""

    pass


class ResponseFormatJSONSchema(_Request, tag_field="type", tag="json_schema"):
    """``response_format``: JSON that fits a schema (``parse()`` sends this for a type)."""

    json_schema: JSONSchema


class StreamOptions(_Request):
    """``stream_options``: ``include_usage`` asks for a last chunk carrying ``usage``."""

    include_usage: bool | UnsetType = UNSET
    include_obfuscation: bool | UnsetType = UNSET


# --------------------------------------------------------------------------- responses


class PromptTokensDetails(_Response):
    """A breakdown of ``Usage.prompt_tokens``."""

    cached_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionTokensDetails(_Response):
    """A breakdown of ``Usage.completion_tokens``; ``reasoning_tokens`` where the model reasons."""

    reasoning_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class Usage(_Response):
    """Tokens counted for a request, as the provider reports them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None
    cost: float | None = None
    """The gateway's own price of the request, on routes that send one (its unit, its rates)."""


class TopLogprob(_Response):
    """One of the most likely tokens at a position, with its log probability."""

    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None


class ChatCompletionTokenLogprob(_Response):
    """The log probability of one token of the answer, with the likeliest alternatives."""

    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] | None = None


class ChoiceLogprobs(_Response):
    """Log probabilities of a choice's content (or refusal), token by token."""

    content: list[ChatCompletionTokenLogprob] | None = None
    refusal: list[ChatCompletionTokenLogprob] | None = None


class ChatCompletionMessage(_Response):
    """The message of an answer's choice: content, refusal, reasoning, tool calls."""

    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    """Reasoning text, where the gateway surfaces it (DeepSeek, some Claude and Gemini routes)."""
    tool_calls: list[ToolCall] | None = None
    parsed: Any = None
    """The content decoded into the requested type, filled in by ``parse()`` only."""
    reasoning: str | None = None
    """Reasoning text under the name OpenRouter, vLLM, Groq and Cerebras routes give it."""
    reasoning_details: list[dict[str, Any]] | None = None
    """OpenRouter's structured reasoning blocks (``reasoning.text``, ``reasoning.summary``,
    ``reasoning.encrypted``), as sent."""

    @property
    def reasoning_text(self) -> str | None:
        """The reasoning text whichever name the provider gave it: ``reasoning_content``
        (DeepSeek and others), else ``reasoning`` (OpenRouter, vLLM, ...); ``None`` if neither."""
        text = self.reasoning_content
        return text if text is not None else self.reasoning

    def to_message(self) -> AssistantMessage:
        """This answer as the assistant turn of a next request: content, refusal and tool
        calls (with any provider data they carry, such as Gemini 3's thought signatures), and
        with tool calls the ``reasoning_content`` too (DeepSeek's thinking mode requires it
        back on such turns and ignores it on others). ``parsed`` is the SDK's and is not sent.
        Passing the message itself in ``messages`` does the same."""
        calls = self.tool_calls
        return AssistantMessage(
            content=self.content,
            tool_calls=calls if calls else UNSET,
            refusal=self.refusal if self.refusal is not None else UNSET,
            reasoning_content=(
                self.reasoning_content if calls and self.reasoning_content is not None else UNSET
            ),
        )


Message = (
    SystemMessage
    | DeveloperMessage
    | UserMessage
    | AssistantMessage
    | ToolMessage
    | ChatCompletionMessage
    | dict[str, Any]
)
"""A message of the conversation: one of the Structs above, or a plain dict of the same shape.
An answer's ``ChatCompletionMessage`` goes in as is, sent as its ``to_message()``."""


class Choice(_Response):
    """One answer of a completion (``n`` asks for several)."""

    index: int = 0
    message: ChatCompletionMessage = msgspec.field(default_factory=ChatCompletionMessage)
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None
    content_filter_results: dict[str, Any] | None = None
    """Azure OpenAI's content-filter verdicts on this choice, as sent."""


class Adjustment(Struct, frozen=True, kw_only=True):
    """One change ``compat="adapt"`` made to a request so its model family accepts it.

    ``str()`` gives ``message``, ready to log.
    """

    parameter: str
    """The request parameter changed (``"messages"`` for a message role rewritten)."""
    family: str
    """The model family: ``openai-gpt``, ``openai-reasoning``, ``claude`` or ``gemini``."""
    action: str
    """``clamped``, ``trimmed``, ``dropped``, ``renamed`` or ``rewritten``."""
    before: Any
    """The value given."""
    after: Any
    """The value sent (``None`` when dropped; the same value, under a new name, when renamed)."""
    message: str

    def __str__(self) -> str:
        return self.message


_NO_HEADERS: Mapping[str, str] = MappingProxyType({})


class ChatCompletion(_Response, dict=True, gc=True):
    """A chat completion: the answer to ``create()``, or ``final()`` of a stream.

    Besides the fields named here, ``raw_json`` and ``extra`` reach everything the server sent;
    ``headers`` are the response's (both outside the fields, so never serialised).
    """

    _sdk_fields: ClassVar[frozenset[str]] = frozenset({"request_id", "adjustments"})

    id: str = ""
    object: str = "chat.completion"
    created: int | None = None
    model: str = ""
    choices: list[Choice] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    system_fingerprint: str | None = None
    service_tier: str | None = None
    request_id: str | None = None
    """The request id the server gave (from headers, or from an error message suffix)."""
    adjustments: list[Adjustment] | None = None
    """With ``compat="adapt"``, the changes made to the request (else ``None``); not from JSON."""
    prompt_filter_results: list[dict[str, Any]] | None = None
    """Azure OpenAI's content-filter verdicts on the prompt, as sent."""

    if TYPE_CHECKING:
        _raw_json: bytes | str | None = None
    else:
        _raw_json = None  # set on the instance by the decoding code; not a field

    @property
    def raw_json(self) -> bytes | None:
        """The JSON the server sent for this answer, kept by reference (``None`` for a
        completion assembled from a stream, or built in code): every field, named or not."""
        return _as_bytes(self._raw_json)

    @property
    def extra(self) -> dict[str, Any]:
        """The fields of the server's JSON that these types do not name, at any depth and in
        their place, decoded from ``raw_json`` on each access (``{}`` if none): for example
        ``{"provider": "OpenAI", "usage": {"cost": 0.0002}, "choices": [{"native_finish_reason":
        "stop"}]}``. A list keeps one entry per element (``{}`` where an element has none)."""
        return extra_fields(self._raw_json, type(self))

    @property
    def _request_id(self) -> str | None:
        """``request_id`` under the openai package's name for it (public there too)."""
        return self.request_id

    @property
    def headers(self) -> Mapping[str, str]:
        """The HTTP response headers of the answer (rate limits, processing time, ...), names
        matched without regard to case. Not a field: never serialised. Empty for a completion
        that was not read from a response (built, decoded by hand or assembled from a stream,
        whose ``headers`` are the stream's)."""
        headers: Mapping[str, str] = vars(self).get("_headers", _NO_HEADERS)
        return headers


ParsedT = TypeVar("ParsedT")


class ParsedChatCompletionMessage(ChatCompletionMessage, Generic[ParsedT]):
    """A ``ChatCompletionMessage`` from ``parse()``: ``parsed`` is the requested type."""

    parsed: ParsedT | None = None
    """The content decoded into the requested type; ``None`` on a refusal or tool calls only."""


class ParsedChoice(Choice, Generic[ParsedT]):
    """A ``Choice`` from ``parse()``."""

    # A narrower message type than Choice's, which type checkers flag as an unsafe override of
    # a mutable field; a parsed choice is only ever read, so it is safe here.
    message: ParsedChatCompletionMessage[ParsedT] = msgspec.field(  # pyright: ignore[reportIncompatibleVariableOverride, reportAssignmentType]
        default_factory=ParsedChatCompletionMessage
    )


class ParsedChatCompletion(ChatCompletion, Generic[ParsedT]):
    """What ``parse()`` returns: a ``ChatCompletion`` whose messages carry ``parsed``."""

    # list is invariant, so a list of ParsedChoice is not a list[Choice] to mypy; reading
    # it as one is safe, and this keeps a parsed completion usable as a ChatCompletion.
    choices: list[ParsedChoice[ParsedT]] = msgspec.field(  # type: ignore[assignment]  # pyright: ignore[reportIncompatibleVariableOverride]
        default_factory=list
    )


# --------------------------------------------------------------------------- stream chunks


class ChoiceDeltaToolCallFunction(_Response):
    """A fragment of a streamed tool call's function: its name, a piece of its arguments."""

    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCallCustom(_Response):
    """A fragment of a custom tool call: its name (once) and a piece of its input."""

    name: str | None = None
    input: str | None = None


class ChoiceDeltaToolCall(_Response):
    """A fragment of a streamed tool call."""

    index: int | None = None
    """Position of the call; some providers (Gemini routes) leave it out and send whole calls."""
    id: str | None = None
    type: str | None = None
    function: ChoiceDeltaToolCallFunction | None = None
    extra_content: dict[str, Any] | None = None
    """Provider data for the call (Gemini 3's thought signature); see ``ToolCall``."""
    custom: ChoiceDeltaToolCallCustom | None = None
    """A fragment of a custom tool call (``type == "custom"``)."""


class ChoiceDelta(_Response):
    """What a chunk adds to a choice's message."""

    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None
    reasoning: str | None = None
    """A piece of reasoning text under the name OpenRouter, vLLM, Groq and Cerebras give it."""
    reasoning_details: list[dict[str, Any]] | None = None
    """OpenRouter's structured reasoning blocks in this delta, as sent."""

    @property
    def reasoning_text(self) -> str | None:
        """This delta's reasoning text, ``reasoning_content`` or else ``reasoning``."""
        text = self.reasoning_content
        return text if text is not None else self.reasoning


class ChunkChoice(_Response):
    """A choice's part of a stream chunk."""

    index: int = 0
    delta: ChoiceDelta = msgspec.field(default_factory=ChoiceDelta)
    finish_reason: str | None = None
    """Why the choice ended, as the provider said it, in the choice's last chunk. ``"error"``
    (OpenRouter) ends the stream with a ``StreamError``."""
    logprobs: ChoiceLogprobs | None = None
    content_filter_results: dict[str, Any] | None = None
    """Azure OpenAI's content-filter verdicts on this chunk's text, as sent."""


class ChatCompletionChunk(_Response):
    """One chunk of a streamed completion.

    Besides the fields named here, ``raw_json`` and ``extra`` reach everything the server
    sent, for the chunks of a stream whose ``keep_raw_json`` is on (off by default: keeping
    each chunk's bytes costs a little on every chunk).
    """

    id: str = ""
    object: str = "chat.completion.chunk"
    created: int | None = None
    model: str = ""
    choices: list[ChunkChoice] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    """Set on the last chunk (``choices == []``) when ``stream_options.include_usage`` is on."""
    system_fingerprint: str | None = None
    service_tier: str | None = None
    error: ErrorObject | str | None = None
    """An error the server reported inside the stream; the stream raises ``StreamError`` on
    such a chunk, so iterating code never sees it set."""
    prompt_filter_results: list[dict[str, Any]] | None = None
    """Azure OpenAI's content-filter verdicts on the prompt (in its first chunk), as sent."""

    if TYPE_CHECKING:
        _raw_json: bytes | str | None = None
    else:
        _raw_json = None  # set on the instance by the stream (keep_raw_json); not a field

    @property
    def raw_json(self) -> bytes | None:
        """This chunk's JSON as the server sent it (the event's data), kept by reference when
        the stream's ``keep_raw_json`` is on; else ``None``."""
        return _as_bytes(self._raw_json)

    @property
    def extra(self) -> dict[str, Any]:
        """The fields of this chunk's JSON that these types do not name, at any depth and in
        their place, decoded from ``raw_json`` on each access (``{}`` if none, or if the stream
        did not keep the JSON); see ``ChatCompletion.extra``."""
        return extra_fields(self._raw_json, type(self))


class _ChunkWithJSON(ChatCompletionChunk, dict=True, gc=True):
    """What a stream with ``keep_raw_json`` yields: a chunk able to hold its JSON. (Plain chunks
    cannot: an instance dict on every chunk would cost each stream ~20% more CPU per chunk.)"""

    def __repr__(self) -> str:
        return "ChatCompletionChunk" + super().__repr__()[len("_ChunkWithJSON") :]


_WITH_JSON: dict[type[Any], type[Any]] = {ChatCompletionChunk: _ChunkWithJSON}


_T = TypeVar("_T")


def _with_json(tp: type[_T]) -> type[_T]:
    """The subclass of the chunk type ``tp`` whose instances can hold their JSON."""
    found = _WITH_JSON.get(tp)
    if found is None:
        found = _WITH_JSON[tp] = type(f"{tp.__name__}WithJSON", (tp,), {}, dict=True, gc=True)
    return cast("type[_T]", found)


def _as_bytes(raw: bytes | str | None) -> bytes | None:
    return raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else raw


# --------------------------------------------------------------------------- errors and models


class ErrorObject(_Response):
    """The ``{"error": {...}}`` member of an error body or of an error event in a stream."""

    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class Model(_Response):
    """A model the gateway serves."""

    id: str = ""
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None


class ModelList(_Response):
    """The answer of ``GET /models``: iterate it for the ``Model`` objects (or read ``data``)."""

    object: str = "list"
    data: list[Model] = msgspec.field(default_factory=list)

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
