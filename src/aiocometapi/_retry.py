"""The one tenacity boundary: which failures are retried, how long to wait, and the test switch.

Every retry loop of the package is here, a stream's reopening included (``Retries.resume``).
"""

from __future__ import annotations

import contextlib
import email.utils
import random
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import TypeVar

import anyio
import anyio.lowlevel
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from ._config import RetryPolicy
from ._exceptions import APIConnectionError, APIStatusError
from ._logs import log

__all__ = [
    "SWITCH",
    "Retries",
    "RetryPolicy",
    "count_attempts",
    "instant_retries",
    "is_retryable",
    "retry_after",
    "run_with_retries",
]

T = TypeVar("T")

RETRYABLE_STATUSES = frozenset({408, 409, 429})
# CometAPI answers some client errors with a 5xx; retrying those only repeats the mistake.
NON_RETRYABLE_CODES = frozenset(
    {
        "invalid_request",
        "invalid_request_error",
        "model_not_found",
        "invalid_api_key",
        "insufficient_quota",
        "context_length_exceeded",
    }
)


def is_retryable(exc: BaseException) -> bool:
    """Whether a failed attempt is worth another try."""
    if isinstance(exc, APIStatusError):
        status = exc.status_code
        if status in RETRYABLE_STATUSES:
            return True
        return status >= 500 and exc.code not in NON_RETRYABLE_CODES
    return isinstance(exc, APIConnectionError)


def retry_after(headers: Mapping[str, str], *, now: float | None = None) -> float | None:
    """The wait a server asked for, from ``retry-after-ms`` or ``Retry-After`` (seconds or date)."""
    value = headers.get("retry-after-ms")
    if value is not None:
        with contextlib.suppress(ValueError):
            return max(0.0, float(value) / 1000.0)
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    current = time.time() if now is None else now
    return max(0.0, when.timestamp() - current)


def backoff(policy: RetryPolicy, retry_number: int) -> float:
    """Exponential back-off with jitter for the ``retry_number``-th retry (1-based)."""
    base = min(policy.max_wait, policy.initial_wait * 2.0 ** min(retry_number - 1, 64))
    return base * (1.0 - 0.25 * random.random())


def wait_for(policy: RetryPolicy, exc: BaseException | None, retry_number: int) -> float:
    """The wait before the next try: the server's ``Retry-After`` if it gave one, else back-off."""
    if isinstance(exc, APIStatusError):
        asked = retry_after(exc.headers)
        if asked is not None:
            return min(asked, policy.max_retry_after)
    return backoff(policy, retry_number)


class _TestSwitch:
    """The one test switch of the process, as stamina's ``set_testing``: while ``waits`` is a
    list, retry waits and rate-limit pauses take no time, and retry waits are recorded in it.

    A process-wide object rather than a context variable: a client whose event loop runs in
    another thread (a blocking portal) must honour it too. ``count_attempts`` is per request,
    not a switch, so it stays a context variable.
    """

    __slots__ = ("waits",)

    def __init__(self) -> None:
        self.waits: list[float] | None = None


SWITCH = _TestSwitch()
_attempts: ContextVar[list[int] | None] = ContextVar("aiocometapi_attempts", default=None)


@contextlib.contextmanager
def count_attempts() -> Iterator[list[int]]:
    """Count the tries (first ones and retries) of requests made in this context."""
    counter = [0]
    token = _attempts.set(counter)
    try:
        yield counter
    finally:
        _attempts.reset(token)


@contextlib.contextmanager
def instant_retries() -> Iterator[list[float]]:
    """Within this block retry waits take no time; yields the list of waits that were asked for.

    Rate-limit pauses take no time either. Meant for tests:
    ``with instant_retries() as waits: ...; assert waits == [2.0]``.
    """
    previous, SWITCH.waits = SWITCH.waits, []
    try:
        yield SWITCH.waits
    finally:
        SWITCH.waits = previous


async def pause(seconds: float) -> None:
    """Sleep for a rate-limit pause; no time passes inside ``instant_retries()``."""
    await anyio.sleep(0 if SWITCH.waits is not None else seconds)


async def sleep(seconds: float) -> None:
    """Sleep for a retry wait, or only record it inside ``instant_retries()``."""
    waits = SWITCH.waits
    if waits is not None:
        waits.append(seconds)
        await anyio.lowlevel.checkpoint()
    else:
        await anyio.sleep(seconds)


class Retries:
    """The tries of one request under its policy.

    One object serves the whole request, so the tries are counted (and the back-off grows)
    across the first opening of a stream and every reopening after its body failed before the
    first chunk: ``run`` for the tries in a row, ``resume`` to go on after a failure met
    outside ``run``.
    """

    __slots__ = ("label", "policy", "tries")

    def __init__(self, policy: RetryPolicy, *, label: str = "request") -> None:
        self.policy = policy
        self.label = label
        self.tries = 0
        """Tries made so far (first one included)."""

    @property
    def left(self) -> int:
        """Retries still allowed."""
        return max(0, self.policy.max_retries + 1 - self.tries)

    async def run(self, attempt: Callable[[], Awaitable[T]]) -> T:
        """Await ``attempt()``, retrying retryable failures while tries are left; re-raise the
        last failure."""
        counter = _attempts.get()
        self.tries += 1
        if counter is not None:
            counter[0] += 1
        # The first try runs outside tenacity: it is the common case, and skipping the retry
        # machinery there saves ~20 µs per request.
        try:
            return await attempt()
        except (APIStatusError, APIConnectionError) as exc:
            if not self.left or not is_retryable(exc):
                raise
            failure = exc
        return await self._retry(self._counted(attempt), failure)

    async def resume(self, failure: BaseException, attempt: Callable[[], Awaitable[T]]) -> T:
        """Wait as before any retry, then go on with ``attempt`` and the tries left.

        For a failure that the caller met after ``run`` returned and judged retryable (a
        stream whose body broke before its first chunk).

        Raises:
            ``failure`` itself when no try is left; else as ``run``.
        """
        if not self.left:
            raise failure
        return await self._retry(self._counted(attempt), failure)

    def _counted(self, attempt: Callable[[], Awaitable[T]]) -> Callable[[], Awaitable[T]]:
        counter = _attempts.get()

        async def counted() -> T:
            self.tries += 1
            if counter is not None:
                counter[0] += 1
            return await attempt()

        return counted

    async def _retry(self, counted: Callable[[], Awaitable[T]], failure: BaseException) -> T:
        policy = self.policy
        pending: BaseException | None = failure

        async def again() -> T:
            # tenacity's first call raises the failure already met, so that it waits for it.
            nonlocal pending
            if pending is not None:
                met, pending = pending, None
                raise met
            return await counted()

        def stop(state: RetryCallState) -> bool:
            return not self.left

        def wait(state: RetryCallState) -> float:
            exc = state.outcome.exception() if state.outcome else None
            return wait_for(policy, exc, self.tries)

        def announce(state: RetryCallState) -> None:
            # Called only when another try follows (tenacity asks for the wait before that).
            exc = state.outcome.exception() if state.outcome else None
            seconds = state.next_action.sleep if state.next_action else 0.0
            log.info(
                "%s: try %d failed (%s: %s); retrying in %.2f s",
                self.label, self.tries, type(exc).__name__, exc, seconds,
            )  # fmt: skip

        retrying = AsyncRetrying(
            stop=stop,
            wait=wait,
            retry=retry_if_exception(lambda exc: exc is failure or is_retryable(exc)),
            sleep=sleep,
            before_sleep=announce,
            reraise=True,
        )
        return await retrying(again)


async def run_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    label: str = "request",
) -> T:
    """Await ``attempt()``, retrying retryable failures under ``policy``; re-raise the last one.

    For a request whose tries need no counting afterwards (a stream keeps its ``Retries``).
    """
    return await Retries(policy, label=label).run(attempt)
