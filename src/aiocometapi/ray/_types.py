"""``response_format`` types sent to the workers as recipes, rebuilt there with ``defstruct``.

Ray pickles a class defined in a script (``__main__``) by value, and neither a msgspec Struct
nor a dataclass survives that whole: a Struct's metaclass runs before cloudpickle restores the
annotations (no fields), a dataclass's defaults hold a copy of ``dataclasses.MISSING``. A
recipe (the fields, their types, the options) is plain data; the worker rebuilds an equal
Struct from it and never imports the caller's module.
"""

from __future__ import annotations

import dataclasses
import functools
import operator
import types
import typing
from dataclasses import dataclass
from typing import Any

import msgspec

__all__ = ["portable", "rebuild"]


@dataclass(frozen=True)
class _Struct:
    name: str
    fields: tuple[tuple[str, str, Any, Any, Any], ...]
    """(name, encode name, type recipe, default, default factory) per field."""
    options: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class _Generic:
    origin: Any
    args: tuple[Any, ...]


@dataclass(frozen=True)
class _Annotated:
    inner: Any
    metadata: tuple[Any, ...]


@dataclass(frozen=True)
class _Meta:
    """A ``msgspec.Meta`` (which does not pickle) as its keyword arguments."""

    kwargs: tuple[tuple[str, Any], ...]


_META_FIELDS = (
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "pattern",
    "min_length",
    "max_length",
    "tz",
    "title",
    "description",
    "examples",
    "extra_json_schema",
    "extra",
)


@dataclass(frozen=True)
class _Plain:
    type: Any


def portable(tp: Any) -> Any:
    """A recipe of ``tp`` that pickles by value: Structs, dataclasses and TypedDicts (at any
    depth) become field lists, rebuilt as Structs."""
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        config = tp.__struct_config__
        options = (
            ("tag", config.tag),
            ("tag_field", config.tag_field),
            ("array_like", config.array_like),
            ("forbid_unknown_fields", config.forbid_unknown_fields),
        )
        fields = tuple(
            (f.name, f.encode_name, portable(f.type), f.default, f.default_factory)
            for f in msgspec.structs.fields(tp)
        )
        return _Struct(tp.__name__, fields, options)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        return _Struct(
            tp.__name__,
            tuple(
                (
                    f.name,
                    f.name,
                    portable(hints[f.name]),
                    msgspec.NODEFAULT if f.default is dataclasses.MISSING else f.default,
                    (
                        msgspec.NODEFAULT
                        if f.default_factory is dataclasses.MISSING
                        else f.default_factory
                    ),
                )
                for f in dataclasses.fields(tp)
            ),
            (),
        )
    if typing.is_typeddict(tp):
        hints = typing.get_type_hints(tp, include_extras=True)
        required = tp.__required_keys__
        return _Struct(
            tp.__name__,
            tuple(
                (name, name, portable(hint), msgspec.NODEFAULT, msgspec.NODEFAULT)
                if name in required
                else (name, name, portable(_or_unset(hint)), msgspec.UNSET, msgspec.NODEFAULT)
                for name, hint in hints.items()
            ),
            (),
        )
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        inner, *metadata = typing.get_args(tp)
        return _Annotated(
            portable(inner),
            tuple(
                _Meta(
                    tuple(
                        (name, getattr(item, name))
                        for name in _META_FIELDS
                        if getattr(item, name, None) is not None
                    )
                )
                if isinstance(item, msgspec.Meta)
                else item
                for item in metadata
            ),
        )
    if origin is None or origin is typing.Literal:
        return _Plain(tp)
    return _Generic(origin, tuple(portable(arg) for arg in typing.get_args(tp)))


def _or_unset(hint: Any) -> Any:
    """``hint | UnsetType``: a key a TypedDict may leave out."""
    return typing.Union[hint, msgspec.UnsetType]  # noqa: UP007 (hint may be a typing form)


def rebuild(recipe: Any) -> Any:
    """The type a recipe describes (a Struct equal in fields and options to the original)."""
    if isinstance(recipe, _Plain):
        return recipe.type
    if isinstance(recipe, _Annotated):
        arguments = (
            rebuild(recipe.inner),
            *(
                msgspec.Meta(**dict(item.kwargs)) if isinstance(item, _Meta) else item
                for item in recipe.metadata
            ),
        )
        return typing.Annotated[arguments]
    if isinstance(recipe, _Generic):
        args = tuple(rebuild(arg) for arg in recipe.args)
        if recipe.origin in (typing.Union, types.UnionType):
            return functools.reduce(operator.or_, args)
        return recipe.origin[args if len(args) != 1 else args[0]]
    assert isinstance(recipe, _Struct)
    fields: list[tuple[str, Any] | tuple[str, Any, Any]] = []
    for name, _, kind, default, factory in recipe.fields:
        if factory is not msgspec.NODEFAULT:
            fields.append((name, rebuild(kind), msgspec.field(default_factory=factory)))
        elif default is not msgspec.NODEFAULT:
            fields.append((name, rebuild(kind), default))
        else:
            fields.append((name, rebuild(kind)))
    rename = {name: encoded for name, encoded, *_ in recipe.fields if encoded != name}
    return msgspec.defstruct(
        recipe.name, fields, kw_only=True, rename=rename or None, **dict(recipe.options)
    )
