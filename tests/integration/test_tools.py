"""Tools from functions and the tool-running loop, end to end against the local server."""

from __future__ import annotations

import json
import threading
import time
from typing import Annotated, Any, Literal

import anyio
import msgspec
import pytest

from aiocometapi import (
    AsyncCometAPI,
    BadRequestError,
    MaxTurnsExceededError,
    RunCompleted,
    TextDelta,
    Tool,
    ToolArgumentsError,
    ToolCallCompleted,
    ToolCallRequested,
    function_tool,
)
from aiocometapi.testing import MockServer, thought_signature
from aiocometapi.types import AssistantMessage, ToolMessage
from conftest import user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"


class Place(msgspec.Struct):
    """A place on Earth."""

    city: str
    country: str | None = None


async def forecast(
    place: Place,
    days: int = 1,
    unit: Literal["celsius", "fahrenheit"] = "celsius",
    note: str | None = None,
    hours: Annotated[list[int], msgspec.Meta(description="hours of the day")] = [],  # noqa: B006
) -> dict[str, Any]:
    """Forecast the weather
    for a place.

    Uses the best model available.

    Args:
        place: Where to forecast.
        days: How many days,
            today included.
        hours: Overridden by the Meta description.

    Returns:
        The forecast.
    """
    return {"city": place.city, "days": days, "unit": unit}


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def fail(reason: str) -> str:
    """Always fails."""
    raise RuntimeError(f"broken: {reason}")


def messages_of(server: MockServer, index: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = server.requests[index].body["messages"]
    return messages


# --------------------------------------------------------------------------- tools


def test_schema_from_a_signature() -> None:
    """Name, docstring and a signature with defaults, Optional, Literal and a Struct."""
    tool = function_tool(forecast)
    assert tool.name == "forecast"
    assert tool.description == "Forecast the weather for a place."
    assert tool.parameters == {
        "type": "object",
        "properties": {
            "place": {
                "title": "Place",
                "description": "Where to forecast.",
                "type": "object",
                "properties": {
                    "city": {"type": "string"},
                    "country": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
                },
                "required": ["city"],
                "additionalProperties": False,
            },
            "days": {
                "description": "How many days, today included.",
                "type": "integer",
                "default": 1,
            },
            "unit": {"enum": ["celsius", "fahrenheit"], "default": "celsius"},
            "note": {"anyOf": [{"type": "string"}, {"type": "null"}], "default": None},
            "hours": {
                "description": "hours of the day",
                "type": "array",
                "items": {"type": "integer"},
                "default": [],
            },
        },
        "required": ["place"],
        "additionalProperties": False,
    }
    assert msgspec.to_builtins(tool.definition) == {
        "type": "function",
        "function": {
            "name": "forecast",
            "description": "Forecast the weather for a place.",
            "parameters": tool.parameters,
        },
    }


def test_strict_tool_requires_every_parameter() -> None:
    """strict=True lists every parameter as required, drops defaults, and says strict."""
    tool = function_tool(forecast, strict=True)
    assert tool.parameters["required"] == ["place", "days", "unit", "note", "hours"]
    assert tool.parameters["properties"]["place"]["required"] == ["city", "country"]
    assert "default" not in json.dumps(tool.parameters)
    assert msgspec.to_builtins(tool.definition)["function"]["strict"] is True


def test_decorator_keeps_the_function_callable() -> None:
    """@function_tool (bare or with options) gives a Tool that still calls the function."""

    @function_tool
    def double(x: int) -> int:
        return 2 * x

    @function_tool(name="triple_it", description="Times three.")
    def triple(x: int) -> int:
        return 3 * x

    assert isinstance(double, Tool) and double(4) == 8
    assert (triple.name, triple.description, triple(2)) == ("triple_it", "Times three.", 6)
    assert double.description is None


def test_functions_that_cannot_be_tools() -> None:
    """*args, a missing annotation, a bad name or a dict in strict mode are refused clearly."""

    def star(*values: int) -> None: ...
    def bare(x) -> None: ...  # type: ignore[no-untyped-def]
    def mapping(scores: dict[str, int]) -> None: ...

    with pytest.raises(TypeError, match=r"\*args"):
        function_tool(star)
    with pytest.raises(TypeError, match="`x` has no type annotation"):
        function_tool(bare)
    with pytest.raises(ValueError, match="must match"):
        function_tool(lambda: None)
    with pytest.raises(TypeError, match="is a dict"):
        function_tool(mapping, strict=True)
    assert function_tool(mapping).parameters["properties"]["scores"]["type"] == "object"


def test_arguments_are_decoded_into_the_parameter_types() -> None:
    """Arguments become the declared types, defaults filled; bad ones raise with the path."""
    tool = function_tool(forecast)
    assert tool.parse_arguments('{"place": {"city": "Oslo"}, "days": 3}') == {
        "place": Place("Oslo"),
        "days": 3,
        "unit": "celsius",
        "note": None,
        "hours": [],
    }
    with pytest.raises(ToolArgumentsError) as info:
        tool.parse_arguments('{"place": {"city": "Oslo"}, "days": "three"}')
    error = info.value
    assert "Expected `int`, got `str` - at `$.days`" in str(error)
    assert "`forecast`" in str(error) and '"three"' in str(error)
    assert error.tool_name == "forecast" and error.detail.endswith("`$.days`")
    with pytest.raises(ToolArgumentsError, match="not valid JSON"):
        tool.parse_arguments('{"place": ')
    with pytest.raises(ToolArgumentsError, match=r"missing required field `place`"):
        tool.parse_arguments("")


async def test_sync_tool_runs_in_a_worker_thread() -> None:
    """A plain function is called off the event loop's thread."""
    seen: list[int] = []

    def where() -> int:
        """Which thread."""
        seen.append(threading.get_ident())
        return 1

    assert await function_tool(where).call("") == 1
    assert seen and seen[0] != threading.get_ident()


async def test_timeout_does_not_wait_for_a_stuck_sync_tool(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A timeout around the loop ends it on time, even with a plain function stuck in a thread."""
    release = threading.Event()

    def stuck(x: int) -> int:
        """Never answers in time."""
        release.wait(10)
        return x

    server.reply_turn(tool_calls=[("stuck", {"x": 1})])
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            with anyio.fail_after(0.3):
                await client.chat.completions.run_tools(
                    model=MODEL, messages=[user("go")], tools=[stuck]
                )
        assert time.monotonic() - started < 2
    finally:
        release.set()


# --------------------------------------------------------------------------- the loop


async def test_two_turns_with_two_parallel_calls(client: AsyncCometAPI, server: MockServer) -> None:
    """Both calls run at once; the next request carries both results in call order."""
    both_started = anyio.Event()
    started: list[str] = []

    async def slow_city(city: str) -> str:
        """City facts."""
        started.append(city)
        if len(started) == 2:
            both_started.set()
        with anyio.fail_after(2):  # only ends if the other call runs at the same time
            await both_started.wait()
        return f"{city} is nice"

    server.reply_turn(tool_calls=[("slow_city", {"city": "Paris"}), ("add", {"a": 2, "b": 3})])
    server.reply_turn(content="Paris is nice and 2 + 3 = 5.")

    def add_when_started(a: int, b: int) -> int:
        """Add two integers."""
        started.append("add")
        if len(started) == 2:
            anyio.from_thread.run_sync(both_started.set)
        return a + b

    run = await client.chat.completions.run_tools(
        model=MODEL,
        messages=[user("Tell me")],
        tools=[slow_city, function_tool(add_when_started, name="add")],
    )
    assert run.turns == 2 and len(server.requests) == 2
    assert run.completion.choices[0].message.content == "Paris is nice and 2 + 3 = 5."
    first = server.requests[0].body
    assert [t["function"]["name"] for t in first["tools"]] == ["slow_city", "add"]
    assert messages_of(server, 1) == [
        {"role": "user", "content": "Tell me"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "call_1_0",
                    "type": "function",
                    "function": {"name": "slow_city", "arguments": '{"city":"Paris"}'},
                },
                {
                    "id": "call_1_1",
                    "type": "function",
                    "function": {"name": "add", "arguments": '{"a":2,"b":3}'},
                },
            ],
        },
        {"role": "tool", "content": "Paris is nice", "tool_call_id": "call_1_0"},
        {"role": "tool", "content": "5", "tool_call_id": "call_1_1"},
    ]
    assert isinstance(run.messages[1], AssistantMessage)
    assert [m.tool_call_id for m in run.messages[2:] if isinstance(m, ToolMessage)] == [
        "call_1_0",
        "call_1_1",
    ]
    assert run.messages[-1] == AssistantMessage(content="Paris is nice and 2 + 3 = 5.")


async def test_tool_that_raises_sends_its_error(client: AsyncCometAPI, server: MockServer) -> None:
    """By default a tool's exception becomes the call's result and the loop goes on."""
    server.reply_turn(tool_calls=[("fail", {"reason": "disk full"})])
    server.reply_turn(content="Sorry, the tool failed.")
    run = await client.chat.completions.run_tools(model=MODEL, messages=[user("go")], tools=[fail])
    assert run.turns == 2
    tool_message = messages_of(server, 1)[-1]
    assert tool_message == {
        "role": "tool",
        "content": "Error: RuntimeError: broken: disk full",
        "tool_call_id": "call_1_0",
    }


async def test_tool_errors_raise(client: AsyncCometAPI, server: MockServer) -> None:
    """tool_errors="raise" lets the tool's own exception out and sends nothing more."""
    server.reply_turn(tool_calls=[("fail", {"reason": "disk full"})])
    with pytest.raises(RuntimeError, match="broken: disk full"):
        await client.chat.completions.run_tools(
            model=MODEL, messages=[user("go")], tools=[fail], tool_errors="raise"
        )
    assert len(server.requests) == 1


async def test_bad_arguments_are_sent_back(client: AsyncCometAPI, server: MockServer) -> None:
    """Arguments that do not fit are not passed to the function; the model gets the error."""
    calls: list[int] = []

    def count(n: int) -> int:
        """Count."""
        calls.append(n)
        return n

    server.reply_turn(tool_calls=[("count", '{"n": "many"}'), ("nope", "{}")])
    server.reply_turn(content="ok")
    await client.chat.completions.run_tools(model=MODEL, messages=[user("go")], tools=[count])
    bad_args, unknown = messages_of(server, 1)[-2:]
    assert bad_args["content"].startswith("Error: ToolArgumentsError: The arguments of the call")
    assert "Expected `int`, got `str` - at `$.n`" in bad_args["content"]
    assert unknown["content"] == (
        "Error: ToolCallError: There is no tool named 'nope'; the tools are: count."
    )
    assert calls == []


async def test_bad_arguments_raise(client: AsyncCometAPI, server: MockServer) -> None:
    """With tool_errors="raise", arguments that do not fit raise ToolArgumentsError."""
    server.reply_turn(tool_calls=[("add", '{"a": 1, "b": [2]}')])
    with pytest.raises(ToolArgumentsError, match=r"at `\$.b`"):
        await client.chat.completions.run_tools(
            model=MODEL, messages=[user("go")], tools=[add], tool_errors="raise"
        )


async def test_max_turns_reached(client: AsyncCometAPI, server: MockServer) -> None:
    """A model that keeps calling tools stops at max_turns with an error holding the talk."""
    for _ in range(3):
        server.reply_turn(tool_calls=[("add", {"a": 1, "b": 1})])
    with pytest.raises(MaxTurnsExceededError) as info:
        await client.chat.completions.run_tools(
            model=MODEL, messages=[user("loop")], tools=[add], max_turns=2
        )
    assert len(server.requests) == 2
    error = info.value
    assert len(error.completions) == 2
    roles = [m["role"] if isinstance(m, dict) else type(m).__name__ for m in error.messages]
    assert roles == ["user", "AssistantMessage", "ToolMessage", "AssistantMessage", "ToolMessage"]
    server.clear()
    server.reply_turn(content="done")
    run = await client.chat.completions.run_tools(model=MODEL, messages=error.messages, tools=[add])
    assert run.completion.choices[0].message.content == "done"


async def test_tool_calls_with_finish_reason_stop(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Tool calls under finish_reason="stop" (Gemini routes) are still run."""
    server.reply_turn(tool_calls=[("add", {"a": 20, "b": 22})], finish_reason="stop")
    server.reply_turn(content="42")
    run = await client.chat.completions.run_tools(
        model="gemini-3-flash-preview", messages=[user("sum")], tools=[add]
    )
    assert run.turns == 2 and messages_of(server, 1)[-1]["content"] == "42"


async def test_calls_without_ids_get_one(client: AsyncCometAPI, server: MockServer) -> None:
    """A provider that sends tool calls without ids gets matching ids made up for them."""
    server.reply_json(
        {
            "choices": [
                {
                    "message": {
                        "role": "assistant",
                        "tool_calls": [
                            {
                                "type": "function",
                                "function": {"name": "add", "arguments": '{"a":1,"b":2}'},
                            }
                        ],
                    },
                    "finish_reason": "tool_calls",
                }
            ]
        }
    )
    server.reply_turn(content="3")
    await client.chat.completions.run_tools(model=MODEL, messages=[user("sum")], tools=[add])
    assistant, tool = messages_of(server, 1)[-2:]
    assert assistant["tool_calls"][0]["id"] == tool["tool_call_id"] == "call_1_0"


async def test_run_tools_checks_its_arguments(client: AsyncCometAPI) -> None:
    """max_turns below 1, no tools, or two tools of one name raise before any request."""
    with pytest.raises(ValueError, match="max_turns"):
        await client.chat.completions.run_tools(
            model=MODEL, messages=[user("x")], tools=[add], max_turns=0
        )
    with pytest.raises(ValueError, match="at least one tool"):
        await client.chat.completions.run_tools(model=MODEL, messages=[user("x")], tools=[])
    with pytest.raises(ValueError, match="two tools are named 'add'"):
        client.chat.completions.run_tools_stream(
            model=MODEL, messages=[user("x")], tools=[add, function_tool(fail, name="add")]
        )


# --------------------------------------------------------------------------- streamed loop


async def test_streamed_loop_events(client: AsyncCometAPI, server: MockServer) -> None:
    """Text arrives in pieces, then calls and results, then the run; calls are fragments."""
    server.reply_turn(
        content="Let me check.",
        tool_calls=[("add", {"a": 1, "b": 2}), ("forecast", {"place": {"city": "Rome"}})],
        finish_reason="stop",
    )
    server.reply_turn(tool_calls=[("add", {"a": 3, "b": 4})], omit_tool_call_index=True)
    server.reply_turn(content="All done now.")
    events = [
        event
        async for event in client.chat.completions.run_tools_stream(
            model=MODEL, messages=[user("go")], tools=[add, forecast]
        )
    ]
    kinds = [type(event).__name__ for event in events]
    first_text = kinds.index("TextDelta")
    assert kinds[first_text : first_text + 3] == ["TextDelta"] * 3
    texts = {
        turn: "".join(e.text for e in events if isinstance(e, TextDelta) and e.turn == turn)
        for turn in (1, 3)
    }
    assert texts == {1: "Let me check.", 3: "All done now."}
    requested = [e for e in events if isinstance(e, ToolCallRequested)]
    completed = [e for e in events if isinstance(e, ToolCallCompleted)]
    assert [(e.turn, e.call.function.name) for e in requested] == [
        (1, "add"),
        (1, "forecast"),
        (2, "add"),
    ]
    assert [(e.turn, e.content, e.error) for e in completed] == [
        (1, "3", None),
        (1, '{"city":"Rome","days":1,"unit":"celsius"}', None),
        (2, "7", None),
    ]
    assert isinstance(events[-1], RunCompleted)
    run = events[-1].run
    assert run.turns == 3 and len(run.messages) == 7  # user, 3 answers, 3 results
    assert all(server.requests[i].body["stream"] is True for i in range(3))
    assert messages_of(server, 1)[1]["content"] == "Let me check."


async def test_streamed_loop_max_turns(client: AsyncCometAPI, server: MockServer) -> None:
    """The streamed loop raises MaxTurnsExceededError after the last turn's events."""
    server.reply_turn(tool_calls=[("add", {"a": 1, "b": 1})])
    seen: list[Any] = []
    with pytest.raises(MaxTurnsExceededError):
        async for event in client.chat.completions.run_tools_stream(
            model=MODEL, messages=[user("go")], tools=[add], max_turns=1
        ):
            seen.append(event)
    assert [type(e).__name__ for e in seen] == ["ToolCallRequested", "ToolCallCompleted"]


# --------------------------------------------------------------------------- Gemini 3 signatures

GEMINI_3 = "gemini-3-flash-preview"


def signature(call_id: str) -> dict[str, Any]:
    return {"google": {"thought_signature": thought_signature(call_id)}}


async def test_thought_signatures_go_back_with_the_calls(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Gemini 3 signs a turn's first tool call; run_tools sends it back: turn two is no 400."""
    server.reply_turn(tool_calls=[("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": 4})])
    server.reply_turn(content="3 and 7")
    run = await client.chat.completions.run_tools(
        model=GEMINI_3, messages=[user("sums")], tools=[add]
    )
    assert run.completion.choices[0].message.content == "3 and 7"
    sent = messages_of(server, 1)[1]["tool_calls"]
    assert sent[0]["extra_content"] == signature("call_1_0")
    assert "extra_content" not in sent[1]  # only the first call of a turn is signed
    calls = run.completions[0].choices[0].message.tool_calls
    assert calls is not None and calls[0].extra_content == signature("call_1_0")
    assert calls[1].extra_content is msgspec.UNSET


async def test_thought_signatures_survive_streaming(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Streamed, the signature rides on the call's first fragment (or its whole delta)."""
    server.reply_turn(tool_calls=[("add", {"a": 1, "b": 2})])
    server.reply_turn(tool_calls=[("add", {"a": 3, "b": 4})], omit_tool_call_index=True)
    server.reply_turn(content="done")
    events = [
        event
        async for event in client.chat.completions.run_tools_stream(
            model=GEMINI_3, messages=[user("sums")], tools=[add]
        )
    ]
    assert isinstance(events[-1], RunCompleted) and events[-1].run.turns == 3
    history = messages_of(server, 2)
    assert history[1]["tool_calls"][0]["extra_content"] == signature("call_1_0")
    assert history[3]["tool_calls"][0]["extra_content"] == signature("call_2_0")


async def test_a_hand_written_loop_keeps_the_signature(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Passing message.tool_calls back keeps the signature; dropping it is the 400 users hit."""
    server.reply_turn(tool_calls=[("add", {"a": 1, "b": 2})])
    server.reply_turn(content="3")
    server.reply_turn(content="never sent")
    first = await client.chat.completions.create(model=GEMINI_3, messages=[user("sum")])
    message = first.choices[0].message
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    result = ToolMessage(content="3", tool_call_id=call.id)
    kept = AssistantMessage(content=message.content, tool_calls=message.tool_calls)
    second = await client.chat.completions.create(
        model=GEMINI_3, messages=[user("sum"), kept, result]
    )
    assert second.choices[0].message.content == "3"

    bare = msgspec.structs.replace(call, extra_content=msgspec.UNSET)
    lost = AssistantMessage(content=message.content, tool_calls=[bare])
    with pytest.raises(BadRequestError, match="missing a thought_signature"):
        await client.chat.completions.create(
            model=GEMINI_3, messages=[user("sum"), lost, result], max_retries=0
        )


# --------------------------------------------------------------------------- DeepSeek reasoning

DEEPSEEK = "deepseek-v3.2"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "streamed"])
async def test_reasoning_goes_back_with_tool_calls(
    client: AsyncCometAPI, server: MockServer, stream: bool
) -> None:
    """DeepSeek's thinking mode wants a tool-calling turn's reasoning back; the loop sends it."""
    server.reply_turn(reasoning_content="Add them.", tool_calls=[("add", {"a": 1, "b": 2})])
    server.reply_turn(reasoning_content="Done.", content="3")
    if stream:
        events = [
            event
            async for event in client.chat.completions.run_tools_stream(
                model=DEEPSEEK, messages=[user("sum")], tools=[add]
            )
        ]
        assert isinstance(events[-1], RunCompleted)
        run = events[-1].run
    else:
        run = await client.chat.completions.run_tools(
            model=DEEPSEEK, messages=[user("sum")], tools=[add]
        )
    assert run.completion.choices[0].message.content == "3"
    assert messages_of(server, 1)[1]["reasoning_content"] == "Add them."
    # A turn without tool calls does not carry its reasoning into the history.
    assert run.messages[-1] == AssistantMessage(content="3")


async def test_a_hand_written_loop_keeps_the_reasoning(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Appending the answer's message keeps the reasoning; leaving it out is DeepSeek's 400."""
    server.reply_turn(reasoning_content="Add them.", tool_calls=[("add", {"a": 1, "b": 2})])
    server.reply_turn(content="3")
    first = await client.chat.completions.create(model=DEEPSEEK, messages=[user("sum")])
    message = first.choices[0].message
    result = {"role": "tool", "content": "3", "tool_call_id": "call_1_0"}
    second = await client.chat.completions.create(
        model=DEEPSEEK, messages=[user("sum"), message, result]
    )
    assert second.choices[0].message.content == "3"
    assert messages_of(server, 1)[1]["reasoning_content"] == "Add them."

    without = AssistantMessage(content=message.content, tool_calls=message.tool_calls)
    with pytest.raises(BadRequestError, match="Missing `reasoning_content`"):
        await client.chat.completions.create(
            model=DEEPSEEK, messages=[user("sum"), without, result], max_retries=0
        )
