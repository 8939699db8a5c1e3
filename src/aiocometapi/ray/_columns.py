"""The output columns: one fixed Arrow type each, so every block of the output has one schema.

A ``response_format`` type adds one column per field, typed from its msgspec description (values
Arrow has no type for, such as dicts of any keys, come as JSON text).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
import pyarrow as pa

from .._exceptions import APIStatusError, CometAPIError
from ..types import ChatCompletion

__all__ = [
    "ANSWER_COLUMNS",
    "Column",
    "answer_values",
    "error_row",
    "error_value",
    "field_columns",
]

_TOOL_CALL = pa.struct(
    [
        ("id", pa.string()),
        ("type", pa.string()),
        ("function", pa.struct([("name", pa.string()), ("arguments", pa.string())])),
    ]
)
ERROR_TYPE = pa.struct([("type", pa.string()), ("status", pa.int64()), ("message", pa.string())])

ANSWER_COLUMNS: tuple[tuple[str, pa.DataType], ...] = (
    ("content", pa.string()),
    ("finish_reason", pa.string()),
    ("tool_calls", pa.list_(_TOOL_CALL)),
    ("prompt_tokens", pa.int64()),
    ("completion_tokens", pa.int64()),
    ("total_tokens", pa.int64()),
    ("model", pa.string()),
    ("request_id", pa.string()),
    ("completion", pa.string()),
    ("error", ERROR_TYPE),
)
"""The columns added to every input row, in order."""

_SDK_FIELDS = ("request_id", "adjustments")
"""Filled in by the SDK, not sent by the API: left out of ``completion``."""
_encode = msgspec.json.Encoder().encode


def answer_values(completion: ChatCompletion) -> dict[str, Any]:
    """The answer columns of a completion (``error`` None); choice 0 gives content and calls."""
    choice = completion.choices[0] if completion.choices else None
    message = choice.message if choice is not None else None
    calls = None
    if message is not None and message.tool_calls:
        calls = [
            {
                "id": call.id,
                "type": call.type,
                "function": {"name": call.function.name, "arguments": call.function.arguments},
            }
            for call in message.tool_calls
        ]
    usage = completion.usage
    body = msgspec.to_builtins(completion)
    for name in _SDK_FIELDS:
        body.pop(name, None)
    for item in body.get("choices") or ():
        if isinstance(item, dict) and isinstance(item.get("message"), dict):
            item["message"].pop("parsed", None)
    return {
        "content": message.content if message is not None else None,
        "finish_reason": choice.finish_reason if choice is not None else None,
        "tool_calls": calls,
        "prompt_tokens": usage.prompt_tokens if usage is not None else None,
        "completion_tokens": usage.completion_tokens if usage is not None else None,
        "total_tokens": usage.total_tokens if usage is not None else None,
        "model": completion.model or None,
        "request_id": completion.request_id,
        "completion": _encode(body).decode(),
        "error": None,
    }


def error_value(exc: BaseException) -> dict[str, Any]:
    """The ``error`` column of a failed row: the class name, the HTTP status (or None), why."""
    status = exc.status_code if isinstance(exc, APIStatusError) else None
    message = exc.message if isinstance(exc, CometAPIError) else str(exc)
    return {"type": type(exc).__name__, "status": status, "message": message or type(exc).__name__}


def error_row(exc: BaseException) -> dict[str, Any]:
    """Every answer column of a failed row: nulls, and the error."""
    row: dict[str, Any] = dict.fromkeys(name for name, _ in ANSWER_COLUMNS)
    row["error"] = error_value(exc)
    return row


# --------------------------------------------------------------------------- response_format


@dataclass(frozen=True, slots=True)
class Column:
    """A column made from a field of the ``response_format`` type."""

    name: str
    type: pa.DataType
    convert: Callable[[Any], Any]
    """From the field's value as msgspec builtins to what goes in the Arrow array."""


def _same(value: Any) -> Any:
    return value


def _json_text(value: Any) -> Any:
    return None if value is None else _encode(value).decode()


def _arrow(info: msgspec.inspect.Type) -> pa.DataType | None:
    """The Arrow type of values of this msgspec type as builtins; None: keep them as JSON text."""
    inspect = msgspec.inspect
    if isinstance(info, inspect.StrType):
        return pa.string()
    if isinstance(info, inspect.BoolType):
        return pa.bool_()
    if isinstance(info, inspect.IntType):
        return pa.int64()
    if isinstance(info, inspect.FloatType):
        return pa.float64()
    if isinstance(
        info,
        (
            inspect.DateTimeType,
            inspect.DateType,
            inspect.TimeType,
            inspect.UUIDType,
            inspect.DecimalType,
        ),
    ):
        return pa.string()
    if isinstance(
        info, (inspect.ListType, inspect.VarTupleType, inspect.SetType, inspect.FrozenSetType)
    ):
        item = _arrow(info.item_type)
        return None if item is None else pa.list_(item)
    if isinstance(info, (inspect.StructType, inspect.DataclassType, inspect.TypedDictType)):
        fields = []
        for field in info.fields:
            kind = _arrow(field.type)
            if kind is None:
                return None
            fields.append((field.encode_name, kind))
        return pa.struct(fields)
    if isinstance(info, (inspect.LiteralType, inspect.EnumType)):
        values = (
            info.values
            if isinstance(info, inspect.LiteralType)
            else [member.value for member in info.cls]
        )
        if all(isinstance(v, str) for v in values):
            return pa.string()
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return pa.int64()
        return None
    if isinstance(info, inspect.UnionType):
        members = [t for t in info.types if not isinstance(t, inspect.NoneType)]
        if len(members) == 1:
            return _arrow(members[0])
    return None


def field_columns(response_format: Any, taken: Sequence[str]) -> list[Column]:
    """One column per field of ``response_format``, a Struct, dataclass or TypedDict.

    Raises:
        TypeError: not an object type msgspec describes.
        ValueError: a field is named as one of the ``taken`` columns.
    """
    info = msgspec.inspect.type_info(response_format)
    if not isinstance(
        info,
        (msgspec.inspect.StructType, msgspec.inspect.DataclassType, msgspec.inspect.TypedDictType),
    ):
        raise TypeError(
            f"response_format must be a msgspec Struct, dataclass or TypedDict, "
            f"got {response_format!r}"
        )
    columns = []
    for field in info.fields:
        name = field.encode_name
        if name in taken:
            raise ValueError(
                f"response_format field {name!r} would overwrite the column of that name"
            )
        kind = _arrow(field.type)
        columns.append(
            Column(name, pa.string(), _json_text) if kind is None else Column(name, kind, _same)
        )
    return columns
