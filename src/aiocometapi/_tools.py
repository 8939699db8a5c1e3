"""Tools from Python functions: function tools (schema from the signature, arguments checked
before a call) and custom tools (free-form text input, passed to the function as is)."""

from __future__ import annotations

import copy
import functools
import inspect
import re
import typing
from collections.abc import Callable
from typing import Annotated, Any, Generic, Literal, ParamSpec, TypeVar, overload

import anyio.to_thread
import msgspec

from ._exceptions import ToolArgumentsError
from ._structured import json_schema
from .types import UNSET, CustomTool, CustomToolDefinition, FunctionDefinition, FunctionTool

__all__ = ["Tool", "custom_tool", "function_tool"]

P = ParamSpec("P")
R = TypeVar("R")

_VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ARGS_SECTION = re.compile(r"^(?:Args|Arguments|Parameters|Params)\s*:\s*$")
_ARG_LINE = re.compile(r"^(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_SECTION = re.compile(r"^[A-Z][A-Za-z ]*:$")


class Tool(Generic[P, R]):
    """A function the model may call, with its description; build it with ``function_tool``
    (JSON arguments, checked against the signature) or ``custom_tool`` (free-form text).

    Calling a ``Tool`` calls the function. ``definition`` is what goes in ``create(tools=...)``;
    ``run_tools()`` takes ``Tool`` objects (or plain functions, as function tools) directly.

    Args:
        function: The function called with the decoded arguments.
        name: The tool's name, as the model calls it.
        description: What the tool does, for the model.
        parameters: The JSON schema of the arguments.
        strict: Whether the tool is sent as strict (every parameter required).
        arguments_type: The Struct arguments are decoded into.
        positional: Parameters the function takes only by position.
        kind: ``"function"`` (JSON arguments) or ``"custom"`` (free-form text).
        format: A custom tool's input format (``None``: free text).
    """

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str,
        description: str | None,
        parameters: dict[str, Any],
        strict: bool,
        arguments_type: type[msgspec.Struct],
        positional: tuple[str, ...] = (),
        kind: Literal["function", "custom"] = "function",
        format: dict[str, Any] | None = None,
    ) -> None:
        self.function = function
        self.name = name
        self.description = description
        self.parameters = parameters
        """The JSON schema of the arguments (empty for a custom tool)."""
        self.strict = strict
        self.arguments_type = arguments_type
        """The Struct arguments are decoded into: one field per parameter of the function."""
        self.kind = kind
        """``"function"``: the model sends JSON arguments; ``"custom"``: free-form text, which
        the function gets as its one argument, unchanged."""
        self.format = format
        """A custom tool's input format (``None``: free text); see ``CustomToolDefinition``."""
        self._positional = positional
        self._decoder = msgspec.json.Decoder(arguments_type)
        self._is_async = inspect.iscoroutinefunction(function)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        if self.kind == "custom":
            return f"Tool(name={self.name!r}, kind='custom')"
        return f"Tool(name={self.name!r}, strict={self.strict})"

    @functools.cached_property
    def definition(self) -> FunctionTool | CustomTool:
        """The tool as ``create(tools=[...])`` takes it."""
        description = UNSET if self.description is None else self.description
        if self.kind == "custom":
            return CustomTool(
                custom=CustomToolDefinition(
                    name=self.name,
                    description=description,
                    format=UNSET if self.format is None else self.format,
                )
            )
        return FunctionTool(
            function=FunctionDefinition(
                name=self.name,
                description=description,
                parameters=self.parameters,
                strict=True if self.strict else UNSET,
            )
        )

    def parse_arguments(self, arguments: str) -> dict[str, Any]:
        """The arguments of a tool call (a JSON object), decoded into the parameters' types.

        An empty string counts as ``{}``; keys the function does not take are ignored. A
        custom tool takes the text as it is, as its one parameter.

        Raises:
            ToolArgumentsError: not a JSON object, or a value does not fit its parameter.
        """
        if self.kind == "custom":
            return {self._positional[0]: arguments}
        try:
            values = self._decoder.decode(arguments if arguments.strip() else "{}")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            detail = str(exc)
            if isinstance(exc, msgspec.ValidationError):
                why = f"do not fit its parameters: {detail}"
            else:
                why = f"are not valid JSON: {detail}"
            shown = arguments if len(arguments) <= 500 else arguments[:500] + "..."
            raise ToolArgumentsError(
                f"The arguments of the call to tool `{self.name}` {why}. Arguments: {shown!r}",
                tool_name=self.name,
                arguments=arguments,
                detail=detail,
            ) from exc
        return msgspec.structs.asdict(values)

    async def call(self, arguments: str) -> Any:
        """Decode ``arguments`` and call the function with them.

        An ``async`` function is awaited; a plain one runs in a worker thread
        (``anyio.to_thread.run_sync``) so that it cannot block the event loop, and a
        cancellation (a timeout around the tool loop) does not wait for the thread: it is
        left to finish on its own and its result dropped.

        Raises:
            ToolArgumentsError: the arguments do not fit (the function is not called).
            Exception: whatever the function raises.
        """
        kwargs = self.parse_arguments(arguments)
        args = [kwargs.pop(name) for name in self._positional]
        function: Callable[..., Any] = self.function
        if self._is_async:
            return await function(*args, **kwargs)
        result = await anyio.to_thread.run_sync(
            functools.partial(function, *args, **kwargs), abandon_on_cancel=True
        )
        if inspect.isawaitable(result):
            result = await result
        return result


@overload
def function_tool(
    function: Callable[P, R],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
) -> Tool[P, R]: ...
@overload
def function_tool(
    function: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...
def function_tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    strict: bool = False,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Describe a typed function (sync or async) as a tool; also a decorator, with or without ().

    The name is the function's ``__name__``; the description is the first paragraph of its
    docstring, and a Google-style ``Args:`` section describes the parameters (as does
    ``Annotated[..., msgspec.Meta(description=...)]``). Parameter types are any msgspec
    understands: Structs, dataclasses, ``Literal``, ``X | None``, lists, ...

    Args:
        name: Overrides the function's name (``^[a-zA-Z0-9_-]{1,64}$``).
        description: Overrides the docstring.
        strict: Mark the tool ``strict`` (OpenAI's strict function calling): the schema lists
            every parameter as required, so the model always sends each; give a parameter
            an ``X | None`` type to let the model pass ``null``. Without ``strict``,
            parameters with a default are optional and their default is in the schema.

    Raises:
        TypeError: a parameter has no type annotation or a type msgspec cannot describe,
            the function takes ``*args`` or ``**kwargs``, or (``strict``) a ``dict`` type.
        ValueError: the name does not fit OpenAI's rule.
    """

    def build(fn: Callable[P, R]) -> Tool[P, R]:
        return _build(fn, name=name, description=description, strict=strict)

    return build if function is None else build(function)


@overload
def custom_tool(
    function: Callable[P, R],
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    format: dict[str, Any] | None = None,
) -> Tool[P, R]: ...
@overload
def custom_tool(
    function: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    format: dict[str, Any] | None = None,
) -> Callable[[Callable[P, R]], Tool[P, R]]: ...
def custom_tool(
    function: Callable[P, R] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    format: dict[str, Any] | None = None,
) -> Tool[P, R] | Callable[[Callable[P, R]], Tool[P, R]]:
    """Describe a function of one text argument (sync or async) as a custom tool (OpenAI's
    ``"type": "custom"``): the model calls it with free-form text instead of JSON, and
    ``run_tools()`` passes that text to the function unchanged. Also a decorator.

    The name is the function's ``__name__``; the description is the first paragraph of its
    docstring.

    Args:
        name: Overrides the function's name (``^[a-zA-Z0-9_-]{1,64}$``).
        description: Overrides the docstring.
        format: How the model must write the input: ``None`` for free text, or a grammar,
            ``{"type": "grammar", "grammar": {"syntax": "lark" | "regex", "definition": ...}}``.

    Raises:
        TypeError: the function does not take exactly one argument (the text).
        ValueError: the name does not fit OpenAI's rule.
    """

    def build(fn: Callable[P, R]) -> Tool[P, R]:
        tool_name = _checked_name(fn, name)
        params = [
            p
            for p in inspect.signature(fn).parameters.values()
            if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        ]
        if len(params) != 1 or params[0].kind is params[0].KEYWORD_ONLY:
            raise TypeError(
                f"custom tool `{tool_name}` must take exactly one argument without a default "
                "(the model's text input)"
            )
        summary, _ = _docstring(fn)
        return Tool(
            fn,
            name=tool_name,
            description=description if description is not None else summary,
            parameters={},
            strict=False,
            arguments_type=msgspec.defstruct(f"{tool_name}_input", [(params[0].name, str)]),
            positional=(params[0].name,),
            kind="custom",
            format=format,
        )

    return build if function is None else build(function)


def _checked_name(function: Callable[..., Any], name: str | None) -> str:
    tool_name = name if name is not None else getattr(function, "__name__", "")
    if not _VALID_NAME.match(tool_name):
        raise ValueError(
            f"tool name {tool_name!r} must match ^[a-zA-Z0-9_-]{{1,64}}$: pass name=..."
        )
    return tool_name


def _build(
    function: Callable[P, R], *, name: str | None, description: str | None, strict: bool
) -> Tool[P, R]:
    tool_name = _checked_name(function, name)
    summary, documented = _docstring(function)
    fields: list[tuple[Any, ...]] = []
    positional: list[str] = []
    hints = _hints(function)
    for param in inspect.signature(function).parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise TypeError(
                f"tool `{tool_name}`: *args and **kwargs cannot be described to a model"
            )
        if param.name not in hints:
            raise TypeError(f"tool `{tool_name}`: parameter `{param.name}` has no type annotation")
        if param.kind is param.POSITIONAL_ONLY:
            positional.append(param.name)
        hint = hints[param.name]
        if param.name in documented and not _described(hint):
            hint = Annotated[hint, msgspec.Meta(description=documented[param.name])]
        if param.default is param.empty:
            fields.append((param.name, hint))
        else:
            fields.append((param.name, hint, _default(param.default)))
    arguments_type = msgspec.defstruct(f"{tool_name}_arguments", fields, kw_only=True)
    try:
        _, schema = json_schema(arguments_type, strict=strict)
    except TypeError as exc:
        raise TypeError(f"tool `{tool_name}`: {exc}") from exc
    schema.pop("title", None)
    return Tool(
        function,
        name=tool_name,
        description=description if description is not None else summary,
        parameters=schema,
        strict=strict,
        arguments_type=arguments_type,
        positional=tuple(positional),
    )


def _hints(function: Callable[..., Any]) -> dict[str, Any]:
    target: Any = function
    if not (inspect.isfunction(function) or inspect.ismethod(function)):
        target = type(function).__call__  # an object with a typed __call__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except (NameError, TypeError) as exc:
        raise TypeError(f"the type hints of {function!r} cannot be resolved: {exc}") from exc


def _described(hint: Any) -> bool:
    return typing.get_origin(hint) is Annotated and any(
        isinstance(m, msgspec.Meta) and m.description for m in hint.__metadata__
    )


def _default(value: Any) -> Any:
    # msgspec takes no non-empty mutable default; a factory gives each call its own copy.
    if isinstance(value, (list, dict, set, bytearray)) and value:
        return msgspec.field(default_factory=functools.partial(copy.deepcopy, value))
    return value


def _docstring(function: Callable[..., Any]) -> tuple[str | None, dict[str, str]]:
    """The first paragraph of a docstring, and the parameter texts of its ``Args:`` section."""
    doc = inspect.getdoc(function)
    if not doc:
        return None, {}
    summary: list[str] = []
    for line in doc.splitlines():
        if not line.strip() or _SECTION.match(line):
            break
        summary.append(line.strip())
    params: dict[str, str] = {}
    in_args = False
    current: str | None = None
    indent = 0
    for line in doc.splitlines():
        text = line.strip()
        depth = len(line) - len(line.lstrip())
        if not text:
            continue
        if depth == 0:
            in_args = bool(_ARGS_SECTION.match(text))  # a section starts, or prose
            current = None
            continue
        if not in_args:
            continue
        match = _ARG_LINE.match(text)
        if match and (current is None or depth <= indent):
            indent = depth
            current = str(match.group(1))
            params[current] = match.group(2).strip()
        elif current is not None:
            params[current] = f"{params[current]} {text}".strip()
    return " ".join(summary) or None, params
