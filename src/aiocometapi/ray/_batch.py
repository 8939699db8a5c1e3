"""``aiocometapi batch FILE --ray``: a Batch API JSONL file answered on Ray, resumably.

The driver reads the input, skips the ``custom_id``s the output already answers, and hands the
rest to the same worker actors as ``chat_completions``; each worker turns an answer into its
output line (the Batch API format, as ``aiocometapi batch`` writes it), and the driver appends
the lines as each block of them arrives. Ray emits each block once even when it ran a batch
again after losing a worker, so each ``custom_id`` is answered once, and a rerun after any
interruption sends only the lines not yet answered.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TextIO, cast

import msgspec
import pyarrow as pa
import ray
import ray.data

from .._fanout import FanOutResult
from ..batch.input import Input, read_lines
from ..batch.output import Output, answer_line, check_output
from ..batch.report import BatchError, BatchSummary, Reporter, progress_text, summary_text
from ..types import ChatCompletion
from . import DEFAULT_TASKS_PER_WORKER, plan
from ._worker import Worker

__all__ = ["answer_on_ray", "main", "run_batch"]

_MAX_WARNINGS = 50
_MOCK_KEY = "sk-mock-local"
_encode = msgspec.json.Encoder().encode
LineWriter = Callable[[str, bytes, "str | None", int], None]
"""Called with (custom_id, output line, failure or None, tokens used) for every answer."""


class _BatchWorker(Worker):
    """A worker whose output rows are the Batch API's answer lines."""

    async def batch(self, batch: pa.Table) -> pa.Table:
        rows = batch.to_pylist()
        results = await self.answer(self._jobs(rows))
        lines: list[bytes] = []
        failures: list[str | None] = []
        tokens: list[int] = []
        for row, result in zip(rows, results, strict=True):
            completion = result if isinstance(result, ChatCompletion) else None
            error = result if isinstance(result, Exception) else None
            if completion is None and error is None:  # a BaseException that is not an Exception
                error = RuntimeError(f"{type(result).__name__}: {result}")
            line, failure = answer_line(
                row["custom_id"],
                FanOutResult(0, {}, completion, error, attempts=0, latency=0.0),
            )
            usage = completion.usage if completion is not None else None
            lines.append(line)
            failures.append(failure)
            tokens.append(usage.total_tokens if usage is not None else 0)
        return pa.table(
            {
                "custom_id": pa.array([row["custom_id"] for row in rows], pa.string()),
                "line": pa.array(lines, pa.binary()),
                "failure": pa.array(failures, pa.string()),
                "tokens": pa.array(tokens, pa.int64()),
            }
        )


def answer_on_ray(
    pending: Sequence[tuple[str, dict[str, Any]]],
    write: LineWriter,
    *,
    workers: int = 4,
    concurrency: int = 64,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    ray_remote_args: dict[str, Any] | None = None,
) -> dict[str, float]:
    """Answer ``(custom_id, create() parameters)`` pairs on Ray, calling ``write`` per answer.

    Returns:
        The shared budget's figures at the end (``rate_limited``: the 429s it heard of), or
        an empty dict if its actor was gone by then.
    """
    items = [
        {"custom_id": custom_id, "request": _encode(params).decode()}
        for custom_id, params in pending
    ]
    planned, coordinator = plan(
        ray.data.from_items(items),
        {
            "request": "request",
            "id_column": "custom_id",
            "base_url": base_url or os.environ.get("COMETAPI_BASE_URL") or None,
            "max_retries": max_retries,
            "timeout": timeout,
            "response_format": None,
            "on_error": "row",
        },
        workers=workers,
        concurrency=concurrency,
        requests_per_minute=requests_per_minute,
        tokens_per_minute=tokens_per_minute,
        shared_budget=True,
        # Small batches: the answers reach the output file (and a stopped run keeps them)
        # as each batch ends, while a worker's batches together still fill its concurrency.
        batch_size=max(1, concurrency // DEFAULT_TASKS_PER_WORKER),
        ray_remote_args=ray_remote_args,
        worker_class=_BatchWorker,
    )
    for block in planned.iter_batches(batch_format="pyarrow", batch_size=None):
        columns = cast(pa.Table, block).to_pydict()
        for custom_id, line, failure, tokens in zip(
            columns["custom_id"],
            columns["line"],
            columns["failure"],
            columns["tokens"],
            strict=True,
        ):
            write(custom_id, line, failure, tokens)
    try:
        state: dict[str, float] = ray.get(coordinator.state.remote(), timeout=10)
    except Exception:  # the actor died during the run: the workers went on without it
        return {}
    return state


def _pending(
    source: Input,
    done: dict[str, bool],
    summary: BatchSummary,
    reporter: Reporter,
    *,
    strict: bool,
    default_model: str | None,
) -> list[tuple[str, dict[str, Any]]]:
    """The lines not yet answered; malformed ones are reported (and stop all with ``strict``)."""
    pending: list[tuple[str, dict[str, Any]]] = []
    for line in read_lines(source, default_model):
        summary.total += 1
        if line.problem is not None:
            summary.malformed += 1
            if summary.malformed <= _MAX_WARNINGS:
                action = "" if strict else "; line skipped"
                reporter.warn(f"{source.name}:{line.number}: {line.problem}{action}")
            elif summary.malformed == _MAX_WARNINGS + 1:
                reporter.warn("more malformed lines: counted, not shown")
            continue
        answered = done.get(line.custom_id)
        if answered is None:
            pending.append((line.custom_id, line.params))
        else:
            summary.skipped += 1
            summary.skipped_failed += not answered
    if strict and summary.malformed:
        raise BatchError(
            f"{summary.malformed} malformed input line(s); nothing was sent "
            "(without --strict they are skipped)"
        )
    return pending


def run_batch(
    input_path: str,
    output_path: str,
    *,
    workers: int = 4,
    concurrency: int = 64,
    requests_per_minute: float | None = None,
    tokens_per_minute: float | None = None,
    base_url: str | None = None,
    timeout: float | None = None,
    max_retries: int | None = None,
    strict: bool = False,
    default_model: str | None = None,
    progress: bool = True,
    retry_failed: bool = False,
    stderr: TextIO | None = None,
) -> BatchSummary:
    """Answer every line of a Batch API input file on the Ray cluster ``ray.init`` reaches.

    The same rules as ``aiocometapi batch``: answers are appended to ``output_path`` as they
    come, the ``custom_id``s already answered there are skipped, ``retry_failed`` sends again
    those whose answers all failed. ``concurrency`` is per worker.

    Raises:
        BatchError: the files cannot be used, or (``strict``) an input line is malformed.
    """
    check_output(input_path, output_path)
    secret = os.environ.get("COMETAPI_KEY", "").strip()
    redact = (secret,) if len(secret) >= 8 else ()
    reporter = Reporter(stderr if stderr is not None else sys.stderr, progress, redact)
    source = Input(input_path)
    summary = BatchSummary(source.name, output_path)
    try:
        output = Output(output_path, reporter.warn, retry_failed=retry_failed)
    except BaseException:
        source.close()
        raise
    started = time.monotonic()
    shown = [started]
    lock = threading.Lock()

    def write(custom_id: str, line: bytes, failure: str | None, tokens: int) -> None:
        for text in redact:
            line = line.replace(text.encode(), b"[redacted]")
        with lock:
            output.write(line)
            if failure is None:
                summary.succeeded += 1
            else:
                summary.failed[failure] += 1
            summary.tokens += tokens
            now = time.monotonic()
            summary.elapsed = now - started
            if reporter.progress_enabled and now - shown[0] >= (0.25 if reporter.tty else 5.0):
                shown[0] = now
                reporter.progress(progress_text(summary))

    try:
        pending = _pending(
            source,
            output.done,
            summary,
            reporter,
            strict=strict,
            default_model=default_model,
        )
        if pending:
            with _signals():
                state = answer_on_ray(
                    pending,
                    write,
                    workers=workers,
                    concurrency=concurrency,
                    requests_per_minute=requests_per_minute,
                    tokens_per_minute=tokens_per_minute,
                    base_url=base_url,
                    timeout=timeout,
                    max_retries=max_retries,
                )
            summary.rate_limited = int(state.get("rate_limited", 0))
    except _Stopped as stop:
        summary.interrupted = stop.signal
        reporter.warn(f"{stop.signal}: stopping; answers written so far are kept")
    except BatchError:
        raise
    except Exception as exc:
        summary.stopped_by = f"{type(exc).__name__}: {exc}"
        raise
    finally:
        output.close()
        source.close()
        summary.elapsed = time.monotonic() - started
        reporter.line(summary_text(summary))
    return summary


class _Stopped(BaseException):
    """SIGINT or SIGTERM during a run: stop reading answers, keep those written."""

    def __init__(self, signal: str) -> None:
        super().__init__(signal)
        self.signal = signal


@contextlib.contextmanager
def _signals() -> Iterator[None]:
    """Turn SIGINT and SIGTERM into ``_Stopped`` while answers are read (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(number: int, frame: object) -> None:
        raise _Stopped(signal.Signals(number).name)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _mock_server() -> Iterator[str]:
    """A MockServer on a loop in a thread (reachable by the workers of a local Ray only)."""
    import asyncio

    from ..testing import MockServer

    server = MockServer()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        asyncio.run_coroutine_threadsafe(server.start(), loop).result(10)
        yield server.url
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)
        loop.close()


def main(
    input_path: str,
    output_path: str,
    *,
    address: str | None = None,
    mock: bool = False,
    progress: bool = True,
    **options: Any,
) -> int:
    """``aiocometapi batch ... --ray [ADDRESS]``; returns the exit status (as without Ray).

    ``address`` goes to ``ray.init`` (default: ``RAY_ADDRESS``, else a local Ray). With
    ``mock`` the built-in server runs here, for the workers of a local Ray.
    """
    with contextlib.ExitStack() as stack:
        if mock:
            options["base_url"] = stack.enter_context(_mock_server())
            os.environ.setdefault("COMETAPI_KEY", _MOCK_KEY)  # read by the local workers
        try:
            if not ray.is_initialized():
                ray.init(address=address or None, logging_level=logging.WARNING)
            if not progress:
                ray.data.DataContext.get_current().enable_progress_bars = False
            summary = run_batch(input_path, output_path, progress=progress, **options)
        except BatchError as exc:
            sys.stderr.write(f"aiocometapi batch: error: {exc}\n")
            return 2
    return summary.exit_status
