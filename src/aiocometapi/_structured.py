"""Structured outputs: msgspec types -> strict JSON schemas, and answers parsed back into them.

The stream ``parse(stream=True)`` returns, ``ParsedAsyncStream``, lives beside ``AsyncStream``
in ``_parsed_stream``.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Mapping
from typing import Any, TypeVar

import msgspec

from ._exceptions import ContentParseError
from .types import (
    ChatCompletion,
    JSONSchema,
    ParsedChatCompletion,
    ParsedChatCompletionMessage,
    ParsedChoice,
    ResponseFormatJSONSchema,
)

__all__ = [
    "json_schema",
    "parse_completion",
    "response_format_for",
    "schema_name",
    "to_strict_json_schema",
]

T = TypeVar("T")

_REF = "#/$defs/"
_NAME = re.compile(r"[^a-zA-Z0-9_-]+")

# Keywords OpenAI's strict mode rejects ("Supported schemas" in its Structured Outputs guide).
# The constraints they carry are still checked when the answer is decoded.
_STRICT_UNSUPPORTED = frozenset(
    {
        "minLength",
        "maxLength",
        "patternProperties",
        "unevaluatedProperties",
        "propertyNames",
        "minProperties",
        "maxProperties",
        "unevaluatedItems",
        "contains",
        "minContains",
        "maxContains",
        "uniqueItems",
        "contentEncoding",
        "contentMediaType",
    }
)
_STRICT_FORMATS = frozenset(
    {
        "date-time",
        "time",
        "date",
        "duration",
        "email",
        "hostname",
        "ipv4",
        "ipv6",
        "uuid",
    }
)


def schema_name(name: str) -> str:
    """``name`` made fit for OpenAI's ``^[a-zA-Z0-9_-]{1,64}$`` names."""
    return _NAME.sub("_", name).strip("_")[:64] or "response"


def json_schema(tp: Any, *, strict: bool) -> tuple[str, dict[str, Any]]:
    """The name and the JSON schema of an object type msgspec understands.

    ``strict`` shapes the schema for OpenAI's strict mode: every property required, keywords
    strict mode rejects removed, and ``dict`` fields refused (strict mode names every key).
    In both modes every object gets ``additionalProperties: false``, ``$ref`` with sibling
    keywords is inlined, and ``$defs`` holds the nested types still referred to.

    Raises:
        TypeError: msgspec has no schema for ``tp``, ``tp`` is not an object type (a Struct,
            dataclass, TypedDict, ...), or, with ``strict``, it holds a free-form ``dict``.
    """
    try:
        (root,), components = msgspec.json.schema_components([tp], ref_template=_REF + "{name}")
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{tp!r} has no JSON schema: {exc}") from exc
    ref = root.get("$ref")
    if isinstance(ref, str) and ref.startswith(_REF):
        name = ref[len(_REF) :]
        root = copy.deepcopy(components[name])
    else:
        name = getattr(tp, "__name__", "response")
    if root.get("type") != "object" or "properties" not in root:
        raise TypeError(
            f"{tp!r} is not an object type: use a msgspec Struct, a dataclass or a TypedDict"
        )
    fixer = _Fixer(components, strict)
    root = fixer.fix(root, name)
    defs = {key: fixer.fix(value, key) for key, value in components.items()}
    used = _references(root, defs)
    if used:
        root["$defs"] = {key: defs[key] for key in defs if key in used}
    return schema_name(name), root


def to_strict_json_schema(tp: Any) -> dict[str, Any]:
    """The JSON schema OpenAI's strict mode accepts for a Struct, dataclass or TypedDict.

    Every property is required (an ``X | None`` field is the way to let the model leave a
    value out), every object has ``additionalProperties: false``, and nested types are kept
    in ``$defs``. Constraints strict mode does not take (``min_length``, ``max_length``, ...)
    are left out of the schema but still checked when an answer is parsed.

    Raises:
        TypeError: ``tp`` is not an object type msgspec understands, or holds a ``dict``.
    """
    return json_schema(tp, strict=True)[1]


_strict_schema = functools.lru_cache(maxsize=256)(functools.partial(json_schema, strict=True))


def response_format_for(tp: Any) -> ResponseFormatJSONSchema:
    """The ``response_format`` that asks for an answer of type ``tp``, in strict mode."""
    name, schema = _strict_schema(tp)
    # A copy each time: the schema is cached, and the request is the caller's to change.
    schema = copy.deepcopy(schema)
    return ResponseFormatJSONSchema(json_schema=JSONSchema(name=name, schema=schema, strict=True))


class _Fixer:
    """Rewrites msgspec's schema nodes in place; ``path`` names the node in error messages."""

    def __init__(self, defs: Mapping[str, dict[str, Any]], strict: bool) -> None:
        self.defs = defs
        self.strict = strict

    def fix(self, node: dict[str, Any], path: str) -> dict[str, Any]:
        ref = node.get("$ref")
        if isinstance(ref, str) and len(node) > 1:
            # OpenAI takes no sibling keywords beside a $ref: inline what it points to.
            del node["$ref"]
            node = {**copy.deepcopy(self.defs[ref[len(_REF) :]]), **node}
        node.pop("discriminator", None)  # an OpenAPI keyword, not JSON Schema
        if self.strict:
            node.pop("default", None)
            for key in _STRICT_UNSUPPORTED.intersection(node):
                del node[key]
            if node.get("format") not in _STRICT_FORMATS:
                node.pop("format", None)
        properties = node.get("properties")
        if isinstance(properties, dict):
            node["properties"] = {
                key: self.fix(value, f"{path}.{key}") for key, value in properties.items()
            }
            node["additionalProperties"] = False
            if self.strict:
                node["required"] = list(properties)
        elif node.get("type") == "object":
            if self.strict:
                raise TypeError(
                    f"`{path}` is a dict: strict mode needs every key named in advance, "
                    "so use a Struct (or a list of key/value Structs) instead"
                )
            extra = node.get("additionalProperties")
            if isinstance(extra, dict):
                node["additionalProperties"] = self.fix(extra, f"{path}[*]")
        items = node.get("items")
        if isinstance(items, dict):
            node["items"] = self.fix(items, f"{path}[*]")
        for key in ("anyOf", "allOf", "prefixItems"):
            variants = node.get(key)
            if isinstance(variants, list):
                node[key] = [self.fix(v, path) for v in variants if isinstance(v, dict)]
        return node


def _references(root: dict[str, Any], defs: Mapping[str, Any]) -> set[str]:
    """The names in ``defs`` that ``root`` refers to, directly or through other defs."""
    found: set[str] = set()
    todo: list[Any] = [root]
    while todo:
        node = todo.pop()
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith(_REF):
                name = ref[len(_REF) :]
                if name not in found and name in defs:
                    found.add(name)
                    todo.append(defs[name])
            todo.extend(value for key, value in node.items() if key != "$defs")
        elif isinstance(node, list):
            todo.extend(node)
    return found


# --------------------------------------------------------------------------- parsing answers


@functools.lru_cache(maxsize=256)
def _decoder(tp: Any) -> msgspec.json.Decoder[Any]:
    return msgspec.json.Decoder(tp)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def _unfenced(content: str) -> str | None:
    """The JSON inside a Markdown code fence, which some models add despite the schema."""
    text = content.strip()
    if not text.startswith("```"):
        return None
    body = text[3:].split("\n", 1)
    if len(body) < 2:
        return None
    inner = body[1].rstrip()
    return inner[:-3] if inner.endswith("```") else None


def _decode(
    content: str, tp: Any, completion: ChatCompletion, index: int, finish: str | None
) -> Any:
    decoder = _decoder(tp)
    try:
        return decoder.decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        inner = _unfenced(content)
        if inner is not None:
            try:
                return decoder.decode(inner)
            except (msgspec.DecodeError, msgspec.ValidationError):
                pass
        why = str(exc)
        if finish == "length":
            why += " (finish_reason='length': the answer was cut short by the token limit)"
        shown = content if len(content) <= 500 else content[:500] + f"... ({len(content)} chars)"
        raise ContentParseError(
            f"The content of choice {index} does not fit `{_type_name(tp)}`: {why}. "
            f"The content: {shown!r}",
            content=content,
            completion=completion,
            choice_index=index,
            detail=why,
        ) from exc


def parse_completion(completion: ChatCompletion, tp: type[T]) -> ParsedChatCompletion[T]:
    """``completion`` with every choice's content decoded into ``tp`` as ``message.parsed``.

    A choice with a refusal, or with tool calls and no content, gets ``parsed = None``.

    Raises:
        ContentParseError: a choice's content is not JSON of type ``tp``.
    """
    choices: list[ParsedChoice[T]] = []
    for choice in completion.choices:
        message = choice.message
        content = message.content
        parsed: T | None = None
        if content is not None and not message.refusal and (content or not message.tool_calls):
            parsed = _decode(content, tp, completion, choice.index, choice.finish_reason)
        fields = msgspec.structs.asdict(message)
        fields["parsed"] = parsed
        choices.append(
            ParsedChoice(
                index=choice.index,
                message=ParsedChatCompletionMessage(**fields),
                finish_reason=choice.finish_reason,
                logprobs=choice.logprobs,
                content_filter_results=choice.content_filter_results,
            )
        )
    fields = msgspec.structs.asdict(completion)
    fields["choices"] = choices
    parsed_completion = ParsedChatCompletion(**fields)
    parsed_completion._raw_json = completion._raw_json
    return parsed_completion
