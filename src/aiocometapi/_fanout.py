"""fan_out: many requests at once, inputs taken lazily, exactly one result for every input."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
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
    """Hands out (index, request) pairs to workers, pulling lazily.

    A plain iterable is pulled without a lock: nothing awaits between the checks and
    ``next()``, so no other worker runs in between. An async iterable is pulled under a lock,
    since two ``anext()`` calls cannot overlap; so is any input in ordered mode, so that one
    worker, not all, waits for room in the window.
    """

    def __init__(self, requests: Requests, window: int | None) -> None:
        self._sync = iter(requests) if isinstance(requests, Iterable) else None
        self._async = aiter(requests) if self._sync is None else None  # type: ignore[arg-type]
        self._lock = asyncio.Lock() if self._async is not None or window else None
        self._next = 0
        self._window = window
        self._delivered = 0
        self._room = asyncio.Event()
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

    async def _wait_for_room(self) -> None:
        window = self._window
        if window is None:
            return
        while not self._done and self._next >= self._delivered + window:
            self._room.clear()
            await self._room.wait()

    async def take(self) -> tuple[int, Mapping[str, Any]] | None:
        if self._lock is None:
            return self._pull()
        # One worker at a time waits for room or for anext(): a room that opens wakes one.
        async with self._lock:
            await self._wait_for_room()
            if self._async is None:
                return self._pull()
            if self._done:
                return None
            try:
                request = await anext(self._async)
            except StopAsyncIteration:
                self._end(None)
                return None
            except Exception as exc:
                self._end(exc)
                return None
            return self._hand_out(request)

    def _pull(self) -> tuple[int, Mapping[str, Any]] | None:
        if self._done:
            return None
        try:
            assert self._sync is not None
            request = next(self._sync)
        except StopIteration:
            self._end(None)
            return None
        except Exception as exc:
            self._end(exc)
            return None
        return self._hand_out(request)

    def _end(self, failure: Exception | None) -> None:
        self._done = True
        self.failure = failure
        self._room.set()

    def _hand_out(self, request: Mapping[str, Any]) -> tuple[int, Mapping[str, Any]]:
        index = self._next
        self._next = self.taken = index + 1
        return index, request


class _Results:
    """Results on their way from the workers to the consumer: at most ``capacity`` wait, then
    a worker waits for room; ``end()`` once every worker is done.

    Putting into room and getting what is there do not wait for the event loop, so a result
    costs no more than appending it to a deque.
    """

    def __init__(self, capacity: int) -> None:
        self._items: deque[FanOutResult] = deque()
        self._capacity = capacity
        self._ended = False
        self._getter: asyncio.Future[None] | None = None
        self._putters: deque[asyncio.Future[None]] = deque()

    async def put(self, result: FanOutResult) -> None:
        while len(self._items) >= self._capacity:
            waiter = asyncio.get_running_loop().create_future()
            self._putters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake_putter()  # pass the room on rather than lose it
                else:
                    with contextlib.suppress(ValueError):
                        self._putters.remove(waiter)
                raise
        self._items.append(result)
        self._wake_getter()

    def end(self) -> None:
        self._ended = True
        self._wake_getter()

    def _wake_getter(self) -> None:
        getter = self._getter
        if getter is not None and not getter.done():
            getter.set_result(None)

    async def get(self) -> FanOutResult | None:
        """The next result; ``None`` once the workers are done and every result was got."""
        while not self._items:
            if self._ended:
                return None
            self._getter = asyncio.get_running_loop().create_future()
            try:
                await self._getter
            finally:
                self._getter = None
        result = self._items.popleft()
        if self._putters:
            self._wake_putter()
        return result

    def _wake_putter(self) -> None:
        while self._putters:
            waiter = self._putters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return


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
    results: _Results,
    watch: SystemicFailureWatch | None,
) -> None:
    # One attempt counter per worker, reset for each request: a context of its own per
    # request would cost more than the rest of the worker's bookkeeping together.
    with count_attempts() as attempts:
        while True:
            item = await inputs.take()
            if item is None:
                return
            index, request = item
            attempts[0] = 0
            started = time.perf_counter()
            completion: ChatCompletion | None = None
            error: Exception | None = None
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
            await results.put(result)


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
    results = _Results(concurrency)

    async def run() -> None:
        try:
            async with anyio.create_task_group() as group:
                for _ in range(concurrency):
                    group.start_soon(_worker, create, inputs, results, watch)
        finally:
            results.end()

    # The workers run in a task of their own, so this generator never yields from inside a
    # task group; leaving the loop (break, error, cancellation) cancels that task below.
    # Its context makes a compat warning come once per (parameter, family), not per request.
    runner = warn_once_context().run(asyncio.get_running_loop().create_task, run())
    try:
        if not ordered:
            while (result := await results.get()) is not None:
                yield result
        else:
            pending: dict[int, FanOutResult] = {}
            expected = 0
            while (result := await results.get()) is not None:
                pending[result.index] = result
                while expected in pending:
                    ready = pending.pop(expected)
                    expected += 1
                    inputs.delivered(expected)
                    yield ready
    finally:
        if not runner.done():
            runner.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([runner])
    if inputs.failure is not None:
        raise inputs.failure
    if not runner.cancelled() and runner.exception() is not None:
        raise runner.exception()  # type: ignore[misc]
    if inputs.stop is not None:
        reason, error = inputs.stop
        raise SystemicFailureError(reason, error=error, taken=inputs.taken)
