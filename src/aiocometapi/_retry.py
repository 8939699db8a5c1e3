"""The one tenacity boundary: which failures are retried, how long to wait, and the test switch."""

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
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ._config import RetryPolicy
from ._exceptions import APIConnectionError, APIStatusError
from ._logs import log

__all__ = [
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
    {"invalid_request", "invalid_request_error", "model_not_found", "invalid_api_key",
     "insufficient_quota", "context_length_exceeded"}
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
    base = min(policy.max_wait, policy.initial_wait * 2.0 ** (retry_number - 1))
    return base * (1.0 - 0.25 * random.random())


def wait_for(policy: RetryPolicy, exc: BaseException | None, retry_number: int) -> float:
    """The wait before the next try: the server's ``Retry-After`` if it gave one, else back-off."""
    if isinstance(exc, APIStatusError):
        asked = retry_after(exc.headers)
        if asked is not None:
            return min(asked, policy.max_retry_after)
    return backoff(policy, retry_number)


_recorded_waits: list[float] | None = None
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

    Meant for tests: ``with instant_retries() as waits: ...; assert waits == [2.0]``.
    """
    global _recorded_waits
    previous, _recorded_waits = _recorded_waits, []
    try:
        yield _recorded_waits
    finally:
        _recorded_waits = previous


async def pause(seconds: float) -> None:
    """Sleep for a rate-limit pause; no time passes inside ``instant_retries()``."""
    await anyio.sleep(0 if _recorded_waits is not None else seconds)


async def sleep(seconds: float) -> None:
    """Sleep for a retry wait, or only record it inside ``instant_retries()``."""
    if _recorded_waits is not None:
        _recorded_waits.append(seconds)
        await anyio.lowlevel.checkpoint()
    else:
        await anyio.sleep(seconds)


def _counted(attempt: Callable[[], Awaitable[T]], counter: list[int]) -> Callable[[], Awaitable[T]]:
    async def counted() -> T:
        counter[0] += 1
        return await attempt()

    return counted


async def run_with_retries(
    attempt: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    label: str = "request",
) -> T:
    """Await ``attempt()``, retrying retryable failures under ``policy``; re-raise the last one."""
    counter = _attempts.get()
    if counter is not None:
        attempt = _counted(attempt, counter)
    # The first try runs outside tenacity: it is the common case, and skipping the retry
    # machinery there saves ~20 µs per request.
    try:
        return await attempt()
    except (APIStatusError, APIConnectionError) as exc:
        if policy.max_retries <= 0 or not is_retryable(exc):
            raise
        first_failure: BaseException | None = exc

    async def again() -> T:
        nonlocal first_failure
        if first_failure is not None:
            failure, first_failure = first_failure, None
            raise failure
        return await attempt()

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        return wait_for(policy, exc, state.attempt_number)

    def announce(state: RetryCallState) -> None:
        # Called only when another try follows (tenacity asks for the wait before that).
        exc = state.outcome.exception() if state.outcome else None
        seconds = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "%s: try %d failed (%s: %s); retrying in %.2f s",
            label, state.attempt_number, type(exc).__name__, exc, seconds,
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.max_retries + 1),
        wait=wait,
        retry=retry_if_exception(is_retryable),
        sleep=sleep,
        before_sleep=announce,
        reraise=True,
    )
    return await retrying(again)
