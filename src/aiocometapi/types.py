"""msgspec Structs for chat-completion requests, responses and stream chunks.

Field names mirror OpenAI's, so code written against the ``openai`` package reads the same.
Response types are tolerant: unknown fields are ignored (gateways add their own), and every
field a provider may leave out defaults to ``None``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping
from types import MappingProxyType
from typing import Any, ClassVar, Generic, Literal, TypeVar

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
    "ChoiceDeltaToolCallFunction",
    "ChoiceLogprobs",
    "ChunkChoice",
    "CompletionTokensDetails",
    "ContentPart",
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
    msgspec does not record which members the JSON held: a field whose default is ``None``
    counts as not sent when it is ``None`` (a ``null`` from the server reads the same), and
    every other field counts as sent. Fields the SDK fills in (``request_id``,
    ``adjustments``) are not part of the output.
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
    text: str


class ImageURL(_Request):
    url: str
    detail: Literal["auto", "low", "high"] | UnsetType = UNSET


class ImagePart(_Request, tag_field="type", tag="image_url"):
    image_url: ImageURL


class InputAudio(_Request):
    data: str
    """Base64-encoded audio."""
    format: Literal["wav", "mp3"]


class InputAudioPart(_Request, tag_field="type", tag="input_audio"):
    input_audio: InputAudio


ContentPart = TextPart | ImagePart | InputAudioPart


class Function(_Response):
    """The function a tool call invokes: its name and its JSON-encoded arguments."""

    name: str = ""
    arguments: str = ""


class ToolCall(_Response):
    id: str = ""
    type: str = "function"
    function: Function = msgspec.field(default_factory=Function)
    extra_content: dict[str, Any] | UnsetType = UNSET
    """Provider data that must go back with the call unchanged: Gemini 3 puts its
    ``{"google": {"thought_signature": ...}}`` here and answers 400 to a conversation whose
    tool calls lost it. Kept from the response (streamed or not) and sent again when this
    call is part of an ``AssistantMessage``; ``UNSET`` (and not sent) when there is none."""


class SystemMessage(_Request, tag_field="role", tag="system"):
    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class DeveloperMessage(_Request, tag_field="role", tag="developer"):
    content: str | list[TextPart]
    name: str | UnsetType = UNSET


class UserMessage(_Request, tag_field="role", tag="user"):
    content: str | list[ContentPart]
    name: str | UnsetType = UNSET


class AssistantMessage(_Request, tag_field="role", tag="assistant"):
    content: str | list[TextPart] | None = None
    tool_calls: list[ToolCall] | UnsetType = UNSET
    refusal: str | UnsetType = UNSET
    name: str | UnsetType = UNSET
    reasoning_content: str | UnsetType = UNSET
    """The reasoning behind a turn that called tools, where the provider wants it back:
    DeepSeek's thinking mode answers 400 to a tool-calling turn sent back without it."""


class ToolMessage(_Request, tag_field="role", tag="tool"):
    content: str | list[TextPart]
    tool_call_id: str




# --------------------------------------------------------------------------- request options


class FunctionDefinition(_Request):
    name: str
    description: str | UnsetType = UNSET
    parameters: dict[str, Any] | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class FunctionTool(_Request, tag_field="type", tag="function"):
    function: FunctionDefinition


class NamedToolChoiceFunction(_Request):
    name: str


class NamedToolChoice(_Request, tag_field="type", tag="function"):
    function: NamedToolChoiceFunction


class JSONSchema(_Request):
    name: str
    schema: dict[str, Any] | UnsetType = UNSET
    description: str | UnsetType = UNSET
    strict: bool | UnsetType = UNSET


class ResponseFormatText(_Request, tag_field="type", tag="text"):
    pass


class ResponseFormatJSONObject(_Request, tag_field="type", tag="json_object"):
    pass


class ResponseFormatJSONSchema(_Request, tag_field="type", tag="json_schema"):
    json_schema: JSONSchema


class StreamOptions(_Request):
    include_usage: bool | UnsetType = UNSET
    include_obfuscation: bool | UnsetType = UNSET


# --------------------------------------------------------------------------- responses


class PromptTokensDetails(_Response):
    cached_tokens: int | None = None
    audio_tokens: int | None = None


class CompletionTokensDetails(_Response):
    reasoning_tokens: int | None = None
    audio_tokens: int | None = None
    accepted_prediction_tokens: int | None = None
    rejected_prediction_tokens: int | None = None


class Usage(_Response):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class TopLogprob(_Response):
    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None


class ChatCompletionTokenLogprob(_Response):
    token: str = ""
    logprob: float = 0.0
    bytes: list[int] | None = None
    top_logprobs: list[TopLogprob] | None = None


class ChoiceLogprobs(_Response):
    content: list[ChatCompletionTokenLogprob] | None = None
    refusal: list[ChatCompletionTokenLogprob] | None = None


class ChatCompletionMessage(_Response):
    role: str = "assistant"
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    """Reasoning text, where the gateway surfaces it (DeepSeek, some Claude and Gemini routes)."""
    tool_calls: list[ToolCall] | None = None
    parsed: Any = None
    """The content decoded into the requested type, filled in by ``parse()`` only."""

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
    index: int = 0
    message: ChatCompletionMessage = msgspec.field(default_factory=ChatCompletionMessage)
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


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


# dict=True lets the response headers ride along outside the fields (so never serialised);
# msgspec allows that only with gc=True, which costs nothing here: a completion is short-lived.
class ChatCompletion(_Response, gc=True, dict=True):
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

    def _keep_headers(self, headers: Mapping[str, str]) -> None:
        vars(self)["_headers"] = headers


ParsedT = TypeVar("ParsedT")


class ParsedChatCompletionMessage(ChatCompletionMessage, Generic[ParsedT]):
    parsed: ParsedT | None = None
    """The content decoded into the requested type; ``None`` on a refusal or tool calls only."""


class ParsedChoice(Choice, Generic[ParsedT]):
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
    name: str | None = None
    arguments: str | None = None


class ChoiceDeltaToolCall(_Response):
    index: int | None = None
    """Position of the call; some providers (Gemini routes) leave it out and send whole calls."""
    id: str | None = None
    type: str | None = None
    function: ChoiceDeltaToolCallFunction | None = None
    extra_content: dict[str, Any] | None = None
    """Provider data for the call (Gemini 3's thought signature); see ``ToolCall``."""


class ChoiceDelta(_Response):
    role: str | None = None
    content: str | None = None
    refusal: str | None = None
    reasoning_content: str | None = None
    tool_calls: list[ChoiceDeltaToolCall] | None = None


class ChunkChoice(_Response):
    index: int = 0
    delta: ChoiceDelta = msgspec.field(default_factory=ChoiceDelta)
    finish_reason: str | None = None
    logprobs: ChoiceLogprobs | None = None


class ChatCompletionChunk(_Response):
    id: str = ""
    object: str = "chat.completion.chunk"
    created: int | None = None
    model: str = ""
    choices: list[ChunkChoice] = msgspec.field(default_factory=list)
    usage: Usage | None = None
    """Set on the last chunk (``choices == []``) when ``stream_options.include_usage`` is on."""
    system_fingerprint: str | None = None
    service_tier: str | None = None


# --------------------------------------------------------------------------- errors and models


class ErrorObject(_Response):
    """The ``{"error": {...}}`` member of an error body or of an error event in a stream."""

    message: str | None = None
    type: str | None = None
    code: str | int | None = None
    param: str | None = None


class Model(_Response):
    id: str = ""
    object: str = "model"
    created: int | None = None
    owned_by: str | None = None


class ModelList(_Response):
    object: str = "list"
    data: list[Model] = msgspec.field(default_factory=list)

    def __iter__(self) -> Iterator[Model]:
        return iter(self.data)

    def __len__(self) -> int:
        return len(self.data)
