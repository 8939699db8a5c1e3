"""The usage meter: what a client's calls spent, per model and in total, priced by the user."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from ._prices import Price, Prices
from .types import ChatCompletion, Usage

__all__ = ["UsageFigures", "UsageMeter", "UsageSnapshot"]


class UsageFigures(msgspec.Struct, frozen=True, kw_only=True):
    """What the calls to one model (or to every model) spent, at one moment."""

    requests: int = 0
    """Calls started (one per ``create()``, whatever its retries)."""
    answered: int = 0
    """Calls that ended with an answer (a stream: read to its end)."""
    failed: int = 0
    """Calls that ended with an error, after their retries."""
    errors: dict[str, int] = msgspec.field(default_factory=dict)
    """``failed`` by error class name, e.g. ``{"RateLimitError": 2}``."""
    left: int = 0
    """Streams the caller left before their end (their tokens are not known)."""
    retries: int = 0
    """Tries beyond the first of each call."""
    rate_limited: int = 0
    """429 answers, retried ones included."""
    usage_missing: int = 0
    """Answers without a usage (a stream whose usage chunk never came): not counted as zero."""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    reasoning_tokens: int = 0
    """Part of ``completion_tokens``, where the model reports it."""
    cached_tokens: int = 0
    """Part of ``prompt_tokens`` served from the provider's prompt cache."""
    cost: float | None = None
    """From the client's ``prices``; ``None`` when no answer had a price."""
    unpriced: int = 0
    """Answers with a usage but no price for their model (left out of ``cost``)."""
    gateway_cost: float | None = None
    """The sum of ``usage.cost`` where the gateway sent one (its own unit), else ``None``."""
    seconds: float = 0.0
    """Wall time of the calls that ended, summed (calls overlap, so it can exceed the elapsed)."""

    def to_dict(self) -> dict[str, Any]:
        """The figures as plain JSON-ready values."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]


class UsageSnapshot(msgspec.Struct, frozen=True, kw_only=True):
    """A client's usage at one moment: ``total`` and ``by_model``; immutable, serialisable."""

    total: UsageFigures
    by_model: dict[str, UsageFigures]
    """Keyed by the model each call asked for."""
    since: float
    """When counting began (the meter's creation or last ``reset()``), as a Unix time."""
    elapsed: float
    """Seconds from ``since`` to this snapshot."""

    def to_dict(self) -> dict[str, Any]:
        """The snapshot as plain JSON-ready values."""
        return msgspec.to_builtins(self)  # type: ignore[no-any-return]

    def to_json(self) -> bytes:
        """The snapshot as JSON."""
        return msgspec.json.encode(self)


class _Counter:
    """The running figures of one model (or of all), updated with plain attribute adds."""

    __slots__ = (
        "answered", "cached_tokens", "completion_tokens", "cost", "errors", "failed",
        "gateway_cost", "left", "prompt_tokens", "rate_limited", "reasoning_tokens", "requests",
        "retries", "seconds", "total_tokens", "unpriced", "usage_missing",
    )  # fmt: skip

    def __init__(self) -> None:
        self.requests = self.answered = self.failed = self.left = 0
        self.retries = self.rate_limited = self.usage_missing = self.unpriced = 0
        self.prompt_tokens = self.completion_tokens = self.total_tokens = 0
        self.reasoning_tokens = self.cached_tokens = 0
        self.cost: float | None = None
        self.gateway_cost: float | None = None
        self.seconds = 0.0
        self.errors: dict[str, int] = {}

    def add_usage(self, usage: Usage, cost: float | None) -> None:
        self.prompt_tokens += usage.prompt_tokens
        self.completion_tokens += usage.completion_tokens
        self.total_tokens += usage.total_tokens
        details = usage.completion_tokens_details
        if details is not None and details.reasoning_tokens:
            self.reasoning_tokens += details.reasoning_tokens
        prompt = usage.prompt_tokens_details
        if prompt is not None and prompt.cached_tokens:
            self.cached_tokens += prompt.cached_tokens
        if cost is None:
            self.unpriced += 1
        else:
            self.cost = cost if self.cost is None else self.cost + cost
        gateway = usage.cost
        if gateway is not None:
            known = self.gateway_cost
            self.gateway_cost = gateway if known is None else known + gateway

    def freeze(self) -> UsageFigures:
        return UsageFigures(
            requests=self.requests,
            answered=self.answered,
            failed=self.failed,
            errors=dict(self.errors),
            left=self.left,
            retries=self.retries,
            rate_limited=self.rate_limited,
            usage_missing=self.usage_missing,
            prompt_tokens=self.prompt_tokens,
            completion_tokens=self.completion_tokens,
            total_tokens=self.total_tokens,
            reasoning_tokens=self.reasoning_tokens,
            cached_tokens=self.cached_tokens,
            cost=self.cost,
            unpriced=self.unpriced,
            gateway_cost=self.gateway_cost,
            seconds=self.seconds,
        )


class _MeterCall:
    """One call's record in the meter: a few attribute adds at each step."""

    __slots__ = ("_ended", "_model", "_price", "_started", "_total", "_tries")

    def __init__(self, model: _Counter, total: _Counter, price: Price | None) -> None:
        self._model = model
        self._total = total
        self._price = price
        self._tries = 0
        self._ended = False
        self._started = time.perf_counter()

    def on_attempt(self) -> None:
        self._tries += 1

    def on_status(self, status: int) -> None:
        if status == 429:
            self._model.rate_limited += 1
            self._total.rate_limited += 1

    def on_first_chunk(self) -> None:
        pass

    def _end(self) -> tuple[_Counter, _Counter] | None:
        if self._ended:
            return None
        self._ended = True
        model, total = self._model, self._total
        seconds = time.perf_counter() - self._started
        model.seconds += seconds
        total.seconds += seconds
        if self._tries > 1:
            retries = self._tries - 1
            model.retries += retries
            total.retries += retries
        return model, total

    def on_answer(self, completion: ChatCompletion) -> None:
        counters = self._end()
        if counters is None:
            return
        model, total = counters
        model.answered += 1
        total.answered += 1
        self._add_usage(completion.usage, model, total)

    def _add_usage(self, usage: Usage | None, model: _Counter, total: _Counter) -> None:
        if usage is None:
            model.usage_missing += 1
            total.usage_missing += 1
            return
        cost = None if self._price is None else self._price.cost(usage)
        model.add_usage(usage, cost)
        total.add_usage(usage, cost)

    def on_error(self, exc: BaseException) -> None:
        counters = self._end()
        if counters is None:
            return
        name = type(exc).__name__
        for counter in counters:
            counter.failed += 1
            counter.errors[name] = counter.errors.get(name, 0) + 1
        # A stream cut after its usage chunk still spent those tokens.
        partial = getattr(exc, "partial", None)
        if isinstance(partial, ChatCompletion) and partial.usage is not None:
            self._add_usage(partial.usage, *counters)

    def on_left(self) -> None:
        counters = self._end()
        if counters is not None:
            for counter in counters:
                counter.left += 1


class UsageMeter:
    """A client's usage meter: ``client.usage``, shared by its ``with_options`` copies.

    Counts every ``create()`` per model (the model each call asked for) and in total:
    calls, answers, failures by error class, retries, 429s, tokens, wall time, and the cost
    the client's ``prices`` give. ``snapshot()`` reads it; ``reset()`` starts over.

    Args:
        prices: Per model, the price of a million tokens (``input``, ``output``, and
            optionally ``cached_input`` and ``reasoning``): a mapping, a ``Prices``, or the
            path of a JSON or TOML price file (see ``load_prices``).
    """

    __slots__ = ("_models", "_prices", "_since", "_since_clock", "_total")

    def __init__(
        self, *, prices: Prices | Mapping[str, Any] | str | os.PathLike[str] | None = None
    ) -> None:
        self._prices = Prices.of(prices)
        self._start_over()

    def _start_over(self) -> None:
        self._models: dict[str, _Counter] = {}
        self._total = _Counter()
        self._since = time.time()
        self._since_clock = time.perf_counter()

    @property
    def prices(self) -> Prices:
        """The price table the meter applies (empty when none was given)."""
        return self._prices

    def on_start(
        self, model: str, params: Mapping[str, Any], *, stream: bool, base_url: str
    ) -> _MeterCall:
        """Count a call to ``model`` as started and return its record (the observer interface).

        Args:
            model: The model the call asks for.
            params: The call's parameters (not read by the meter).
            stream: Whether the call is streamed.
            base_url: The client's base URL (not read by the meter).

        Returns:
            The call's record, to be told its tries and its end.
        """
        counter = self._models.get(model)
        if counter is None:
            counter = self._models[model] = _Counter()
        counter.requests += 1
        self._total.requests += 1
        return _MeterCall(counter, self._total, self._prices.find(model))

    def cost(self, completion: ChatCompletion, *, model: str | None = None) -> float | None:
        """The cost of one answer at the meter's prices.

        Args:
            completion: The answer (its ``usage`` is priced).
            model: The price table's name for the model; default ``completion.model``
                (the answering model, which may carry a version suffix the table lacks).

        Returns:
            The cost, or ``None`` when the answer has no usage or the model no price.
        """
        price = self._prices.find(model if model is not None else completion.model)
        if price is None or completion.usage is None:
            return None
        return price.cost(completion.usage)

    def snapshot(self) -> UsageSnapshot:
        """The figures now, as an immutable value (``to_dict()``, ``to_json()``)."""
        return UsageSnapshot(
            total=self._total.freeze(),
            by_model={name: counter.freeze() for name, counter in self._models.items()},
            since=self._since,
            elapsed=time.perf_counter() - self._since_clock,
        )

    def reset(self) -> None:
        """Start counting over (calls in flight at that moment are left out of the new figures)."""
        self._start_over()

    def __repr__(self) -> str:
        total = self._total
        return (
            f"UsageMeter(requests={total.requests}, total_tokens={total.total_tokens}, "
            f"cost={total.cost!r})"
        )
