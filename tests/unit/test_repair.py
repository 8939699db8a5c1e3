"""Drift repair alone: each fix it makes, where it gives up, and what its log line holds.

Answers and stream chunks repaired on their way through the client are in
tests/integration/test_drift.py.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import msgspec
import pytest

from aiocometapi._repair import repair
from aiocometapi.types import ChatCompletion

DECODER = msgspec.json.Decoder(ChatCompletion)


def body(**fields: Any) -> bytes:
    message = fields.pop("message", {"role": "assistant", "content": "hi"})
    choice = {"index": 0, "message": message, **fields.pop("choice", {})}
    return json.dumps({"id": "c1", "model": "m", "choices": [choice], **fields}).encode()


def test_null_is_left_out() -> None:
    """A null where a string belongs reads as the field's default."""
    fixed = repair(body(id=None), DECODER, "an answer")
    assert fixed is not None and fixed.id == ""


def test_numbers_of_the_wrong_kind() -> None:
    """A float or a bool where an int belongs, and an int as a string, read as the int."""
    assert repair(body(created=1.7e9), DECODER, "an answer") is not None
    fixed = repair(body(created=1.7e9, choice={"index": "0"}), DECODER, "an answer")
    assert fixed is not None and fixed.created == 1_700_000_000 and fixed.choices[0].index == 0
    fixed = repair(body(usage={"total_tokens": True}), DECODER, "an answer")
    assert fixed is not None and fixed.usage is not None and fixed.usage.total_tokens == 1


def test_text_parts_join_into_content() -> None:
    """Content as a list of text parts reads as their text joined."""
    parts = [{"type": "text", "text": "a"}, "b", {"type": "text", "text": "c"}]
    fixed = repair(body(message={"content": parts}), DECODER, "an answer")
    assert fixed is not None and fixed.choices[0].message.content == "abc"


def test_arguments_as_an_object_and_a_lone_call() -> None:
    """Tool-call arguments as an object read as its JSON; one call not in a list reads as one."""
    call = {"id": "t1", "function": {"name": "f", "arguments": {"x": 1}}}
    fixed = repair(body(message={"tool_calls": call}), DECODER, "an answer")
    assert fixed is not None
    [parsed] = fixed.choices[0].message.tool_calls or []
    assert json.loads(parsed.function.arguments) == {"x": 1} and parsed.id == "t1"


@pytest.mark.parametrize(
    "data",
    [
        body(created=1e999),  # infinite: no int to read
        body(choices="abc"),  # no list to read a string as
        body(choice={"index": "first"}),  # no int in it
        b'{"choices": [',  # not JSON at all
    ],
    ids=["infinite-int", "string-for-a-list", "word-for-an-int", "not-json"],
)
def test_what_is_not_drift_is_refused(data: bytes) -> None:
    """Values no fix fits, non-JSON, and answers wrong in many places give None."""
    assert repair(data, DECODER, "an answer") is None


def test_too_many_misfits_is_not_drift() -> None:
    """More than 32 places to fix in one answer is not drift: repair gives up."""
    choices = [{"index": i, "message": {"role": None}} for i in range(40)]
    data = json.dumps({"choices": choices}).encode()
    assert repair(data, DECODER, "an answer") is None


def test_the_log_line_names_paths_never_values(caplog: pytest.LogCaptureFixture) -> None:
    """The INFO line says where and what kind of fix, without the values themselves."""
    caplog.set_level(logging.INFO, logger="aiocometapi")
    parts = [{"type": "text", "text": "secret text"}]
    repair(body(id=None, model="secret-model", message={"content": parts}), DECODER, "an answer")
    [line] = [r.getMessage() for r in caplog.records]
    assert "$.id: null left out" in line
    assert "$.choices[0].message.content: array read as str" in line
    assert "secret" not in line


def test_quiet_repairs_log_nothing(caplog: pytest.LogCaptureFixture) -> None:
    """quiet=True repairs the same way without a log line (later chunks of one stream)."""
    caplog.set_level(logging.INFO, logger="aiocometapi")
    fixed = repair(body(id=None), DECODER, "a chunk", quiet=True)
    assert fixed is not None and caplog.records == []
