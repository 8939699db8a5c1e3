"""Answers that miss the documented JSON types only by provider drift are repaired, not lost."""

from __future__ import annotations

import copy
import json
import logging
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aiocometapi import APIResponseValidationError, AsyncCometAPI, StreamError
from aiocometapi._decode import decode
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion
from conftest import user

pytestmark = pytest.mark.anyio

MODEL = "gpt-4o"
DECODER = msgspec.json.Decoder(ChatCompletion)

ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "the answer"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}


def drifted(changes: dict[tuple[Any, ...], Any]) -> dict[str, Any]:
    """``ANSWER`` with the value at each path replaced."""
    answer = copy.deepcopy(ANSWER)
    for path, value in changes.items():
        target: Any = answer
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return answer


MESSAGE = ("choices", 0, "message")
CALL = {"id": "call_1", "type": "function", "function": {"name": "add", "arguments": '{"a":1}'}}

# fmt: off
DRIFT = [
    ("created as a float", {("created",): 1_700_000_000.25}, "created", 1_700_000_000),
    ("created as a string", {("created",): "1700000000"}, "created", 1_700_000_000),
    ("index as a string", {("choices", 0, "index"): "0"}, "index", 0),
    ("token counts as floats", {("usage", "prompt_tokens"): 3.0,
                                ("usage", "total_tokens"): 5.0}, "prompt_tokens", 3),
    ("null id and model", {("id",): None, ("model",): None}, "id", ""),
    ("null role", {(*MESSAGE, "role"): None}, "role", "assistant"),
    ("null choices", {("choices",): None}, "choices", []),
    ("content as text parts", {(*MESSAGE, "content"): [
        {"type": "text", "text": "the "}, {"type": "text", "text": "answer"}]},
     "content", "the answer"),
    ("arguments as an object", {(*MESSAGE, "tool_calls"): [
        {**CALL, "function": {"name": "add", "arguments": {"a": 1}}}]},
     "arguments", '{"a":1}'),
    ("a lone tool call, not in a list", {(*MESSAGE, "tool_calls"): CALL}, "arguments", '{"a":1}'),
    ("null tool-call id and type", {(*MESSAGE, "tool_calls"): [
        {**CALL, "id": None, "type": None}]}, "type", "function"),
]
# fmt: on


def field_of(completion: Any, name: str) -> Any:
    choice = completion.choices[0] if completion.choices else None
    if name in ("created", "id", "model", "choices"):
        return getattr(completion, name)
    if name == "index":
        return choice.index
    if name == "prompt_tokens":
        return completion.usage.prompt_tokens
    if name in ("role", "content"):
        return getattr(choice.message, name)
    call = choice.message.tool_calls[0]
    return call.function.arguments if name == "arguments" else getattr(call, name)


@pytest.mark.parametrize(
    ("changes", "name", "expected"), [d[1:] for d in DRIFT], ids=[d[0] for d in DRIFT]
)
async def test_drifted_answer_is_repaired(
    client: AsyncCometAPI, server: MockServer, changes: Any, name: str, expected: Any
) -> None:
    """The answer comes back whole, the drifted field read as the documented type."""
    server.reply_json(drifted(changes))
    completion = await client.chat.completions.create(model=MODEL, messages=[user("q")])
    assert field_of(completion, name) == expected
    assert completion.request_id is not None
    if name != "choices":
        assert completion.usage is not None and completion.usage.total_tokens == 5
    assert len(server.requests) == 1  # repaired, not retried


async def test_repair_is_logged_without_values(
    client: AsyncCometAPI, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    """The log says where the answer was repaired, never what it holds."""
    server.reply_json(
        drifted(
            {("created",): 1.5, (*MESSAGE, "content"): [{"type": "text", "text": "private words"}]}
        )
    )
    with caplog.at_level(logging.INFO, logger="aiocometapi"):
        await client.chat.completions.create(model=MODEL, messages=[user("q")])
    [line] = [r.getMessage() for r in caplog.records if "repaired" in r.getMessage()]
    assert "$.created: float read as int" in line
    assert "$.choices[0].message.content: array read as str" in line
    assert "private words" not in line


@pytest.mark.parametrize(
    "body",
    [
        {"choices": "not a list"},
        {"choices": [{"message": "not an object"}]},
        {"usage": {"prompt_tokens": "many"}},
    ],
    ids=["choices", "message", "tokens"],
)
async def test_what_is_not_drift_still_fails(
    client: AsyncCometAPI, server: MockServer, body: Any
) -> None:
    """An answer that is not a completion at all is still refused, with its text shown."""
    server.reply_json(body)
    with pytest.raises(APIResponseValidationError) as raised:
        await client.chat.completions.create(model=MODEL, messages=[user("q")], max_retries=0)
    assert json.dumps(body, separators=(",", ":")) in str(raised.value)
    assert "Expected" in str(raised.value)  # what did not fit, and where


def chunk(delta: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "finish_reason": None}],
        **top,
    }


async def test_drifted_chunks_are_repaired(client: AsyncCometAPI, server: MockServer) -> None:
    """Streamed, each drifted chunk is repaired on its own and the stream goes on."""
    server.reply_stream(
        [
            chunk({"role": "assistant", "content": ""}, id=None, created=1.5),
            {
                **chunk({"content": "the "}),
                "choices": [{"index": "0", "delta": {"content": "the "}, "finish_reason": None}],
            },
            chunk({"content": [{"type": "text", "text": "answer"}]}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "add", "arguments": {"a": 1}},
                        }
                    ]
                }
            ),
            chunk({}, usage={"prompt_tokens": 3.0, "completion_tokens": 2, "total_tokens": 5}),
        ]
    )
    async with await client.chat.completions.create(
        model=MODEL, messages=[user("q")], stream=True
    ) as stream:
        chunks = [c async for c in stream]
    assert len(chunks) == 5
    message = stream.completion.choices[0].message
    assert message.content == "the answer"
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.arguments == '{"a":1}'
    assert stream.completion.usage is not None and stream.completion.usage.prompt_tokens == 3


async def test_a_drifting_stream_logs_once(
    client: AsyncCometAPI, server: MockServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A provider that drifts in every chunk gets every chunk repaired, and one log line."""
    drifting = [
        {
            **chunk({"content": f"w{i} "}),
            "choices": [{"index": "0", "delta": {"content": f"w{i} "}, "finish_reason": None}],
        }
        for i in range(50)
    ]
    server.reply_stream(drifting)
    with caplog.at_level(logging.INFO, logger="aiocometapi"):
        async with await client.chat.completions.create(
            model=MODEL, messages=[user("q")], stream=True
        ) as stream:
            text = "".join([t async for t in stream.text()])
    assert text == "".join(f"w{i} " for i in range(50))
    assert len([r for r in caplog.records if "repaired" in r.getMessage()]) == 1


async def test_a_chunk_that_is_not_drift_still_fails(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A chunk that is not a chunk is a StreamError, with what came before as the partial."""
    server.reply_stream([chunk({"content": "so far"}), {"choices": 5}])
    async with await client.chat.completions.create(
        model=MODEL, messages=[user("q")], stream=True
    ) as stream:
        with pytest.raises(StreamError) as raised:
            async for _ in stream:
                pass
    assert raised.value.partial is not None
    assert raised.value.partial.choices[0].message.content == "so far"


def paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside ``value``."""
    found: list[tuple[Any, ...]] = []
    items = value.items() if isinstance(value, dict) else enumerate(value)
    for key, inner in items:
        found.append((*prefix, key))
        if isinstance(inner, (dict, list)):
            found.extend(paths(inner, (*prefix, key)))
    return found


ANSWER_PATHS = paths(
    {
        **ANSWER,
        "choices": [
            {
                **ANSWER["choices"][0],
                "message": {**ANSWER["choices"][0]["message"], "tool_calls": [CALL]},
            }
        ],
    }
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(changes=st.dictionaries(st.sampled_from(ANSWER_PATHS), json_values, max_size=4))
def test_any_drift_is_repaired_or_refused(changes: dict[tuple[Any, ...], Any]) -> None:
    """Whatever lands wherever in an answer, decoding gives a completion or msgspec's own
    error (which the client turns into APIResponseValidationError); nothing else escapes."""
    answer = {
        **ANSWER,
        "choices": [
            {
                **ANSWER["choices"][0],
                "message": {**ANSWER["choices"][0]["message"], "tool_calls": [CALL]},
            }
        ],
    }
    answer = copy.deepcopy(answer)
    for path, value in sorted(changes.items(), key=lambda item: len(item[0])):
        target: Any = answer
        try:
            for step in path[:-1]:
                target = target[step]
            target[path[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue  # an earlier change replaced what this path went through
    try:
        completion = decode(DECODER, msgspec.json.encode(answer), what="an answer")
    except msgspec.DecodeError:
        return
    assert isinstance(completion, ChatCompletion)


# --------------------------------------------------------------------------- fields not named


class Values(msgspec.Struct):
    values: list[int]


async def test_answer_keeps_every_field(client: AsyncCometAPI, server: MockServer) -> None:
    """An answer's JSON is kept: `extra` holds what the types do not name (OpenRouter's
    provider and native_finish_reason here; its cost is typed, `usage.cost`), and `raw_json`
    all of it."""
    answer = drifted({})
    answer["provider"] = "Anthropic"
    answer["usage"]["cost"] = 0.0021
    answer["choices"][0]["native_finish_reason"] = "end_turn"
    server.reply_json(answer)
    completion = await client.chat.completions.create(model=MODEL, messages=[user("x")])
    assert completion.extra == {
        "provider": "Anthropic", "choices": [{"native_finish_reason": "end_turn"}],
    }  # fmt: skip
    assert completion.usage is not None and completion.usage.cost == 0.0021
    assert json.loads(completion.raw_json or b"null") == answer
    encoded = msgspec.json.decode(msgspec.json.encode(completion))
    assert set(encoded) == set(ChatCompletion.__struct_fields__)  # the JSON kept is no field


async def test_parsed_answer_keeps_every_field(client: AsyncCometAPI, server: MockServer) -> None:
    """parse() keeps the answer's JSON too, and Azure's filter results on the choice."""
    answer = drifted({(*MESSAGE, "content"): '{"values": [1, 2]}'})
    answer["provider"] = "Azure"
    answer["choices"][0]["content_filter_results"] = {"hate": {"filtered": False}}
    server.reply_json(answer)
    parsed = await client.chat.completions.parse(
        model=MODEL, messages=[user("x")], response_format=Values
    )
    assert parsed.choices[0].message.parsed == Values(values=[1, 2])
    assert parsed.extra == {"provider": "Azure"}
    assert parsed.choices[0].content_filter_results == {"hate": {"filtered": False}}


def test_answer_with_reasoning_under_its_other_name() -> None:
    """`message.reasoning` (OpenRouter, vLLM) is kept and read by reasoning_text."""
    completion = decode(DECODER, msgspec.json.encode(drifted({
        (*MESSAGE, "reasoning"): "because",
        (*MESSAGE, "reasoning_details"): [{"type": "reasoning.text", "text": "because"}],
    })), what="an answer")  # fmt: skip
    message = completion.choices[0].message
    assert (message.reasoning, message.reasoning_text) == ("because", "because")
    assert message.reasoning_details == [{"type": "reasoning.text", "text": "because"}]


def test_azure_filter_results_in_an_answer() -> None:
    """Azure's prompt and content filter results are typed on an answer."""
    completion = decode(DECODER, msgspec.json.encode(drifted({
        ("prompt_filter_results",): [{"prompt_index": 0, "content_filter_results": {}}],
        ("choices", 0, "content_filter_results"): {"violence": {"filtered": False}},
    })), what="an answer")  # fmt: skip
    assert completion.prompt_filter_results == [{"prompt_index": 0, "content_filter_results": {}}]
    assert completion.choices[0].content_filter_results == {"violence": {"filtered": False}}
    assert completion.extra == {}  # decoded outside the client: no JSON kept


def test_magistral_thinking_parts_are_reasoning() -> None:
    """Mistral's Magistral sends content as thinking parts beside text: the text is the
    content, the thinking the reasoning, instead of both as JSON text in content."""
    completion = decode(DECODER, msgspec.json.encode(drifted({
        (*MESSAGE, "content"): [
            {"type": "thinking", "thinking": [{"type": "text", "text": "2+2 is "},
                                             {"type": "text", "text": "4."}]},
            {"type": "text", "text": "4"},
        ],
    })), what="an answer")  # fmt: skip
    message = completion.choices[0].message
    assert (message.content, message.reasoning) == ("4", "2+2 is 4.")
    assert message.reasoning_text == "2+2 is 4."
