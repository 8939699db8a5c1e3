"""Raw responses (with_raw_response) and the headers of a plain answer, async and sync."""

from __future__ import annotations

import datetime
import json
from collections.abc import Iterator

import msgspec
import pytest

from aiocometapi import AsyncCometAPI, AsyncStream, CometAPI, NotFoundError, RawResponse, Stream
from aiocometapi.testing import DEFAULT_MODELS, MockServer
from aiocometapi.types import ChatCompletion, Model, ModelList
from conftest import FAKE_KEY, user

MODEL = "gpt-5.4-mini"
LIMITS = {"x-ratelimit-remaining-requests": "99", "openai-processing-ms": "12"}


class Answer(msgspec.Struct):
    text: str


@pytest.mark.anyio
async def test_raw_create(client: AsyncCometAPI, server: MockServer) -> None:
    """with_raw_response.create gives status, headers (any case), request id, elapsed and
    tries, and parse() the completion create() would return."""
    server.reply_error(503, "busy")  # retried once
    raw = await client.chat.completions.with_raw_response.create(model=MODEL, messages=[user("hi")])
    assert isinstance(raw, RawResponse)
    assert raw.status_code == 200
    assert raw.headers.get("X-Request-Id") == raw.headers.get("x-request-id") == raw.request_id
    assert raw.request_id is not None and raw.request_id.startswith("mock-")
    assert isinstance(raw.elapsed, datetime.timedelta) and raw.elapsed.total_seconds() > 0
    assert raw.retries_taken == 1
    completion = raw.parse()
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == "Echo: hi"
    assert completion.request_id == raw.request_id


@pytest.mark.anyio
async def test_raw_create_streamed(client: AsyncCometAPI, server: MockServer) -> None:
    """With stream=True, parse() gives the AsyncStream and the headers are the stream's."""
    raw = await client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[user("s")], stream=True
    )
    assert raw.status_code == 200
    assert raw.headers["content-type"].startswith("text/event-stream")
    stream = raw.parse()
    assert isinstance(stream, AsyncStream)
    async with stream:
        assert (await stream.final()).choices[0].message.content == "Echo: s"


@pytest.mark.anyio
async def test_raw_parse_and_errors(client: AsyncCometAPI, server: MockServer) -> None:
    """with_raw_response.parse parses; an error answer still raises its class."""
    server.reply_json(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": '{"text": "ok"}'}}]},
        headers=LIMITS,
    )
    raw = await client.chat.completions.with_raw_response.parse(
        model=MODEL, messages=[user("p")], response_format=Answer
    )
    assert raw.headers["x-ratelimit-remaining-requests"] == "99"
    parsed = raw.parse()
    assert parsed.choices[0].message.parsed == Answer(text="ok")
    assert parsed.headers["openai-processing-ms"] == "12"
    server.reply_error(404, "no such model", code="model_not_found")
    with pytest.raises(NotFoundError):
        await client.chat.completions.with_raw_response.create(model="x", messages=[user("p")])


@pytest.mark.anyio
async def test_plain_answer_has_headers(client: AsyncCometAPI, server: MockServer) -> None:
    """A plain create() or parse() answer carries its response headers, never serialised."""
    server.reply_json(
        {"choices": [{"index": 0, "message": {"role": "assistant", "content": "x"}}]},
        headers=LIMITS,
    )
    completion = await client.chat.completions.create(model=MODEL, messages=[user("h")])
    assert completion.headers["X-RateLimit-Remaining-Requests"] == "99"
    for text in (
        completion.to_json(),
        completion.model_dump_json(),
        json.dumps(completion.model_dump()),
        msgspec.json.encode(completion).decode(),
    ):
        assert "99" not in text and "headers" not in text
    assert ChatCompletion().headers == {}


@pytest.mark.anyio
async def test_raw_models(client: AsyncCometAPI, server: MockServer) -> None:
    """models.with_raw_response.list and retrieve give the list and the model behind parse()."""
    raw = await client.models.with_raw_response.list()
    models = raw.parse()
    assert isinstance(models, ModelList)
    assert [m.id for m in models] == DEFAULT_MODELS
    assert raw.status_code == 200 and raw.request_id is not None
    one = await client.models.with_raw_response.retrieve(MODEL)
    assert isinstance(one.parse(), Model) and one.parse().id == MODEL
    with pytest.raises(NotFoundError):
        await client.models.with_raw_response.retrieve("nope")


@pytest.fixture
def sync_client(threaded_server: MockServer) -> Iterator[CometAPI]:
    with CometAPI(FAKE_KEY, base_url=threaded_server.url) as api:
        yield api


def test_sync_raw_responses(sync_client: CometAPI, threaded_server: MockServer) -> None:
    """The sync client's with_raw_response works the same; a stream comes back as a Stream."""
    raw = sync_client.chat.completions.with_raw_response.create(model=MODEL, messages=[user("a")])
    assert raw.status_code == 200 and raw.request_id is not None
    assert raw.parse().choices[0].message.content == "Echo: a"
    streamed = sync_client.chat.completions.with_raw_response.create(
        model=MODEL, messages=[user("b")], stream=True
    )
    with streamed.parse() as stream:
        assert isinstance(stream, Stream)
        assert "".join(stream.text()) == "Echo: b"
    parsed = sync_client.chat.completions.with_raw_response.parse(
        model=MODEL, messages=[user("c")], response_format=Answer
    )
    assert isinstance(parsed.parse().choices[0].message.parsed, Answer)
    assert sync_client.models.with_raw_response.list().parse().data[0].id == DEFAULT_MODELS[0]
    assert sync_client.models.with_raw_response.retrieve(MODEL).parse().id == MODEL
