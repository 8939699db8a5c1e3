"""The fields of a response's JSON that its Struct does not name, found on demand."""

from __future__ import annotations

from typing import Any

import msgspec
from msgspec import inspect

__all__ = ["extra_fields"]


class _Shape:
    """The JSON names a Struct type knows, and how to walk into the ones holding Structs."""

    __slots__ = ("items", "members")

    def __init__(self) -> None:
        self.members: dict[str, _Shape | None] = {}
        """Each field's JSON name -> the shape of the Struct it holds (None: not walked)."""
        self.items: set[str] = set()
        """The names among ``members`` whose value is a list of such Structs."""


_shapes: dict[type, _Shape] = {}


def _shape(tp: type) -> _Shape:
    shape = _shapes.get(tp)
    if shape is None:
        shape = _shapes[tp] = _Shape()  # stored first: a recursive type finds itself
        info = inspect.type_info(tp)
        assert isinstance(info, inspect.StructType)
        for field in info.fields:
            inner, is_list = _struct_in(field.type)
            shape.members[field.encode_name] = None if inner is None else _shape(inner)
            if is_list:
                shape.items.add(field.encode_name)
    return shape


def _struct_in(info: inspect.Type) -> tuple[type | None, bool]:
    """The Struct type a field holds (alone, in a union, or in a list), and whether in a list."""
    if isinstance(info, inspect.UnionType):
        for option in info.types:
            found = _struct_in(option)
            if found[0] is not None:
                return found
        return None, False
    if isinstance(info, inspect.StructType):
        return info.cls, False
    if isinstance(info, inspect.ListType) and isinstance(info.item_type, inspect.StructType):
        return info.item_type.cls, True
    return None, False


def extra_fields(raw: bytes | str | None, tp: type) -> dict[str, Any]:
    """The members of the JSON object ``raw`` that ``tp`` (a Struct type) does not name.

    Walks into members that hold Structs (or lists of them), keeping only what is extra
    there too; a list keeps one entry per element, ``{}`` for an element with nothing extra.
    """
    if raw is None:
        return {}
    try:
        value = msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return {}
    return _extra(value, _shape(tp)) if isinstance(value, dict) else {}


def _extra(value: dict[str, Any], shape: _Shape) -> dict[str, Any]:
    found: dict[str, Any] = {}
    members = shape.members
    for name, member in value.items():
        if name not in members:
            found[name] = member
            continue
        inner = members[name]
        if inner is None:
            continue
        if name in shape.items:
            if isinstance(member, list):
                parts = [_extra(item, inner) if isinstance(item, dict) else {} for item in member]
                if any(parts):
                    found[name] = parts
        elif isinstance(member, dict):
            part = _extra(member, inner)
            if part:
                found[name] = part
    return found


def keep_raw_json(value: Any, raw: bytes | str | None) -> None:
    """Let ``value`` (a ``ChatCompletion`` or a chunk able to hold it) answer ``raw_json`` and
    ``extra`` from ``raw``, kept by reference and decoded again only when asked."""
    value._raw_json = raw
