"""Budgets for a fan-out: stop starting requests once their tokens or cost would pass a limit."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import anyio

from ._exceptions import CometAPIError
from ._prices import Prices
from .types import ChatCompletion

__all__ = ["Budget", "BudgetExceededError"]

Estimate = Callable[[Mapping[str, Any]], tuple[int, int]]
"""A request -> (prompt tokens, completion tokens) it may use, before any answer says."""


class BudgetExceededError(CometAPIError):
    """``fan_out(max_tokens_total=..., max_cost=...)`` stopped starting requests at its budget.

    Raised by the fan-out after it yielded the result of every input it had started; the
    inputs from index ``taken`` on were not sent (resume from there).
    """

    def __init__(self, reason: str, *, taken: int, tokens: int, cost: float | None) -> None:
        super().__init__(
            f"Stopped after {taken} request(s): {reason}. The inputs from index {taken} on "
            "were not sent."
        )
        self.reason = reason
        """Which limit, and the figures that reached it."""
        self.taken = taken
        """Inputs started (indexes ``0`` to ``taken - 1``), each of which yielded a result."""
        self.tokens = tokens
        """Tokens the answers reported, in all."""
        self.cost = cost
        """Their cost at the client's prices (``None`` without ``max_cost``)."""


class Budget:
    """Admits requests while the tokens (or cost) spent, plus the estimates of those in
    flight, plus the next one's estimate stay within the limits.

    Estimates come from the request (its size, its completion cap) and are scaled by what
    the answers so far really used against what was estimated for them.
    """

    def __init__(
        self,
        *,
        max_tokens_total: int | None,
        max_cost: float | None,
        prices: Prices,
        estimate: Estimate,
    ) -> None:
        if max_tokens_total is not None and (
            isinstance(max_tokens_total, bool)
            or not isinstance(max_tokens_total, int)
            or max_tokens_total < 1
        ):
            raise ValueError(f"max_tokens_total must be a positive int, got {max_tokens_total!r}")
        if max_cost is not None and (isinstance(max_cost, bool) or not max_cost > 0):
            raise ValueError(f"max_cost must be a positive number, got {max_cost!r}")
        self._max_tokens = max_tokens_total
        self._max_cost = max_cost
        self._prices = prices
        self._estimate = estimate
        self.tokens = 0
        self.cost = 0.0
        # index -> (estimated tokens, estimated cost, model, tokens reserved, cost reserved)
        self._reserved: dict[int, tuple[int, float, str, int, float]] = {}
        self._reserved_tokens = 0
        self._reserved_cost = 0.0
        # What the settled answers were estimated at, and what they used: the correction.
        self._estimated_tokens = self._used_tokens = 0
        self._estimated_cost = self._used_cost = 0.0
        # Made by the first admit() that waits: the budget may be built outside an event loop
        # (the sync client builds it in the caller's thread), where anyio 4.1 has no Event.
        self._changed: anyio.Event | None = None

    def _guess(self, request: Mapping[str, Any]) -> tuple[int, float, str | None]:
        """(tokens, cost, why it cannot be priced) for a request, before correction."""
        prompt, completion = self._estimate(request)
        model = request.get("model")
        if self._max_cost is None:
            return prompt + completion, 0.0, None
        price = self._prices.find(model) if isinstance(model, str) else None
        if price is None:
            why = f"no price for model {model!r}, so max_cost cannot hold"
            return prompt + completion, 0.0, why
        cost = (prompt * price.input + completion * price.output) / 1_000_000
        return prompt + completion, cost, None

    def _scaled(self, tokens: int, cost: float) -> tuple[int, float]:
        if self._estimated_tokens:
            tokens = round(tokens * self._used_tokens / self._estimated_tokens)
        if self._estimated_cost:
            cost = cost * self._used_cost / self._estimated_cost
        return tokens, cost

    async def admit(self, index: int, request: Mapping[str, Any]) -> str | None:
        """Reserve room for request ``index``, waiting for requests in flight to settle when
        it does not fit yet; return why not when it cannot fit (then nothing is reserved)."""
        tokens, cost, unpriced = self._guess(request)
        if unpriced is not None:
            return unpriced
        while True:
            scaled_tokens, scaled_cost = self._scaled(tokens, cost)
            over = self._over(scaled_tokens, scaled_cost)
            if over is None:
                model = str(request.get("model"))
                self._reserved[index] = (tokens, cost, model, scaled_tokens, scaled_cost)
                self._reserved_tokens += scaled_tokens
                self._reserved_cost += scaled_cost
                return None
            if not self._reserved:
                return over
            self._changed = anyio.Event()
            await self._changed.wait()

    def _over(self, tokens: int, cost: float) -> str | None:
        limit = self._max_tokens
        if limit is not None and self.tokens + self._reserved_tokens + tokens > limit:
            return (
                f"max_tokens_total={limit} reached ({self.tokens} tokens used; the next "
                f"request needs about {tokens})"
            )
        budget = self._max_cost
        if budget is not None and self.cost + self._reserved_cost + cost > budget:
            return (
                f"max_cost={budget:g} reached ({self.cost:.6g} spent; the next request costs "
                f"about {cost:.3g})"
            )
        return None

    def settle(
        self, index: int, completion: ChatCompletion | None, error: Exception | None
    ) -> None:
        """Request ``index`` ended: its reservation gives way to what it really used."""
        reserved = self._reserved.pop(index, None)
        if reserved is None:
            return
        tokens, cost, model, scaled_tokens, scaled_cost = reserved
        self._reserved_tokens = max(0, self._reserved_tokens - scaled_tokens)
        self._reserved_cost = max(0.0, self._reserved_cost - scaled_cost)
        if completion is None:
            partial = getattr(error, "partial", None)
            completion = partial if isinstance(partial, ChatCompletion) else None
        usage = completion.usage if completion is not None else None
        if usage is None and completion is not None and error is None:
            # Answered, but its usage never came: count the estimate, not zero.
            self.tokens += scaled_tokens
            self.cost += scaled_cost
        elif usage is not None:
            self.tokens += usage.total_tokens
            self._estimated_tokens += tokens
            self._used_tokens += usage.total_tokens
            price = self._prices.find(model) if self._max_cost is not None else None
            if price is not None:
                spent = price.cost(usage)
                self.cost += spent
                self._estimated_cost += cost
                self._used_cost += spent
        if self._changed is not None:
            self._changed.set()

    def stopped(self, reason: str, taken: int) -> BudgetExceededError:
        """The error that says the fan-out stopped at this budget after ``taken`` inputs."""
        cost = self.cost if self._max_cost is not None else None
        return BudgetExceededError(reason, taken=taken, tokens=self.tokens, cost=cost)
