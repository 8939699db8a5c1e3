"""Streams shaped as real providers send them (OpenRouter, Azure, vLLM, OpenAI custom tools),
against the real local server: errors beside choices, whitespace keep-alives, preamble chunks,
reasoning under its other name, and the fields the types do not name."""

from __future__ import annotations

import json
from typing import Any

import pytest

from aiocometapi import AsyncCometAPI, IncompleteStreamError, StreamError
from aiocometapi.testing import MockServer
from aiocometapi.types import UNSET, ChatCompletionChunk
from conftest import user

pytestmark = pytest.mark.anyio

MODEL = "openai/gpt-4o"


def chunk(delta: dict[str, Any], finish: str | None = None, **top: Any) -> dict[str, Any]:
    return {
        "id": "gen-1", "object": "chat.completion.chunk", "created": 1_700_000_000,
        "model": MODEL, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **top,
    }  # fmt: skip


async def final_of(client: AsyncCometAPI, **kw: Any) -> Any:
    stream = await client.chat.completions.create(
        model=MODEL, messages=[user("hi")], stream=True, **kw
    )
    async with stream:
        return await stream.final()


async def error_of(client: AsyncCometAPI) -> StreamError:
    with pytest.raises(StreamError) as info:
        await final_of(client)
    return info.value


# --------------------------------------------------------------------------- errors


OPENROUTER_ERROR = {
    "id": "gen-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": MODEL,
    "provider": "OpenAI",
    "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
    "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error",
                 "native_finish_reason": "error"}],
}  # fmt: skip


@pytest.mark.parametrize("split", [None, 3])
async def test_error_beside_choices_raises(
    client: AsyncCometAPI, server: MockServer, split: int | None
) -> None:
    """An error object in a chunk that also has choices (OpenRouter) raises StreamError with
    its message, code and what arrived, although [DONE] follows it."""
    server.reply_stream(
        [chunk({"role": "assistant", "content": "Once upon"}), OPENROUTER_ERROR], split=split
    )
    error = await error_of(client)
    assert "Provider disconnected unexpectedly" in str(error)
    assert error.code == "server_error"
    assert type(error) is StreamError
    assert error.partial is not None
    assert error.partial.choices[0].message.content == "Once upon"
    assert error.partial.choices[0].finish_reason == "error"


async def test_error_with_numeric_code_beside_usage(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """An error with a numeric code in a chunk that carries usage raises, the code as text."""
    failing = {**chunk({}), "choices": [], "usage": {"prompt_tokens": 1, "total_tokens": 1},
               "error": {"code": 502, "message": "upstream failed"}}  # fmt: skip
    server.reply_stream([chunk({"content": "a"}), failing])
    error = await error_of(client)
    assert error.code == "502" and "upstream failed" in str(error)


async def test_error_as_a_string_beside_choices(client: AsyncCometAPI, server: MockServer) -> None:
    """An error given as plain text in a chunk with choices raises StreamError with the text."""
    server.reply_stream([chunk({"content": "a"}, error="model crashed")])
    error = await error_of(client)
    assert "model crashed" in str(error)


async def test_finish_reason_error_alone_is_not_a_normal_end(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """finish_reason "error" without an error object still ends in StreamError, not a result."""
    server.reply_stream([chunk({"content": "half an ans"}), chunk({}, finish="error")])
    error = await error_of(client)
    assert "finish_reason 'error'" in str(error)
    assert error.partial is not None
    assert error.partial.choices[0].message.content == "half an ans"
    assert error.partial.choices[0].finish_reason == "error"


async def test_finish_reason_error_frees_the_connection(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A stream that ended with finish_reason "error" and [DONE] gives its connection back."""
    server.reply_stream([chunk({"content": "x"}, finish="error")])
    await error_of(client)
    completion = await final_of(client)
    assert completion.choices[0].finish_reason == "stop"
    assert server.connections_total == 1


# --------------------------------------------------------------------------- keep-alives


@pytest.mark.parametrize("split", [None, 1])
@pytest.mark.parametrize(
    "keep_alive", [b"data:  \n\n", b"data: \t \n\n", b"data:   \r\n\r\n", b"data: \n\n"]
)
async def test_whitespace_data_is_a_keep_alive(
    client: AsyncCometAPI, server: MockServer, keep_alive: bytes, split: int | None
) -> None:
    """A data event holding only whitespace is skipped like an empty one, not a JSON error."""
    server.reply_stream(
        [keep_alive, chunk({"content": "a"}), keep_alive, chunk({"content": "b"}, "stop")],
        split=split,
    )
    completion = await final_of(client)
    assert completion.choices[0].message.content == "ab"


async def test_whitespace_only_stream_is_incomplete(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Keep-alives alone, then the body ends without [DONE]: an incomplete stream, not JSON."""
    server.reply_stream([b"data:  \n\n"] * 3, done=False)
    with pytest.raises(IncompleteStreamError):
        await final_of(client, max_retries=0)


# --------------------------------------------------------------------------- Azure


AZURE_PREAMBLE = {
    "choices": [], "created": 0, "id": "", "model": "", "object": "",
    "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {
        "hate": {"filtered": False, "severity": "safe"}}}],
}  # fmt: skip
SAFE = {"hate": {"filtered": False, "severity": "safe"}}


async def test_azure_preamble_does_not_blank_the_header(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """After Azure's empty preamble chunk, final() takes id, model and created from the first
    chunk that has them, and keeps the prompt's filter results."""
    server.reply_stream([
        AZURE_PREAMBLE,
        {**chunk({"role": "assistant", "content": ""}), "id": "chatcmpl-az", "model": "gpt-4o-2024",
         "system_fingerprint": "fp_1"},
        {**chunk({"content": "Hi"}), "id": "chatcmpl-az", "model": "gpt-4o-2024"},
        {**chunk({}, "stop"), "id": "chatcmpl-az", "model": "gpt-4o-2024"},
    ])  # fmt: skip
    completion = await final_of(client)
    assert (completion.id, completion.model, completion.created) == (
        "chatcmpl-az",
        "gpt-4o-2024",
        1_700_000_000,
    )
    assert completion.system_fingerprint == "fp_1"
    assert completion.prompt_filter_results == AZURE_PREAMBLE["prompt_filter_results"]
    assert completion.choices[0].message.content == "Hi"


async def test_azure_content_filter_results_on_chunks(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Azure's content_filter_results are typed on each chunk's choice."""
    with_filter = chunk({"content": "Hi"})
    with_filter["choices"][0]["content_filter_results"] = SAFE
    server.reply_stream([AZURE_PREAMBLE, with_filter, chunk({}, "stop")])
    stream = await client.chat.completions.create(model=MODEL, messages=[user("x")], stream=True)
    async with stream:
        chunks = [c async for c in stream]
    assert chunks[0].choices == [] and chunks[0].prompt_filter_results is not None
    assert chunks[1].choices[0].content_filter_results == SAFE


# --------------------------------------------------------------------------- reasoning


@pytest.mark.parametrize("name", ["reasoning", "reasoning_content"])
async def test_reasoning_under_either_name(
    client: AsyncCometAPI, server: MockServer, name: str
) -> None:
    """Reasoning text is assembled under the name it came with; reasoning_text reads either."""
    server.reply_stream(
        [
            chunk({"role": "assistant", name: "Let me "}),
            chunk({name: "think."}),
            chunk({"content": "42"}, "stop"),
        ]
    )
    message = (await final_of(client)).choices[0].message
    assert getattr(message, name) == "Let me think."
    assert message.reasoning_text == "Let me think."
    assert message.content == "42"


async def test_openrouter_reasoning_details_are_kept(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """OpenRouter's reasoning_details pieces are joined per block, their other keys kept."""
    detail = {"type": "reasoning.text", "format": "anthropic-claude-v1", "index": 0}
    server.reply_stream([
        chunk({"role": "assistant", "reasoning": "Hm", "reasoning_details": [
            {**detail, "text": "Hm"}]}),
        chunk({"reasoning": "m.", "reasoning_details": [{**detail, "text": "m."}]}),
        chunk({"reasoning_details": [{**detail, "text": "", "signature": "sig"}]}),
        chunk({"content": "ok"}, "stop"),
    ])  # fmt: skip
    message = (await final_of(client)).choices[0].message
    assert message.reasoning == "Hmm."
    assert message.reasoning_details == [{**detail, "text": "Hmm.", "signature": "sig"}]


# --------------------------------------------------------------------------- custom tool calls


async def test_custom_tool_call_fragments(client: AsyncCometAPI, server: MockServer) -> None:
    """A custom tool call streamed in fragments keeps its name and joins its input."""
    server.reply_stream([
        chunk({"role": "assistant", "tool_calls": [{"index": 0, "id": "call_c", "type": "custom",
               "custom": {"name": "code_exec", "input": ""}}]}),
        chunk({"tool_calls": [{"index": 0, "custom": {"input": "print("}}]}),
        chunk({"tool_calls": [{"index": 0, "custom": {"input": "'hello')"}}]}),
        chunk({}, "tool_calls"),
    ])  # fmt: skip
    call = ((await final_of(client)).choices[0].message.tool_calls or [])[0]
    assert (call.id, call.type) == ("call_c", "custom")
    assert call.custom is not UNSET
    assert (call.custom.name, call.custom.input) == ("code_exec", "print('hello')")


async def test_custom_call_without_type_is_not_a_function(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A call whose fragments carry `custom` and no `type` is reported as custom."""
    server.reply_stream([
        chunk({"tool_calls": [{"index": 0, "id": "call_c",
                               "custom": {"name": "grep", "input": "foo"}}]}),
        chunk({}, "tool_calls"),
    ])  # fmt: skip
    call = ((await final_of(client)).choices[0].message.tool_calls or [])[0]
    assert call.type == "custom"
    assert call.custom is not UNSET and call.custom.input == "foo"


# --------------------------------------------------------------------------- raw fields


OPENROUTER_USAGE = {
    "id": "gen-1", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": MODEL,
    "provider": "OpenAI", "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7, "cost": 0.00012,
              "cost_details": {"upstream_inference_cost": None}},
}  # fmt: skip


async def test_keep_raw_json_reaches_every_field(client: AsyncCometAPI, server: MockServer) -> None:
    """With keep_raw_json on, each chunk holds its JSON and `extra` the fields not typed."""
    first = chunk({"role": "assistant", "content": "a"}, provider="OpenAI")
    first["choices"][0]["native_finish_reason"] = None
    server.reply_stream([first, chunk({}, "stop"), OPENROUTER_USAGE])
    stream = await client.chat.completions.create(model=MODEL, messages=[user("x")], stream=True)
    stream.keep_raw_json = True
    async with stream:
        chunks = [c async for c in stream]
        completion = await stream.final()
    assert [json.loads(c.raw_json or b"null") for c in chunks] == [
        first,
        chunk({}, "stop"),
        OPENROUTER_USAGE,
    ]
    assert chunks[0].extra == {"provider": "OpenAI", "choices": [{"native_finish_reason": None}]}
    assert chunks[2].extra == {
        "provider": "OpenAI",
        "usage": {"cost_details": {"upstream_inference_cost": None}},
    }
    assert chunks[2].usage is not None and chunks[2].usage.cost == 0.00012
    assert isinstance(chunks[0], ChatCompletionChunk)
    assert repr(chunks[0]).startswith("ChatCompletionChunk(")
    assert completion.choices[0].message.content == "a"
    assert completion.raw_json is None and completion.extra == {}


async def test_chunks_keep_no_json_by_default(client: AsyncCometAPI, server: MockServer) -> None:
    """Without keep_raw_json a chunk holds no JSON: raw_json is None and extra is empty."""
    server.reply_stream([chunk({"content": "a"}, provider="OpenAI"), chunk({}, "stop")])
    stream = await client.chat.completions.create(model=MODEL, messages=[user("x")], stream=True)
    async with stream:
        chunks = [c async for c in stream]
    assert chunks[0].raw_json is None and chunks[0].extra == {}
    assert type(chunks[0]) is ChatCompletionChunk


async def test_keep_raw_json_on_a_repaired_chunk(client: AsyncCometAPI, server: MockServer) -> None:
    """A chunk repaired from provider drift still keeps the JSON it came as."""
    drifted = chunk({"content": "a"}, provider="X")
    drifted["created"] = 1_700_000_000.5  # a float where an integer belongs
    server.reply_stream([drifted, chunk({}, "stop")])
    stream = await client.chat.completions.create(model=MODEL, messages=[user("x")], stream=True)
    stream.keep_raw_json = True
    async with stream:
        chunks = [c async for c in stream]
    assert chunks[0].created == 1_700_000_000
    assert chunks[0].extra == {"provider": "X"}
