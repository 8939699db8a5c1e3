"""The input of a batch run: OpenAI Batch API request lines, read lazily and checked one by one."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

import msgspec

from .._config import CALL_OPTIONS
from ..resources.chat import CompletionCreateParams
from .report import BatchError

__all__ = ["CHAT_URLS", "Input", "Line", "read_lines"]

CHAT_URLS = frozenset({"/v1/chat/completions", "/chat/completions"})


def _keys(typed: Any) -> frozenset[str]:
    return frozenset(typed.__required_keys__ | typed.__optional_keys__)


# Body keys that create() names go to it as parameters; any other key is passed through as is.
# The call options (timeout, extra_body, ...) are not body keys: a body holding one sends it.
_PARAMS = _keys(CompletionCreateParams) - CALL_OPTIONS
_DROPPED = ("stream", "stream_options")
"""A batch answer is a whole completion, never a stream."""


class _Malformed(Exception):
    """One input line that cannot be run; the message says why."""


@dataclass(frozen=True, slots=True)
class Line:
    """One input line that is not blank: its request, or why it cannot be run."""

    number: int
    custom_id: str
    """Empty when the line is malformed."""
    params: dict[str, Any]
    """The ``create()`` parameters; empty when the line is malformed."""
    problem: str | None = None
    """Why the line cannot be run (bad JSON or fields, unsupported url, repeated custom_id)."""


def _parse(raw: bytes, default_model: str | None) -> tuple[str, dict[str, Any]]:
    """The custom_id and create() parameters of one input line."""
    try:
        line = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        raise _Malformed(f"not valid JSON ({exc})") from None
    if not isinstance(line, dict):
        raise _Malformed("not a JSON object")
    custom_id = line.get("custom_id")
    if not isinstance(custom_id, str) or not custom_id:
        raise _Malformed("custom_id is missing or not a non-empty string")
    method = line.get("method")
    if not isinstance(method, str) or method.upper() != "POST":
        raise _Malformed(f"method {method!r} is not supported (only POST)")
    url = line.get("url")
    if url not in CHAT_URLS:
        raise _Malformed(f"url {url!r} is not supported (only /v1/chat/completions)")
    body = line.get("body")
    if not isinstance(body, dict):
        raise _Malformed("body is missing or not a JSON object")
    for key in _DROPPED:
        body.pop(key, None)
    if "model" not in body and default_model:
        body["model"] = default_model
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise _Malformed("body.model is missing or not a non-empty string (see -m/--model)")
    if not isinstance(body.get("messages"), list):
        raise _Malformed("body.messages is missing or not a list")
    params = {key: value for key, value in body.items() if key in _PARAMS}
    extra = {key: value for key, value in body.items() if key not in _PARAMS}
    if extra:
        params["extra_body"] = extra
    return custom_id, params


def _numbered(file: BinaryIO) -> Iterator[tuple[int, bytes]]:
    for number, raw in enumerate(file, 1):
        if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        if not raw.isspace() and raw:
            yield number, raw


class Input:
    """The input file, read lazily as often as asked; ``-`` is standard input, kept in a
    temporary file first (it is read twice: counted for the progress line, then sent)."""

    def __init__(self, path: str, *, stdin: BinaryIO | None = None) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
        """How messages name the input."""
        self._spool: BinaryIO | None = None
        if path == "-":
            spool = tempfile.TemporaryFile(prefix="aiocometapi-batch-")  # noqa: SIM115 (kept)
            try:
                shutil.copyfileobj(stdin if stdin is not None else sys.stdin.buffer, spool)
            except BaseException:
                spool.close()
                raise
            self._spool = spool
        elif os.path.isdir(path):
            raise BatchError(f"{path} is a directory; give the JSONL file of requests")
        elif not os.path.exists(path):
            raise BatchError(f"no input file {path}")

    def raw_lines(self) -> Iterator[tuple[int, bytes]]:
        """(line number, line) for each line that is not blank, read lazily."""
        if self._spool is not None:
            self._spool.seek(0)
            yield from _numbered(self._spool)
            return
        try:
            file = open(self.path, "rb")  # noqa: SIM115 (closed below, also on generator close)
        except OSError as exc:
            raise BatchError(f"cannot read {self.path}: {exc.strerror or exc}") from None
        with file:
            yield from _numbered(file)

    def close(self) -> None:
        if self._spool is not None:
            self._spool.close()


def read_lines(source: Input, default_model: str | None) -> Iterator[Line]:
    """Every line that is not blank, parsed; a ``custom_id`` seen on an earlier line makes the
    line malformed (answering it would give that ``custom_id`` two answers)."""
    seen: dict[str, int] = {}
    for number, raw in source.raw_lines():
        try:
            custom_id, params = _parse(raw, default_model)
        except _Malformed as exc:
            yield Line(number, "", {}, str(exc))
            continue
        first = seen.setdefault(custom_id, number)
        if first != number:
            yield Line(number, "", {}, f"custom_id {custom_id!r:.80} repeats line {first}")
            continue
        yield Line(number, custom_id, params)
