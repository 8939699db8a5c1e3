"""Structured outputs: strict schemas from msgspec types, and parse() against the local server."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any, Generic, Literal, TypedDict, TypeVar

import msgspec
import pytest

from aiocometapi import AsyncCometAPI, ContentParseError, ParsedAsyncStream, to_strict_json_schema
from aiocometapi._structured import json_schema, parse_completion
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion, ParsedChatCompletion
from conftest import user

pytestmark = pytest.mark.anyio

MODEL = "gpt-5.4-mini"

T = TypeVar("T")


class Address(msgspec.Struct):
    """A postal address."""

    street: str
    city: str


class Person(msgspec.Struct):
    name: str
    age: int | None = None
    role: Literal["admin", "user"] = "user"
    emails: list[str] = []
    home: Address | None = None
    previous: list[Address] = []


ADDRESS_SCHEMA = {
    "title": "Address",
    "description": "A postal address.",
    "type": "object",
    "properties": {"street": {"type": "string"}, "city": {"type": "string"}},
    "required": ["street", "city"],
    "additionalProperties": False,
}

PERSON_SCHEMA = {
    "title": "Person",
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "age": {"anyOf": [{"type": "integer"}, {"type": "null"}]},
        "role": {"enum": ["admin", "user"]},
        "emails": {"type": "array", "items": {"type": "string"}},
        "home": {"anyOf": [{"$ref": "#/$defs/Address"}, {"type": "null"}]},
        "previous": {"type": "array", "items": {"$ref": "#/$defs/Address"}},
    },
    "required": ["name", "age", "role", "emails", "home", "previous"],
    "additionalProperties": False,
    "$defs": {"Address": ADDRESS_SCHEMA},
}

def unordered(schema: Any) -> Any:
    """``schema`` with the alternatives of every ``anyOf`` in one fixed order.

    The order of ``anyOf`` alternatives means nothing, and msgspec versions differ in it (0.18
    puts ``null`` before a ``$ref``, 0.23 after it).
    """
    if isinstance(schema, dict):
        return {
            key: sorted(map(unordered, value), key=lambda item: json.dumps(item, sort_keys=True))
            if key == "anyOf"
            else unordered(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [unordered(item) for item in schema]
    return schema


class Node(msgspec.Struct):
    value: int
    children: list[Node] = []


class Cat(msgspec.Struct, tag=True):
    lives: int


class Dog(msgspec.Struct, tag=True):
    good: bool


class Home(msgspec.Struct):
    address: Annotated[Address, msgspec.Meta(description="where")]
    pet: Cat | Dog


class Limits(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(min_length=2, max_length=4, pattern="^[A-Z]+$")]
    count: Annotated[int, msgspec.Meta(ge=0, le=9)]


class Code(msgspec.Struct):
    code: Annotated[str, msgspec.Meta(max_length=3)]


class Scores(msgspec.Struct):
    by_name: dict[str, int]


class Page(msgspec.Struct, Generic[T]):
    items: list[T]


@dataclasses.dataclass
class Point:
    x: float
    y: float = 0.0


class Span(TypedDict):
    start: int
    end: int


ADA = {
    "name": "Ada", "age": 36, "role": "admin", "emails": ["ada@example.org"],
    "home": {"street": "1 Main St", "city": "London"}, "previous": [],
}


# --------------------------------------------------------------------------- schemas


def test_strict_schema_of_nested_optional_literal_and_list_fields() -> None:
    """Every property is required, optionals are nullable, nested types sit in $defs."""
    assert unordered(to_strict_json_schema(Person)) == unordered(PERSON_SCHEMA)


def test_non_strict_schema_keeps_defaults_and_optional_fields() -> None:
    """Without strict, fields with a default stay optional and show their default."""
    name, schema = json_schema(Person, strict=False)
    assert name == "Person"
    assert schema["required"] == ["name"]
    assert schema["properties"]["role"] == {"enum": ["admin", "user"], "default": "user"}
    assert schema["additionalProperties"] is False


def test_recursive_type_keeps_its_own_definition() -> None:
    """A type that contains itself stays in $defs so that its $ref resolves."""

    schema = to_strict_json_schema(Node)
    assert schema["properties"]["children"] == {"type": "array", "items": {"$ref": "#/$defs/Node"}}
    assert schema["$defs"]["Node"]["required"] == ["value", "children"]


def test_ref_with_description_is_inlined_and_discriminator_dropped() -> None:
    """A $ref with sibling keywords is inlined; tagged unions lose the OpenAPI discriminator."""

    schema = to_strict_json_schema(Home)
    address = schema["properties"]["address"]
    assert "$ref" not in address and address["description"] == "where"
    assert address["required"] == ["street", "city"] and address["additionalProperties"] is False
    assert schema["properties"]["pet"] == {
        "anyOf": [{"$ref": "#/$defs/Cat"}, {"$ref": "#/$defs/Dog"}]
    }
    assert set(schema["$defs"]) == {"Cat", "Dog"}  # Address is inlined, so not listed


def test_keywords_strict_mode_rejects_are_removed() -> None:
    """min_length and the like leave the strict schema; supported ones stay."""

    properties = to_strict_json_schema(Limits)["properties"]
    assert properties["code"] == {"type": "string", "pattern": "^[A-Z]+$"}
    assert properties["count"] == {"type": "integer", "minimum": 0, "maximum": 9}


def test_dataclass_and_typeddict_schemas() -> None:
    """Dataclasses and TypedDicts get the same strict treatment as Structs."""

    assert to_strict_json_schema(Point)["required"] == ["x", "y"]
    assert to_strict_json_schema(Span)["additionalProperties"] is False


def test_unsupported_types_are_refused_clearly() -> None:
    """Non-object roots and dict fields (in strict mode) raise TypeError saying why."""

    with pytest.raises(TypeError, match="not an object type"):
        to_strict_json_schema(list[Person])
    with pytest.raises(TypeError, match=r"`Scores.by_name` is a dict"):
        to_strict_json_schema(Scores)
    assert json_schema(Scores, strict=False)[1]["properties"]["by_name"] == {
        "type": "object", "additionalProperties": {"type": "integer"}
    }


def test_generic_name_is_sanitised() -> None:
    """A generic Struct's name is made fit for ^[a-zA-Z0-9_-]{1,64}$."""

    name, _ = json_schema(Page[int], strict=True)
    assert name == "Page_int"


# --------------------------------------------------------------------------- parse()


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
    assert unordered(sent) == unordered({
        "type": "json_schema",
        "json_schema": {"name": "Person", "schema": PERSON_SCHEMA, "strict": True},
    })


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


def test_tool_call_only_choice_is_not_parsed() -> None:
    """A choice with tool calls and no content gets parsed=None instead of an error."""
    completion = msgspec.convert(
        {"choices": [{"message": {"content": None, "tool_calls": [
            {"id": "c1", "function": {"name": "f", "arguments": "{}"}}
        ]}}]},
        ChatCompletion,
    )
    parsed: ParsedChatCompletion[Any] = parse_completion(completion, Person)
    assert parsed.choices[0].message.parsed is None
    assert parsed.choices[0].message.tool_calls == completion.choices[0].message.tool_calls
