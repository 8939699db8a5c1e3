"""The rate slot of one try: taken, answered once, or given back as a try without an answer."""

from __future__ import annotations

import pytest

from aiocometapi._ratelimit import RateController
from aiocometapi._requester import Slot

pytestmark = pytest.mark.anyio


async def test_slot_answered_counts_once_and_frees_the_place() -> None:
    """A try answered 200 leaves nothing in flight, however often it is answered."""
    rate = RateController()
    with await Slot.take(rate, 0, "GET /x") as slot:
        assert rate.in_flight == 1
        slot.answered(200, {})
        slot.answered(500, {})
    assert rate.in_flight == 0 and rate.state().rate_limited == 0


async def test_slot_left_by_an_exception_is_a_try_without_answer() -> None:
    """A try that raised before an answer gives its place back and counts no status."""
    rate = RateController()
    with pytest.raises(OSError), await Slot.take(rate, 0, "GET /x"):
        raise OSError("reset")
    assert rate.in_flight == 0 and rate.state().rate_limited == 0


async def test_slot_answered_429_pauses_every_caller_for_retry_after() -> None:
    """A 429 answered through the slot starts the shared pause for the server's Retry-After."""
    rate = RateController()
    with await Slot.take(rate, 0, "POST /x") as slot:
        slot.answered(429, {"retry-after": "3"})  # aiohttp: any case
    state = rate.state()
    assert state.rate_limited == 1 and 2.5 < state.paused_for <= 3.0


async def test_slot_gives_back_unused_estimated_tokens() -> None:
    """The tokens an answer used replace the estimate taken from a tokens-per-minute budget."""
    rate = RateController(tokens_per_minute=6_000)
    with await Slot.take(rate, 900, "POST /x") as slot:
        slot.answered(200, {}, tokens_used=100)
    assert rate.state().tokens_used == 100
    with await Slot.take(rate, 900, "POST /x") as slot:  # 1,000 is the burst: no wait if given back
        slot.answered(200, {}, tokens_used=100)
    assert rate.state().waits == 0
