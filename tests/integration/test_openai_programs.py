"""Programs written for the openai package (its README and examples) run with the import changed.

Each file in ``openai_programs/`` beside this one is such a program, its source named in its
docstring, with every change beyond the import listed there and in
docs/guides/switching-from-openai.md.
Each runs in a process of its own against the local server, scripted where the program needs
the server to fail or to send a header; the test checks what the program prints.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from aiocometapi.testing import DEFAULT_MODELS, MockServer
from conftest import FAKE_KEY

PROGRAMS = Path(__file__).parent / "openai_programs"
GUIDE = Path(__file__).resolve().parents[2] / "docs" / "guides" / "switching-from-openai.md"
FAST_429 = {"retry-after-ms": "1"}
MY_HEADER = {"X-My-Header": "my value"}


@dataclass(frozen=True)
class Program:
    prints: list[str]
    """Lines (or parts of lines) the program prints."""
    script: Callable[[MockServer], None] = lambda server: None
    """What the server is told to answer first."""
    returncode: int = 0
    stderr_ends: str = ""
    chat_requests: int | None = None
    absent: list[str] = field(default_factory=list)


def rate_limited(server: MockServer) -> None:
    for _ in range(5):  # the first try and four retries
        server.reply_error(429, "Rate limit reached", code="rate_limit_exceeded", headers=FAST_429)


def answered_then_refused(server: MockServer) -> None:
    server.reply_turn(content="fine")
    server.reply_error(400, "Invalid value for 'model'", code="invalid_request", param="model")


def busy_three_times(server: MockServer) -> None:
    for _ in range(3):
        server.reply_error(503, "overloaded", headers=FAST_429)


def with_my_header(server: MockServer) -> None:
    server.reply_json(
        {
            "id": "c",
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "ok"},
                    "finish_reason": "stop",
                }
            ],
        },
        headers=MY_HEADER,
    )


def streamed_with_my_header(server: MockServer) -> None:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "model": "gpt-5.5",
        "choices": [{"index": 0, "delta": {"content": "this is a test"}, "finish_reason": "stop"}],
    }
    server.reply_stream([chunk], headers=MY_HEADER)


SPECS: dict[str, Program] = {
    "chat_response_format.py": Program(["['city', 'country']"]),
    "chat_tools.py": Program(
        ["tool_calls", "get_weather {'city': 'example'}", "Tool results: Sunny in example"]
    ),
    "examples_async_demo.py": Program(["Echo: Reply that this is a test"]),
    "examples_demo.py": Program([
        "----- standard request -----", "Echo: Reply that this is a test",
        "----- streaming request -----",
        "Echo: How do I list every file of a directory in Python?",
        "----- custom response headers test -----", "mock-",
    ]),
    "examples_streaming_chunks.py": Program(
        ['got response data: {\n  "id"', '"content": "1,2,3,"']
    ),
    "helpers_parse.py": Program(["[Step(explanation='example', output='example')]",
                                 "answer:  example"]),
    "readme_async_aiohttp.py": Program(["Echo: Reply that this is a test"]),
    "readme_chat_usage.py": Program(
        ["Echo: Which Python call tells whether an object is an instance of a class?"]
    ),
    "readme_errors.py": Program(
        ["A 429 status code was received; we should back off a bit."], script=rate_limited
    ),
    "readme_managing_resources.py": Program(["Echo: one request"]),
    "readme_pagination_models.py": Program([str(DEFAULT_MODELS), *DEFAULT_MODELS]),
    "readme_raw_response.py": Program(["my value", "ChatCompletion(id='c'"], script=with_my_header),
    "readme_request_ids.py": Program(
        ["mock-1\n", "mock-2\n"], script=answered_then_refused, returncode=1,
        stderr_ends="Invalid value for 'model'",
    ),
    "readme_retries.py": Program(
        ["Echo: What gives the name of today's weekday in JavaScript?"],
        script=busy_three_times, chat_requests=4,
    ),
    "readme_streaming_response.py": Program(
        ["my value", '"content":"this is a test"'], script=streamed_with_my_header
    ),
    "readme_timeouts.py": Program(["Echo: How do I list every file of a directory in Python?"]),
    "readme_using_types.py": Program(
        ['"content": "Echo: List the files of a directory in Python."',
         '{"role": "assistant", "content": "Echo: List the files of a directory in Python.", '
         '"refusal": null}',
         '"refusal": null', "'choices', 'created', 'id', 'model', 'object'"],
    ),
}  # fmt: skip


def test_every_program_is_checked() -> None:
    """Each program in the folder has a row here, and names the source it follows."""
    files = sorted(p.name for p in PROGRAMS.glob("*.py"))
    assert files == sorted(SPECS)
    for name in files:
        text = (PROGRAMS / name).read_text(encoding="utf-8")
        assert "Source: github.com/openai/openai-python" in text, name
        assert "Changed: the import" in text, name


def test_every_change_is_in_the_guide() -> None:
    """A program changed beyond its import is listed in the switching guide, by file name."""
    guide = GUIDE.read_text(encoding="utf-8")
    for name in SPECS:
        text = (PROGRAMS / name).read_text(encoding="utf-8")
        if "Changed: the import." not in text:
            assert name in guide, name


@pytest.mark.parametrize("name", sorted(SPECS))
def test_openai_program_runs(threaded_server: MockServer, tmp_path: Path, name: str) -> None:
    """The program runs against the local server and prints what it does with openai's client."""
    spec = SPECS[name]
    spec.script(threaded_server)
    env = {
        **os.environ,
        "COMETAPI_KEY": FAKE_KEY,
        "OPENAI_API_KEY": FAKE_KEY,
        "COMETAPI_BASE_URL": threaded_server.url,
    }
    done = subprocess.run(
        [sys.executable, str(PROGRAMS / name)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=tmp_path,
    )
    assert done.returncode == spec.returncode, done.stderr
    for text in spec.prints:
        assert text in done.stdout, (text, done.stdout[-3000:])
    if spec.returncode == 0:
        assert done.stderr == ""
    else:
        assert done.stderr.rstrip().endswith(spec.stderr_ends), done.stderr[-2000:]
    if spec.chat_requests is not None:
        chat = [r for r in threaded_server.requests if r.path.endswith("/chat/completions")]
        assert len(chat) == spec.chat_requests
    assert FAKE_KEY not in done.stdout + done.stderr
