"""Read by mypy --strict (not run): pins the public signatures users rely on."""

from __future__ import annotations

from typing_extensions import assert_type

from aiocometapi import AsyncCometAPI, AsyncStream, Timeout
from aiocometapi.types import ChatCompletion, ChatCompletionChunk, ModelList, UserMessage


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
    assert_type(await client.models.list(), ModelList)
    assert_type(client.with_options(timeout=3), AsyncCometAPI)
