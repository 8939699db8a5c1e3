"""The early stop of a fan-out: when its answers show that every further request fails alike."""

from __future__ import annotations

from collections.abc import Hashable

from ._exceptions import APIConnectionError, APIStatusError, APITimeoutError, CometAPIError
from ._retry import NON_RETRYABLE_CODES, is_retryable

__all__ = ["SAME_FAILURE_RESULTS", "SystemicFailureError", "SystemicFailureWatch", "failure_kind"]

SAME_FAILURE_RESULTS = 8
"""How many first results must fail with the same client error before the rest are given up.

Eight lets a few bad lines at the top of a file (a typo in one model name, a test line) go by
without stopping the run, while at the usual concurrency (16 to 64) the stop still comes within
the first wave of requests, so the bound on what is sent is set by ``concurrency``, not by this.
"""


class SystemicFailureError(CometAPIError):
    """``fan_out(stop_on_systemic_failure=True)`` stopped: every request would fail alike.

    Raised by the fan-out after it yielded the result of every input it had taken; the inputs
    after those were not taken from ``requests`` (an iterator given as ``requests`` is left
    positioned at the first of them).
    """

    def __init__(self, reason: str, *, error: Exception, taken: int) -> None:
        super().__init__(
            f"Stopped after {taken} request(s): {reason}. The inputs after those were not sent."
        )
        self.reason = reason
        """Why, in one line that quotes the server's own message, e.g. ``every request so far
        was refused with 401: Invalid API key``."""
        self.error = error
        """The error of the result that decided the stop."""
        self.taken = taken
        """Inputs taken from ``requests`` (indexes ``0`` to ``taken - 1``), each of which
        yielded a result; none after them was taken."""


def failure_kind(error: BaseException | None) -> Hashable | None:
    """What two failures share when they fail "the same way"; ``None`` for a success or for a
    failure that says nothing about the other requests (a rate limit, a server error that
    retries may cure, a slow answer, a bad input)."""
    if isinstance(error, APIStatusError):
        status = error.status_code
        if status in (401, 403):
            return ("refused",)
        if status >= 400 and (error.code in NON_RETRYABLE_CODES or not is_retryable(error)):
            return ("status", status, error.code)
        return None
    if isinstance(error, APITimeoutError):
        return ("unreachable",) if error.which == "connect" else None
    if isinstance(error, APIConnectionError):
        return ("unreachable",)
    return None


def _quote(error: Exception) -> str:
    text = error.message if isinstance(error, CometAPIError) else str(error)
    text = " ".join(text.split()) or type(error).__name__
    return text if len(text) <= 300 else text[:299] + "…"


class SystemicFailureWatch:
    """Reads results in the order they finish and says when to stop taking inputs.

    It stops when, with no request answered successfully so far:

    - the first answer is a 401 or 403 (the key is refused: every other request will be);
    - the first result is a connection failure after its retries (the host is unreachable,
      or drops every connection);
    - the first ``same`` answers all carry the same client error (same status and code).

    After a success, or once the first results differ, it never stops.
    """

    def __init__(self, *, same: int = SAME_FAILURE_RESULTS) -> None:
        self._same = same
        self._kind: Hashable | None = None
        self._count = 0
        self._armed = True

    def observe(self, error: Exception | None) -> str | None:
        """Take one result's error (``None`` for a success); the reason to stop, or ``None``."""
        if not self._armed:
            return None
        kind = failure_kind(error)
        if error is None or kind is None or (self._count and kind != self._kind):
            self._armed = False
            return None
        self._count += 1
        self._kind = kind
        if kind == ("refused",):
            assert isinstance(error, APIStatusError)
            self._armed = False
            return f"every request so far was refused with {error.status_code}: {_quote(error)}"
        if kind == ("unreachable",):
            self._armed = False
            return f"no request so far got an answer: {_quote(error)}"
        if self._count >= self._same:
            assert isinstance(error, APIStatusError)
            self._armed = False
            return f"the first {self._count} answers were all {error.status_code}: {_quote(error)}"
        return None
