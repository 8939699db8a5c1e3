"""Budgets on fan_out: stop starting requests at a token or cost limit, the rest resumable."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from aiocometapi import AsyncCometAPI, BudgetExceededError, FanOutResult, Prices
from aiocometapi._budget import Budget
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion, Usage
from conftest import FAKE_KEY

pytestmark = pytest.mark.anyio


def _requests(count: int, **extra: Any) -> list[dict[str, Any]]:
    return [
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"question {i}"}],
         "max_tokens": 20, **extra}
        for i in range(count)
    ]  # fmt: skip


async def _run(
    client: AsyncCometAPI, requests: list[dict[str, Any]], **budget: Any
) -> tuple[list[FanOutResult], BudgetExceededError | None]:
    results: list[FanOutResult] = []
    try:
        async for result in client.chat.completions.fan_out(requests, concurrency=4, **budget):
            results.append(result)
    except BudgetExceededError as exc:
        return results, exc
    return results, None


async def test_a_fan_out_stops_at_its_token_budget_and_the_rest_is_resumable(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """Requests stop before the token budget is passed; resuming from taken answers the rest."""
    requests = _requests(40)
    results, stop = await _run(client, requests, max_tokens_total=100)
    assert stop is not None
    assert sorted(r.index for r in results) == list(range(stop.taken))
    assert 0 < stop.taken < 40
    used = sum(
        r.completion.usage.total_tokens for r in results if r.completion and r.completion.usage
    )
    assert used == stop.tokens <= 100
    assert len(server.requests) == stop.taken  # nothing else was sent
    assert "max_tokens_total=100" in str(stop)
    rest, again = await _run(client, requests[stop.taken :])
    assert again is None
    assert len(rest) == 40 - stop.taken and all(r.ok for r in rest)


async def test_the_estimate_is_corrected_by_real_usage() -> None:
    """Once answers use a tenth of their estimate, the next requests are admitted at a tenth."""
    budget = Budget(
        max_tokens_total=1000, max_cost=None, prices=Prices(), estimate=lambda _: (10, 490)
    )
    request = {"model": "gpt-4o-mini"}
    with anyio.fail_after(1):
        assert await budget.admit(0, request) is None
        assert await budget.admit(1, request) is None  # 1000 reserved: full
        budget.settle(0, ChatCompletion(usage=Usage(total_tokens=50)), None)
        # 50 used + 500 still reserved for request 1 + 50 (the corrected estimate) fit;
        # uncorrected (500) they would not, and admit would wait for request 1.
        assert await budget.admit(2, request) is None
    assert budget.tokens == 50


async def test_a_cost_budget_stops_with_the_client_prices(server: MockServer) -> None:
    """max_cost stops the fan-out at the cost the client's prices give."""
    prices = {"gpt-4o-mini": {"input": 1_000_000.0, "output": 1_000_000.0}}  # 1 per token
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, prices=prices) as client:
        results, stop = await _run(client, _requests(40), max_cost=25.0)
    assert stop is not None and stop.cost is not None
    assert stop.cost <= 25.0
    assert len(results) == stop.taken < 40


async def test_a_cost_budget_without_a_price_sends_nothing(client: AsyncCometAPI) -> None:
    """A max_cost for a model with no price stops before sending, saying why."""
    results, stop = await _run(client, _requests(3), max_cost=1.0)
    assert results == []
    assert stop is not None and stop.taken == 0
    assert "no price for model 'gpt-4o-mini'" in str(stop)


async def test_a_budget_large_enough_runs_everything(client: AsyncCometAPI) -> None:
    """A budget that is never reached changes nothing: every input yields a result."""
    results, stop = await _run(client, _requests(12), max_tokens_total=1_000_000)
    assert stop is None and sorted(r.index for r in results) == list(range(12))


@pytest.mark.parametrize("bad", [0, -5, 1.5, True])
async def test_a_malformed_budget_is_refused(client: AsyncCometAPI, bad: object) -> None:
    """A token budget that is not a positive int raises ValueError before anything is sent."""
    with pytest.raises(ValueError, match="max_tokens_total"):
        client.chat.completions.fan_out(_requests(1), max_tokens_total=bad)  # type: ignore[arg-type]


async def test_streamed_requests_count_their_usage_against_the_budget(
    client: AsyncCometAPI,
) -> None:
    """Streamed inputs report their usage (asked for by default) and stop at the budget too."""
    results, stop = await _run(client, _requests(40, stream=True), max_tokens_total=100)
    assert stop is not None and 0 < stop.taken < 40
    usages = [r.completion.usage for r in results if r.completion is not None]
    assert all(u is not None for u in usages)
    assert sum(u.total_tokens for u in usages if u is not None) == stop.tokens <= 100
