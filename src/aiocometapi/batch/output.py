"""The output of a batch run: answer lines built, appended whole, and read back on a rerun.

The output file is locked for one run, a last line cut short by a crash is repaired, and the
``custom_id``s it already answers are read back so that a rerun skips them (or, asked to retry
failures, sends again those whose answers all failed, after taking those answers out).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import sys
import tempfile
from collections.abc import Callable
from typing import Any

import msgspec

from .._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    CometAPIError,
)
from .._fanout import FanOutResult
from ..types import ChatCompletion
from .report import BatchError

__all__ = ["Output", "answer_line", "check_output", "failure_message"]

# Filled in by the SDK, not sent by the API (request_id goes to response.request_id instead).
_SDK_FIELDS = ("request_id", "adjustments")
_SDK_MESSAGE_FIELDS = ("parsed",)

_encode = msgspec.json.Encoder().encode


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


def failure_message(exc: BaseException) -> str:
    """An error's own message on one line (an HTTP error's is the server's)."""
    text = exc.message if isinstance(exc, CometAPIError) else str(exc)
    return " ".join(text.split()) or type(exc).__name__


def answer_line(custom_id: str, result: FanOutResult) -> tuple[bytes, str | None]:
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


class Output:
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
                report(
                    f"{path}: took out the failed answers of {len(failed)} custom_id(s) "
                    "to send them again"
                )
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


def check_output(input_path: str, output_path: str) -> None:
    """Refuse an output that cannot be appended to and read back, or that is the input."""
    if output_path == "-":
        raise BatchError("the output must be a file (-o FILE): it is appended to and reread")
    if os.path.isdir(output_path):
        raise BatchError(f"the output {output_path} is a directory; give a file name")
    if os.path.exists(output_path):
        if not os.path.isfile(output_path):
            raise BatchError(f"the output {output_path} is not a regular file")
        if (
            input_path != "-"
            and os.path.exists(input_path)
            and os.path.samefile(input_path, output_path)
        ):
            raise BatchError("the output must be another file than the input")
