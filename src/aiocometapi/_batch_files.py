"""The JSONL files of ``aiocometapi batch``: input lines checked, answer lines built, output kept.

The output file is locked for one run, a last line cut short by a crash is repaired, and the
``custom_id``s it already answers are read back so that a rerun skips them (or, asked to retry
failures, sends again those whose answers all failed, after taking those answers out).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

import msgspec

from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    CometAPIError,
)
from ._fanout import FanOutResult
from .resources.chat import CompletionCreateParams
from .types import ChatCompletion

__all__ = ["CHAT_URLS", "BatchError"]

CHAT_URLS = frozenset({"/v1/chat/completions", "/chat/completions"})
_NOT_PARAMS = frozenset(
    {"extra_headers", "extra_query", "extra_body", "timeout", "max_retries", "compat", "stream"}
)
# Body keys the SDK names go to create() as parameters; any other key is passed through as is.
_PARAMS = (CompletionCreateParams.__required_keys__ | CompletionCreateParams.__optional_keys__)
_PARAMS -= _NOT_PARAMS
_DROPPED = ("stream", "stream_options")
# Filled in by the SDK, not sent by the API (request_id goes to response.request_id instead).
_SDK_FIELDS = ("request_id", "adjustments")
_SDK_MESSAGE_FIELDS = ("parsed",)

_encode = msgspec.json.Encoder().encode


class BatchError(Exception):
    """A usage error or an input that cannot be run (exit status 2)."""


class _Malformed(Exception):
    """One input line that cannot be run; the message says why."""


class _AnswerResponse(msgspec.Struct):
    status_code: int | None = None


class _Answer(msgspec.Struct):
    """What a resume needs from an output line: whose answer it is, and whether it succeeded."""

    custom_id: str
    response: _AnswerResponse | None = None
    error: Any = None

    @property
    def ok(self) -> bool:
        status = self.response.status_code if self.response is not None else None
        return self.error is None and status is not None and 200 <= status < 300


_answer_decoder = msgspec.json.Decoder(_Answer)


# --------------------------------------------------------------------------- input


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


class _Input:
    """The input lines, read lazily as often as asked; ``-`` is standard input, kept in a
    temporary file first (it is read twice: counted for the progress line, then sent)."""

    def __init__(self, path: str, stdin: BinaryIO | None = None) -> None:
        self.path = path
        self.name = "<stdin>" if path == "-" else path
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

    def lines(self) -> Iterator[tuple[int, bytes]]:
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


# --------------------------------------------------------------------------- output


def _error_body(text: str) -> dict[str, Any]:
    return {"error": {"message": text, "type": None, "param": None, "code": None}}


def _completion_body(completion: ChatCompletion) -> dict[str, Any]:
    """The completion as JSON again, without the fields this SDK adds to what the API sent."""
    body: dict[str, Any] = msgspec.to_builtins(completion)
    for name in _SDK_FIELDS:
        body.pop(name, None)
    for choice in body.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            for name in _SDK_MESSAGE_FIELDS:
                message.pop(name, None)
    return body


def _failure_message(exc: BaseException) -> str:
    """An error's own message on one line (an HTTP error's is the server's)."""
    text = exc.message if isinstance(exc, CometAPIError) else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def _answer_line(custom_id: str, result: FanOutResult) -> tuple[bytes, str | None]:
    """The output line for a result, and the failure it is counted under (None: success)."""
    response: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    failure: str | None = None
    completion, exc = result.completion, result.error
    if completion is not None:
        body = _completion_body(completion)
        response = {"status_code": 200, "request_id": completion.request_id, "body": body}
    elif isinstance(exc, APIStatusError):
        body = exc.body if isinstance(exc.body, dict) else _error_body(str(exc.body or exc.message))
        response = {"status_code": exc.status_code, "request_id": exc.request_id, "body": body}
        failure = str(exc.status_code)
    else:
        if isinstance(exc, APITimeoutError):
            code = "timeout"
        elif isinstance(exc, APIConnectionError):
            code = "connection_error"
        elif isinstance(exc, APIResponseValidationError):
            code = "invalid_response"
        elif isinstance(exc, (TypeError, ValueError)):
            code = "invalid_request"
        else:
            code = "error"
        message = exc.message if isinstance(exc, CometAPIError) else str(exc)
        error = {"code": code, "message": message or type(exc).__name__}
        failure = code
    line = {
        "id": f"batch_req_{secrets.token_hex(12)}",
        "custom_id": custom_id,
        "response": response,
        "error": error,
    }
    return _encode(line) + b"\n", failure


class _Output:
    """The output file, locked for this run; every line goes out in one ``os.write``."""

    def __init__(
        self, path: str, report: Callable[[str], None], *, retry_failed: bool = False
    ) -> None:
        self.path = path
        self._created = not os.path.exists(path)
        self._fd = self._open()
        try:
            self._lock()
            self.done = self._scan(report)
            failed = {custom_id for custom_id, ok in self.done.items() if not ok}
            if retry_failed and failed:
                try:
                    self._drop(failed)
                except OSError as exc:
                    raise BatchError(
                        f"cannot take the failed answers out of {path}: {exc.strerror or exc}"
                    ) from None
                self.done = {custom_id: True for custom_id, ok in self.done.items() if ok}
                report(f"{path}: took out the failed answers of {len(failed)} custom_id(s) "
                       "to send them again")
        except BaseException:
            os.close(self._fd)
            raise

    def _open(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        try:
            return os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise BatchError(f"cannot open {self.path}: {exc.strerror or exc}") from None

    def _drop(self, failed: set[str]) -> None:
        """Rewrite the output without the answers of ``failed``, so that resending them cannot
        give a custom_id two answers. The new file replaces the old one whole (written beside
        it, flushed to disk, renamed over it): a crash at any point leaves one or the other."""
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, temporary = tempfile.mkstemp(
            prefix=f".{os.path.basename(self.path)}.", suffix=".tmp", dir=directory
        )
        try:
            with open(self.path, "rb") as source, os.fdopen(fd, "wb") as target:
                for line in source:
                    try:
                        custom_id: str | None = _answer_decoder.decode(line).custom_id
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        custom_id = None
                    if custom_id not in failed:
                        target.write(line)
                target.flush()
                os.fsync(target.fileno())
            os.chmod(temporary, os.stat(self.path).st_mode & 0o7777)
            if sys.platform == "win32":
                os.close(self._fd)  # Windows cannot rename over an open file
            os.replace(temporary, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        if sys.platform != "win32":
            with contextlib.suppress(OSError):  # make the rename itself durable
                directory_fd = os.open(directory, os.O_RDONLY)
                try:
                    os.fsync(directory_fd)
                finally:
                    os.close(directory_fd)
            os.close(self._fd)  # the old file, and the lock on it
        # Another run may take the new file between the rename and this lock: it then goes
        # on, and this one stops, before either has sent anything.
        self._fd = self._open()
        self._lock()

    def _lock(self) -> None:
        # Two runs appending to one output would answer lines twice.
        if sys.platform == "win32":
            return
        import fcntl

        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BatchError(f"another batch run is writing to {self.path}") from None
        try:
            same = os.path.samestat(os.fstat(self._fd), os.stat(self.path))
        except OSError:
            same = False
        if not same:
            # The run that held the lock removed or replaced the file meanwhile: that one
            # is finished with it, so take the file now at the path.
            os.close(self._fd)
            self._fd = self._open()
            self._lock()

    def _scan(self, report: Callable[[str], None]) -> dict[str, bool]:
        """custom_id -> answered successfully, for every answer line; repairs a cut last line."""
        done: dict[str, bool] = {}
        offset = ignored = repeated = 0
        with open(self.path, "rb") as file:
            for number, line in enumerate(file, 1):
                try:
                    answer: _Answer | None = _answer_decoder.decode(line)
                except (msgspec.DecodeError, msgspec.ValidationError):
                    answer = None
                if not line.endswith(b"\n"):
                    # The last line, cut short by a crash or kill mid-write: a line that is
                    # whole but for its newline is kept, anything shorter is removed.
                    if answer is None:
                        os.ftruncate(self._fd, offset)
                        report(
                            f"{self.path}:{number}: removed an incomplete last line "
                            f"({len(line)} bytes) left by an interrupted run"
                        )
                        break
                    self.write(b"\n")
                    report(f"{self.path}:{number}: the last line had no newline; added one")
                offset += len(line)
                if answer is None:
                    if not line.isspace():
                        ignored += 1
                        if ignored <= 5:
                            report(f"{self.path}:{number}: not an answer line; ignored")
                    continue
                if answer.custom_id in done:
                    repeated += 1
                done[answer.custom_id] = done.get(answer.custom_id, False) or answer.ok
        if repeated:
            report(f"{self.path}: {repeated} custom_id(s) are answered more than once")
        return done

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]

    def close(self) -> None:
        """Close the file; one this run created and left empty is removed."""
        try:
            if self._created and os.fstat(self._fd).st_size == 0:
                with contextlib.suppress(OSError):
                    os.unlink(self.path)
        finally:
            os.close(self._fd)
