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
        "assistant", "Hello", "stop"
    )
    assert (done.id, done.model, done.request_id) == ("c-1", "m", "rid")


def test_content_stays_none_without_content() -> None:
    """A turn with only tool calls keeps content None, not an empty string."""
    done = assemble(
        chunk(delta(role="assistant", content="")),
        chunk(delta(tool_calls=[{"index": 0, "id": "a", "function": {"name": "f",
                                                                      "arguments": "{}"}}])),
    )
    assert done.choices[0].message.content is None


def test_tool_call_fragments_by_index() -> None:
    """Arguments are concatenated per index; id and name repeated in fragments are set once."""
    done = assemble(
        chunk(delta(tool_calls=[
            {"index": 0, "id": "call_a", "type": "function",
             "function": {"name": "get_weather", "arguments": ""}}])),
        chunk(delta(tool_calls=[
            {"index": 1, "id": "call_b", "type": "function",
             "function": {"name": "get_time", "arguments": '{"tz":'}}])),
        chunk(delta(tool_calls=[
            {"index": 0, "id": "call_a", "function": {"name": "get_weather",
                                                      "arguments": '{"city":'}}])),
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
        chunk(delta(tool_calls=[{"index": 2, "id": "b", "function": {"name": "g",
                                                                      "arguments": "{}"}}])),
        chunk(delta(tool_calls=[{"index": 1, "id": "a", "function": {"name": "f",
                                                                      "arguments": "{}"}}])),
    )
    assert [c.id for c in done.choices[0].message.tool_calls] == ["a", "b"]


def test_tool_calls_without_index() -> None:
    """Gemini-style whole calls without an index become separate calls, in arrival order."""
    done = assemble(
        chunk(delta(role="assistant", tool_calls=[
            {"id": "g1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}},
            {"id": "g2", "type": "function", "function": {"name": "g", "arguments": '{"b":2}'}},
        ])),
        chunk(delta(finish="stop")),
    )
    calls = done.choices[0].message.tool_calls
    assert [(c.id, c.function.name, c.function.arguments) for c in calls] == [
        ("g1", "f", '{"a":1}'), ("g2", "g", '{"b":2}')
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
        chunk({"index": 0, "delta": {"reasoning_content": "more", "refusal": "no"},
               "logprobs": lp}),
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
