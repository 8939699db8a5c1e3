"""Prices: the file formats, the cost of an answer, and cost in the meter."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from aiocometapi import AsyncCometAPI, ConfigurationError, Price, Prices, load_prices
from aiocometapi.testing import MockServer
from aiocometapi.types import ChatCompletion, CompletionTokensDetails, PromptTokensDetails, Usage
from conftest import FAKE_KEY

pytestmark = pytest.mark.anyio

HI = [{"role": "user", "content": "hello"}]

TOML = """
# per million tokens
[prices."gpt-5.4-mini"]
input = 0.25
cached_input = 0.025
output = 2.0
reasoning = 4.0
"""


def _usage(*, cost: float | None = None) -> dict[str, object]:
    return {
        "prompt_tokens": 1_000_000,
        "completion_tokens": 500_000,
        "total_tokens": 1_500_000,
        "prompt_tokens_details": {"cached_tokens": 200_000},
        "completion_tokens_details": {"reasoning_tokens": 100_000},
        **({} if cost is None else {"cost": cost}),
    }


def _answer(model: str, usage: dict[str, object]) -> dict[str, object]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}
        ],
        "usage": usage,
    }


def test_a_price_splits_cached_and_reasoning_tokens() -> None:
    """Cached prompt tokens and reasoning tokens are billed at their own prices when given."""
    price = Price(input=0.25, cached_input=0.025, output=2.0, reasoning=4.0)
    usage = Usage(
        prompt_tokens=1_000_000,
        completion_tokens=500_000,
        total_tokens=1_500_000,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=200_000),
        completion_tokens_details=CompletionTokensDetails(reasoning_tokens=100_000),
    )
    expected = 0.8 * 0.25 + 0.2 * 0.025 + 0.4 * 2.0 + 0.1 * 4.0
    assert price.cost(usage) == pytest.approx(expected)
    plain = Price(input=0.25, output=2.0)  # no cached or reasoning price: the base ones
    assert plain.cost(usage) == pytest.approx(1.0 * 0.25 + 0.5 * 2.0)


@pytest.mark.skipif(sys.version_info < (3, 11), reason="TOML needs tomllib (3.11+) or tomli")
def test_a_toml_price_file_loads(tmp_path: Path) -> None:
    """A TOML file with a [prices] table gives the same prices as the dict."""
    path = tmp_path / "prices.toml"
    path.write_text(TOML)
    prices = load_prices(path)
    assert prices["gpt-5.4-mini"] == Price(
        input=0.25, cached_input=0.025, output=2.0, reasoning=4.0
    )


def test_a_json_price_file_loads_at_top_level(tmp_path: Path) -> None:
    """A JSON file mapping model ids to prices loads."""
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"gpt-4o-mini": {"input": 0.15, "output": 0.6}}))
    assert load_prices(str(path))["gpt-4o-mini"] == Price(input=0.15, output=0.6)


@pytest.mark.parametrize(
    "table",
    [
        {"m": {"input": 1.0}},
        {"m": {"input": 1.0, "output": 2.0, "outptu": 3.0}},
        {"m": {"input": -1.0, "output": 2.0}},
        {"m": "cheap"},
    ],
)
def test_a_malformed_price_is_refused(table: dict[str, object]) -> None:
    """A price missing a number, with an unknown key, negative or not a table is refused."""
    with pytest.raises(ConfigurationError, match="prices"):
        Prices.of(table)


def test_a_missing_or_broken_file_is_refused(tmp_path: Path) -> None:
    """A price file that is not there or not JSON raises ConfigurationError naming it."""
    with pytest.raises(ConfigurationError, match="Cannot read"):
        load_prices(tmp_path / "none.json")
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    with pytest.raises(ConfigurationError, match="not valid"):
        load_prices(broken)


async def test_cost_from_a_price_file_reaches_the_meter(server: MockServer, tmp_path: Path) -> None:
    """A client given a price file reports each model's cost, and the gateway's own beside it."""
    path = tmp_path / "prices.json"
    path.write_text(
        json.dumps(
            {
                "prices": {
                    "gpt-5.4-mini": {
                        "input": 0.25,
                        "cached_input": 0.025,
                        "output": 2.0,
                        "reasoning": 4.0,
                    }
                }
            }
        )
    )
    async with AsyncCometAPI(FAKE_KEY, base_url=server.url, prices=str(path)) as client:
        server.reply_json(_answer("gpt-5.4-mini-2026-01-01", _usage(cost=1.5)))
        server.reply_json(_answer("gpt-5.4-mini-2026-01-01", _usage()))
        first = await client.chat.completions.create(model="gpt-5.4-mini", messages=HI)
        await client.chat.completions.create(model="gpt-5.4-mini", messages=HI)
        await client.chat.completions.create(model="gpt-4o-mini", messages=HI)  # no price
        snap = client.usage.snapshot()
        one = 0.8 * 0.25 + 0.2 * 0.025 + 0.4 * 2.0 + 0.1 * 4.0
        assert snap.by_model["gpt-5.4-mini"].cost == pytest.approx(2 * one)
        assert snap.by_model["gpt-5.4-mini"].gateway_cost == pytest.approx(1.5)
        assert snap.by_model["gpt-4o-mini"].cost is None
        assert snap.by_model["gpt-4o-mini"].unpriced == 1
        assert snap.total.cost == pytest.approx(2 * one)
        assert snap.total.cached_tokens == 400_000
        assert snap.total.reasoning_tokens == 200_000
        assert client.usage.cost(first, model="gpt-5.4-mini") == pytest.approx(one)
        assert client.usage.cost(first) is None  # the answering model's id has no price


def test_no_prices_means_no_cost() -> None:
    """Without prices, an answer's cost is None rather than zero."""
    from aiocometapi import UsageMeter

    meter = UsageMeter()
    completion = ChatCompletion(model="m", usage=Usage(prompt_tokens=5, total_tokens=5))
    assert meter.cost(completion) is None
    assert len(meter.prices) == 0
