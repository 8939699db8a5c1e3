"""The values tests handle: items of a scripted stream, recorded requests, the server's counters."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Comment", "Drop", "MockStats", "Pause", "RecordedRequest", "StreamEvent"]


@dataclass(frozen=True, slots=True)
class Comment:
    """An SSE comment line (``: text``), the keep-alive some gateways send while a model thinks."""

    text: str = "keep-alive"


@dataclass(frozen=True, slots=True)
class Pause:
    """A stall in a scripted stream: nothing is written for ``seconds``."""

    seconds: float


@dataclass(frozen=True, slots=True)
class Drop:
    """The connection is closed at this point of a scripted stream, leaving the body truncated."""


StreamEvent = dict[str, Any] | str | bytes | Comment | Pause | Drop
"""One item of ``reply_stream``: a dict or str becomes a ``data:`` event, bytes go out raw."""


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    """One request as the server received it."""

    method: str
    """``GET`` or ``POST``."""
    path: str
    """The path, e.g. ``/v1/chat/completions``."""
    query: dict[str, str]
    """The query parameters (``extra_query`` lands here)."""
    headers: dict[str, str]
    """Header names are lower-cased."""
    body: Any
    """The decoded JSON body, or ``None`` when the body is empty or not JSON."""
    raw: bytes
    """The body's bytes as received."""


@dataclass
class MockStats:
    """Counters of what the server did since it started."""

    requests: int = 0
    """Requests received, of any path."""
    responses_by_status: dict[int, int] = field(default_factory=dict)
    """Responses sent, counted by HTTP status."""
    rate_limited: int = 0
    """Chat requests refused with 429 by ``rps_limit`` or ``max_in_flight``."""
    dropped: int = 0
    """Connections closed without a complete response (injected, ``reply_drop`` or ``Drop``)."""
    injected_failures: int = 0
    """Chat requests that ``fail_rate`` answered 500 or ``drop_rate`` dropped."""
    slowed: int = 0
    """Chat requests that ``slow_rate`` delayed."""
    in_flight: int = 0
    """Chat requests being answered right now."""
    max_in_flight_seen: int = 0
    """The most chat requests answered at once so far."""

    def count_status(self, status: int) -> None:
        """Count one response sent with ``status``."""
        self.responses_by_status[status] = self.responses_by_status.get(status, 0) + 1
