"""Assembling a completion from chunks, with the drift providers show in the wild."""

from __future__ import annotations

import gc
import time
from typing import Any

import msgspec

from aiocometapi._accumulate import Accumulator
from aiocometapi.types import ChatCompletionChunk


def chunk(*choices: dict[str, Any], usage: dict[str, int] | None = None) -> ChatCompletionChunk:
    raw: dict[str, Any] = {"id": "c-1", "model": "m", "created": 1, "choices": list(choices)}
    if usage is not None:
        raw["usage"] = usage
    return msgspec.convert(raw, ChatCompletionChunk)


def delta(index: int = 0, finish: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"index": index, "delta": fields, "finish_reason": finish}


def assemble(*chunks: ChatCompletionChunk) -> Any:
    acc = Accumulator()
    for c in chunks:
        acc.add(c)
    return acc.completion("rid")


def test_content_role_and_finish() -> None:
    """Content deltas are joined, role comes from the first delta, finish_reason as sent."""
    done = assemble(
        chunk(delta(role="assistant", content="")),
        chunk(delta(content="Hel")),
        chunk(delta(content="lo")),
        chunk(delta(finish="stop")),
    )
    message = done.choices[0].message
    assert (message.role, message.content, done.choices[0].finish_reason) == (
        "assistant",
        "Hello",
        "stop",
    )
    assert (done.id, done.model, done.request_id) == ("c-1", "m", "rid")


def test_content_stays_none_without_content() -> None:
    """A turn with only tool calls keeps content None, not an empty string."""
    done = assemble(
        chunk(delta(role="assistant", content="")),
        chunk(
            delta(
                tool_calls=[{"index": 0, "id": "a", "function": {"name": "f", "arguments": "{}"}}]
            )
        ),
    )
    assert done.choices[0].message.content is None


def test_tool_call_fragments_by_index() -> None:
    """Arguments are concatenated per index; id and name repeated in fragments are set once."""
    done = assemble(
        chunk(
            delta(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_a",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            )
        ),
        chunk(
            delta(
                tool_calls=[
                    {
                        "index": 1,
                        "id": "call_b",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": '{"tz":'},
                    }
                ]
            )
        ),
        chunk(
            delta(
                tool_calls=[
                    {
                        "index": 0,
                        "id": "call_a",
                        "function": {"name": "get_weather", "arguments": '{"city":'},
                    }
                ]
            )
        ),
        chunk(delta(tool_calls=[{"index": 0, "function": {"arguments": '"Paris"}'}}])),
        chunk(delta(tool_calls=[{"index": 1, "function": {"arguments": '"UTC"}'}}])),
        chunk(delta(finish="tool_calls")),
    )
    calls = done.choices[0].message.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("call_a", "get_weather", '{"city":"Paris"}'),
        ("call_b", "get_time", '{"tz":"UTC"}'),
    ]


def test_tool_call_index_starting_at_one() -> None:
    """Indexes that start at 1 still give calls in index order."""
    done = assemble(
        chunk(
            delta(
                tool_calls=[{"index": 2, "id": "b", "function": {"name": "g", "arguments": "{}"}}]
            )
        ),
        chunk(
            delta(
                tool_calls=[{"index": 1, "id": "a", "function": {"name": "f", "arguments": "{}"}}]
            )
        ),
    )
    assert [c.id for c in done.choices[0].message.tool_calls] == ["a", "b"]


def test_tool_calls_without_index() -> None:
    """Gemini-style whole calls without an index become separate calls, in arrival order."""
    done = assemble(
        chunk(
            delta(
                role="assistant",
                tool_calls=[
                    {
                        "id": "g1",
                        "type": "function",
                        "function": {"name": "f", "arguments": '{"a":1}'},
                    },
                    {
                        "id": "g2",
                        "type": "function",
                        "function": {"name": "g", "arguments": '{"b":2}'},
                    },
                ],
            )
        ),
        chunk(delta(finish="stop")),
    )
    calls = done.choices[0].message.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("g1", "f", '{"a":1}'),
        ("g2", "g", '{"b":2}'),
    ]
    assert done.choices[0].finish_reason == "stop"


def test_n_choices_interleaved_and_usage_chunk() -> None:
    """n > 1 choices interleaved by index, and usage from the choices-less last chunk."""
    done = assemble(
        chunk(delta(0, content="a"), delta(1, content="x")),
        chunk(delta(1, content="y")),
        chunk(delta(0, content="b", finish="stop"), delta(1, finish="length")),
        chunk(usage={"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}),
    )
    assert [c.message.content for c in done.choices] == ["ab", "xy"]
    assert [c.finish_reason for c in done.choices] == ["stop", "length"]
    assert done.usage is not None and done.usage.total_tokens == 7


def test_reasoning_refusal_and_logprobs() -> None:
    """reasoning_content, refusal and logprobs are assembled like content."""
    lp = {"content": [{"token": "a", "logprob": -0.1, "top_logprobs": []}]}
    done = assemble(
        chunk({"index": 0, "delta": {"reasoning_content": "think "}, "logprobs": lp}),
        chunk(
            {"index": 0, "delta": {"reasoning_content": "more", "refusal": "no"}, "logprobs": lp}
        ),
    )
    message = done.choices[0].message
    assert (message.reasoning_content, message.refusal) == ("think more", "no")
    assert done.choices[0].logprobs is not None
    assert len(done.choices[0].logprobs.content or []) == 2


def test_partial_completion_mid_stream() -> None:
    """completion() can be called at any point and again later."""
    acc = Accumulator()
    acc.add(chunk(delta(content="one ")))
    assert acc.completion().choices[0].message.content == "one "
    acc.add(chunk(delta(content="two")))
    assert acc.completion().choices[0].message.content == "one two"


def test_assembly_is_linear() -> None:
    """Eight times the chunks take far less than 64 times as long to assemble."""

    def run(n: int) -> float:
        pieces = [chunk(delta(content="x" * 8)) for _ in range(n)]
        # CPU time of this thread (wall time on a loaded machine counts other processes too),
        # with the cyclic GC off: a full collection landing in one run is not the code's cost.
        gc.collect()
        gc.disable()
        try:
            started = time.thread_time()
            assemble(*pieces)
            return time.thread_time() - started
        finally:
            gc.enable()

    small, large = min(run(5_000) for _ in range(5)), min(run(40_000) for _ in range(5))
    assert large / small < 24, (small, large)


def test_custom_tool_call_fragments() -> None:
    """A custom tool call's input fragments are joined and its name kept; a function call in
    the same turn is unaffected."""
    done = assemble(
        chunk(delta(tool_calls=[{"index": 0, "id": "c1", "type": "custom",
                                 "custom": {"name": "sh", "input": "ls "}}])),
        chunk(delta(tool_calls=[{"index": 0, "custom": {"input": "-la"}}])),
        chunk(delta(tool_calls=[{"index": 1, "id": "c2", "type": "function",
                                 "function": {"name": "f", "arguments": "{}"}}])),
        chunk(delta(finish="tool_calls")),
    )  # fmt: skip
    custom, function = done.choices[0].message.tool_calls
    assert (custom.type, custom.custom.name, custom.custom.input) == ("custom", "sh", "ls -la")
    assert custom.function.name == "" and custom.function.arguments == ""
    assert (function.type, function.function.name) == ("function", "f")
    assert function.custom is msgspec.UNSET


def test_custom_call_without_type() -> None:
    """A call that carries `custom` but no `type` is custom, not silently a function."""
    done = assemble(chunk(delta(tool_calls=[{"index": 0, "custom": {"name": "sh", "input": ""}}])))
    call = done.choices[0].message.tool_calls[0]
    assert call.type == "custom" and call.custom.name == "sh" and call.custom.input == ""


def test_reasoning_under_both_names() -> None:
    """`reasoning` and `reasoning_content` are joined apart; reasoning_text prefers the latter."""
    only_other = assemble(chunk(delta(reasoning="a")), chunk(delta(reasoning="b")))
    message = only_other.choices[0].message
    assert (message.reasoning, message.reasoning_content, message.reasoning_text) == (
        "ab",
        None,
        "ab",
    )
    both = assemble(chunk(delta(reasoning="x", reasoning_content="y")))
    assert both.choices[0].message.reasoning_text == "y"
    assert both.choices[0].message.reasoning == "x"


def test_reasoning_details_joined_per_block() -> None:
    """reasoning_details pieces with one index are joined; blocks of other indexes, or with no
    index, are kept apart and in order."""
    done = assemble(
        chunk(delta(reasoning_details=[{"type": "reasoning.text", "index": 0, "text": "a"}])),
        chunk(delta(reasoning_details=[{"type": "reasoning.text", "index": 0, "text": "b",
                                        "signature": None}])),
        chunk(delta(reasoning_details=[{"type": "reasoning.encrypted", "data": "Zm9v"},
                                       {"type": "reasoning.summary", "index": 1,
                                        "summary": "s"}])),
        chunk(delta(reasoning_details=[{"type": "reasoning.text", "index": 0, "text": "c",
                                        "signature": "sig"}])),
    )  # fmt: skip
    assert done.choices[0].message.reasoning_details == [
        {"type": "reasoning.text", "index": 0, "text": "abc", "signature": "sig"},
        {"type": "reasoning.encrypted", "data": "Zm9v"},
        {"type": "reasoning.summary", "index": 1, "summary": "s"},
    ]


def test_header_from_the_first_chunk_that_has_it() -> None:
    """An Azure preamble (empty id, model, created 0) does not blank the completion's header."""
    preamble = msgspec.convert(
        {"id": "", "model": "", "created": 0, "object": "", "choices": [],
         "prompt_filter_results": [{"prompt_index": 0}]},
        ChatCompletionChunk,
    )  # fmt: skip
    later = msgspec.convert(
        {"id": "chatcmpl-9", "model": "gpt-4o", "created": 5, "system_fingerprint": "fp",
         "choices": [delta(content="x")]},
        ChatCompletionChunk,
    )  # fmt: skip
    done = assemble(preamble, later)
    assert (done.id, done.model, done.created, done.system_fingerprint) == (
        "chatcmpl-9",
        "gpt-4o",
        5,
        "fp",
    )
    assert done.prompt_filter_results == [{"prompt_index": 0}]
    assert assemble(preamble).id == ""


def test_header_fields_each_from_their_first_chunk() -> None:
    """A field missing from the first real chunk is taken from the next chunk that has it."""
    a = msgspec.convert({"id": "i", "choices": [delta(content="x")]}, ChatCompletionChunk)
    b = msgspec.convert({"id": "j", "model": "m", "created": 3, "choices": []}, ChatCompletionChunk)
    acc = Accumulator()
    acc.add(a)
    acc.add(b)
    done = acc.completion()
    assert (done.id, done.model, done.created) == ("i", "m", 3)
