"""MkDocs hooks: parts of the site generated from the code, and the docstring check.

Two markers, each alone on a line of a Markdown source, are replaced when the site is built, so
that those parts cannot drift from the code: ``<!-- cli-help -->`` by each ``aiocometapi``
command's ``--help``, ``<!-- compat-table -->`` by the parameter table of
``aiocometapi._compat.TABLE``. Every public name the reference renders must have a docstring (see
:func:`missing_docstrings`); one that has none is a warning, which fails ``mkdocs build
--strict``. ``tests/integration/test_docs.py`` imports this file to run the same checks in the
suite, so it uses the standard library and aiocometapi only (no MkDocs import).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import itertools
import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
REFERENCE = DOCS / "reference"
CLI_MARKER = "<!-- cli-help -->"
COMPAT_MARKER = "<!-- compat-table -->"

log = logging.getLogger("mkdocs.hooks.aiocometapi")

# Classes the SDK constructs and hands out (never built by users): their constructor's
# parameters are internal, and their reference pages do not show them.
INTERNAL_CONSTRUCTORS = frozenset(
    {
        "aiocometapi.AsyncStream",
        "aiocometapi.ParsedAsyncStream",
        "aiocometapi.ParsedStream",
        "aiocometapi.RawResponse",
        "aiocometapi.Stream",
        "aiocometapi.resources.chat.Chat",
        "aiocometapi.resources.chat.Completions",
        "aiocometapi.resources.models.Models",
    }
)

# --------------------------------------------------------------------------- the reference


def reference_targets() -> list[str]:
    """The dotted paths the reference pages render (their ``::: path`` lines), in order."""
    targets = []
    for page in sorted(REFERENCE.glob("*.md")):
        targets += re.findall(r"^::: *([\w.]+) *$", page.read_text(encoding="utf-8"), re.M)
    return targets


def _resolve(path: str) -> tuple[Any, str, Any]:
    """The object at ``path``, the name it has there, and the module or class holding it."""
    parts = path.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            holder: Any = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        if cut == len(parts):
            return holder, parts[-1], None
        for name in parts[cut:-1]:
            holder = getattr(holder, name)
        return getattr(holder, parts[-1]), parts[-1], holder
    raise ImportError(f"nothing importable at {path!r}")


def _attribute_docstring(module: Any, name: str, seen: int = 0) -> str | None:
    """The string literal under ``name = ...`` in ``module``'s source, following re-exports."""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return None
    body = ast.parse(source).body
    for i, node in enumerate(body):
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets = node.targets
        elif isinstance(node, ast.AnnAssign):
            targets = [node.target]
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            after = body[i + 1] if i + 1 < len(body) else None
            if (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                return after.value.value
        if isinstance(node, ast.ImportFrom) and seen < 5:
            for alias in node.names:
                if (alias.asname or alias.name) == name and node.level:
                    package = (
                        module.__name__
                        if hasattr(module, "__path__")
                        else (module.__name__.rpartition(".")[0])
                    )
                    base = package
                    for _ in range(node.level - 1):
                        base = base.rpartition(".")[0]
                    target = f"{base}.{node.module}" if node.module else base
                    found = _attribute_docstring(
                        importlib.import_module(target), alias.name, seen + 1
                    )
                    if found is not None:
                        return found
    return None


def _from_another_package(module: Any, name: str) -> bool:
    """Whether ``module`` imports ``name`` from outside aiocometapi."""
    try:
        tree = ast.parse(inspect.getsource(module))
    except (OSError, TypeError):
        return False
    return any(
        isinstance(node, ast.ImportFrom)
        and node.level == 0
        and not (node.module or "").startswith("aiocometapi")
        and any((alias.asname or alias.name) == name for alias in node.names)
        for node in tree.body
    )


def _undescribed(function: Any, docs: str) -> list[str]:
    """Named parameters of ``function`` that ``docs`` does not mention."""
    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return []
    return [
        p.name
        for p in parameters
        if p.name not in ("self", "cls")
        and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        and not re.search(rf"\b{re.escape(p.name)}\b", docs)
    ]


def _field_docs(cls: type) -> str:
    """The names of ``cls``'s fields and attributes that have a docstring under them.

    Class-level fields (``name: type`` then a string) and attributes set in a method
    (``self.name = ...`` then a string) both count, as they do in the rendered reference.
    """
    try:
        tree = ast.parse(inspect.cleandoc("\n" + inspect.getsource(cls)))
    except (OSError, TypeError, SyntaxError):
        return ""
    named = []
    for block in ast.walk(tree):
        body = getattr(block, "body", None)
        if not isinstance(body, list):
            continue
        for node, after in itertools.pairwise(body):
            if not (
                isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
                and after.value.value.strip()
            ):
                continue
            target = (
                node.target
                if isinstance(node, ast.AnnAssign)
                else (node.targets[0] if isinstance(node, ast.Assign) else None)
            )
            if isinstance(target, ast.Name):
                named.append(target.id)
            elif (
                isinstance(target, ast.Attribute)
                and isinstance(target.value, ast.Name)
                and target.value.id == "self"
            ):
                named.append(target.attr)
    return " ".join(named)


def _own_doc(obj: Any) -> str:
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return inspect.cleandoc(doc) if isinstance(doc, str) else ""


def _problems(path: str, obj: Any, name: str, holder: Any) -> Iterator[str]:
    """What is missing from the docstrings of ``obj`` (found at ``path``) and its members."""
    if inspect.ismodule(obj):
        if not _own_doc(obj):
            yield f"{path}: the module has no docstring"
        for member in getattr(obj, "__all__", ()):
            yield from _problems(f"{path}.{member}", getattr(obj, member), member, obj)
        return
    if inspect.isclass(obj):
        doc = _own_doc(obj)
        if not doc:
            yield f"{path}: no docstring"
        init = vars(obj).get("__init__")
        if inspect.isfunction(init) and path not in INTERNAL_CONSTRUCTORS:
            described = "\n".join((doc, init.__doc__ or "", _field_docs(obj)))
            missing = _undescribed(init, described)
            if missing:
                yield f"{path}: the docstring does not describe {', '.join(missing)}"
        for member, value in vars(obj).items():
            if member.startswith("_"):
                continue
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property) or inspect.isfunction(value):
                yield from _problems(f"{path}.{member}", value, member, obj)
        return
    if isinstance(obj, property) or inspect.isroutine(obj):
        doc = inspect.cleandoc(obj.__doc__ or "")
        if not doc:
            yield f"{path}: no docstring"
        elif inspect.isroutine(obj):
            missing = _undescribed(obj, doc)
            if missing:
                yield f"{path}: the docstring does not describe {', '.join(missing)}"
        return
    # A constant or a type alias: a string literal under its assignment documents it. A value
    # re-exported from another package (msgspec's UNSET) is documented there.
    module = holder if inspect.ismodule(holder) else None
    if module is not None and _from_another_package(module, name):
        return
    if module is None or not _attribute_docstring(module, name):
        yield f"{path}: no docstring (a string literal on the line after its assignment)"


def missing_docstrings() -> list[str]:
    """Each public name the reference renders that lacks a docstring, or whose docstring does
    not mention one of its parameters.

    Public names: what the reference pages render (``::: path`` lines), each module's
    ``__all__``, and the methods and properties of each class not starting with ``_``
    (inherited ones are checked on the class that defines them). A class's ``__init__``
    parameters count as described when its docstring or ``__init__``'s names them, or when the
    field of that name has a docstring under it (except for ``INTERNAL_CONSTRUCTORS``). The
    fields of msgspec Structs are not required to have one (their names are OpenAI's).
    """
    problems: list[str] = []
    for path in reference_targets():
        obj, name, holder = _resolve(path)
        problems += _problems(path, obj, name, holder)
    return problems


# --------------------------------------------------------------------------- the CLI's help


def _help(*command: str) -> str:
    env = {**os.environ, "COLUMNS": "100", "NO_COLOR": "1", "PYTHON_COLORS": "0"}
    done = subprocess.run(
        [sys.executable, "-m", "aiocometapi", *command, "--help"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=True,
    )
    return done.stdout.rstrip()


def cli_commands() -> list[str]:
    """The sub-commands ``aiocometapi --help`` lists."""
    top = _help()
    section = top.split("positional arguments:", 1)[1].split("\n\n", 1)[0]
    return re.findall(r"^ {4}(\S+)", section, re.M)


def cli_reference() -> str:
    """Markdown: ``aiocometapi --help`` and each sub-command's, as the installed CLI prints it."""
    parts = ["## aiocometapi", "", "```text", _help(), "```"]
    for command in cli_commands():
        parts += ["", f"## aiocometapi {command}", "", "```text", _help(command), "```"]
    return "\n".join(parts)


# --------------------------------------------------------------------------- the compat table


def _describe(rule: Any) -> str:
    """One cell of the parameter table: how a family takes a parameter."""
    from aiocometapi import _compat

    if rule is None:
        return "yes"
    if isinstance(rule, _compat.Range):
        if rule.low == rule.high:
            return f"{rule.low:g} only{rule.note}"
        return f"{rule.low:g}\N{EN DASH}{rule.high:g}{rule.note}"
    if isinstance(rule, _compat.MaxItems):
        return f"up to {rule.limit}"
    if isinstance(rule, _compat.Ignored):
        return f"no{rule.note}"
    if isinstance(rule, _compat.WhileReasoning):
        relaxed = "" if rule.otherwise is None else _describe(rule.otherwise) + " "
        given = f"{rule.default:g} only; " if rule.default is not None else "only "
        return f'{given}{relaxed}with `reasoning_effort="none"`'
    if isinstance(rule, _compat.RenamedTo):
        return f"no: use `{rule.to}`{rule.note}"
    if isinstance(rule, _compat.FormatTypes):
        kinds = " and ".join(f"`{kind}`" for kind in sorted(rule.allowed))
        return f"{kinds} only{rule.note}"
    if isinstance(rule, _compat.DeveloperAsSystem):
        return f"models {rule.behaviour}"
    if isinstance(rule, _compat.OnlyModels):
        return f"{rule.models} only"
    raise TypeError(f"docs/hooks.py cannot describe a {type(rule).__name__} rule: teach it")


def compat_table() -> str:
    """Markdown: ``aiocometapi._compat.TABLE``, a row per parameter, a column per family."""
    from aiocometapi import _compat

    labels = [_compat.FAMILIES[family].label for family in _compat.FAMILY_IDS]
    lines = [
        "| parameter | " + " | ".join(labels) + " |",
        "| --- |" + " --- |" * len(labels),
    ]
    for parameter, row in _compat.TABLE.items():
        name = "`developer` messages" if parameter == "messages" else f"`{parameter}`"
        lines.append(f"| {name} | " + " | ".join(_describe(rule) for rule in row) + " |")
    return "\n".join(lines)


# --------------------------------------------------------------------------- MkDocs events


def on_config(config: Any) -> Any:
    """Warn (an error under ``--strict``) for each public name without a full docstring."""
    for problem in missing_docstrings():
        log.warning("docstring: %s", problem)
    return config


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Put the generated parts in place of their markers (each alone on its line)."""
    for marker, generate in ((CLI_MARKER, cli_reference), (COMPAT_MARKER, compat_table)):
        pattern = re.compile(rf"^{re.escape(marker)}$", re.M)
        if pattern.search(markdown):
            markdown = pattern.sub(generate().replace("\\", "\\\\"), markdown)
    return markdown
