"""Custom tools (OpenAI's ``"type": "custom"``): declared, called with free text, sent back."""

from __future__ import annotations

from typing import Any

import msgspec
import pytest

from aiocometapi import AsyncCometAPI, custom_tool, function_tool
from aiocometapi.testing import MockServer
from aiocometapi.types import (
    AssistantMessage,
    ChatCompletionMessage,
    CustomCall,
    CustomTool,
    CustomToolCallParam,
    CustomToolDefinition,
    Function,
    ToolCall,
)
from conftest import user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"
GRAMMAR = {"type": "grammar", "grammar": {"syntax": "regex", "definition": r"\d+ [+*] \d+"}}


def calculate(expression: str) -> str:
    """Work out an arithmetic expression such as `2 * 21`."""
    left, op, right = expression.split()
    value = int(left) * int(right) if op == "*" else int(left) + int(right)
    return str(value)


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def answer(message: dict[str, Any], finish: str = "stop") -> dict[str, Any]:
    return {
        "id": "chatcmpl-c", "object": "chat.completion", "created": 1, "model": MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", **message},
                     "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }  # fmt: skip


CUSTOM_CALL = {"id": "call_x", "type": "custom", "custom": {"name": "calculate", "input": "6 * 7"}}


def test_custom_tool_definition() -> None:
    """custom_tool() describes a one-argument function as a custom tool, format included."""
    tool = custom_tool(calculate, format=GRAMMAR)
    assert tool.kind == "custom" and tool.name == "calculate"
    assert msgspec.to_builtins(tool.definition) == {
        "type": "custom",
        "custom": {
            "name": "calculate",
            "description": "Work out an arithmetic expression such as `2 * 21`.",
            "format": GRAMMAR,
        },
    }
    assert calculate("1 + 2") == tool("1 + 2") == "3"
    assert repr(tool) == "Tool(name='calculate', kind='custom')"


def test_custom_tool_as_a_decorator() -> None:
    """@custom_tool(...) with options gives a Tool that still calls the function."""

    @custom_tool(name="shout", description="Shout it.")
    async def loud(text: str) -> str:
        return text.upper()

    assert loud.kind == "custom" and loud.name == "shout"
    assert msgspec.to_builtins(loud.definition) == {
        "type": "custom",
        "custom": {"name": "shout", "description": "Shout it."},
    }


@pytest.mark.parametrize(
    "function",
    [lambda: "none", lambda a, b: a + b, lambda *, text: text],
    ids=["no-argument", "two-arguments", "keyword-only"],
)
def test_custom_tool_takes_one_argument(function: Any) -> None:
    """A custom tool's function must take the text as its one positional argument."""
    with pytest.raises(TypeError, match="exactly one argument"):
        custom_tool(function, name="f")


def test_custom_call_goes_back_in_custom_form() -> None:
    """A custom call sent back in an assistant turn has its custom part and no function."""
    message = ChatCompletionMessage(tool_calls=[
        ToolCall(id="call_x", type="custom", custom=CustomCall(name="calculate", input="6 * 7")),
        ToolCall(id="call_y", function=Function(name="add", arguments="{}")),
    ])  # fmt: skip
    sent = msgspec.to_builtins(message.to_message())
    assert sent["tool_calls"] == [
        {"type": "custom", "id": "call_x", "custom": {"name": "calculate", "input": "6 * 7"}},
        {"id": "call_y", "type": "function", "function": {"name": "add", "arguments": "{}"}},
    ]
    built = AssistantMessage(tool_calls=[ToolCall(id="c", type="custom", custom=CustomCall())])
    assert built.tool_calls == [CustomToolCallParam(id="c", custom=CustomCall())]


def test_answer_with_custom_call_decodes() -> None:
    """A custom call in a whole answer is typed; without `type` it is still custom."""
    decoder = msgspec.json.Decoder(ChatCompletionMessage)
    typed = decoder.decode(msgspec.json.encode({"tool_calls": [CUSTOM_CALL]}))
    untyped = decoder.decode(
        b'{"tool_calls": [{"id": "c", "custom": {"name": "calculate", "input": "1 + 1"}}]}'
    )
    for message, expression in ((typed, "6 * 7"), (untyped, "1 + 1")):
        call = (message.tool_calls or [])[0]
        assert call.type == "custom"
        assert call.custom == CustomCall(name="calculate", input=expression)


async def test_create_sends_custom_tools(client: AsyncCometAPI, server: MockServer) -> None:
    """create(tools=[CustomTool(...)]) sends the custom tool as OpenAI documents it."""
    server.reply_json(answer({"content": "ok"}))
    tool = CustomTool(custom=CustomToolDefinition(name="calculate", format={"type": "text"}))
    await client.chat.completions.create(model=MODEL, messages=[user("x")], tools=[tool])
    assert server.requests[-1].body["tools"] == [
        {"type": "custom", "custom": {"name": "calculate", "format": {"type": "text"}}}
    ]


@pytest.mark.parametrize("stream", [False, True])
async def test_run_tools_routes_custom_calls(
    client: AsyncCometAPI, server: MockServer, stream: bool
) -> None:
    """run_tools() gives a custom call's raw text to its custom tool, a function call's JSON
    to its function tool, and sends both calls back in their own forms."""
    calls = [
        CUSTOM_CALL,
        {
            "id": "call_y",
            "type": "function",
            "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'},
        },
    ]
    if stream:
        server.reply_stream([
            {"choices": [{"index": 0, "delta": {"role": "assistant", "tool_calls": [
                {"index": i, **call} for i, call in enumerate(calls)]}}]},
            {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        ])  # fmt: skip
        server.reply_stream([{"choices": [{"index": 0, "delta": {"content": "42 and 3"},
                                           "finish_reason": "stop"}]}])  # fmt: skip
        events = [
            e
            async for e in client.chat.completions.run_tools_stream(
                model=MODEL, messages=[user("Work it out")], tools=[custom_tool(calculate), add]
            )
        ]
        run = events[-1].run  # type: ignore[union-attr]
    else:
        server.reply_json(answer({"content": None, "tool_calls": calls}, "tool_calls"))
        server.reply_json(answer({"content": "42 and 3"}))
        run = await client.chat.completions.run_tools(
            model=MODEL,
            messages=[user("Work it out")],
            tools=[custom_tool(calculate), function_tool(add)],
        )
    assert run.completion.choices[0].message.content == "42 and 3"
    first, second = (request.body for request in server.requests[-2:])
    assert [t["type"] for t in first["tools"]] == ["custom", "function"]
    assert second["messages"][1:] == [
        {"role": "assistant", "tool_calls": [
            {"type": "custom", "id": "call_x",
             "custom": {"name": "calculate", "input": "6 * 7"}},
            {"id": "call_y", "type": "function",
             "function": {"name": "add", "arguments": '{"a": 1, "b": 2}'}},
        ]},
        {"role": "tool", "content": "42", "tool_call_id": "call_x"},
        {"role": "tool", "content": "3", "tool_call_id": "call_y"},
    ]  # fmt: skip


async def test_custom_call_to_an_unknown_tool(client: AsyncCometAPI, server: MockServer) -> None:
    """A custom call naming no tool gets an error result back, as a function call would."""
    server.reply_json(answer({"tool_calls": [{**CUSTOM_CALL, "custom": {
        "name": "nope", "input": "x"}}]}, "tool_calls"))  # fmt: skip
    server.reply_json(answer({"content": "sorry"}))
    run = await client.chat.completions.run_tools(
        model=MODEL, messages=[user("x")], tools=[custom_tool(calculate)]
    )
    assert run.turns == 2
    tool_message = server.requests[-1].body["messages"][-1]
    assert tool_message["role"] == "tool" and "no tool named 'nope'" in tool_message["content"]
