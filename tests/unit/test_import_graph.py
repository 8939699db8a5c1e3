"""The layers hold: imports read from the source (AST) point down, and each boundary is one module.

Module-level imports make the graph (those under ``if TYPE_CHECKING:`` are left out: they never
run); imports inside functions count for the boundary checks, since they run when called.
"""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import aiocometapi

PACKAGE = "aiocometapi"
ROOT = Path(aiocometapi.__file__).resolve().parent
AIOHTTP = frozenset({"aiohttp", "multidict", "yarl"})
"""aiohttp and the packages of its own that the transport uses (its header and URL types)."""


@dataclass(frozen=True)
class Import:
    """One import statement's target, as the module holding it sees it."""

    target: str
    """A module of the package (``aiocometapi._retry``) or a top-level name (``aiohttp``)."""
    module_level: bool
    line: int


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(ROOT.rglob("*.py"))}


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(body: list[ast.stmt], module_level: bool) -> Iterator[tuple[ast.stmt, bool]]:
    """Every statement, with whether it runs at import time; TYPE_CHECKING blocks skipped."""
    for node in body:
        yield node, module_level
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _statements(node.body, module_level)
            yield from _statements(node.orelse, module_level)
        elif isinstance(node, (ast.Try, ast.With, ast.AsyncWith, ast.For, ast.While)):
            for block in ("body", "handlers", "orelse", "finalbody"):
                for child in getattr(node, block, []):
                    if isinstance(child, ast.ExceptHandler):
                        yield from _statements(child.body, module_level)
                    else:
                        yield from _statements([child], module_level)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            yield from _statements(node.body, module_level and isinstance(node, ast.ClassDef))


@functools.cache
def imports(module: str) -> list[Import]:
    """What ``module`` imports: package modules by full name, anything else by its top name."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: list[Import] = []
    for node, module_level in _statements(ast.parse(path.read_text()).body, True):
        if isinstance(node, ast.Import):
            for alias in node.names:
                name = alias.name
                target = name if name.startswith(PACKAGE + ".") else name.partition(".")[0]
                found.append(Import(target, module_level, node.lineno))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{base}.{node.module}" if node.module else base
            elif (node.module or "").startswith(PACKAGE):
                base = node.module or PACKAGE
            else:
                found.append(
                    Import((node.module or "").partition(".")[0], module_level, node.lineno)
                )
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.append(Import(sub if sub in MODULES else base, module_level, node.lineno))
    return [i for i in found if i.target != "__future__"]


def graph() -> dict[str, set[str]]:
    """Package module -> the package modules it imports when it is imported."""
    return {
        module: {i.target for i in imports(module) if i.module_level and i.target in MODULES}
        for module in MODULES
    }


def importers(names: frozenset[str], *, outside: str | None = None) -> set[str]:
    """The modules that import any of ``names`` anywhere (optionally outside a subpackage)."""
    return {
        module
        for module in MODULES
        if not (outside and (module == outside or module.startswith(outside + ".")))
        and any(i.target in names for i in imports(module))
    }


def test_the_source_is_read_whole() -> None:
    """The checks see every module: the client, the transport, the resources, the server."""
    assert {
        "aiocometapi._client",
        "aiocometapi._transport",
        "aiocometapi._requester",
        "aiocometapi.resources.chat",
        "aiocometapi.testing",
    } <= MODULES.keys()
    assert "aiocometapi._retry" in graph()["aiocometapi._ratelimit"]  # `from . import _retry`


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """A chain of edges that leads back to where it started, or ``None``."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for target in sorted(edges.get(module, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[module] = 2
        return None

    for module in sorted(edges):
        if module not in state and (cycle := visit(module)):
            return cycle
    return None


def test_no_import_cycle() -> None:
    """No chain of module-level imports inside the package leads back to where it started."""
    cycle = find_cycle(graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_one() -> None:
    """The cycle check does report a cycle when there is one (so the test above can fail)."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_aiohttp_only_in_the_transport() -> None:
    """Outside the test server, one module imports aiohttp (or its multidict/yarl): _transport."""
    assert importers(AIOHTTP, outside=f"{PACKAGE}.testing") == {f"{PACKAGE}._transport"}


def test_tenacity_only_in_retry() -> None:
    """One module imports tenacity: _retry."""
    assert importers(frozenset({"tenacity"})) == {f"{PACKAGE}._retry"}


def test_sse_is_standard_library_only() -> None:
    """aiocometapi.sse imports nothing but the standard library."""
    found = {i.target for i in imports(f"{PACKAGE}.sse")}
    assert found and found <= sys.stdlib_module_names, found - sys.stdlib_module_names


def test_testing_never_reaches_the_client() -> None:
    """Nothing the test server imports, directly or not, is the client or its request path."""
    seen: set[str] = set()
    todo = [m for m in MODULES if m == f"{PACKAGE}.testing" or m.startswith(f"{PACKAGE}.testing.")]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += [i.target for i in imports(module) if i.target in MODULES]  # function level too
    client_side = {
        f"{PACKAGE}",
        f"{PACKAGE}._client",
        f"{PACKAGE}._requester",
        f"{PACKAGE}._transport",
        f"{PACKAGE}.resources",
    }
    assert not seen & client_side, seen & client_side


def _private_reads(name: str, source: str) -> list[str]:
    """``x._name`` where x is not ``self``/``cls``, and private names imported from elsewhere."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Attribute):
            attr, owner = node.attr, node.value
            dunder = attr.startswith("__") and attr.endswith("__")
            own = isinstance(owner, ast.Name) and owner.id in ("self", "cls")
            if attr.startswith("_") and not dunder and not own:
                found.append(f"{name}:{node.lineno}: .{attr}")
        elif isinstance(node, ast.ImportFrom):
            found += [
                f"{name}:{node.lineno}: import {alias.name}"
                for alias in node.names
                if alias.name.startswith("_") and alias.name != "__version__"
            ]
    return found


def test_resources_read_no_private_attribute_of_another_module() -> None:
    """The resources use the requester's public methods, never another object's _private."""
    resources = [path for name, path in MODULES.items() if name.startswith(f"{PACKAGE}.resources")]
    assert len(resources) >= 3
    hits = [hit for path in resources for hit in _private_reads(path.name, path.read_text())]
    assert hits == []


def test_the_private_read_check_finds_one() -> None:
    """The check above does find a private read when there is one (so it can fail)."""
    source = "from .._x import _y\ndef f(client, self):\n    return client._t, self._ok\n"
    assert sorted(_private_reads("r.py", source)) == ["r.py:1: import _y", "r.py:3: ._t"]
