"""to_dict / to_json / model_dump / model_dump_json on the response types, on real answers."""

from __future__ import annotations

import datetime
import json
from typing import Any

import aiohttp
import msgspec
import pytest
from aiohttp import web

from aiocometapi import AsyncCometAPI
from aiocometapi.testing import MockServer
from aiocometapi.types import (
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionMessage,
    Model,
    ModelList,
    ToolCall,
    Usage,
)
from conftest import user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"

# As OpenAI sends it: explicit nulls, zeros and a first choice at index 0.
SENT: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1_700_000_000,
    "model": MODEL,
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": None,
                "refusal": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": '{"a":1}'},
                        "extra_content": {"google": {"thought_signature": "c2ln"}},
                    }
                ],
            },
            "logprobs": None,
            "finish_reason": "tool_calls",
        }
    ],
    "usage": {
        "prompt_tokens": 5,
        "completion_tokens": 0,
        "total_tokens": 5,
        "completion_tokens_details": {"reasoning_tokens": 0},
    },
    "system_fingerprint": None,
    "provider": "a gateway's own member, not a field",
}


def without_nulls(value: Any) -> Any:
    """``value`` with every null object member removed, recursively."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


async def sent_completion(client: AsyncCometAPI, server: MockServer) -> ChatCompletion:
    server.reply_json(SENT)
    return await client.chat.completions.create(model=MODEL, messages=[user("add")])


async def test_to_dict_is_what_the_server_sent(client: AsyncCometAPI, server: MockServer) -> None:
    """to_dict() gives the answer's members as the server sent them, nulls and zeros included,
    and none it did not send."""
    completion = await sent_completion(client, server)
    expected = {key: value for key, value in SENT.items() if key != "provider"}  # not a field
    assert completion.to_dict() == expected
    assert json.loads(json.dumps(completion.to_dict())) == expected
    assert completion.to_dict(exclude_none=True) == without_nulls(expected)


async def test_without_the_sent_json_none_is_unset(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """For an answer assembled from a stream (no JSON of its own), a None field counts as not
    sent, and every other field as sent."""
    stream = await client.chat.completions.create(
        model=MODEL, messages=[user("hi")], stream=True, stream_options={"include_usage": False}
    )
    async with stream:
        completion = await stream.final()
    assert completion.raw_json is None
    message = completion.to_dict()["choices"][0]["message"]
    assert message == {"role": "assistant", "content": "Echo: hi"}
    assert "usage" not in completion.to_dict() and "system_fingerprint" not in completion.to_dict()
    built = ChatCompletion(id="x", usage=Usage())
    assert built.to_dict()["usage"] == {
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
    }


async def test_request_id_is_not_serialised(client: AsyncCometAPI, server: MockServer) -> None:
    """request_id (from headers) stays out of the output; _request_id reads it, as in openai."""
    completion = await sent_completion(client, server)
    assert completion.request_id is not None
    assert completion._request_id == completion.request_id
    for dumped in (
        completion.to_dict(),
        completion.model_dump(),
        completion.to_dict(exclude_unset=False),
    ):
        assert "request_id" not in dumped
        assert "adjustments" not in dumped


async def test_to_json_round_trips(client: AsyncCometAPI, server: MockServer) -> None:
    """to_json() decodes back into an equal completion (request_id aside)."""
    completion = await sent_completion(client, server)
    again = msgspec.json.decode(completion.to_json(), type=ChatCompletion)
    assert again == msgspec.structs.replace(completion, request_id=None)
    compact = msgspec.json.decode(completion.to_json(indent=None), type=ChatCompletion)
    assert compact == again


async def test_to_json_indents_like_openai(client: AsyncCometAPI, server: MockServer) -> None:
    """to_json() is indented by two spaces by default, compact with indent=None."""
    completion = await sent_completion(client, server)
    assert completion.to_json().startswith('{\n  "id": "chatcmpl-1",\n')
    assert "\n" not in completion.to_json(indent=None)
    assert completion.to_json(indent=4).startswith('{\n    "id"')


async def test_model_dump_has_every_field(client: AsyncCometAPI, server: MockServer) -> None:
    """model_dump() has pydantic's default: every field, None ones included."""
    completion = await sent_completion(client, server)
    dumped = completion.model_dump()
    assert set(dumped) == set(ChatCompletion.__struct_fields__) - {"request_id", "adjustments"}
    assert dumped["system_fingerprint"] is None
    assert dumped["choices"][0]["message"]["content"] is None
    assert json.loads(completion.model_dump_json()) == dumped
    assert completion.model_dump(exclude_unset=True) == completion.to_dict()


async def test_exclusion_flags(client: AsyncCometAPI, server: MockServer) -> None:
    """exclude_none, exclude_defaults, include and exclude leave out what they name."""
    completion = await sent_completion(client, server)
    no_none = completion.model_dump(exclude_none=True)
    assert "system_fingerprint" not in no_none and "service_tier" not in no_none
    assert no_none["usage"]["completion_tokens"] == 0
    no_defaults = completion.to_dict(exclude_defaults=True)
    assert "completion_tokens" not in no_defaults["usage"]  # 0 is its default
    assert "index" not in no_defaults["choices"][0]
    assert no_defaults["usage"]["prompt_tokens"] == 5
    assert set(completion.model_dump(include={"id", "usage"})) == {"id", "usage"}
    assert "choices" not in completion.model_dump_json(exclude={"choices"})
    with pytest.raises(TypeError, match="top-level field names"):
        completion.model_dump(include={"choices": {"index"}})  # type: ignore[arg-type]


async def test_nested_types_serialise_alone(client: AsyncCometAPI, server: MockServer) -> None:
    """A message, a tool call and usage each have the same methods."""
    completion = await sent_completion(client, server)
    message = completion.choices[0].message
    assert isinstance(message, ChatCompletionMessage)
    assert message.to_dict()["tool_calls"][0]["extra_content"] == {
        "google": {"thought_signature": "c2ln"}
    }
    assert message.tool_calls is not None
    call = message.tool_calls[0]
    assert isinstance(call, ToolCall)
    assert json.loads(call.to_json()) == SENT["choices"][0]["message"]["tool_calls"][0]
    assert isinstance(completion.usage, Usage)
    assert completion.usage.model_dump()["prompt_tokens_details"] is None


async def test_tool_call_without_provider_data(client: AsyncCometAPI, server: MockServer) -> None:
    """A tool call that carried no extra_content has none in its dict, even with every field."""
    server.reply_turn(tool_calls=[("add", {"a": 1})])
    completion = await client.chat.completions.create(model=MODEL, messages=[user("add")])
    calls = completion.choices[0].message.tool_calls
    assert calls is not None
    assert "extra_content" not in calls[0].model_dump()
    assert calls[0].to_dict()["function"] == {"name": "add", "arguments": '{"a":1}'}


async def test_stream_chunks_relay_as_json(client: AsyncCometAPI, server: MockServer) -> None:
    """Each chunk's to_json() decodes back into the same chunk, as an SSE relay needs."""
    stream = await client.chat.completions.create(
        model=MODEL,
        messages=[user("one two three")],
        stream=True,
        stream_options={"include_usage": True},
    )
    relayed = []
    async with stream:
        async for chunk in stream:
            relayed.append(chunk.to_json(indent=None))
            assert msgspec.json.decode(relayed[-1], type=ChatCompletionChunk) == chunk
    assert "usage" in json.loads(relayed[-1])
    assert "usage" not in json.loads(relayed[0])  # null in every chunk but the last
    final = stream.completion.to_dict()
    assert final["choices"][0]["message"]["content"] == "Echo: one two three"


async def test_models_serialise(client: AsyncCometAPI, server: MockServer) -> None:
    """The model list and a model give their JSON back."""
    models = await client.models.list()
    assert isinstance(models, ModelList)
    dumped = models.to_dict()
    assert dumped["object"] == "list"
    assert [m["id"] for m in dumped["data"]] == [m.id for m in models]
    model = await client.models.retrieve(MODEL)
    assert isinstance(model, Model)
    assert json.loads(model.model_dump_json()) == dumped["data"][0]


class Event(msgspec.Struct):
    name: str
    day: datetime.date


async def test_parsed_answer_serialises(client: AsyncCometAPI, server: MockServer) -> None:
    """A parse() result includes the parsed object; mode='json' writes a date as text."""
    server.reply_turn(content='{"name": "launch", "day": "2025-03-01"}')
    parsed = await client.chat.completions.parse(
        model=MODEL, messages=[user("when?")], response_format=Event
    )
    message = parsed.to_dict()["choices"][0]["message"]
    assert message["parsed"] == {"name": "launch", "day": datetime.date(2025, 3, 1)}
    in_json = parsed.to_dict(mode="json")["choices"][0]["message"]["parsed"]
    assert in_json == {"name": "launch", "day": "2025-03-01"}
    assert json.loads(parsed.to_json())["choices"][0]["message"]["parsed"]["day"] == "2025-03-01"
    with pytest.raises(ValueError, match="mode"):
        parsed.to_dict(mode="yaml")  # type: ignore[arg-type]


async def test_web_handler_returns_to_dict(client: AsyncCometAPI, server: MockServer) -> None:
    """A web handler that returns completion.to_dict() as JSON serves the completion."""

    async def handler(request: web.Request) -> web.Response:
        completion = await client.chat.completions.create(
            model=MODEL, messages=[user(request.query["q"])]
        )
        return web.json_response(completion.to_dict())

    app = web.Application()
    app.router.add_get("/ask", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        url = f"http://127.0.0.1:{port}/ask"
        async with aiohttp.ClientSession() as session, session.get(url, params={"q": "hi"}) as resp:
            assert resp.status == 200
            body = await resp.json()
    finally:
        await runner.cleanup()
    assert body["choices"][0]["message"]["content"] == "Echo: hi"
    assert msgspec.convert(body, ChatCompletion).choices[0].message.content == "Echo: hi"
