"""Response Structs to dicts and JSON text, with the keyword arguments of the openai package.

msgspec does not record which members a JSON object held. Where the server's JSON is kept
(``raw_json`` of an answer, or of a chunk with ``keep_raw_json``), a member it held counts as
sent, ``null`` or not, as in the openai package. Otherwise "not sent" is read from the value: a
field whose default is ``None`` and whose value is ``None`` counts as not sent (a ``null`` reads
the same). Fields with any other default (ids, counts, indexes, lists), or with a value, always
count as sent. Fields the SDK fills in itself (``request_id``, ``adjustments``) are never part of
the output, as the openai package's ``_request_id`` is not.
"""

from __future__ import annotations

import datetime
import decimal
import uuid
from collections.abc import Callable, Collection
from typing import Any, Literal, NamedTuple

import msgspec

__all__ = ["Mode", "dump", "dump_json"]

Mode = Literal["json", "python"]

# Values mode="python" keeps as they are (mode="json" turns them into strings), as pydantic does.
_PYTHON_TYPES = (
    datetime.datetime, datetime.date, datetime.time, datetime.timedelta,
    decimal.Decimal, uuid.UUID, bytes, bytearray, memoryview,
)  # fmt: skip
_SCALARS = (str, int, float, bool)


class _Field(NamedTuple):
    name: str
    api_name: str
    none_default: bool
    """The default is ``None``: a ``None`` value reads as "not sent"."""
    default: Any
    factory: Callable[[], Any] | None


class _Options(NamedTuple):
    python: bool
    by_alias: bool
    exclude_unset: bool
    exclude_defaults: bool
    exclude_none: bool


_plans: dict[type[Any], tuple[_Field, ...]] = {}


def _plan(cls: type[msgspec.Struct]) -> tuple[_Field, ...]:
    plan = _plans.get(cls)
    if plan is None:
        sdk_only: Collection[str] = getattr(cls, "_sdk_fields", ())
        plan = tuple(
            _Field(
                info.name,
                info.encode_name,
                info.default is None,
                info.default,
                None if info.default_factory is msgspec.NODEFAULT else info.default_factory,
            )
            for info in msgspec.structs.fields(cls)
            if info.name not in sdk_only
        )
        _plans[cls] = plan
    return plan


def _is_default(value: Any, field: _Field) -> bool:
    if field.factory is not None:
        return bool(value == field.factory())
    return field.default is not msgspec.NODEFAULT and bool(value == field.default)


def _struct(obj: msgspec.Struct, options: _Options, sent: Any) -> dict[str, Any]:
    """``sent``: the JSON object this Struct was decoded from, when known (else ``None``)."""
    members = sent if type(sent) is dict else None
    out: dict[str, Any] = {}
    for field in _plan(type(obj)):
        value = getattr(obj, field.name)
        if value is msgspec.UNSET:
            continue
        if value is None:
            if options.exclude_none or (
                options.exclude_unset
                and field.none_default
                and (members is None or field.api_name not in members)
            ):
                continue
        elif options.exclude_defaults and _is_default(value, field):
            continue
        inner = members.get(field.api_name) if members is not None else None
        out[field.api_name if options.by_alias else field.name] = _value(value, options, inner)
    return out


def _value(value: Any, options: _Options, sent: Any) -> Any:
    if value is None or isinstance(value, _SCALARS):
        return value
    if isinstance(value, msgspec.Struct) and hasattr(value, "to_dict"):
        return _struct(value, options, sent)
    if type(value) is list:
        items = sent if type(sent) is list and len(sent) == len(value) else None
        return [
            _value(item, options, items[i] if items is not None else None)
            for i, item in enumerate(value)
        ]
    # Anything else (a parsed answer, provider data): the user's own types, as msgspec sees them.
    if options.python:
        return msgspec.to_builtins(value, builtin_types=_PYTHON_TYPES)
    return msgspec.to_builtins(value)


def _sent_json(obj: msgspec.Struct) -> Any:
    """The JSON the server sent for ``obj``, decoded, if it was kept (``None`` if not)."""
    raw = getattr(obj, "_raw_json", None)
    if raw is None:
        return None
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError):
        return None


def _select(
    out: dict[str, Any],
    include: Collection[str] | None,
    exclude: Collection[str] | None,
) -> dict[str, Any]:
    for which, names in (("include", include), ("exclude", exclude)):
        if isinstance(names, (str, bytes, dict)):
            raise TypeError(
                f"{which} takes a set of top-level field names here (nested forms are "
                f"pydantic's only), got {names!r}"
            )
    if include is not None:
        wanted = set(include)
        out = {key: value for key, value in out.items() if key in wanted}
    if exclude is not None:
        unwanted = set(exclude)
        out = {key: value for key, value in out.items() if key not in unwanted}
    return out


def dump(
    obj: msgspec.Struct,
    *,
    mode: Mode | str = "python",
    by_alias: bool = True,
    exclude_unset: bool = True,
    exclude_defaults: bool = False,
    exclude_none: bool = False,
    include: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
) -> dict[str, Any]:
    """``obj`` as a dict of builtins (see the module docstring for what "unset" means).

    Raises:
        ValueError: ``mode`` is neither ``"python"`` nor ``"json"``.
        TypeError: ``include`` / ``exclude`` is not a collection of field names.
    """
    if mode not in ("python", "json"):
        raise ValueError(f"mode must be 'python' or 'json', got {mode!r}")
    options = _Options(mode == "python", by_alias, exclude_unset, exclude_defaults, exclude_none)
    out = _struct(obj, options, _sent_json(obj) if exclude_unset else None)
    if include is not None or exclude is not None:
        out = _select(out, include, exclude)
    return out


def dump_json(
    obj: msgspec.Struct,
    *,
    indent: int | None,
    by_alias: bool = True,
    exclude_unset: bool = True,
    exclude_defaults: bool = False,
    exclude_none: bool = False,
    include: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
) -> str:
    """``obj`` as JSON text: compact with ``indent=None``, else indented by that many spaces."""
    data = dump(
        obj,
        mode="json",
        by_alias=by_alias,
        exclude_unset=exclude_unset,
        exclude_defaults=exclude_defaults,
        exclude_none=exclude_none,
        include=include,
        exclude=exclude,
    )
    encoded = msgspec.json.encode(data)
    if indent is not None:
        encoded = msgspec.json.format(encoded, indent=indent)
    return encoded.decode()
