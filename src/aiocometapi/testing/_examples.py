"""A value that fits a JSON schema, made up the same way every time: what the mock server answers
to a request with a ``json_schema`` response format, and passes as a tool call's arguments."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["example"]

_MAX_DEPTH = 16
"""A recursive schema (a tree of Structs) is cut off here, with ``null``."""


def example(schema: Any) -> Any:
    """A deterministic instance of ``schema`` (``$ref`` into ``$defs`` resolved)."""
    return _example(schema, schema if isinstance(schema, Mapping) else {}, 0)


def _example(schema: Any, root: Mapping[str, Any], depth: int) -> Any:
    if not isinstance(schema, Mapping) or depth > _MAX_DEPTH:
        return None
    if "$ref" in schema:
        return _example(_resolve(schema["$ref"], root), root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if "default" in schema:
        return schema["default"]
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = schema.get(key)
        if isinstance(options, list) and options:
            chosen = next((o for o in options if not _is_null(o)), options[0])
            return _example(chosen, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object" or (kind is None and "properties" in schema):
        properties = schema.get("properties")
        if not isinstance(properties, Mapping):
            return {}
        return {name: _example(value, root, depth + 1) for name, value in properties.items()}
    if kind == "array":
        count = max(1, int(schema.get("minItems") or 1))
        return [_example(schema.get("items"), root, depth + 1) for _ in range(count)]
    if kind == "string":
        return "example"
    if kind == "integer":
        return int(schema.get("minimum", 1))
    if kind == "number":
        return float(schema.get("minimum", 1.5))
    if kind == "boolean":
        return True
    return None


def _is_null(option: Any) -> bool:
    return isinstance(option, Mapping) and option.get("type") == "null"


def _resolve(reference: Any, root: Mapping[str, Any]) -> Any:
    """``#/$defs/Name`` (or any ``#/a/b`` pointer) inside ``root``; ``None`` if it is not there."""
    if not isinstance(reference, str) or not reference.startswith("#/"):
        return None
    target: Any = root
    for part in reference[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        if not isinstance(target, Mapping) or part not in target:
            return None
        target = target[part]
    return target
