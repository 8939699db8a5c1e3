"""One batch run: the pending lines fanned out, each answer written as it comes, then a summary."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import sys
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from typing import Any, TextIO

import anyio

from .._budget import BudgetExceededError
from .._client import AsyncCometAPI
from .._fanout import FanOutResult
from .._systemic import SAME_FAILURE_RESULTS, SystemicFailureError, failure_kind
from .input import Input, read_lines
from .output import Output, answer_line, check_output, failure_message
from .report import BatchError, BatchSummary, Reporter, progress_text, summary_text

__all__ = ["BatchOptions", "run_batch"]

_MAX_WARNINGS = 50


@dataclass(frozen=True, kw_only=True)
class BatchOptions:
    """How a batch run goes; each default is the command line's.

    Raises:
        BatchError: ``concurrency`` is not a positive integer.
    """

    concurrency: int = 64
    """Requests in flight at most."""
    strict: bool = False
    """Check every input line before sending anything and stop at a malformed one (default:
    report it with its line number and skip it)."""
    default_model: str | None = None
    """The model for lines whose body names none."""
    retry_failed: bool = False
    """Send again the lines whose answers in the output all failed, after taking those
    answers out of it (each ``custom_id`` keeps one answer)."""
    stop_early: bool = True
    """Stop sending once the answers show that every request would fail the same way (see
    ``fan_out``'s ``stop_on_systemic_failure``); the answers that showed it are not written,
    so a rerun sends their lines again."""
    max_tokens_total: int | None = None
    """Stop sending once the answers' tokens (plus estimates for those in flight) would pass
    this (``fan_out``'s budget); the lines not sent stay unanswered, for a rerun."""
    max_cost: float | None = None
    """The same for cost at the client's ``prices``."""
    progress: bool = True
    """Show a progress line on ``stderr``."""
    stderr: TextIO | None = None
    """Where warnings, progress and the summary go (default ``sys.stderr``)."""
    redact: tuple[str, ...] = ()
    """Strings (the API key) blanked out of everything written."""
    url_hint: Callable[[BaseException], str] | None = None
    """Text to add to the reason of an early stop, given the error that showed it (the
    command line suggests a base URL ending in ``/v1`` after 404s)."""

    def __post_init__(self) -> None:
        concurrency = self.concurrency
        if not isinstance(concurrency, int) or isinstance(concurrency, bool) or concurrency < 1:
            raise BatchError(f"concurrency must be a positive integer, got {concurrency!r}")


class _Run:
    """One run: the input read lazily, answers written as they come, progress and summary."""

    def __init__(
        self,
        client: AsyncCometAPI,
        source: Input,
        output: Output,
        reporter: Reporter,
        options: BatchOptions,
    ) -> None:
        self._client = client
        self._source = source
        self._output = output
        self._reporter = reporter
        self._options = options
        self._redact = tuple(secret.encode() for secret in reporter.redact)
        self._pending: dict[int, str] = {}
        """fan_out index -> custom_id, for the requests taken and not yet answered."""
        self._held: list[tuple[bytes, str, str, Exception]] | None = (
            [] if options.stop_early else None
        )
        """Failed answers not yet written, while the run may still stop early: if it does,
        the answers that showed why are left out, so a rerun sends their lines again."""
        # A stop comes at the latest with the SAME_FAILURE_RESULTS-th answer, and the requests
        # then in flight finish: past this many answers without a success none will come.
        self._hold_limit = SAME_FAILURE_RESULTS + options.concurrency
        self._started = time.monotonic()
        self._baseline = client.rate_state()
        self._usage_baseline = client.usage.snapshot().total
        self._priced = len(client.usage.prices) > 0
        self.summary = BatchSummary(source.name, output.path)

    # ----------------------------------------------------------------------- input

    def _malformed(self, number: int, problem: str, *, fatal: bool) -> None:
        self.summary.malformed += 1
        if self.summary.malformed <= _MAX_WARNINGS:
            action = "" if self._options.strict else "; line skipped"
            self._reporter.warn(f"{self._source.name}:{number}: {problem}{action}")
        elif self.summary.malformed == _MAX_WARNINGS + 1:
            self._reporter.warn("more malformed lines: counted, not shown")
        if fatal:
            raise BatchError(f"{self._source.name}:{number}: {problem}")

    def prepare(self) -> None:
        """Count the input lines (for progress); with ``strict``, check every one first."""
        total = 0
        if not self._options.strict:
            self.summary.total = sum(1 for _ in self._source.raw_lines())
            return
        for line in read_lines(self._source, self._options.default_model):
            total += 1
            if line.problem is not None:
                self._malformed(line.number, line.problem, fatal=False)
        if self.summary.malformed:
            raise BatchError(
                f"{self.summary.malformed} malformed input line(s); nothing was sent "
                "(without --strict they are skipped)"
            )
        self.summary.total = total

    def requests(self) -> Generator[dict[str, Any], None, None]:
        """create() parameters of every line not yet answered, taken lazily by fan_out."""
        done = self._output.done
        summary = self.summary
        index = 0
        for line in read_lines(self._source, self._options.default_model):
            if line.problem is not None:
                # With strict every line passed prepare(): this one changed since.
                self._malformed(line.number, line.problem, fatal=self._options.strict)
                continue
            answered = done.get(line.custom_id)
            if answered is not None:
                summary.skipped += 1
                summary.skipped_failed += not answered
                continue
            self._pending[index] = line.custom_id
            index += 1
            yield line.params

    # ----------------------------------------------------------------------- answers

    def _write(self, result: FanOutResult) -> None:
        custom_id = self._pending.pop(result.index)
        line, failure = answer_line(custom_id, result)
        for secret in self._redact:
            line = line.replace(secret, b"[redacted]")
        if failure is None:
            self._release_held()
            self._output.write(line)
            self.summary.succeeded += 1
            return
        assert result.error is not None
        message = failure_message(result.error)
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
        """Write the failed answers held back, but those failing like ``leave_out``; from
        then on every answer is written as it comes."""
        held, self._held = self._held, None
        kind = failure_kind(leave_out) if leave_out is not None else None
        for line, failure, message, error in held or ():
            if kind is not None and failure_kind(error) == kind:
                continue
            self._record_failure(line, failure, message)

    # ----------------------------------------------------------------------- progress

    def _update(self) -> None:
        state, base = self._client.rate_state(), self._baseline
        self.summary.rate_limited = state.rate_limited - base.rate_limited
        used, before = self._client.usage.snapshot().total, self._usage_baseline
        self.summary.tokens = used.total_tokens - before.total_tokens
        if self._priced:
            self.summary.cost = (used.cost or 0.0) - (before.cost or 0.0)
        self.summary.elapsed = time.monotonic() - self._started

    async def _show_progress(self) -> None:
        interval = 0.25 if self._reporter.tty else 5.0
        while True:
            await anyio.sleep(interval)
            self._update()
            self._reporter.progress(progress_text(self.summary))

    # ----------------------------------------------------------------------- the run

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
                        await self._fan_out(requests)
                    except Exception as exc:  # raised after the task group, not inside a group
                        failure = exc
                    finally:
                        group.cancel_scope.cancel()
            if failure is not None:
                self.summary.stopped_by = (
                    str(failure)
                    if isinstance(failure, BatchError)
                    else f"{type(failure).__name__}: {failure}"
                )
                raise failure
        finally:
            requests.close()
            self._release_held()
            self._update()
            self._reporter.line(summary_text(self.summary))

    async def _fan_out(self, requests: Generator[dict[str, Any], None, None]) -> None:
        options = self._options
        results = self._client.chat.completions.fan_out(
            requests,
            concurrency=options.concurrency,
            stop_on_systemic_failure=options.stop_early,
            max_tokens_total=options.max_tokens_total,
            max_cost=options.max_cost,
        )
        try:
            async with contextlib.aclosing(results):
                async for result in results:
                    self._write(result)
        except SystemicFailureError as exc:
            self._release_held(leave_out=exc.error)
            hint = options.url_hint(exc.error) if options.url_hint is not None else ""
            self.summary.stopped_early = exc.reason + hint
            self.summary.sent = exc.taken
        except BudgetExceededError as exc:
            self._release_held()
            self.summary.budget_reached = exc.reason
            self.summary.sent = exc.taken

    def _on_signal(self, scope: anyio.CancelScope, sig: signal.Signals) -> None:
        # A second signal of the same kind gets its default action (Ctrl-C twice quits at once).
        asyncio.get_running_loop().remove_signal_handler(sig)
        if self.summary.interrupted is None:
            self.summary.interrupted = sig.name
            self._reporter.warn(f"{sig.name}: stopping; answers written so far are kept")
        scope.cancel()

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


async def run_batch(
    client: AsyncCometAPI,
    input_path: str,
    output_path: str,
    *,
    options: BatchOptions | None = None,
) -> BatchSummary:
    """Answer every line of an OpenAI Batch API input file, appending to ``output_path``.

    Args:
        client: The client to send with (its rate limits, retries and compat mode apply).
        input_path: JSONL of ``{"custom_id", "method", "url", "body"}`` lines; ``-`` reads
            them from standard input (all of it, before the first request).
        output_path: JSONL of answers, appended to; the ``custom_id``s already answered in it
            are skipped. A run that writes nothing leaves no new file behind.
        options: How the run goes (default: ``BatchOptions()``).

    Returns:
        The ``BatchSummary``, also printed to ``options.stderr``.

    Raises:
        BatchError: the files cannot be used, or (``strict``) an input line is malformed.
    """
    options = options if options is not None else BatchOptions()
    check_output(input_path, output_path)
    secrets_ = tuple(secret for secret in options.redact if len(secret) >= 8)
    stream = options.stderr if options.stderr is not None else sys.stderr
    reporter = Reporter(stream, options.progress, secrets_)
    source = Input(input_path)
    try:
        output = Output(output_path, reporter.warn, retry_failed=options.retry_failed)
        try:
            run = _Run(client, source, output, reporter, options)
            run.prepare()
            await run.run()
        finally:
            output.close()
    finally:
        source.close()
    return run.summary
