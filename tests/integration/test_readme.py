"""The README's complete programs run as written, against the local server, and say what they
promise. A program is a ``python`` block that ends in ``asyncio.run(main())`` or prints."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from aiocometapi.testing import MockServer
from conftest import FAKE_KEY

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)


def program(first_line: str) -> str:
    """The README block that starts with ``first_line`` and runs on its own."""
    [block] = [b for b in BLOCKS if b.startswith(first_line) and "print(" in b]
    return block


# What each program must print: the first line of its block, and lines of its output.
PROGRAMS = {
    "quickstart": (
        "import asyncio\nfrom aiocometapi import AsyncCometAPI\n",
        ["Echo: Say hi", "Echo: Count to five", "999 Echo: Capital of country #999?"],
    ),
    "parse": (
        "import asyncio\nfrom typing import Literal\n",
        ["Person(name='example', age=1, role='author', emails=['example'], "
         "home=Address(street='example', city='example'))"],
    ),
    "function_tool": (
        "from typing import Literal\n",
        ["forecast Forecast the weather for a place.",
         "{'place': Place(city='Oslo', country=None), 'days': 2, 'unit': 'celsius'}"],
    ),
    "run_tools": (
        "import asyncio\n\nfrom aiocometapi import AsyncCometAPI, MaxTurnsExceededError\n",
        ["Tool results: 2; 0", "2 model calls"],
    ),
    "run_tools_stream": (
        "import asyncio\nfrom contextlib import aclosing\n",
        ['-> add({"a":1,"b":1})', "<- 2", "Tool results: 2", "2 turns"],
    ),
}


def test_every_program_is_checked() -> None:
    """A new complete program in the README gets a row here."""
    runnable = [b for b in BLOCKS if "asyncio.run(main())" in b or b.startswith("from typing")]
    assert len(runnable) == len(PROGRAMS)


@pytest.mark.parametrize("name", PROGRAMS)
def test_readme_program_runs(threaded_server: MockServer, tmp_path: Path, name: str) -> None:
    first_line, expected = PROGRAMS[name]
    script = tmp_path / f"{name}.py"
    script.write_text(program(first_line), encoding="utf-8")
    env = {**os.environ, "COMETAPI_KEY": FAKE_KEY, "COMETAPI_BASE_URL": threaded_server.url}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    for text in expected:
        assert text in done.stdout, (text, done.stdout[-2000:])
    assert FAKE_KEY not in done.stdout + done.stderr


def test_readme_programs_type_check(tmp_path: Path) -> None:
    """Copied into a project checked with mypy --strict, the README's programs pass as written."""
    files = []
    for name, (first_line, _) in PROGRAMS.items():
        path = tmp_path / f"readme_{name}.py"
        path.write_text(program(first_line), encoding="utf-8")
        files.append(str(path))
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"),
         *files],
        capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
