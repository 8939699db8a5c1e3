"""The client-wide rate controller: every request on a client shares one view of the server's room.

Until the server first answers 429 (and with no budget set) it only counts. After a 429 it pauses
new starts for the server's ``Retry-After`` and paces them at the rate the server admitted over
the last second (requests started minus requests refused, so it works whatever the answers'
latency); each success then adds back a little rate, so a fan-out settles at the server's
capacity instead of stampeding it. With nothing to measure a rate by, it halves the allowed
concurrency instead, and successes add it back.

A ``Budget`` (``share``) moves the decision of when a request starts out of the process: while it
lasts, it admits requests instead of this controller's own pacing, pause and per-minute budgets,
and hears of every answer; the controller keeps counting, bounding concurrency and measuring, so
that it can take over, from the budget's last pace, the moment the budget is gone.
"""

from __future__ import annotations

import math
import time
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import anyio

from . import _retry

__all__ = ["Budget", "RateController", "RateState", "TokenBucket"]

_WINDOW = 1.0
_RATE_STEP = 0.05
"""Requests/s added back per success: at rate R that is 5% of R per second (additive probing)."""
_NO_WAIT = 0.001
"""Seconds in a budget's ``admit`` that do not count as a wait (the call itself takes some)."""
_LIMIT_STEP = 2.0
"""Concurrency added back per round trip of successes (``_LIMIT_STEP / limit`` per success)."""


@dataclass(frozen=True, slots=True)
class RateState:
    """A snapshot of a client's rate controller, for logs and progress lines."""

    in_flight: int
    """Requests started and not yet answered."""
    concurrency_limit: float
    """Allowed concurrent requests (``inf`` until the first 429)."""
    rate_limit: float
    """Allowed new requests per second (``inf`` until the first 429 or budget)."""
    rate_limited: int
    """429 answers seen."""
    waits: int
    """Times a request had to wait here before starting."""
    waited_seconds: float
    """Seconds requests spent waiting here, added up."""
    tokens_used: int
    """Tokens counted against ``tokens_per_minute``: estimates, corrected by ``usage``."""
    paused_for: float
    """Seconds left of a server-requested pause (0 when not paused)."""


class Budget(Protocol):
    """Admission shared beyond one process (``aiocometapi.ray`` keeps one for a whole cluster)."""

    @property
    def pace(self) -> float:
        """Requests/s this process was last allowed (``inf`` if unknown)."""
        ...

    async def admit(self, tokens: int) -> bool:
        """Wait until one request may start; ``False``: the budget is gone, admit locally."""
        ...

    def released(
        self,
        *,
        status: int | None,
        retry_after: float | None,
        tokens_estimated: int,
        tokens_used: int | None,
    ) -> None:
        """A request admitted by the budget finished, as ``RateController.release`` says."""
        ...


class TokenBucket:
    """A token bucket refilled continuously: ``per_minute`` with a burst of ten seconds' worth."""

    __slots__ = ("capacity", "level", "per_second", "updated")

    def __init__(self, per_minute: float) -> None:
        self.per_second = per_minute / 60.0
        self.capacity = max(1.0, per_minute / 6.0)
        self.level = self.capacity
        self.updated = time.monotonic()

    def delay(self, amount: float, now: float) -> float:
        """Take ``amount`` now (the level may go negative); return how long to wait first."""
        self.level = min(self.capacity, self.level + (now - self.updated) * self.per_second)
        self.updated = now
        amount = min(amount, self.capacity)
        self.level -= amount
        return 0.0 if self.level >= 0 else -self.level / self.per_second

    def give_back(self, amount: float) -> None:
        self.level = min(self.capacity, self.level + amount)


class RateController:
    """Admission for every request of one client (and of its ``with_options`` copies)."""

    def __init__(
        self,
        *,
        requests_per_minute: float | None = None,
        tokens_per_minute: float | None = None,
    ) -> None:
        for name, value in (
            ("requests_per_minute", requests_per_minute),
            ("tokens_per_minute", tokens_per_minute),
        ):
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive, got {value}")
        self._requests = TokenBucket(requests_per_minute) if requests_per_minute else None
        self._tokens = TokenBucket(tokens_per_minute) if tokens_per_minute else None
        self.in_flight = 0
        self.rate_limited = 0
        self.waits = 0
        self.waited_seconds = 0.0
        self.tokens_used = 0
        self._limit = math.inf
        self._rate = math.inf
        self._engaged = self._requests is not None or self._tokens is not None
        self._waiters: deque[anyio.Event] = deque()
        self._next_start = 0.0
        self._paused_until = 0.0
        self._calm_after = 0.0
        self._event_admitted = 0
        """Of the requests started in the window before this congestion event, those not
        refused so far."""
        self._floor = 1.0
        """The lowest pace this congestion event may cut to."""
        self._cuts = 0
        """429s seen: a waiter that sees it change while it waits takes a new start."""
        self._starts: deque[float] = deque()
        self._refusals: deque[float] = deque()
        self._budget: Budget | None = None

    def share(self, budget: Budget) -> None:
        """Let ``budget`` decide when requests start, from now on and until it is gone."""
        self._budget = budget
        self._engaged = True

    @property
    def needs_estimate(self) -> bool:
        """Whether callers should pass a token estimate (a tokens-per-minute budget is set)."""
        return self._tokens is not None

    def state(self) -> RateState:
        """The controller's figures right now."""
        return RateState(
            in_flight=self.in_flight,
            concurrency_limit=self._limit,
            rate_limit=self._rate,
            rate_limited=self.rate_limited,
            waits=self.waits,
            waited_seconds=self.waited_seconds,
            tokens_used=self.tokens_used,
            paused_for=max(0.0, self._paused_until - time.monotonic()),
        )

    async def acquire(self, tokens: int = 0) -> None:
        """Wait until a request may start; pair every call with one ``release()``."""
        now = time.monotonic()
        self._starts.append(now)
        if not self._engaged:
            self.in_flight += 1
            if len(self._starts) > 256:
                _trim(self._starts, now)
            return
        if self._budget is not None:
            if await self._budget.admit(tokens):
                waited = time.monotonic() - now
                if waited > _NO_WAIT:
                    self.waits += 1
                    self.waited_seconds += waited
                while self.in_flight >= self._limit:
                    await self._wait_for_room()
                self.in_flight += 1
                return
            self._take_over()
            now = time.monotonic()
        delay = self._pace(now)
        if self._requests is not None:
            delay = max(delay, self._requests.delay(1, now))
        if self._tokens is not None and tokens:
            delay = max(delay, self._tokens.delay(tokens, now))
        if delay > 0 or self.in_flight >= self._limit:
            self.waits += 1
            while True:
                cuts = self._cuts
                await _retry.pause(delay)
                if self._cuts == cuts:
                    break
                # A 429 came while this request waited for a start taken at the old pace:
                # take one at the new pace, or many waiters would start into the refusal.
                delay = self._pace(time.monotonic())
            while self.in_flight >= self._limit:
                await self._wait_for_room()
            self.waited_seconds += time.monotonic() - now
        self.in_flight += 1

    def _pace(self, now: float) -> float:
        """Take the next start the pause and the pace allow; how long until it comes."""
        delay = max(0.0, self._paused_until - now)
        if self._rate != math.inf:
            start = max(now + delay, self._next_start)
            self._next_start = start + 1.0 / self._rate
            delay = start - now
        return delay

    def _take_over(self) -> None:
        """The budget is gone: pace locally, from the budget's pace if nothing better is known.

        Every request waiting on the budget when it went comes here; the first one decides.
        """
        budget, self._budget = self._budget, None
        if budget is not None and self._rate == math.inf and budget.pace < math.inf:
            self._rate = budget.pace

    async def _wait_for_room(self) -> None:
        event = anyio.Event()
        self._waiters.append(event)
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                self._wake()  # pass the wake-up on rather than lose it
            else:
                self._waiters.remove(event)
            raise

    def _wake(self) -> None:
        room = self._limit - self.in_flight
        waiters = self._waiters
        while waiters and room >= 1:
            waiters.popleft().set()
            room -= 1

    def release(
        self,
        *,
        status: int | None,
        retry_after: float | None = None,
        tokens_estimated: int = 0,
        tokens_used: int | None = None,
    ) -> None:
        """A request finished (``status`` None: it failed without an answer)."""
        if self._budget is not None:
            self._budget.released(
                status=status,
                retry_after=retry_after,
                tokens_estimated=tokens_estimated,
                tokens_used=tokens_used,
            )
        self.in_flight -= 1
        if self._waiters:
            self._wake()
        if tokens_used is not None:
            self.tokens_used += tokens_used
            if self._tokens is not None and tokens_estimated:
                self._tokens.give_back(tokens_estimated - tokens_used)
        if status == 429:
            self._on_rate_limited(retry_after)
        elif status is not None and status < 400:
            self._on_success()

    def _on_rate_limited(self, retry_after: float | None) -> None:
        self.rate_limited += 1
        self._engaged = True
        now = time.monotonic()
        self._refusals.append(now)
        pause = 0.5 if retry_after is None else min(retry_after, 60.0)
        self._paused_until = max(self._paused_until, now + pause)
        # The starts taken before this answer are void: their waiters take new ones.
        self._next_start = self._paused_until
        self._cuts += 1
        if now < self._calm_after:
            # One cut per congestion event, not one per refused request. But the refusals of
            # a burst come back one by one, each showing that the server admitted one request
            # fewer of those started before the event than the cut assumed: pace at that.
            self._event_admitted -= 1
            if self._event_admitted >= 1 and self._rate != math.inf:
                self._rate = max(min(self._rate, self._event_admitted / _WINDOW), self._floor)
            return
        admitted = _trim(self._starts, now) - _trim(self._refusals, now)
        self._event_admitted = admitted
        self._calm_after = now + max(pause, 0.1)
        if admitted >= 1:
            # Pace new starts at what the server let through over the last second, but cut
            # at most by half at a time: a second spent paused admits little and says little.
            measured = admitted / _WINDOW
            self._floor = 1.0 if self._rate == math.inf else self._rate / 2
            self._rate = max(measured, self._floor)
        elif self._rate != math.inf:
            self._rate = max(1.0, self._rate / 2)
        else:
            # Nothing to pace by: halve what may be in flight instead.
            self._set_limit(max(1.0, self.in_flight / 2.0))

    def _on_success(self) -> None:
        if self._limit != math.inf:
            self._set_limit(self._limit + _LIMIT_STEP / self._limit)
        if self._rate != math.inf:
            self._rate += _RATE_STEP

    def _set_limit(self, limit: float) -> None:
        self._limit = limit
        if self._waiters:
            self._wake()


def _trim(times: deque[float], now: float) -> int:
    """Drop the times older than the window; return how many are left."""
    horizon = now - _WINDOW
    while times and times[0] < horizon:
        times.popleft()
    return len(times)
