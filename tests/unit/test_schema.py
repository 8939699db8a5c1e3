"""Structured outputs, the pure part: strict schemas from msgspec types, answers parsed into them.

parse() against the local server is in tests/integration/test_structured.py.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated, Any, Generic, Literal, TypedDict, TypeVar

import msgspec
import pytest

from aiocometapi import to_strict_json_schema
from aiocometapi._structured import json_schema, parse_completion
from aiocometapi.types import ChatCompletion, ParsedChatCompletion

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
        "type": "object",
        "additionalProperties": {"type": "integer"},
    }


def test_generic_name_is_sanitised() -> None:
    """A generic Struct's name is made fit for ^[a-zA-Z0-9_-]{1,64}$."""

    name, _ = json_schema(Page[int], strict=True)
    assert name == "Page_int"


def test_tool_call_only_choice_is_not_parsed() -> None:
    """A choice with tool calls and no content gets parsed=None instead of an error."""
    completion = msgspec.convert(
        {
            "choices": [
                {
                    "message": {
                        "content": None,
                        "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}],
                    }
                }
            ]
        },
        ChatCompletion,
    )
    parsed: ParsedChatCompletion[Any] = parse_completion(completion, Person)
    assert parsed.choices[0].message.parsed is None
    assert parsed.choices[0].message.tool_calls == completion.choices[0].message.tool_calls
