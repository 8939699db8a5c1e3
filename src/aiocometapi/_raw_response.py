"""RawResponse: what ``with_raw_response`` methods return, as the openai package's do."""

from __future__ import annotations

import datetime
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

from ._exceptions import request_id_from_headers
from ._retry import count_attempts
from .types import ChatCompletion

__all__ = ["RawResponse", "keep_headers", "raw_call"]

T = TypeVar("T")
U = TypeVar("U")


class RawResponse(Generic[T]):
    """The HTTP side of an answer, and the result itself through ``parse()``.

    The body was read and decoded already (a stream's headers arrived and its body waits):
    ``parse()`` returns what the method without ``with_raw_response`` would have returned.
    """

    __slots__ = ("_value", "elapsed", "headers", "retries_taken", "status_code")

    def __init__(
        self,
        value: T,
        *,
        status_code: int,
        headers: Mapping[str, str],
        elapsed: datetime.timedelta,
        retries_taken: int,
    ) -> None:
        self._value = value
        self.status_code = status_code
        """The HTTP status of the answer (of the last try, when retries were made). A stream
        keeps its headers but not its status: for one, 200 (it is returned for a 2xx only)."""
        self.headers = headers
        """The response headers, names matched without regard to case."""
        self.elapsed = elapsed
        """From the call to its answer's headers (a body read for a plain request), retries
        and their waits included."""
        self.retries_taken = retries_taken
        """Tries made after the first (0: the first try was answered)."""

    @property
    def request_id(self) -> str | None:
        """The request id the server gave in the headers, if any."""
        return request_id_from_headers(self.headers)

    def parse(self) -> T:
        """The result: a ``ChatCompletion``, an ``AsyncStream`` (``stream=True``), a ``Model``..."""
        return self._value

    def with_value(self, value: U) -> RawResponse[U]:
        """The same response around another result ``value`` (the sync client's streams)."""
        return RawResponse(
            value,
            status_code=self.status_code,
            headers=self.headers,
            elapsed=self.elapsed,
            retries_taken=self.retries_taken,
        )

    def __repr__(self) -> str:
        return f"<RawResponse [{self.status_code}] {type(self._value).__name__}>"


async def raw_call(
    call: Callable[[], Awaitable[tuple[T, int, Mapping[str, str]]]],
) -> RawResponse[T]:
    """Run ``call`` (returning result, status and headers), timed and its tries counted."""
    started = time.perf_counter()
    with count_attempts() as attempts:
        value, status, headers = await call()
    return RawResponse(
        value,
        status_code=status,
        headers=headers,
        elapsed=datetime.timedelta(seconds=time.perf_counter() - started),
        retries_taken=max(0, attempts[0] - 1),
    )


def keep_headers(completion: ChatCompletion, headers: Mapping[str, str]) -> None:
    """Let ``completion.headers`` answer with the response's ``headers`` (outside its fields,
    so never serialised)."""
    vars(completion)["_headers"] = headers
