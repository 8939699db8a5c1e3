"""run_tools: call the model, run the tools it asks for, send the results back, and repeat."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import anyio
import msgspec

from ._exceptions import MaxTurnsExceededError, ToolCallError
from ._streaming import AsyncStream
from ._tools import Tool, function_tool
from .types import (
    UNSET,
    ChatCompletion,
    ChatCompletionChunk,
    Message,
    ToolCall,
    ToolMessage,
)

__all__ = [
    "RunCompleted",
    "TextDelta",
    "ToolCallCompleted",
    "ToolCallRequested",
    "ToolRun",
    "ToolRunEvent",
    "run_tools",
    "run_tools_stream",
]

Create = Callable[..., Awaitable[Any]]
ToolErrors = Literal["send", "raise"]
_encode = msgspec.json.Encoder().encode


@dataclass(slots=True)
class ToolRun:
    """What ``run_tools()`` did: the whole conversation and every turn's completion."""

    messages: list[Message]
    """The messages given, then each turn's assistant message and tool results, in order,
    the final answer included: ready to go on with (``messages=run.messages + [...]``)."""
    completions: list[ChatCompletion]
    """One per turn (model call), in order."""

    @property
    def completion(self) -> ChatCompletion:
        """The last completion: the model's answer once it stopped calling tools."""
        return self.completions[-1]

    @property
    def turns(self) -> int:
        """How many times the model was called."""
        return len(self.completions)


@dataclass(frozen=True, slots=True)
class TextDelta:
    """``run_tools_stream()``: a piece of the content of choice 0, as it arrives."""

    turn: int
    """The model call it belongs to, from 1."""
    text: str
    """The piece of content."""


@dataclass(frozen=True, slots=True)
class ToolCallRequested:
    """``run_tools_stream()``: the model asked for this call; it runs next."""

    turn: int
    """The model call that asked for it, from 1."""
    call: ToolCall
    """The call, assembled from its fragments."""


@dataclass(frozen=True, slots=True)
class ToolCallCompleted:
    """``run_tools_stream()``: a call ran; ``content`` is what the model gets back."""

    turn: int
    """The model call that asked for it, from 1."""
    call: ToolCall
    """The call that ran."""
    content: str
    """The result sent back to the model (``"Error: ..."`` when the tool failed)."""
    error: Exception | None
    """What the tool raised (its text is in ``content``), or ``None``."""


@dataclass(frozen=True, slots=True)
class RunCompleted:
    """``run_tools_stream()``: the model answered without tool calls; the last event."""

    run: ToolRun
    """The whole run, as ``run_tools()`` returns it."""


ToolRunEvent = TextDelta | ToolCallRequested | ToolCallCompleted | RunCompleted
"""What ``run_tools_stream()`` yields."""


class _Loop:
    """The state of one tool-running conversation, shared by the plain and streamed loops."""

    def __init__(
        self,
        params: Mapping[str, Any],
        tools: Sequence[Tool[..., Any] | Callable[..., Any]],
        max_turns: int,
        tool_errors: ToolErrors,
    ) -> None:
        if max_turns < 1:
            raise ValueError(f"max_turns must be at least 1, got {max_turns!r}")
        if tool_errors not in ("send", "raise"):
            raise ValueError(f"tool_errors must be 'send' or 'raise', got {tool_errors!r}")
        self.tools: dict[str, Tool[..., Any]] = {}
        for item in tools:
            tool = item if isinstance(item, Tool) else function_tool(item)
            if tool.name in self.tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        if not self.tools:
            raise ValueError("run_tools() needs at least one tool")
        self.max_turns = max_turns
        self.tool_errors = tool_errors
        self.request = {key: value for key, value in params.items() if key != "messages"}
        self.request["tools"] = [tool.definition for tool in self.tools.values()]
        self.run = ToolRun(list(params.get("messages") or ()), [])

    def record(self, completion: ChatCompletion, turn: int) -> list[ToolCall]:
        """Keep a turn's completion; return the calls of choice 0 (none: the run is over)."""
        self.run.completions.append(completion)
        if not completion.choices:
            return []
        message = completion.choices[0].message
        calls = [
            call if call.id else msgspec.structs.replace(call, id=f"call_{turn}_{i}")
            for i, call in enumerate(message.tool_calls or ())
        ]
        self.run.messages.append(msgspec.structs.replace(message, tool_calls=calls).to_message())
        # Tool calls decide, not finish_reason: Gemini routes say "stop" after tool calls.
        return calls

    async def run_calls(self, calls: list[ToolCall]) -> list[tuple[str, Exception | None]]:
        """Run the calls concurrently; their results go into the conversation in call order."""
        outcomes: list[tuple[str, Exception | None]] = [("", None)] * len(calls)

        async def one(index: int, call: ToolCall) -> None:
            outcomes[index] = outcome = await self._call(call)
            if outcome[1] is not None and self.tool_errors == "raise":
                group.cancel_scope.cancel()

        async with anyio.create_task_group() as group:
            for index, call in enumerate(calls):
                group.start_soon(one, index, call)
        if self.tool_errors == "raise":
            for _, error in outcomes:
                if error is not None:
                    raise error
        self.run.messages.extend(
            ToolMessage(content=content, tool_call_id=call.id)
            for call, (content, _) in zip(calls, outcomes, strict=True)
        )
        return outcomes

    async def _call(self, call: ToolCall) -> tuple[str, Exception | None]:
        if call.type == "custom" and call.custom is not UNSET:
            # A custom tool gets the text as is; a function tool called this way, as JSON.
            name, arguments = call.custom.name, call.custom.input
        else:
            name, arguments = call.function.name, call.function.arguments
        try:
            tool = self.tools.get(name)
            if tool is None:
                raise ToolCallError(
                    f"There is no tool named {name!r}; the tools are: {', '.join(self.tools)}.",
                    tool_name=name,
                    arguments=arguments,
                )
            result = await tool.call(arguments)
            return (result if isinstance(result, str) else _encode(result).decode()), None
        except Exception as exc:
            return f"Error: {type(exc).__name__}: {exc}", exc

    def exceeded(self) -> MaxTurnsExceededError:
        return MaxTurnsExceededError(
            f"The model still called tools in turn {self.max_turns} (max_turns); `messages` "
            "holds the conversation, the last tool results included, to go on with.",
            messages=self.run.messages,
            completions=self.run.completions,
        )


async def run_tools(
    create: Create,
    params: Mapping[str, Any],
    *,
    tools: Sequence[Tool[..., Any] | Callable[..., Any]],
    max_turns: int,
    tool_errors: ToolErrors,
) -> ToolRun:
    """The loop behind ``client.chat.completions.run_tools`` (see there)."""
    loop = _Loop(params, tools, max_turns, tool_errors)
    for turn in range(1, max_turns + 1):
        completion = await create(**loop.request, messages=list(loop.run.messages))
        calls = loop.record(completion, turn)
        if not calls:
            return loop.run
        await loop.run_calls(calls)
    raise loop.exceeded()


def run_tools_stream(
    create: Create,
    params: Mapping[str, Any],
    *,
    tools: Sequence[Tool[..., Any] | Callable[..., Any]],
    max_turns: int,
    tool_errors: ToolErrors,
) -> AsyncGenerator[ToolRunEvent, None]:
    """The loop behind ``client.chat.completions.run_tools_stream`` (see there)."""
    # Built here, not in the generator, so that bad arguments raise at the call.
    return _stream_turns(create, _Loop(params, tools, max_turns, tool_errors))


async def _stream_turns(create: Create, loop: _Loop) -> AsyncGenerator[ToolRunEvent, None]:
    for turn in range(1, loop.max_turns + 1):
        stream: AsyncStream[ChatCompletionChunk] = await create(
            stream=True, **loop.request, messages=list(loop.run.messages)
        )
        async with stream:
            async for chunk in stream:
                for choice in chunk.choices:
                    if choice.index == 0 and choice.delta.content:
                        yield TextDelta(turn, choice.delta.content)
            completion = await stream.final()
        calls = loop.record(completion, turn)
        if not calls:
            yield RunCompleted(loop.run)
            return
        for call in calls:
            yield ToolCallRequested(turn, call)
        # The tools run in a task group that closes before anything is yielded.
        outcomes = await loop.run_calls(calls)
        for call, (content, error) in zip(calls, outcomes, strict=True):
            yield ToolCallCompleted(turn, call, content, error)
    raise loop.exceeded()
