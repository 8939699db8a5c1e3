"""Chunks of a streamed completion -> the ChatCompletion they add up to, in O(total size)."""

from __future__ import annotations

from typing import Any

from .types import (
    UNSET,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    ChatCompletionTokenLogprob,
    Choice,
    ChoiceDelta,
    ChoiceDeltaToolCall,
    ChoiceLogprobs,
    CustomCall,
    Function,
    ToolCall,
    Usage,
)

__all__ = ["FOLD_EVERY", "Accumulator"]

_JOINED = frozenset({"text", "summary", "data"})
"""The keys of a reasoning block whose pieces are joined (the others are set once)."""

FOLD_EVERY = 64
"""Chunks are kept as they come and folded in batches of this size: appending costs next to
nothing on the per-chunk path, and folding every so often keeps memory bounded."""


class _ToolCallParts:
    __slots__ = ("arguments", "custom_input", "custom_name", "extra_content", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []
        self.extra_content: dict[str, Any] | None = None
        self.custom_name: str | None = None
        self.custom_input: list[str] | None = None
        """``None`` until a custom fragment arrives: a call is custom by its fragments too."""

    def build(self) -> ToolCall:
        custom = self.custom_input
        kind = self.type or ("custom" if custom is not None else "function")
        return ToolCall(
            id=self.id or "",
            type=kind,
            function=Function(name=self.name or "", arguments="".join(self.arguments)),
            extra_content=UNSET if self.extra_content is None else self.extra_content,
            custom=(
                UNSET
                if custom is None
                else CustomCall(name=self.custom_name or "", input="".join(custom))
            ),
        )


class _ChoiceParts:
    __slots__ = (
        "content",
        "finish_reason",
        "last_index",
        "logprobs",
        "reasoning",
        "reasoning_details",
        "reasoning_other",
        "refusal",
        "refusal_logprobs",
        "role",
        "tool_call_ids",
        "tool_calls",
        "top_index",
    )

    def __init__(self) -> None:
        self.role: str | None = None
        self.content: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.reasoning_other: list[str] = []
        """Reasoning text sent as ``reasoning`` (OpenRouter, vLLM), kept apart from
        ``reasoning_content`` as the message has both fields."""
        self.reasoning_details: list[dict[str, Any]] | None = None
        self.tool_calls: dict[int, _ToolCallParts] = {}
        self.tool_call_ids: dict[str, int] = {}
        self.top_index = -1
        self.last_index = 0
        self.finish_reason: str | None = None
        self.logprobs: list[ChatCompletionTokenLogprob] | None = None
        self.refusal_logprobs: list[ChatCompletionTokenLogprob] | None = None

    def add_rare(self, delta: ChoiceDelta) -> None:
        """The parts of a delta other than content, which most deltas do not carry."""
        if delta.role and self.role is None:
            self.role = delta.role
        if delta.reasoning_content:
            self.reasoning.append(delta.reasoning_content)
        if delta.reasoning:
            self.reasoning_other.append(delta.reasoning)
        if delta.reasoning_details:
            self.add_reasoning_details(delta.reasoning_details)
        if delta.refusal:
            self.refusal.append(delta.refusal)
        if delta.tool_calls:
            for call in delta.tool_calls:
                self.add_tool_call(call)

    def add_reasoning_details(self, details: list[dict[str, Any]]) -> None:
        """OpenRouter streams each reasoning block in pieces that share its ``index``: the
        pieces' text is joined, their other keys are kept from the first piece that has them."""
        merged = self.reasoning_details
        if merged is None:
            merged = self.reasoning_details = []
        for detail in details:
            index = detail.get("index")
            target = None
            if index is not None:
                for known in reversed(merged):
                    if known.get("index") == index:
                        target = known
                        break
            if target is None:
                merged.append(dict(detail))
                continue
            for key, value in detail.items():
                if key in _JOINED and isinstance(value, str):
                    before = target.get(key)
                    target[key] = before + value if isinstance(before, str) else value
                elif target.get(key) is None:
                    target[key] = value

    def add_logprobs(self, logprobs: ChoiceLogprobs) -> None:
        if logprobs.content is not None:
            if self.logprobs is None:
                self.logprobs = []
            self.logprobs.extend(logprobs.content)
        if logprobs.refusal is not None:
            if self.refusal_logprobs is None:
                self.refusal_logprobs = []
            self.refusal_logprobs.extend(logprobs.refusal)

    def add_tool_call(self, delta: ChoiceDeltaToolCall) -> None:
        calls = self.tool_calls
        index = delta.index
        if index is None:
            # Providers that omit the index (Gemini routes) send each call whole; a fragment
            # that repeats a known id, or carries no id at all, continues an earlier call.
            index = self._index_of(delta.id)
        parts = calls.get(index)
        if parts is None:
            parts = calls[index] = _ToolCallParts()
            self.top_index = max(self.top_index, index)
        self.last_index = index
        # id, type and name are set once: some providers repeat them in every fragment.
        if delta.id and parts.id is None:
            parts.id = delta.id
            self.tool_call_ids.setdefault(delta.id, index)
        if delta.type and parts.type is None:
            parts.type = delta.type
        if delta.extra_content is not None:
            # Gemini 3's thought signature: kept whole, to be sent back with the call.
            if parts.extra_content is None:
                parts.extra_content = delta.extra_content
            else:
                parts.extra_content = {**parts.extra_content, **delta.extra_content}
        function = delta.function
        if function is not None:
            if function.name and parts.name is None:
                parts.name = function.name
            if function.arguments:
                parts.arguments.append(function.arguments)
        custom = delta.custom
        if custom is not None:
            if parts.custom_input is None:
                parts.custom_input = []
            if custom.name and parts.custom_name is None:
                parts.custom_name = custom.name
            if custom.input:
                parts.custom_input.append(custom.input)

    def _index_of(self, call_id: str | None) -> int:
        if call_id:
            known = self.tool_call_ids.get(call_id)
            return self.top_index + 1 if known is None else known
        return self.last_index

    def build(self, index: int) -> Choice:
        content = "".join(self.content)
        refusal = "".join(self.refusal)
        reasoning = "".join(self.reasoning)
        reasoning_other = "".join(self.reasoning_other)
        tool_calls = [self.tool_calls[i].build() for i in sorted(self.tool_calls)]
        logprobs = None
        if self.logprobs is not None or self.refusal_logprobs is not None:
            logprobs = ChoiceLogprobs(content=self.logprobs, refusal=self.refusal_logprobs)
        return Choice(
            index=index,
            message=ChatCompletionMessage(
                role=self.role or "assistant",
                content=content or None,
                refusal=refusal or None,
                reasoning_content=reasoning or None,
                tool_calls=tool_calls or None,
                reasoning=reasoning_other or None,
                reasoning_details=self.reasoning_details,
            ),
            finish_reason=self.finish_reason,
            logprobs=logprobs,
        )


class _Header:
    """The completion's own fields, each from the first chunk that has a real value: Azure
    routes open with a chunk whose id, model and object are empty and created is 0."""

    __slots__ = ("created", "fingerprint", "id", "model", "prompt_filter", "tier")

    def __init__(self) -> None:
        self.id = ""
        self.model = ""
        self.created: int | None = None
        self.fingerprint: str | None = None
        self.tier: str | None = None
        self.prompt_filter: list[dict[str, Any]] | None = None

    def scan(self, chunks: list[ChatCompletionChunk]) -> bool:
        """Take what is missing from ``chunks``; ``True`` when done looking: id, model and
        created found, or a batch that had the id is over (a field never sent stays empty)."""
        for chunk in chunks:
            if not self.id and chunk.id:
                self.id = chunk.id
            if not self.model and chunk.model:
                self.model = chunk.model
            if not self.created and chunk.created:
                self.created = chunk.created
            if self.fingerprint is None:
                self.fingerprint = chunk.system_fingerprint
            if self.tier is None:
                self.tier = chunk.service_tier
            if self.prompt_filter is None:
                self.prompt_filter = chunk.prompt_filter_results
            if self.id and self.model and self.created:
                return True
        return bool(self.id)


class Accumulator:
    """Collects the chunks of one stream; ``completion()`` assembles them at any point."""

    __slots__ = ("_choices", "_header", "_looking", "_usage", "chunks_seen", "pending")

    def __init__(self) -> None:
        self.pending: list[ChatCompletionChunk] = []
        """Chunks not folded yet; a caller on a hot path may append here directly and call
        ``fold()`` once it holds ``FOLD_EVERY``."""
        self._choices: dict[int, _ChoiceParts] = {}
        self._header = _Header()
        self._looking = True
        """Until the header is complete: the first chunks only, off the per-chunk path."""
        self._usage: Usage | None = None
        self.chunks_seen = 0

    def add(self, chunk: ChatCompletionChunk) -> None:
        """Take one chunk (cheap: the work is done in batches)."""
        pending = self.pending
        pending.append(chunk)
        if len(pending) >= FOLD_EVERY:
            self.fold()

    def fold(self) -> None:
        """Fold the pending chunks into the running totals."""
        pending = self.pending
        if not pending:
            return
        if self._looking and self._header.scan(pending):
            self._looking = False
        self.chunks_seen += len(pending)
        choices = self._choices
        index, parts = -1, None
        for chunk in pending:
            if chunk.usage is not None:
                self._usage = chunk.usage
            for choice in chunk.choices:
                if choice.index != index or parts is None:
                    index = choice.index
                    parts = choices.get(index)
                    if parts is None:
                        parts = choices[index] = _ChoiceParts()
                delta = choice.delta
                if delta.content:
                    parts.content.append(delta.content)
                if (
                    delta.role is not None
                    or delta.reasoning_content is not None
                    or delta.refusal is not None
                    or delta.tool_calls is not None
                    or delta.reasoning is not None
                    or delta.reasoning_details is not None
                ):
                    parts.add_rare(delta)
                if choice.finish_reason is not None:
                    parts.finish_reason = choice.finish_reason
                if choice.logprobs is not None:
                    parts.add_logprobs(choice.logprobs)
        pending.clear()

    def finish_reasons(self) -> list[str | None]:
        """Each choice's finish_reason so far, in choice order."""
        self.fold()
        return [self._choices[i].finish_reason for i in sorted(self._choices)]

    def completion(self, request_id: str | None = None) -> ChatCompletion:
        """The completion the chunks so far add up to."""
        self.fold()
        header = self._header
        return ChatCompletion(
            id=header.id,
            created=header.created,
            model=header.model,
            choices=[self._choices[i].build(i) for i in sorted(self._choices)],
            usage=self._usage,
            system_fingerprint=header.fingerprint,
            service_tier=header.tier,
            request_id=request_id,
            prompt_filter_results=header.prompt_filter,
        )
