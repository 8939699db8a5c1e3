"""Structured outputs against the local server: parse(), plain and streamed.

The schemas themselves (and the types used here) are tested in tests/unit/test_schema.py.
"""

from __future__ import annotations

import json
from typing import Annotated

import msgspec
import pytest

from aiocometapi import AsyncCometAPI, ContentParseError, ParsedAsyncStream
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion, ParsedChatCompletion
from conftest import user
from unit.test_schema import PERSON_SCHEMA, Address, Person, Point, unordered

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"

ADA = {
    "name": "Ada",
    "age": 36,
    "role": "admin",
    "emails": ["ada@example.org"],
    "home": {"street": "1 Main St", "city": "London"},
    "previous": [],
}


class Code(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(max_length=3)]


async def test_parse_good_answer(client: AsyncCometAPI, server: MockServer) -> None:
    """parse() sends a strict json_schema named after the type and decodes the answer."""
    server.reply_turn(content=json.dumps(ADA))
    completion = await client.chat.completions.parse(
        model=MODEL, messages=[user("Who?")], response_format=Person
    )
    parsed = completion.choices[0].message.parsed
    assert parsed == Person("Ada", 36, "admin", ["ada@example.org"], Address("1 Main St", "London"))
    assert isinstance(completion, ChatCompletion)
    assert completion.choices[0].message.content == json.dumps(ADA)
    assert completion.request_id is not None
    sent = server.requests[-1].body["response_format"]
    assert unordered(sent) == unordered(
        {
            "type": "json_schema",
            "json_schema": {"name": "Person", "schema": PERSON_SCHEMA, "strict": True},
        }
    )


async def test_parse_refusal(client: AsyncCometAPI, server: MockServer) -> None:
    """A refusal is surfaced in message.refusal; parsed is None and nothing is raised."""
    server.reply_turn(refusal="I can't help with that.")
    completion = await client.chat.completions.parse(
        model=MODEL, messages=[user("Who?")], response_format=Person
    )
    message = completion.choices[0].message
    assert message.refusal == "I can't help with that."
    assert message.parsed is None


async def test_parse_answer_that_does_not_fit(client: AsyncCometAPI, server: MockServer) -> None:
    """Content of the wrong shape raises ContentParseError showing the content and the path."""
    bad = json.dumps({**ADA, "age": "thirty-six"})
    server.reply_turn(content=bad)
    with pytest.raises(ContentParseError) as info:
        await client.chat.completions.parse(
            model=MODEL, messages=[user("Who?")], response_format=Person
        )
    error = info.value
    assert "Expected `int | null`, got `str` - at `$.age`" in str(error)
    assert "thirty-six" in str(error) and "`Person`" in str(error)
    assert error.content == bad and error.choice_index == 0
    assert error.completion.choices[0].message.content == bad


async def test_parse_answer_that_is_not_json(client: AsyncCometAPI, server: MockServer) -> None:
    """Prose instead of JSON raises ContentParseError quoting it."""
    server.reply_turn(content="Ada is a mathematician.")
    with pytest.raises(ContentParseError, match="Ada is a mathematician"):
        await client.chat.completions.parse(
            model=MODEL, messages=[user("Who?")], response_format=Person
        )


async def test_parse_cut_short_says_so(client: AsyncCometAPI, server: MockServer) -> None:
    """JSON cut by the token limit raises an error naming finish_reason='length'."""
    server.reply_turn(content=json.dumps(ADA)[:20], finish_reason="length")
    with pytest.raises(ContentParseError, match="finish_reason='length'"):
        await client.chat.completions.parse(
            model=MODEL, messages=[user("Who?")], response_format=Person
        )


async def test_parse_tolerates_a_code_fence(client: AsyncCometAPI, server: MockServer) -> None:
    """JSON wrapped in a Markdown code fence, as some models send it, is still parsed."""
    server.reply_turn(content="```json\n" + json.dumps(ADA) + "\n```")
    completion = await client.chat.completions.parse(
        model=MODEL, messages=[user("Who?")], response_format=Person
    )
    parsed = completion.choices[0].message.parsed
    assert parsed is not None and parsed.name == "Ada"


async def test_parse_checks_constraints_left_out_of_the_schema(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A constraint strict mode cannot carry (max_length) is still enforced when parsing."""

    server.reply_turn(content='{"code": "ABCDE"}')
    with pytest.raises(ContentParseError, match=r"length <= 3 - at `\$.code`"):
        await client.chat.completions.parse(
            model=MODEL, messages=[user("code?")], response_format=Code
        )


async def test_parse_into_a_dataclass(client: AsyncCometAPI, server: MockServer) -> None:
    """A dataclass works as response_format too."""

    server.reply_turn(content='{"x": 1.5, "y": -2}')
    completion = await client.chat.completions.parse(
        model=MODEL, messages=[user("where?")], response_format=Point
    )
    assert completion.choices[0].message.parsed == Point(1.5, -2.0)


async def test_parse_streamed(client: AsyncCometAPI, server: MockServer) -> None:
    """parse(stream=True): text() yields JSON pieces and final() returns the parsed completion."""
    server.reply_turn(content=json.dumps(ADA))
    stream = await client.chat.completions.parse(
        model=MODEL, messages=[user("Who?")], response_format=Person, stream=True
    )
    assert isinstance(stream, ParsedAsyncStream)
    async with stream:
        pieces = [piece async for piece in stream.text()]
        completion = await stream.final()
    assert len(pieces) > 1 and "".join(pieces) == json.dumps(ADA)
    assert isinstance(completion, ParsedChatCompletion)
    assert completion.choices[0].message.parsed == msgspec.convert(ADA, Person)
    assert server.requests[-1].body["stream"] is True
    assert server.requests[-1].body["response_format"]["json_schema"]["name"] == "Person"


async def test_parse_streamed_refusal_and_bad_content(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """A streamed refusal gives parsed None; streamed content that does not fit raises."""
    server.reply_turn(refusal="No.")
    server.reply_turn(content='{"name": 7}')
    async with await client.chat.completions.parse(
        model=MODEL, messages=[user("a")], response_format=Person, stream=True
    ) as stream:
        refused = await stream.final()
    assert refused.choices[0].message.parsed is None
    assert refused.choices[0].message.refusal == "No."
    async with await client.chat.completions.parse(
        model=MODEL, messages=[user("b")], response_format=Person, stream=True
    ) as stream:
        with pytest.raises(ContentParseError, match=r"at `\$.name`"):
            await stream.final()
