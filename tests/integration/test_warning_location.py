"""Every warning the SDK raises names the caller's line, whatever path led to it."""

from __future__ import annotations

import contextlib
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import msgspec
import pytest

from aiocometapi import AsyncCometAPI, CompatibilityWarning
from aiocometapi.testing import MockServer
from conftest import FAKE_KEY, user

pytestmark = pytest.mark.anyio

GPT = "gpt-4o"
MISFIT: Any = {"model": GPT, "messages": [user("hi")], "temperature": 3}
"""temperature=3 is outside the 0..2 that GPT models take: compat="warn" warns."""


class Answer(msgspec.Struct):
    answer: str


def weather(city: str) -> str:
    """A tool for run_tools (the mock model calls it once, then answers: two model calls)."""
    return f"sunny in {city}"


def line() -> int:
    """The caller's line number (the next call goes on the line after this one)."""
    return sys._getframe(1).f_lineno + 1


@contextlib.contextmanager
def caught() -> Iterator[list[warnings.WarningMessage]]:
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        yield record


def assert_here(record: list[warnings.WarningMessage], lineno: int) -> None:
    """A CompatibilityWarning (one per model call), each reported at ``lineno`` of this file."""
    found = [w for w in record if issubclass(w.category, CompatibilityWarning)]
    assert found, [str(w.message) for w in record]
    assert {(w.filename, w.lineno) for w in found} == {(__file__, lineno)}


async def test_create(client: AsyncCometAPI) -> None:
    """A warning from create() names the line that called it."""
    with caught() as record:
        at = line()
        await client.chat.completions.create(**MISFIT)
    assert_here(record, at)


async def test_create_on_a_copy(client: AsyncCometAPI) -> None:
    """A warning from a with_options copy's create() names the line that called it."""
    copy = client.with_options(timeout=30)
    with caught() as record:
        at = line()
        await copy.chat.completions.create(**MISFIT)
    assert_here(record, at)


async def test_stream(client: AsyncCometAPI) -> None:
    """A warning from create(stream=True) names the line that called it."""
    with caught() as record:
        at = line()
        s = await client.chat.completions.create(**MISFIT, stream=True)
        async with s:
            await s.final()
    assert_here(record, at)


async def test_parse(client: AsyncCometAPI) -> None:
    """A warning from parse() (which calls create()) names the line that called parse()."""
    with caught() as record:
        at = line()
        await client.chat.completions.parse(response_format=Answer, **MISFIT)
    assert_here(record, at)


async def test_parse_stream(client: AsyncCometAPI) -> None:
    """A warning from parse(stream=True) names the line that called it."""
    with caught() as record:
        at = line()
        s = await client.chat.completions.parse(response_format=Answer, stream=True, **MISFIT)
        async with s:
            await s.final()
    assert_here(record, at)


async def test_run_tools(client: AsyncCometAPI) -> None:
    """A warning from a run_tools() turn names the line that called run_tools()."""
    with caught() as record:
        at = line()
        await client.chat.completions.run_tools(tools=[weather], **MISFIT)
    assert_here(record, at)


async def test_run_tools_stream(client: AsyncCometAPI) -> None:
    """A warning from a run_tools_stream() turn names the line that iterates it."""
    events = client.chat.completions.run_tools_stream(tools=[weather], **MISFIT)
    with caught() as record:
        at = line()
        async for _ in events:
            pass
    assert_here(record, at)


async def test_fan_out(client: AsyncCometAPI) -> None:
    """A warning from fan_out()'s worker tasks names the line that iterates the fan-out."""
    requests = [{"model": GPT, "messages": [user(str(i))], "temperature": 3} for i in range(5)]
    results = client.chat.completions.fan_out(requests, concurrency=3)
    with caught() as record:
        at = line()
        async for result in results:
            assert result.ok
    assert_here(record, at)


async def test_fan_out_warns_outside_it_as_usual_afterwards(client: AsyncCometAPI) -> None:
    """After a fan-out, a plain create() warns at its own line, not at the fan-out's."""
    requests = [{"model": GPT, "messages": [user("a")], "temperature": 3}]
    with caught():
        async for _ in client.chat.completions.fan_out(requests):
            pass
    with caught() as record:
        at = line()
        await client.chat.completions.create(model=GPT, messages=[user("b")], temperature=3)
    assert_here(record, at)


def test_plain_http_base_url() -> None:
    """The plain-http warning names the line that built the client."""
    with caught() as record:
        at = line()
        AsyncCometAPI(FAKE_KEY, base_url="http://api.example.com/v1")
    found = [w for w in record if "plain http" in str(w.message)]
    assert len(found) == 1 and (found[0].filename, found[0].lineno) == (__file__, at)


async def test_plain_http_base_url_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The plain-http warning names the caller's line when the URL comes from the environment."""
    monkeypatch.setenv("COMETAPI_BASE_URL", "http://api.example.com/v1")
    with caught() as record:
        at = line()
        AsyncCometAPI(FAKE_KEY)
    found = [w for w in record if "plain http" in str(w.message)]
    assert len(found) == 1 and (found[0].filename, found[0].lineno) == (__file__, at)


async def test_warning_once_per_line_under_the_default_filter(server: MockServer) -> None:
    """Under Python's default filter a repeated warning from one line shows once, as warn() does."""
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url) as client:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("default")
            for _ in range(3):
                await client.chat.completions.create(model=GPT, messages=[user("x")], temperature=3)
    assert len([w for w in record if issubclass(w.category, CompatibilityWarning)]) == 1
