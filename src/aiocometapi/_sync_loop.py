"""The sync client's event loop: a daemon thread started and stopped through an anyio portal.

Calls from any thread run as tasks of that loop. A call hands its job over with one
``call_soon_threadsafe`` and waits on a ``threading.Event``: the portal's own ``call()`` makes a
second blocking round trip to spawn each task, which doubles the cost of a call. A
``KeyboardInterrupt`` (or any exception) raised in the waiting thread cancels the task and
waits for it to unwind, so the request's connection is released before the error goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import anyio
from anyio.from_thread import BlockingPortal

from ._exceptions import ClientClosedError

__all__ = ["EventLoopThread"]

T = TypeVar("T")

_UNWIND_WITHIN = 10.0
"""Seconds an interrupted call waits for its task to unwind (it takes milliseconds)."""
_POLL = 0.1 if sys.platform == "win32" else None
"""Windows cannot interrupt a plain lock wait with Ctrl-C; a timed one wakes to let it."""


class _Job(Generic[T]):
    """One call: started in the loop's thread, waited for in the caller's."""

    __slots__ = ("args", "done", "error", "fn", "kwargs", "task", "value")

    def __init__(
        self, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.fn = fn
        self.args = args
        self.kwargs = kwargs
        self.done = threading.Event()
        self.task: asyncio.Future[T] | None = None
        self.value: T | None = None
        self.error: BaseException | None = None

    def start(self) -> None:
        """In the loop's thread (in a copy of the caller's context, as call_soon gives)."""
        try:
            self.task = asyncio.ensure_future(self.fn(*self.args, **self.kwargs))
        except BaseException as exc:
            self.error = exc
            self.done.set()
            return
        self.task.add_done_callback(self._finish)

    def _finish(self, task: asyncio.Future[T]) -> None:
        if task.cancelled():
            self.error = asyncio.CancelledError()
        elif (error := task.exception()) is not None:
            self.error = error
        else:
            self.value = task.result()
        self.done.set()

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def wait(self) -> None:
        if _POLL is None:
            self.done.wait()
        else:  # pragma: no cover
            while not self.done.wait(_POLL):
                pass

    def result(self) -> T:
        error = self.error
        if error is not None:
            self.error = None  # no reference cycle through the traceback
            raise error
        return self.value  # type: ignore[return-value]


class EventLoopThread:
    """An asyncio loop in a daemon thread of its own, started at first use.

    The thread runs ``anyio.run`` around a ``BlockingPortal``; ``stop()`` stops the portal,
    and ``anyio.run`` then finalizes what is left (the client's pool closes with it).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._portal: BlockingPortal | None = None
        self._thread: threading.Thread | None = None
        self._ident: int | None = None
        self._stopped = False

    @property
    def started(self) -> bool:
        return self._loop is not None

    def _running(self) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is None or self._stopped:
            with self._lock:
                if self._stopped:
                    raise ClientClosedError(
                        "This client was closed with close(); create a new one."
                    )
                if self._loop is None:
                    self._start()
                loop = self._loop
                assert loop is not None
        return loop

    def _start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            async with BlockingPortal() as portal:
                self._portal = portal
                self._ident = threading.get_ident()
                self._loop = asyncio.get_running_loop()
                ready.set()
                await portal.sleep_until_stopped()

        def main() -> None:
            try:
                anyio.run(serve, backend="asyncio")
            except BaseException as exc:  # pragma: no cover - anyio.run itself failing
                failure.append(exc)
            finally:
                ready.set()

        thread = threading.Thread(target=main, name="aiocometapi-sync", daemon=True)
        thread.start()
        ready.wait()
        if self._loop is None:  # pragma: no cover
            raise RuntimeError("The sync client's event loop did not start") from (
                failure[0] if failure else None
            )
        self._thread = thread

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any, **kwargs: Any) -> T:
        """Run ``await fn(*args, **kwargs)`` in the loop and return its result here.

        Raises:
            Whatever the call raises; a ``KeyboardInterrupt`` in this thread cancels it.
            RuntimeError: called from the loop's own thread (it would wait on itself).
        """
        loop = self._running()
        if threading.get_ident() == self._ident:
            raise RuntimeError(
                "The sync client was called from inside its own event loop (an async tool or "
                "callback given to it?): that would wait on itself. Use an AsyncCometAPI there."
            )
        job = _Job(fn, args, kwargs)
        loop.call_soon_threadsafe(job.start)
        try:
            job.wait()
        except BaseException:
            # Ctrl-C (or another exception raised in this thread): cancel the request and let
            # it release its connection before the interruption goes on.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(job.cancel)
                job.done.wait(_UNWIND_WITHIN)
            raise
        return job.result()

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Start ``fn(*args)`` in the loop without waiting (from any thread, even the loop's)."""
        loop = self._loop
        if loop is None or self._stopped:
            return
        job = _Job(fn, args, {})
        with contextlib.suppress(RuntimeError):  # the loop has closed: nothing left to do
            loop.call_soon_threadsafe(job.start)

    def stop(self, before: Callable[[], Awaitable[Any]] | None = None) -> None:
        """Run ``before()`` in the loop (closing the client), then stop the loop and its thread.

        Idempotent. From the loop's own thread (a garbage collection there), it schedules the
        same and returns at once.
        """
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            loop, portal, thread = self._loop, self._portal, self._thread
        if loop is None or portal is None:
            return

        async def shut_down() -> None:
            try:
                if before is not None:
                    await before()
            finally:
                await portal.stop()

        job = _Job(shut_down, (), {})
        try:
            loop.call_soon_threadsafe(job.start)
        except RuntimeError:  # pragma: no cover - the loop already ended
            return
        if threading.get_ident() == self._ident:
            return
        job.done.wait(_UNWIND_WITHIN)
        if thread is not None:
            thread.join(_UNWIND_WITHIN)
