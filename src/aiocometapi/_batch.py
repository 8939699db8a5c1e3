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
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import Any, TextIO

import anyio

from ._batch_files import (
    BatchError,
    _answer_line,
    _failure_message,
    _Input,
    _Malformed,
    _Output,
    _parse,
)
from ._batch_report import BatchSummary, _progress_text, _Reporter, _summary_text
from ._client import AsyncCometAPI
from ._fanout import FanOutResult
from ._systemic import SAME_FAILURE_RESULTS, SystemicFailureError, failure_kind

__all__ = ["BatchError", "BatchSummary", "run_batch"]

_MAX_WARNINGS = 50


# --------------------------------------------------------------------------- the run


class _Batch:
    """One run: the input read lazily, answers written as they come, progress and summary."""

    def __init__(
        self,
        client: AsyncCometAPI,
        source: _Input,
        output: _Output,
        reporter: _Reporter,
        *,
        concurrency: int,
        strict: bool,
        default_model: str | None,
        redact: tuple[str, ...],
        stop_early: bool = True,
        url_hint: Callable[[BaseException], str] | None = None,
    ) -> None:
        self._client = client
        self._source = source
        self._input = source.name
        self._output = output
        self._reporter = reporter
        self._concurrency = concurrency
        self._strict = strict
        self._default_model = default_model
        self._redact = tuple(secret.encode() for secret in redact)
        self._pending: dict[int, str] = {}
        """fan_out index -> custom_id, for the requests taken and not yet answered."""
        self._stop_early = stop_early
        self._url_hint = url_hint
        self._held: list[tuple[bytes, str, str, Exception]] | None = [] if stop_early else None
        """Failed answers not yet written, while the run may still stop early: if it does,
        the answers that showed why are left out, so a rerun sends their lines again."""
        # A stop comes at the latest with the SAME_FAILURE_RESULTS-th answer, and the requests
        # then in flight finish: past this many answers without a success none will come.
        self._hold_limit = SAME_FAILURE_RESULTS + concurrency
        self._started = time.monotonic()
        self._baseline = client.rate_state()
        self.summary = BatchSummary(source.name, output.path)

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
            self.summary.total = sum(1 for _ in self._source.lines())
            return
        seen: dict[str, int] = {}
        total = 0
        for number, raw in self._source.lines():
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
        for number, raw in self._source.lines():
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
        if failure is None:
            self._release_held()
            self._output.write(line)
            self.summary.succeeded += 1
            return
        assert result.error is not None
        message = _failure_message(result.error)
        if self._held is None:
            self._record_failure(line, failure, message)
            return
        self._held.append((line, failure, message, result.error))
        if len(self._held) >= self._hold_limit:
            self._release_held()

    def _record_failure(self, line: bytes, failure: str, message: str) -> None:
        self._output.write(line)
        self.summary.failed[failure] += 1
        self.summary.count_message(f"{failure}: {message}")

    def _release_held(self, *, leave_out: BaseException | None = None) -> None:
        """Write the failed answers held back, but those failing like ``leave_out``; then
        write every answer as it comes."""
        held, self._held = self._held, None
        kind = failure_kind(leave_out) if leave_out is not None else None
        for line, failure, message, error in held or ():
            if kind is not None and failure_kind(error) == kind:
                continue
            self._record_failure(line, failure, message)

    def _update(self) -> None:
        state, base = self._client.rate_state(), self._baseline
        self.summary.rate_limited = state.rate_limited - base.rate_limited
        self.summary.tokens = state.tokens_used - base.tokens_used
        self.summary.elapsed = time.monotonic() - self._started

    def progress_text(self) -> str:
        self._update()
        return _progress_text(self.summary)

    def summary_text(self) -> str:
        self._update()
        return _summary_text(self.summary)

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
                        results = self._client.chat.completions.fan_out(
                            requests,
                            concurrency=self._concurrency,
                            stop_on_systemic_failure=self._stop_early,
                        )
                        async with contextlib.aclosing(results):
                            async for result in results:
                                self._write(result)
                    except SystemicFailureError as exc:
                        self._release_held(leave_out=exc.error)
                        hint = self._url_hint(exc.error) if self._url_hint else ""
                        self.summary.stopped_early = exc.reason + hint
                        self.summary.sent = exc.taken
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
            self._release_held()
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


def _check_output(input_path: str, output_path: str) -> None:
    if output_path == "-":
        raise BatchError("the output must be a file (-o FILE): it is appended to and reread")
    if os.path.isdir(output_path):
        raise BatchError(f"the output {output_path} is a directory; give a file name")
    if os.path.exists(output_path):
        if not os.path.isfile(output_path):
            raise BatchError(f"the output {output_path} is not a regular file")
        if input_path != "-" and os.path.exists(input_path) and os.path.samefile(
            input_path, output_path
        ):
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
    retry_failed: bool = False,
    stop_early: bool = True,
    url_hint: Callable[[BaseException], str] | None = None,
) -> BatchSummary:
    """Answer every line of an OpenAI Batch API input file, appending to ``output_path``.

    Args:
        client: The client to send with (its rate limits and retries apply).
        input_path: JSONL of ``{"custom_id", "method", "url", "body"}`` lines; ``-`` reads
            them from standard input (all of it, before the first request).
        output_path: JSONL of answers, appended to; the ``custom_id``s already answered in it
            are skipped. A run that writes nothing leaves no new file behind.
        concurrency: Requests in flight at most.
        strict: Check every input line before sending anything and stop at a malformed one
            (default: report it with its line number and skip it).
        default_model: The model for lines whose body names none.
        progress: Show a progress line on ``stderr``.
        stderr: Where warnings, progress and the summary go (default ``sys.stderr``).
        redact: Strings (the API key) blanked out of everything written.
        retry_failed: Send again the lines whose answers in the output all failed, after
            taking those answers out of it (each ``custom_id`` keeps one answer).
        stop_early: Stop sending once the answers show that every request would fail the
            same way (see ``fan_out``'s ``stop_on_systemic_failure``); the answers that
            showed it are not written, so a rerun sends their lines again.
        url_hint: Text to add to the reason of an early stop, given the error that showed it
            (the command line suggests a base URL ending in ``/v1`` after 404s).

    Returns:
        The ``BatchSummary``, also printed to ``stderr``.

    Raises:
        BatchError: the files cannot be used, or (``strict``) an input line is malformed.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise BatchError(f"concurrency must be a positive integer, got {concurrency!r}")
    _check_output(input_path, output_path)
    secrets_ = tuple(secret for secret in redact if len(secret) >= 8)
    reporter = _Reporter(stderr if stderr is not None else sys.stderr, progress, secrets_)
    source = _Input(input_path)
    try:
        output = _Output(output_path, reporter.warn, retry_failed=retry_failed)
        try:
            batch = _Batch(
                client,
                source,
                output,
                reporter,
                concurrency=concurrency,
                strict=strict,
                default_model=default_model,
                redact=secrets_,
                stop_early=stop_early,
                url_hint=url_hint,
            )
            batch.prepare()
            await batch.run()
        finally:
            output.close()
    finally:
        source.close()
    return batch.summary
