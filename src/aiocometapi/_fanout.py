"""fan_out: many requests at once, inputs taken lazily, exactly one result for every input."""

from __future__ import annotations

import asyncio
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    Awaitable,
    Callable,
    Iterable,
    Mapping,
)
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import ObjectSendStream

from ._compat import warn_once_context
from ._retry import count_attempts
from ._streaming import AsyncStream
from ._systemic import SystemicFailureError, SystemicFailureWatch
from .types import ChatCompletion

__all__ = ["FanOutResult", "fan_out"]

Create = Callable[..., Awaitable[Any]]
Requests = Iterable[Mapping[str, Any]] | AsyncIterable[Mapping[str, Any]]


@dataclass(slots=True)
class FanOutResult:
    """The outcome of one input of a fan-out: a completion, or the error that ended it."""

    index: int
    """Position of the input in ``requests`` (0-based)."""
    request: Mapping[str, Any]
    """The input itself, the dict of ``create()`` parameters."""
    completion: ChatCompletion | None
    """The answer (assembled, for a streamed request); ``None`` when ``error`` is set."""
    error: Exception | None
    """The error that ended this input after its retries, or ``None``."""
    attempts: int
    """Tries made, retries included."""
    latency: float
    """Seconds from the first try to the result (retry waits included)."""

    @property
    def ok(self) -> bool:
        """Whether this input got a completion (``error`` is ``None``)."""
        return self.error is None


class _Inputs:
    """Hands out (index, request) pairs to workers, one at a time, pulling lazily."""

    def __init__(self, requests: Requests, window: int | None) -> None:
        self._sync = iter(requests) if isinstance(requests, Iterable) else None
        self._async = aiter(requests) if self._sync is None else None  # type: ignore[arg-type]
        self._lock = anyio.Lock()
        self._next = 0
        self._window = window
        self._delivered = 0
        self._room = anyio.Event()
        self._done = False
        self.failure: Exception | None = None
        """An error raised by the caller's iterable itself; it ends the fan-out."""
        self.taken = 0
        self.stop: tuple[str, Exception] | None = None
        """Why no more inputs are taken, and the error that showed it (early stop)."""

    def stop_taking(self, reason: str, error: Exception) -> None:
        """Take no more inputs; the ones taken still yield their results."""
        if self.stop is None:
            self.stop = (reason, error)
            self._done = True
            self._room.set()

    def delivered(self, count: int) -> None:
        """Ordered mode: the consumer has now received ``count`` results in order."""
        self._delivered = count
        self._room.set()

    async def take(self) -> tuple[int, Mapping[str, Any]] | None:
        async with self._lock:
            if self._done:
                return None
            if self._window is not None:
                while self._next >= self._delivered + self._window and not self._done:
                    self._room = anyio.Event()
                    await self._room.wait()
                if self._done:
                    return None
            try:
                if self._sync is not None:
                    request = next(self._sync)
                else:
                    assert self._async is not None
                    request = await anext(self._async)
            except (StopIteration, StopAsyncIteration):
                self._done = True
                return None
            except Exception as exc:
                self._done = True
                self.failure = exc
                return None
            index = self._next
            self._next += 1
            self.taken = self._next
            return index, request


async def _complete(create: Create, request: Mapping[str, Any]) -> ChatCompletion:
    if not isinstance(request, Mapping):
        raise TypeError(f"each request must be a dict of create() parameters, got {request!r:.80}")
    result = await create(**request)
    if isinstance(result, AsyncStream):
        async with result:
            return await result.final()
    assert isinstance(result, ChatCompletion)
    return result


async def _worker(
    create: Create,
    inputs: _Inputs,
    send: ObjectSendStream[FanOutResult],
    watch: SystemicFailureWatch | None,
) -> None:
    async with send:
        while True:
            item = await inputs.take()
            if item is None:
                return
            index, request = item
            started = time.perf_counter()
            completion: ChatCompletion | None = None
            error: Exception | None = None
            with count_attempts() as attempts:
                try:
                    completion = await _complete(create, request)
                except Exception as exc:  # every failure becomes this input's result
                    error = exc
            result = FanOutResult(
                index=index,
                request=request,
                completion=completion,
                error=error,
                attempts=attempts[0],
                latency=time.perf_counter() - started,
            )
            if watch is not None:
                # Decided here, before this worker takes another input: what is sent after the
                # answers that show the failure stays within the requests already in flight.
                reason = watch.observe(error)
                if reason is not None:
                    assert error is not None
                    inputs.stop_taking(reason, error)
            await send.send(result)


async def fan_out(
    create: Create,
    requests: Requests,
    *,
    concurrency: int = 64,
    ordered: bool = False,
    window: int | None = None,
    stop_on_systemic_failure: bool = False,
) -> AsyncGenerator[FanOutResult, None]:
    """Run ``create(**request)`` for every request, ``concurrency`` at a time; yield the results.

    See ``Completions.fan_out`` for the public description.
    """
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive int, got {concurrency!r}")
    if ordered:
        window = max(window or 4 * concurrency, concurrency)
    inputs = _Inputs(requests, window if ordered else None)
    watch = SystemicFailureWatch() if stop_on_systemic_failure else None
    send, receive = anyio.create_memory_object_stream[FanOutResult](max_buffer_size=concurrency)

    async def run() -> None:
        async with send, anyio.create_task_group() as group:
            for _ in range(concurrency):
                group.start_soon(_worker, create, inputs, send.clone(), watch)

    # The workers run in a task of their own, so this generator never yields from inside a
    # task group; leaving the loop (break, error, cancellation) cancels that task below.
    # Its context makes a compat warning come once per (parameter, family), not per request.
    runner = warn_once_context().run(asyncio.get_running_loop().create_task, run())
    try:
        if not ordered:
            async for result in receive:
                yield result
        else:
            pending: dict[int, FanOutResult] = {}
            expected = 0
            async for result in receive:
                pending[result.index] = result
                while expected in pending:
                    ready = pending.pop(expected)
                    expected += 1
                    inputs.delivered(expected)
                    yield ready
    finally:
        # Cancel the workers before closing the channel, so none fails sending into it.
        if not runner.done():
            runner.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([runner])
        receive.close()
    if inputs.failure is not None:
        raise inputs.failure
    if not runner.cancelled() and runner.exception() is not None:
        raise runner.exception()  # type: ignore[misc]
    if inputs.stop is not None:
        reason, error = inputs.stop
        raise SystemicFailureError(reason, error=error, taken=inputs.taken)
