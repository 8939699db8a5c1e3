"""What a MockServer puts chat requests through: capacity limits, injected failures, latency."""

from __future__ import annotations

import math
import random
import time
from collections import deque

__all__ = ["Conditions"]


class Conditions:
    """The ``MockServer`` options that refuse, fail, drop or delay chat requests; their state."""

    def __init__(
        self,
        *,
        rps_limit: float | None,
        max_in_flight: int | None,
        seed: int,
        fail_rate: float,
        drop_rate: float,
        slow_rate: float,
        slow_delay: float,
        latency: float,
    ) -> None:
        if rps_limit is not None and rps_limit <= 0:
            raise ValueError(f"rps_limit must be positive, got {rps_limit!r}")
        if max_in_flight is not None and max_in_flight < 1:
            raise ValueError(f"max_in_flight must be at least 1, got {max_in_flight!r}")
        rates = {"fail_rate": fail_rate, "drop_rate": drop_rate, "slow_rate": slow_rate}
        for name, rate in rates.items():
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {rate!r}")
        if sum(rates.values()) > 1.0:
            raise ValueError("fail_rate + drop_rate + slow_rate must not exceed 1")
        self._rps_limit = rps_limit
        # A sliding window of `capacity` admissions per `window` seconds gives exactly
        # rps_limit per second over time, fractional limits included (0.5 -> 1 per 2 s).
        self._window_capacity = max(1, math.floor(rps_limit)) if rps_limit else 0
        self._window = self._window_capacity / rps_limit if rps_limit else 0.0
        self._admitted: deque[float] = deque()
        self._max_in_flight = max_in_flight
        self._rng = random.Random(seed)
        self._fail_rate = fail_rate
        self._drop_rate = drop_rate
        self._slow_rate = slow_rate
        self.slow_delay = slow_delay
        self.latency = latency

    def refusal(self, in_flight: int) -> tuple[float, str] | None:
        """The wait and message of a 429 if a chat request arriving now is over capacity."""
        now = time.monotonic()
        if self._rps_limit is not None:
            while self._admitted and self._admitted[0] <= now - self._window:
                self._admitted.popleft()
            if len(self._admitted) >= self._window_capacity:
                wait = self._admitted[0] + self._window - now
                limit = f"{self._rps_limit:g}"
                return wait, f"Rate limit reached on requests per second (RPS): Limit {limit}"
        if self._max_in_flight is not None and in_flight >= self._max_in_flight:
            # How long until a slot frees is unknown; the configured latency is a fair hint.
            wait = max(0.1, self.latency)
            limit = str(self._max_in_flight)
            return wait, f"Rate limit reached on concurrent requests: Limit {limit}"
        if self._rps_limit is not None:
            self._admitted.append(now)
        return None

    def draw(self) -> tuple[bool, bool, bool]:
        """Whether the next chat request gets a 500, a dropped connection, or a delay: one roll."""
        roll = self._rng.random()
        fail = roll < self._fail_rate
        drop = not fail and roll < self._fail_rate + self._drop_rate
        slow = not (fail or drop) and roll < self._fail_rate + self._drop_rate + self._slow_rate
        return fail, drop, slow
