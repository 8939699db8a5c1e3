"""The docs site and the README cannot rot: every code block runs or is checked, and the API
reference covers every public name with a docstring.

Code blocks, in ``README.md`` and every page under ``docs/``, by language:

- ``python``: a complete program. It runs as its own process against a local ``MockServer``
  (``COMETAPI_KEY`` and ``COMETAPI_BASE_URL`` set to it), must exit 0, print something, never
  print the key, and print each line that an ``<!-- expect: TEXT -->`` comment just above its
  fence names. All programs also pass ``mypy --strict`` as written.
- ``python`` with ``<!-- fragment -->`` on the line before its fence: a piece of a program.
  It is type-checked with ``mypy --strict`` inside this template (``FRAGMENT_TEMPLATE``)::

      <the imports of FRAGMENT_TEMPLATE>
      async def _fragment(client: AsyncCometAPI, messages: list[Message]) -> None:
          <the fragment, indented>

  so a fragment may ``await``, and use ``client``, ``messages``, ``log`` (a
  ``logging.Logger``), ``asyncio``, ``anyio``, ``msgspec`` and every public name of
  ``aiocometapi``, ``aiocometapi.types`` and ``aiocometapi.testing`` without importing them.
- ``bash`` / ``console``: each ``aiocometapi`` command in it (also after ``&&``, or as
  ``python -m aiocometapi``; in a ``console`` block, on the lines starting ``$ ``) names a real
  sub-command, and each of its options appears in that sub-command's ``--help``.
- ``json``: valid JSON (a whole block, or one document per line).
- ``text``: output and diagrams, shown as they are.

Any other language, or a fence without one, fails ``test_every_block_has_a_known_kind``.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from types import ModuleType

import pytest

import aiocometapi
from aiocometapi import _compat
from aiocometapi.testing import MockServer
from conftest import FAKE_KEY

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
KINDS = {"python", "bash", "console", "json", "text"}

FRAGMENT_TEMPLATE = '''\
"""A fragment of {where}, type-checked in tests/test_docs.py's template."""

import asyncio
import logging

import anyio
import msgspec

from aiocometapi import *
from aiocometapi.testing import *
from aiocometapi.types import *

log = logging.getLogger("docs")


async def _fragment(client: AsyncCometAPI, messages: list[Message]) -> None:
{body}
'''


@dataclass
class Block:
    """A fenced code block and the HTML comments just above its fence."""

    page: Path
    line: int
    kind: str
    code: str
    notes: list[str] = field(default_factory=list)

    @property
    def where(self) -> str:
        return f"{self.page.relative_to(ROOT)}:{self.line}"

    @property
    def fragment(self) -> bool:
        return "fragment" in self.notes

    @property
    def expected(self) -> list[str]:
        return [note[len("expect:") :].strip() for note in self.notes if note.startswith("expect:")]


def blocks(page: Path) -> Iterator[Block]:
    """The fenced code blocks of a Markdown page, indented ones (in lists, admonitions) too."""
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        opening = re.match(r"^(\s*)(`{3,}|~{3,})\s*([^\s`{]*)", lines[i])
        if not opening:
            i += 1
            continue
        indent, fence, kind = opening.groups()
        notes: list[str] = []
        j = i - 1
        while j >= 0 and (note := re.match(r"^\s*<!--\s*(.*?)\s*-->\s*$", lines[j])):
            notes.insert(0, note.group(1))
            j -= 1
        end = i + 1
        while end < len(lines) and lines[end].strip() != fence:
            end += 1
        body = [line[len(indent) :] for line in lines[i + 1 : end]]
        yield Block(page, i + 1, kind.lower(), "\n".join(body) + "\n", notes)
        i = end + 1


ALL_BLOCKS = [block for page in PAGES for block in blocks(page)]
PROGRAMS = [b for b in ALL_BLOCKS if b.kind == "python" and not b.fragment]
FRAGMENTS = [b for b in ALL_BLOCKS if b.kind == "python" and b.fragment]


def _load_hooks() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


hooks = _load_hooks()


# --------------------------------------------------------------------------- code blocks


def test_every_block_has_a_known_kind() -> None:
    """A code block whose kind the suite does not check cannot slip onto the site."""
    unknown = [f"{b.where}: {b.kind or '(none)'}" for b in ALL_BLOCKS if b.kind not in KINDS]
    assert not unknown, unknown
    assert PROGRAMS and FRAGMENTS


EXTRA_MODULES = ("ray", "pyarrow")
"""Modules that only an extra installs: a program that imports one runs where it is there."""


def missing_extra(code: str) -> str | None:
    """The first extra-only module ``code`` imports that is not installed, else None."""
    for name in EXTRA_MODULES:
        imported = re.search(rf"^\s*(import|from) ({name}|aiocometapi\.{name})\b", code, re.M)
        if imported and importlib.util.find_spec(name) is None:
            return name
    return None


@pytest.mark.parametrize(
    "page",
    sorted({b.page for b in PROGRAMS}),
    ids=lambda page: str(page.relative_to(ROOT)),
)
def test_programs_run(threaded_server: MockServer, tmp_path: Path, page: Path) -> None:
    """Each complete program of the page runs against the local server and prints what it
    says it prints, without ever printing the key."""
    env = {**os.environ, "COMETAPI_KEY": FAKE_KEY, "COMETAPI_BASE_URL": threaded_server.url}
    env.pop("AIOCOMETAPI_LOG", None)
    running = []
    for block in (b for b in PROGRAMS if b.page == page):
        missing = missing_extra(block.code)
        if missing is not None:
            print(f"{block.where}: not run, it needs {missing} (an extra) and it is not installed")
            continue
        script = tmp_path / f"program_{block.line}.py"
        script.write_text(block.code, encoding="utf-8")
        process = subprocess.Popen(
            [sys.executable, str(script)],
            cwd=tmp_path,
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
        )
        running.append((block, process))
    failures = []
    for block, process in running:
        try:
            out, err = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            process.kill()
            out, err = process.communicate()
            failures.append(f"{block.where}: still running after 120 s\n{out[-1000:]}")
            continue
        if process.returncode != 0:
            failures.append(f"{block.where}: exit {process.returncode}\n{err[-2000:]}")
        elif not out.strip():
            failures.append(f"{block.where}: printed nothing")
        for text in block.expected:
            if text not in out:
                failures.append(f"{block.where}: no {text!r} in its output:\n{out[-2000:]}")
        if FAKE_KEY in out + err:
            failures.append(f"{block.where}: printed the API key")
    assert not failures, "\n\n".join(failures)


def write_mypy_config(folder: Path) -> Path:
    """A mypy config that, as the project's own, lets the extras' modules be absent."""
    config = folder / "mypy.ini"
    sections = "".join(
        f"[mypy-{name}]\nignore_missing_imports = True\n[mypy-{name}.*]\n"
        "ignore_missing_imports = True\n"
        for name in EXTRA_MODULES
    )
    config.write_text("[mypy]\nstrict = True\n" + sections, encoding="utf-8")
    return config


def test_python_blocks_type_check(tmp_path: Path) -> None:
    """Copied into a project checked with mypy --strict, every program passes as written and
    every fragment passes inside the template."""
    files: dict[str, tuple[Block, str]] = {}
    for block in PROGRAMS:
        files[f"program_{len(files)}.py"] = (block, block.code)
    for block in FRAGMENTS:
        body = textwrap.indent(block.code, "    ") if block.code.strip() else "    pass\n"
        files[f"fragment_{len(files)}.py"] = (
            block,
            FRAGMENT_TEMPLATE.format(where=block.where, body=body),
        )
    for name, (_, text) in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--strict",
            "--no-error-summary",
            "--config-file",
            str(write_mypy_config(tmp_path)),
            "--cache-dir",
            str(ROOT / ".mypy_cache" / "docs"),
            *files,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Name the page and line of each error instead of the temporary file.
    report = re.sub(
        r"^(\w+\.py):(\d+)",
        lambda m: f"{files[m.group(1)][0].where} (line {m.group(2)} of {m.group(1)})",
        done.stdout,
        flags=re.M,
    )
    assert done.returncode == 0, report + done.stderr


def _commands(line: str) -> Iterator[list[str]]:
    """The ``aiocometapi`` commands in one shell line, as argument lists after the program."""
    line = re.sub(r"^\s*\$\s+", "", line)
    for part in re.split(r"&&|\|\||;|\|", line):
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            continue
        while words and re.fullmatch(r"\w+=\S*", words[0]):
            words = words[1:]  # VAR=value before the command
        if words and Path(words[0]).name == "aiocometapi":
            yield words[1:]
        elif (
            len(words) > 2
            and Path(words[0]).name.startswith("python")
            and words[1:3] == ["-m", "aiocometapi"]
        ):
            yield words[3:]


@cache
def _help(command: str) -> str:
    text: str = hooks._help(command) if command else hooks._help()
    return text


def test_shell_commands_exist() -> None:
    """Every aiocometapi command shown in a shell block names a real sub-command and real
    options, as its --help lists them."""
    commands = hooks.cli_commands()
    problems = []
    shell = [b for b in ALL_BLOCKS if b.kind in ("bash", "console")]
    for block in shell:
        for number, line in enumerate(block.code.splitlines(), block.line + 1):
            if block.kind == "console" and not line.startswith("$ "):
                continue  # a console block's output
            for args in _commands(line):
                if args[:1] in (["--help"], ["--version"], ["-h"]):
                    continue
                if not args or args[0] not in commands:
                    problems.append(f"{block.page.name}:{number}: no such command: {args[:1]}")
                    continue
                text = _help(args[0])
                for word in args[1:]:
                    option = word.split("=", 1)[0]
                    if (
                        option.startswith("-")
                        and option != "-"
                        and not re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text)
                    ):
                        problems.append(f"{block.page.name}:{number}: {args[0]} has no {option}")
    assert shell
    assert not problems, problems


def test_json_blocks_parse() -> None:
    """Every JSON example on the site is valid JSON (a document, or one per line)."""
    problems = []
    for block in (b for b in ALL_BLOCKS if b.kind == "json"):
        try:
            json.loads(block.code)
        except json.JSONDecodeError:
            for number, line in enumerate(block.code.splitlines(), block.line + 1):
                try:
                    if line.strip():
                        json.loads(line)
                except json.JSONDecodeError as exc:
                    problems.append(f"{block.page.name}:{number}: {exc}")
    assert not problems, problems


# --------------------------------------------------------------------------- the reference


def test_every_name_in_all_is_in_the_reference() -> None:
    """Each name of aiocometapi.__all__ has its entry in the API reference, and the public
    modules (types, sse, testing) are rendered whole."""
    targets = set(hooks.reference_targets())
    missing = [name for name in aiocometapi.__all__ if f"aiocometapi.{name}" not in targets]
    assert not missing, f"add a '::: aiocometapi.NAME' line to docs/reference/: {missing}"
    for module in ("aiocometapi.types", "aiocometapi.sse", "aiocometapi.testing"):
        assert module in targets, module


def test_every_public_name_has_a_docstring() -> None:
    """Every public name the reference renders has a docstring that describes its
    parameters (the check mkdocs build --strict also runs, through docs/hooks.py)."""
    assert hooks.missing_docstrings() == []


def test_the_docstring_check_finds_what_is_missing() -> None:
    """The docstring check reports a function without a docstring, and a parameter that its
    docstring does not mention."""

    def bare(x: int) -> int:
        return x

    def partial(x: int, *, y: int) -> int:
        """Add ``x`` to something."""
        return x + y

    module = ModuleType("example")
    problems = list(hooks._problems("example.bare", bare, "bare", module))
    problems += hooks._problems("example.partial", partial, "partial", module)
    assert problems == [
        "example.bare: no docstring",
        "example.partial: the docstring does not describe y",
    ]


def test_the_cli_reference_shows_every_command() -> None:
    """The CLI page is generated from each sub-command's --help, so it shows all of them."""
    page = (DOCS / "reference" / "cli.md").read_text(encoding="utf-8")
    assert f"\n{hooks.CLI_MARKER}\n" in page
    text = hooks.cli_reference()
    commands = hooks.cli_commands()
    assert {"chat", "models", "batch", "mock-server"} <= set(commands)
    for command in commands:
        assert f"## aiocometapi {command}\n" in text
        assert _help(command) in text


def test_the_compat_table_has_a_row_per_parameter() -> None:
    """The provider-differences page shows compat's table, generated from its rules: one row
    per parameter, a column per model family."""
    page = (DOCS / "guides" / "provider-differences.md").read_text(encoding="utf-8")
    assert f"\n{hooks.COMPAT_MARKER}\n" in page
    rows = hooks.compat_table().splitlines()[2:]
    assert len(rows) == len(_compat.TABLE)
    for row, parameter in zip(rows, _compat.TABLE, strict=True):
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        assert len(cells) == 1 + len(_compat.FAMILY_IDS)
        assert parameter in cells[0] and all(cells)


def test_the_model_ids_on_the_provider_page_are_in_their_family() -> None:
    """Each model id the provider-differences page lists under a family is detected as that
    family (or as none, for the unknown row)."""
    page = (DOCS / "guides" / "provider-differences.md").read_text(encoding="utf-8")
    table = page.split("| family | model ids |", 1)[1].split("\n\n", 1)[0]
    labels = {family.label: family.id for family in _compat.FAMILIES.values()}
    checked = 0
    for row in table.strip().splitlines()[1:]:
        label, ids = (cell.strip() for cell in row.strip("|").split("|"))
        family = labels.get(label)
        for model in re.findall(r"`([^`]+)`", ids):
            if "..." in model:
                continue
            found = _compat.family_of(model)
            assert (found.id if found else None) == family, (model, label)
            checked += 1
    assert checked >= 10
