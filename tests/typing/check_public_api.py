"""Read by mypy --strict (not run): pins the public signatures users rely on."""

from __future__ import annotations

import contextlib
from typing import Any

import msgspec
from typing_extensions import assert_type

from aiocometapi import (
    Adjustment,
    AsyncCometAPI,
    AsyncStream,
    CometAPI,
    FanOutResult,
    ParsedAsyncStream,
    ParsedStream,
    PoolState,
    RawResponse,
    RetryPolicy,
    Stream,
    TextDelta,
    Timeout,
    ToolRun,
    ToolRunEvent,
    custom_tool,
    function_tool,
)
from aiocometapi.types import (
    UNSET,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    CustomCall,
    CustomTool,
    FunctionTool,
    Message,
    Model,
    ModelList,
    ParsedChatCompletion,
    UserMessage,
)


async def check(client: AsyncCometAPI, flag: bool) -> None:
    messages = [{"role": "user", "content": "hi"}]
    plain = await client.chat.completions.create(model="m", messages=messages)
    assert_type(plain, ChatCompletion)

    plain_again = await client.chat.completions.create(model="m", messages=messages, stream=False)
    assert_type(plain_again, ChatCompletion)

    stream = await client.chat.completions.create(model="m", messages=messages, stream=True)
    assert_type(stream, AsyncStream[ChatCompletionChunk])
    async with stream:
        async for chunk in stream:
            assert_type(chunk, ChatCompletionChunk)
        async for text in stream.text():
            assert_type(text, str)
        assert_type(await stream.final(), ChatCompletion)

    either = await client.chat.completions.create(model="m", messages=messages, stream=flag)
    assert_type(either, ChatCompletion | AsyncStream[ChatCompletionChunk])

    await client.chat.completions.create(
        model="m",
        messages=[UserMessage(content="hi")],
        temperature=0.1,
        stop=["x"],
        tool_choice="auto",
        extra_headers={"X-A": "b"},
        timeout=Timeout(total=5),
        max_retries=0,
    )
    history: list[Message] = [UserMessage(content="hi"), plain.choices[0].message]
    await client.chat.completions.create(model="m", messages=history)
    assert_type(plain.choices[0].message.to_message(), AssistantMessage)
    assert_type(await client.models.list(), ModelList)
    assert_type(await client.models.retrieve("m"), Model)
    assert_type(client.with_options(timeout=3), AsyncCometAPI)


def check_retry_policy_and_pool(client: AsyncCometAPI) -> None:
    policy = RetryPolicy(max_retries=2, initial_wait=1.0, max_wait=30.0, max_retry_after=120.0)
    assert_type(AsyncCometAPI(retry=policy, max_retries=1), AsyncCometAPI)
    assert_type(client.with_options(retry=policy).retry, RetryPolicy)
    assert_type(client.pool_state(), PoolState)
    assert_type(client.pool_state().in_use, int)
    AsyncCometAPI(retry=3)  # type: ignore[arg-type]


async def check_compat(client: AsyncCometAPI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    adapted = await client.chat.completions.create(model="m", messages=messages, compat="adapt")
    assert_type(adapted.adjustments, list[Adjustment] | None)
    stream = await client.chat.completions.create(
        model="m", messages=messages, stream=True, compat="strict"
    )
    assert_type(stream.adjustments, list[Adjustment] | None)
    assert_type(AsyncCometAPI(compat="off").with_options(compat="warn"), AsyncCometAPI)
    await client.chat.completions.create(
        model="m",
        messages=messages,
        compat="loud",  # type: ignore[call-overload]
    )


class Answer(msgspec.Struct):
    text: str
    score: int | None


async def check_structured_and_tools(client: AsyncCometAPI, flag: bool) -> None:
    messages = [{"role": "user", "content": "hi"}]
    parsed = await client.chat.completions.parse(
        model="m", messages=messages, response_format=Answer, temperature=0
    )
    assert_type(parsed, ParsedChatCompletion[Answer])
    assert_type(parsed.choices[0].message.parsed, Answer | None)
    assert_type(parsed.choices[0].message.refusal, str | None)
    stream = await client.chat.completions.parse(
        model="m", messages=messages, response_format=Answer, stream=True
    )
    assert_type(stream, ParsedAsyncStream[Answer])
    async with stream:
        async for chunk in stream:
            assert_type(chunk, ChatCompletionChunk)
        assert_type((await stream.final()).choices[0].message.parsed, Answer | None)
    either = await client.chat.completions.parse(
        model="m", messages=messages, response_format=Answer, stream=flag
    )
    assert_type(either, ParsedChatCompletion[Answer] | ParsedAsyncStream[Answer])
    await client.chat.completions.parse(
        model="m",
        messages=messages,
        response_format=Answer,
        respons_format=1,  # type: ignore[call-overload]
    )

    def add(a: int, b: int) -> int:
        return a + b

    tool = function_tool(add)
    assert_type(tool(1, 2), int)  # a Tool calls like its function

    def shout(text: str) -> str:
        return text.upper()

    loud = custom_tool(shout, format={"type": "text"})
    assert_type(loud("a"), str)
    assert_type(loud.definition, FunctionTool | CustomTool)
    await client.chat.completions.create(model="m", messages=messages, tools=[loud.definition])
    strict_tool = function_tool(strict=True)(add)
    strict_tool(1, "2")  # type: ignore[arg-type]
    run = await client.chat.completions.run_tools(
        model="m", messages=messages, tools=[add, tool, loud], max_turns=3, tool_errors="raise"
    )
    assert_type(run, ToolRun)
    assert_type(run.completion, ChatCompletion)
    # Fields the types do not name, and reasoning under either name.
    assert_type(run.completion.raw_json, bytes | None)
    assert_type(run.completion.extra, dict[str, Any])
    assert_type(run.completion.choices[0].message.reasoning_text, str | None)
    call = (run.completion.choices[0].message.tool_calls or [])[0]
    if call.custom is not UNSET:
        assert_type(call.custom, CustomCall)
    streamed = await client.chat.completions.create(model="m", messages=messages, stream=True)
    streamed.keep_raw_json = True
    async for piece in streamed:
        assert_type(piece.raw_json, bytes | None)
        assert_type(piece.extra, dict[str, Any])
    async for event in client.chat.completions.run_tools_stream(
        model="m", messages=messages, tools=[tool]
    ):
        assert_type(event, ToolRunEvent)
        if isinstance(event, TextDelta):
            assert_type(event.text, str)
    # Both iterators are async generators: contextlib.aclosing takes them.
    events = client.chat.completions.run_tools_stream(model="m", messages=messages, tools=[tool])
    async with contextlib.aclosing(events):
        async for event in events:
            assert_type(event, ToolRunEvent)
    results = client.chat.completions.fan_out([{"model": "m", "messages": messages}])
    async with contextlib.aclosing(results):
        async for result in results:
            assert_type(result, FanOutResult)
            if result.completion is not None:
                assert_type(result.completion, ChatCompletion)


async def check_usage(client: AsyncCometAPI, completion: ChatCompletion) -> None:
    from aiocometapi import UsageFigures, UsageSnapshot

    snap = client.usage.snapshot()
    assert_type(snap, UsageSnapshot)
    assert_type(snap.total.total_tokens, int)
    assert_type(snap.by_model["gpt-5.4-mini"], UsageFigures)
    assert_type(snap.total.cost, float | None)
    assert_type(client.usage.cost(completion), float | None)
    results = client.chat.completions.fan_out([], max_tokens_total=1000, max_cost=2.5)
    async for result in results:
        assert_type(result, FanOutResult)
    AsyncCometAPI(prices={"gpt-5.4-mini": {"input": 0.2, "cached_input": 0.02, "output": 0.8}})


async def check_openai_shapes(client: AsyncCometAPI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    completion = await client.chat.completions.create(
        model="gpt-5.4-mini",
        messages=messages,
        store=True,
        metadata={"k": "v"},
        verbosity="low",
        modalities=["text", "audio"],
        audio={"voice": "alloy", "format": "wav"},
        prediction={"type": "content", "content": "x"},
        web_search_options={"search_context_size": "low"},
        prompt_cache_key="k",
        safety_identifier="s",
        service_tier="flex",
        reasoning_effort="xhigh",
    )
    await client.chat.completions.create(
        model="m",
        messages=messages,
        verbosity="loud",  # type: ignore[call-overload]
    )
    assert_type(completion.to_dict(), dict[str, Any])
    assert_type(completion.to_json(indent=None), str)
    assert_type(completion.model_dump(exclude_none=True), dict[str, Any])
    assert_type(completion.model_dump_json(), str)
    assert_type(completion._request_id, str | None)
    assert_type(completion.choices[0].message.to_dict(mode="json"), dict[str, Any])
    async for model in client.models.list():
        assert_type(model, Model)
    assert_type((await client.models.list()).data, list[Model])


def check_sync_client(client: CometAPI, flag: bool) -> None:
    messages = [{"role": "user", "content": "hi"}]
    assert_type(client.chat.completions.create(model="m", messages=messages), ChatCompletion)
    stream = client.chat.completions.create(model="m", messages=messages, stream=True)
    assert_type(stream, Stream[ChatCompletionChunk])
    with stream:
        for chunk in stream:
            assert_type(chunk, ChatCompletionChunk)
        for text in stream.text():
            assert_type(text, str)
        assert_type(stream.final(), ChatCompletion)
        assert_type(stream.request_id, str | None)
    either = client.chat.completions.create(model="m", messages=messages, stream=flag)
    assert_type(either, ChatCompletion | Stream[ChatCompletionChunk])
    client.chat.completions.create(
        model="m", messages=messages, verbosity="low", timeout=Timeout(total=5), max_retries=0
    )
    client.chat.completions.create(model="m", messages=messages, temprature=1)  # type: ignore[call-overload]
    parsed = client.chat.completions.parse(model="m", messages=messages, response_format=Answer)
    assert_type(parsed, ParsedChatCompletion[Answer])
    parsed_stream = client.chat.completions.parse(
        model="m", messages=messages, response_format=Answer, stream=True
    )
    assert_type(parsed_stream, ParsedStream[Answer])
    assert_type(parsed_stream.final().choices[0].message.parsed, Answer | None)

    def add(a: int, b: int) -> int:
        return a + b

    assert_type(
        client.chat.completions.run_tools(model="m", messages=messages, tools=[add]), ToolRun
    )
    for event in client.chat.completions.run_tools_stream(
        model="m", messages=messages, tools=[add]
    ):
        assert_type(event, ToolRunEvent)
    with client.chat.completions.fan_out([{"model": "m", "messages": messages}]) as results:
        for result in results:
            assert_type(result, FanOutResult)
    assert_type(client.models.list(), ModelList)
    assert_type(client.models.retrieve("m"), Model)
    assert_type(client.with_options(timeout=3, max_retries=1), CometAPI)
    with CometAPI() as other:
        assert_type(other, CometAPI)
    client.close()


async def check_raw_and_settings(client: AsyncCometAPI, sync: CometAPI) -> None:
    messages = [{"role": "user", "content": "hi"}]
    raw = await client.chat.completions.with_raw_response.create(model="m", messages=messages)
    assert_type(raw, RawResponse[ChatCompletion])
    assert_type(raw.parse(), ChatCompletion)
    assert_type(raw.status_code, int)
    assert_type(raw.request_id, str | None)
    raw_stream = await client.chat.completions.with_raw_response.create(
        model="m", messages=messages, stream=True
    )
    assert_type(raw_stream.parse(), AsyncStream[ChatCompletionChunk])
    raw_parsed = await client.chat.completions.with_raw_response.parse(
        model="m", messages=messages, response_format=Answer
    )
    assert_type(raw_parsed.parse(), ParsedChatCompletion[Answer])
    assert_type((await client.models.with_raw_response.list()).parse(), ModelList)
    assert_type((await client.models.with_raw_response.retrieve("m")).parse(), Model)
    assert_type(raw.parse().headers.get("x-request-id"), str | None)
    assert_type(client.api_key, str)
    assert_type(client.with_options(api_key="k", base_url="https://x/v1"), AsyncCometAPI)
    await client.close()
    sync_raw = sync.chat.completions.with_raw_response.create(
        model="m", messages=messages, stream=True
    )
    assert_type(sync_raw.parse(), Stream[ChatCompletionChunk])
    assert_type(sync.models.with_raw_response.list().parse(), ModelList)
    assert_type(sync.with_options(api_key="k"), CometAPI)
