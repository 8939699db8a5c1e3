"""``aiocometapi batch``: an OpenAI Batch API JSONL file run through the API, resumably.

Input lines are OpenAI's ``{"custom_id", "method", "url", "body"}``; every answer is appended to
the output as one ``{"id", "custom_id", "response", "error"}`` line, written with a single
``os.write`` as soon as it arrives. A rerun with the same output skips the ``custom_id``s it
already holds, so a job stopped in any way resumes without answering a line twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from collections import Counter
from collections.abc import AsyncGenerator, Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TextIO, cast

import anyio
import msgspec

from ._client import AsyncCometAPI
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

__all__ = ["BatchError", "BatchSummary", "main", "run_batch"]

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
_MAX_WARNINGS = 50
_MOCK_KEY = "sk-mock-local"
_EXIT_ON_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}

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


@dataclass
class BatchSummary:
    """What one run did; printed at its end."""

    input_path: str
    output_path: str
    total: int = 0
    """Input lines that are not blank."""
    succeeded: int = 0
    """Answered with a completion in this run."""
    failed: Counter[str] = field(default_factory=Counter)
    """Lines answered with an error in this run, by HTTP status or error code."""
    skipped: int = 0
    """Lines already answered in the output before this run."""
    skipped_failed: int = 0
    """Of ``skipped``, those whose answer in the output is an error."""
    malformed: int = 0
    """Lines that could not be run (bad JSON or fields, unsupported url, repeated custom_id)."""
    rate_limited: int = 0
    """429 answers seen (retried ones included)."""
    tokens: int = 0
    elapsed: float = 0.0
    interrupted: str | None = None
    """The signal that stopped the run (``"SIGINT"``, ``"SIGTERM"``), if one did."""
    stopped_by: str | None = None
    """The error that stopped the run, if one did."""

    @property
    def answered(self) -> int:
        return self.succeeded + sum(self.failed.values())

    @property
    def processed(self) -> int:
        return self.answered + self.skipped + self.malformed

    @property
    def exit_status(self) -> int:
        """130/143 after SIGINT/SIGTERM; 1 if a line failed, was malformed or was not run; else 0.

        Lines answered in an earlier run count too: 0 means the output holds a successful
        answer for every input line.
        """
        if self.interrupted is not None:
            return _EXIT_ON_SIGNAL.get(self.interrupted, 1)
        unfinished = self.total - self.processed
        if self.failed or self.skipped_failed or self.malformed or unfinished > 0:
            return 1
        return 0


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


def _input_lines(path: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line) for each line that is not blank, read lazily."""
    with open(path, "rb") as file:
        for number, raw in enumerate(file, 1):
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.isspace() and raw:
                yield number, raw


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

    def __init__(self, path: str, report: Callable[[str], None]) -> None:
        self.path = path
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND | getattr(os, "O_BINARY", 0)
        try:
            self._fd = os.open(path, flags, 0o644)
        except OSError as exc:
            raise BatchError(f"cannot open {path}: {exc.strerror or exc}") from None
        try:
            self._lock()
            self.done = self._scan(report)
        except BaseException:
            os.close(self._fd)
            raise

    def _lock(self) -> None:
        # Two runs appending to one output would answer lines twice.
        if sys.platform != "win32":
            import fcntl

            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise BatchError(f"another batch run is writing to {self.path}") from None

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
        os.close(self._fd)


# --------------------------------------------------------------------------- stderr


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class _Reporter:
    """Warnings, the progress line and the summary on stderr; secrets are blanked out."""

    def __init__(self, stream: TextIO, progress: bool, redact: tuple[str, ...]) -> None:
        self._stream = stream
        self._redact = redact
        self.progress_enabled = progress
        try:
            self.tty = progress and stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._drawn = False

    def _write(self, text: str) -> None:
        for secret in self._redact:
            text = text.replace(secret, "[redacted]")
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(text)
            self._stream.flush()

    def line(self, text: str) -> None:
        self._write(("\r\x1b[K" if self._drawn else "") + text + "\n")
        self._drawn = False

    def warn(self, text: str) -> None:
        self.line(f"aiocometapi batch: {text}")

    def progress(self, text: str) -> None:
        if self.tty:
            self._write("\r" + text + "\x1b[K")
            self._drawn = True
        else:
            self.line(text)


# --------------------------------------------------------------------------- the run


class _Batch:
    """One run: the input read lazily, answers written as they come, progress and summary."""

    def __init__(
        self,
        client: AsyncCometAPI,
        input_path: str,
        output: _Output,
        reporter: _Reporter,
        *,
        concurrency: int,
        strict: bool,
        default_model: str | None,
        redact: tuple[str, ...],
    ) -> None:
        self._client = client
        self._input = input_path
        self._output = output
        self._reporter = reporter
        self._concurrency = concurrency
        self._strict = strict
        self._default_model = default_model
        self._redact = tuple(secret.encode() for secret in redact)
        self._pending: dict[int, str] = {}
        """fan_out index -> custom_id, for the requests taken and not yet answered."""
        self._started = time.monotonic()
        self._baseline = client.rate_state()
        self.summary = BatchSummary(input_path, output.path)

    def _malformed(self, number: int, reason: str) -> None:
        self.summary.malformed += 1
        if self.summary.malformed <= _MAX_WARNINGS:
            action = "" if self._strict else "; line skipped"
            self._reporter.warn(f"{self._input}:{number}: {reason}{action}")
        elif self.summary.malformed == _MAX_WARNINGS + 1:
            self._reporter.warn("more malformed lines: counted, not shown")
        if self._strict:
            raise BatchError(f"{self._input}:{number}: {reason}")

    def prepare(self) -> None:
        """Count the input lines (for progress); with ``strict``, check every one first."""
        if not self._strict:
            self.summary.total = sum(1 for _ in _input_lines(self._input))
            return
        seen: dict[str, int] = {}
        total = 0
        for number, raw in _input_lines(self._input):
            total += 1
            try:
                custom_id, _ = _parse(raw, self._default_model)
                if custom_id in seen:
                    raise _Malformed(f"custom_id {custom_id!r:.80} repeats line {seen[custom_id]}")
                seen[custom_id] = number
            except _Malformed as exc:
                self.summary.malformed += 1
                if self.summary.malformed <= _MAX_WARNINGS:
                    self._reporter.warn(f"{self._input}:{number}: {exc}")
        if self.summary.malformed:
            raise BatchError(
                f"{self.summary.malformed} malformed input line(s); nothing was sent "
                "(without --strict they are skipped)"
            )
        self.summary.total = total

    def requests(self) -> Generator[dict[str, Any], None, None]:
        """create() parameters of every line not yet answered, taken lazily by fan_out."""
        done = self._output.done
        seen: dict[str, int] = {}
        summary = self.summary
        index = 0
        for number, raw in _input_lines(self._input):
            try:
                custom_id, params = _parse(raw, self._default_model)
                if custom_id in seen:
                    raise _Malformed(f"custom_id {custom_id!r:.80} repeats line {seen[custom_id]}")
            except _Malformed as exc:
                self._malformed(number, str(exc))
                continue
            seen[custom_id] = number
            answered = done.get(custom_id)
            if answered is not None:
                summary.skipped += 1
                summary.skipped_failed += not answered
                continue
            self._pending[index] = custom_id
            index += 1
            yield params

    def _write(self, result: FanOutResult) -> None:
        custom_id = self._pending.pop(result.index)
        line, failure = _answer_line(custom_id, result)
        for secret in self._redact:
            line = line.replace(secret, b"[redacted]")
        self._output.write(line)
        if failure is None:
            self.summary.succeeded += 1
        else:
            self.summary.failed[failure] += 1

    def _update(self) -> None:
        state, base = self._client.rate_state(), self._baseline
        self.summary.rate_limited = state.rate_limited - base.rate_limited
        self.summary.tokens = state.tokens_used - base.tokens_used
        self.summary.elapsed = time.monotonic() - self._started

    def progress_text(self) -> str:
        self._update()
        s = self.summary
        rate = s.answered / s.elapsed if s.elapsed > 0 else 0.0
        left = s.total - s.processed
        eta = _duration(left / rate) if rate > 0 and left >= 0 else "?"
        share = f" {100 * s.processed / s.total:.1f}%" if s.total else ""
        return (
            f"batch {s.processed:,}/{s.total:,}{share} | {rate:.1f}/s | ETA {eta} | "
            f"ok {s.succeeded:,} | failed {sum(s.failed.values()):,} | "
            f"429s {s.rate_limited:,} | tokens {s.tokens:,}"
        )

    def summary_text(self) -> str:
        self._update()
        s = self.summary
        if s.interrupted is not None:
            head = f"interrupted by {s.interrupted} after {s.elapsed:.1f} s"
        elif s.stopped_by is not None:
            head = f"stopped by an error after {s.elapsed:.1f} s: {s.stopped_by}"
        else:
            head = f"finished in {s.elapsed:.1f} s"
        failed = sum(s.failed.values())
        by = ", ".join(f"{key}: {count:,}" for key, count in sorted(s.failed.items()))
        rows = [
            ("lines", f"{s.total:,} in {s.input_path}"),
            ("succeeded", f"{s.succeeded:,}"),
            ("failed", f"{failed:,}" + (f" ({by})" if by else "")),
            ("skipped", f"{s.skipped:,} already answered in {s.output_path}"
             + (f" ({s.skipped_failed:,} of them failed)" if s.skipped_failed else "")),
            ("malformed", f"{s.malformed:,}"),
        ]
        left = s.total - s.processed
        if left > 0:
            rows.append(("not run", f"{left:,} (rerun the same command to resume)"))
        rate = s.answered / s.elapsed if s.elapsed > 0 else 0.0
        rows += [
            ("429s", f"{s.rate_limited:,}"),
            ("tokens", f"{s.tokens:,}"),
            ("rate", f"{rate:.1f} requests/s"),
        ]
        return "\n".join(
            [f"aiocometapi batch: {head}"] + [f"  {name:<10} {value}" for name, value in rows]
        )

    async def _show_progress(self) -> None:
        interval = 0.25 if self._reporter.tty else 5.0
        while True:
            await anyio.sleep(interval)
            self._reporter.progress(self.progress_text())

    def _on_signal(self, scope: anyio.CancelScope, sig: signal.Signals) -> None:
        # A second signal of the same kind gets its default action (Ctrl-C twice quits at once).
        asyncio.get_running_loop().remove_signal_handler(sig)
        if self.summary.interrupted is None:
            self.summary.interrupted = sig.name
            self._reporter.warn(f"{sig.name}: stopping; answers written so far are kept")
        scope.cancel()

    async def run(self) -> None:
        """Answer every pending line; on SIGINT/SIGTERM stop, keeping what was written."""
        self._started = time.monotonic()
        requests = self.requests()
        failure: Exception | None = None
        try:
            with anyio.CancelScope() as scope, self._signals(scope):
                async with anyio.create_task_group() as group:
                    if self._reporter.progress_enabled:
                        group.start_soon(self._show_progress)
                    try:
                        results = cast(
                            AsyncGenerator[FanOutResult, None],
                            self._client.chat.completions.fan_out(
                                requests, concurrency=self._concurrency
                            ),
                        )
                        async with contextlib.aclosing(results):
                            async for result in results:
                                self._write(result)
                    except Exception as exc:  # raised after the task group, not inside a group
                        failure = exc
                    finally:
                        group.cancel_scope.cancel()
            if failure is not None:
                self.summary.stopped_by = (
                    str(failure) if isinstance(failure, BatchError)
                    else f"{type(failure).__name__}: {failure}"
                )
                raise failure
        finally:
            requests.close()
            self._reporter.line(self.summary_text())

    @contextlib.contextmanager
    def _signals(self, scope: anyio.CancelScope) -> Iterator[None]:
        loop = asyncio.get_running_loop()
        installed = []
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                loop.add_signal_handler(sig, self._on_signal, scope, sig)
            except (NotImplementedError, RuntimeError, ValueError):
                continue  # not the main thread, or Windows: Ctrl-C raises KeyboardInterrupt
            installed.append(sig)
        try:
            yield
        finally:
            for sig in installed:
                loop.remove_signal_handler(sig)


def _check_paths(input_path: str, output_path: str) -> None:
    if not os.path.isfile(input_path):
        raise BatchError(f"no input file {input_path}")
    if os.path.exists(output_path):
        if not os.path.isfile(output_path):
            raise BatchError(f"the output {output_path} is not a regular file")
        if os.path.samefile(input_path, output_path):
            raise BatchError("the output must be another file than the input")


async def run_batch(
    client: AsyncCometAPI,
    input_path: str,
    output_path: str,
    *,
    concurrency: int = 64,
    strict: bool = False,
    default_model: str | None = None,
    progress: bool = True,
    stderr: TextIO | None = None,
    redact: Iterable[str] = (),
) -> BatchSummary:
    """Answer every line of an OpenAI Batch API input file, appending to ``output_path``.

    Args:
        client: The client to send with (its rate limits and retries apply).
        input_path: JSONL of ``{"custom_id", "method", "url", "body"}`` lines.
        output_path: JSONL of answers, appended to; the ``custom_id``s already answered in it
            are skipped.
        concurrency: Requests in flight at most.
        strict: Check every input line before sending anything and stop at a malformed one
            (default: report it with its line number and skip it).
        default_model: The model for lines whose body names none.
        progress: Show a progress line on ``stderr``.
        stderr: Where warnings, progress and the summary go (default ``sys.stderr``).
        redact: Strings (the API key) blanked out of everything written.

    Returns:
        The ``BatchSummary``, also printed to ``stderr``.

    Raises:
        BatchError: the files cannot be used, or (``strict``) an input line is malformed.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise BatchError(f"concurrency must be a positive integer, got {concurrency!r}")
    _check_paths(input_path, output_path)
    secrets_ = tuple(secret for secret in redact if len(secret) >= 8)
    reporter = _Reporter(stderr if stderr is not None else sys.stderr, progress, secrets_)
    output = _Output(output_path, reporter.warn)
    try:
        batch = _Batch(
            client,
            input_path,
            output,
            reporter,
            concurrency=concurrency,
            strict=strict,
            default_model=default_model,
            redact=secrets_,
        )
        batch.prepare()
        await batch.run()
    finally:
        output.close()
    return batch.summary


async def _main(
    input_path: str, output_path: str, mock: bool, client_options: dict[str, Any],
    batch_options: dict[str, Any],
) -> BatchSummary:
    async with contextlib.AsyncExitStack() as stack:
        key: str | None = None
        if mock:
            from .testing import MockServer

            server = await stack.enter_async_context(MockServer())
            client_options = {**client_options, "base_url": server.url}
            key = _MOCK_KEY
        try:
            client = AsyncCometAPI(key, **client_options)
        except ValueError as exc:  # ConfigurationError included: no key, bad URL, bad limit
            raise BatchError(str(exc)) from None
        await stack.enter_async_context(client)
        secret = os.environ.get("COMETAPI_KEY", "").strip()
        return await run_batch(
            client, input_path, output_path, redact=(secret,) if secret else (), **batch_options
        )


def main(
    input_path: str,
    output_path: str,
    *,
    mock: bool = False,
    base_url: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    concurrency: int = 64,
    strict: bool = False,
    default_model: str | None = None,
    progress: bool = True,
) -> int:
    """Run ``aiocometapi batch`` and return its exit status.

    0: every input line has a successful answer in the output; 1: some line failed, was
    malformed or is not answered yet; 2: a usage error or (``strict``) a malformed input;
    130/143: stopped by SIGINT/SIGTERM (what was written stays valid; rerun to resume).
    """
    client_options: dict[str, Any] = {
        "base_url": base_url,
        "timeout": timeout,
        "max_retries": max_retries,
        "requests_per_minute": requests_per_minute,
        "tokens_per_minute": tokens_per_minute,
        "max_connections": max(100, concurrency),
    }
    batch_options: dict[str, Any] = {
        "concurrency": concurrency,
        "strict": strict,
        "default_model": default_model,
        "progress": progress,
    }
    run = partial(_main, input_path, output_path, mock, client_options, batch_options)
    try:
        summary = anyio.run(run)
    except BatchError as exc:
        sys.stderr.write(f"aiocometapi batch: error: {exc}\n")
        return 2
    return summary.exit_status
