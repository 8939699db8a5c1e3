"""The cluster's one rate budget: the state the Ray actor ``aiocometapi-rate-*`` holds.

Plain Python (no Ray import), so that its arithmetic is tested without a cluster. Times are the
coordinator's own ``time.monotonic()``; what goes to a worker is a duration, never a time, since
the worker may run on another machine.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import deque
from dataclasses import dataclass

from .._ratelimit import TokenBucket

__all__ = ["ACTIVE_WINDOW", "BLOCK_SECONDS", "Coordinator", "Grant", "Report"]

BLOCK_SECONDS = 0.1
"""A lease holds about this long of the cluster's rate."""
ACTIVE_WINDOW = 2.0
"""A worker that has not asked for a lease this long is not counted in the ``pace`` shares."""
_RATE_STEP = 0.05
"""Requests/s added back per success, as in the single-process controller."""
_WINDOW = 1.0
"""Seconds over which what the server admitted is measured."""
_WATCH_SECONDS = 10.0
"""A watch that sees no congestion returns after this long (and is sent again)."""


@dataclass(frozen=True, slots=True)
class Report:
    """What a worker tells the coordinator with each lease, since its previous one."""

    admitted: int
    """Requests it started over the last second and that were not refused."""
    succeeded: int = 0
    tokens_back: int = 0
    """Estimated tokens taken minus tokens the answers used (negative: used more)."""


@dataclass(frozen=True, slots=True)
class Grant:
    """A lease: ``permits`` starts, the first after ``delay`` s, then one every ``spacing`` s."""

    permits: int
    tokens: int
    """Tokens taken from a tokens/min budget for them (the estimate times the permits)."""
    delay: float
    spacing: float
    """Seconds between two starts of this worker (0: no pacing)."""
    pace: float
    """The rate over the active workers, requests/s (``inf`` while nothing limits it): what a
    worker paces at alone once the coordinator is gone."""
    epoch: int
    """Congestion events so far: a worker that sees a new one drops the permits it holds."""


@dataclass(slots=True)
class _Block:
    """Permits granted: ``permits`` starts from ``start``, ``spacing`` apart."""

    start: float
    permits: int
    spacing: float

    @property
    def end(self) -> float:
        return self.start + self.permits * self.spacing

    def starts_until(self, until: float) -> int:
        """How many of its starts come at or before ``until``."""
        if until < self.start:
            return 0
        if self.spacing == 0.0:
            return self.permits
        return min(self.permits, math.floor((until - self.start) / self.spacing) + 1)

    def starts_between(self, since: float, until: float) -> int:
        """How many of its starts fall in [since, until]."""
        if self.spacing == 0.0:
            return self.permits if since <= self.start <= until else 0
        first = max(0, math.ceil((since - self.start) / self.spacing))
        last = min(self.permits - 1, math.floor((until - self.start) / self.spacing))
        return max(0, last - first + 1)


@dataclass(slots=True)
class _Worker:
    seen: float
    admitted: int
    reported: float
    """When ``admitted`` was measured."""


class Coordinator:
    """Admitted rate, pause after a 429, per-minute budgets: one view for every worker.

    Until the first 429 (and with no per-minute budget) permits are handed out as asked.
    Afterwards they go out in blocks of about ``BLOCK_SECONDS`` of the rate, each placed on one
    clock of promised starts and paced at the rate: the cluster's starts never run ahead of
    the rate however many workers ask, and a worker out of work leaves its part to the others.

    A 429 anywhere pauses every worker for the server's ``Retry-After`` and cuts the rate, once
    per congestion event and at most by half, to what the server admitted over the last second:
    the starts the clock placed in it minus the 429s heard in it (the first time, with nothing
    paced yet, the sum of what the workers report they started and got admitted). Each success
    then adds back a little, as in the single-process controller.
    """

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        self._requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self._tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self._cap = requests_per_minute / 60.0 if requests_per_minute else math.inf
        self._rate = math.inf
        self._floor = 0.0
        """The least the rate may be cut to in the current congestion event."""
        self._by_reports = False
        """The current congestion event is measured by the workers' reports."""
        self._next_start = 0.0
        self._paused_until = 0.0
        self._calm_after = 0.0
        self._congested_at = -math.inf
        self._blocks: deque[_Block] = deque()
        self._refusals: deque[float] = deque()
        self._workers: dict[str, _Worker] = {}
        self._epoch = 0
        self._changed: asyncio.Event | None = None
        self.leases = 0
        self.granted = 0
        self.rate_limited = 0

    # ----------------------------------------------------------------------- the calls

    def lease(self, worker: str, want: int, estimate: int, report: Report) -> Grant:
        """Hand ``worker`` up to ``want`` permits for its next starts, each request estimated
        at ``estimate`` tokens (0: unknown)."""
        now = time.monotonic()
        self._heard(worker, report.admitted, now)
        self.leases += 1
        if self._rate != math.inf:
            self._rate += _RATE_STEP * report.succeeded
        if self._tokens is not None and report.tokens_back:
            self._tokens.give_back(report.tokens_back)
        rate = min(self._rate, self._cap)
        if self._tokens is not None and estimate > 0:
            # A tokens/min budget caps the rate too: paced, it is spent smoothly.
            rate = min(rate, self._tokens.per_second / estimate)
        pause = max(0.0, self._paused_until - now)
        want = max(1, want)
        if rate == math.inf:
            permits, spacing = want, 0.0
            start = now + pause
        else:
            spacing = 1.0 / rate
            permits = max(1, min(want, math.ceil(rate * BLOCK_SECONDS)))
            start = max(now + pause, self._next_start)
        if self._requests is not None:
            start = max(start, now + self._requests.delay(permits, now))
        tokens = permits * max(0, estimate)
        if self._tokens is not None and tokens > 0:
            start = max(start, now + self._tokens.delay(tokens, now))
        if spacing:
            self._next_start = start + permits * spacing
        self._blocks.append(_Block(start, permits, spacing))
        while self._blocks and self._blocks[0].end < now - _WINDOW:
            self._blocks.popleft()
        self.granted += permits
        pace = rate / self._active(now)
        return Grant(permits, tokens, start - now, spacing, pace, self._epoch)

    def refused(self, worker: str, admitted: int, retry_after: float | None) -> None:
        """``worker`` got a 429: pause everyone, and cut the rate once per congestion event."""
        now = time.monotonic()
        self.rate_limited += 1
        self._refusals.append(now)
        self._heard(worker, admitted, now)
        pause = 0.5 if retry_after is None else min(max(retry_after, 0.0), 60.0)
        self._paused_until = max(self._paused_until, now + pause)
        self._next_start = max(self._next_start, self._paused_until)
        if now < self._calm_after:
            if not self._by_reports:  # more 429s of the same event: a lower count admitted
                self._rate = max(self._floor, self._paced_admitted(now))
            return
        self._calm_after = now + max(pause, 0.1)
        self._congested_at = now
        self._by_reports = self._rate == math.inf
        self._floor = 1.0 if self._rate == math.inf else max(1.0, self._rate / 2)
        measured = self._reported_admitted(now) if self._by_reports else self._paced_admitted(now)
        self._rate = max(self._floor, measured)
        for block in self._blocks:  # the workers drop the permits they hold
            block.permits = block.starts_until(now)
        self._next_start = self._paused_until
        self._epoch += 1
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    async def watch(self, epoch: int) -> tuple[int, float]:
        """Return when a congestion event newer than ``epoch`` happens (or after a while):
        the current epoch and the pause left, in seconds."""
        if self._epoch == epoch:
            if self._changed is None:
                self._changed = asyncio.Event()
            changed = self._changed
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(changed.wait(), _WATCH_SECONDS)
        return self._epoch, max(0.0, self._paused_until - time.monotonic())

    def state(self) -> dict[str, float]:
        """The figures, for logs, tests and benchmarks."""
        now = time.monotonic()
        return {
            "rate": self._rate,
            "active": self._active(now),
            "workers": len(self._workers),
            "epoch": self._epoch,
            "leases": self.leases,
            "granted": self.granted,
            "rate_limited": self.rate_limited,
            "paused_for": max(0.0, self._paused_until - now),
        }

    # ----------------------------------------------------------------------- bookkeeping

    def _heard(self, worker: str, admitted: int, now: float) -> None:
        seen = self._workers.get(worker)
        if seen is None:
            self._workers[worker] = _Worker(now, admitted, now)
        else:
            seen.seen, seen.admitted, seen.reported = now, admitted, now
        if self._by_reports and now < self._calm_after:
            # Within the event, every report heard since it began adds to what was admitted.
            self._rate = max(self._rate, self._reported_admitted(now))

    def _paced_admitted(self, now: float) -> float:
        """Starts placed in the last second minus the 429s heard in it."""
        since = now - _WINDOW
        while self._refusals and self._refusals[0] < since:
            self._refusals.popleft()
        placed = sum(block.starts_between(since, now) for block in self._blocks)
        return float(placed - len(self._refusals)) / _WINDOW

    def _reported_admitted(self, now: float) -> float:
        """Requests admitted over the last second, summed over the workers' latest reports."""
        horizon = min(self._congested_at, now) - _WINDOW
        admitted = sum(w.admitted for w in self._workers.values() if w.reported >= horizon)
        return float(admitted) / _WINDOW

    def _active(self, now: float) -> int:
        horizon = now - ACTIVE_WINDOW
        return max(1, sum(1 for w in self._workers.values() if w.seen >= horizon))
