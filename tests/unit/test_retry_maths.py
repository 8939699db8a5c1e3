"""The arithmetic of retries: tries counted, back-off grown and capped, Retry-After, the switch."""

from __future__ import annotations

import pytest

from aiocometapi import IncompleteStreamError, InternalServerError, RetryPolicy, instant_retries
from aiocometapi._retry import Retries, backoff, count_attempts, retry_after, wait_for

pytestmark = pytest.mark.anyio


async def test_retries_object_counts_every_try() -> None:
    """Retries.run tries max_retries + 1 times in all, counting each in count_attempts too."""
    tries = Retries(RetryPolicy(max_retries=2))

    async def failing() -> None:
        raise InternalServerError("boom", status_code=500)

    with (
        count_attempts() as counted,
        instant_retries() as waits,
        pytest.raises(InternalServerError),
    ):
        await tries.run(failing)
    assert tries.tries == 3 and counted == [3] and len(waits) == 2 and tries.left == 0


async def test_resume_with_no_try_left_raises_the_failure_at_once() -> None:
    """Resuming a request whose tries are used up raises the failure given, without waiting."""
    tries = Retries(RetryPolicy(max_retries=0))

    async def fine() -> str:
        return "ok"

    assert await tries.run(fine) == "ok"
    failure = IncompleteStreamError("cut", partial=None)
    with instant_retries() as waits, pytest.raises(IncompleteStreamError) as info:
        await tries.resume(failure, fine)
    assert info.value is failure and waits == []


def test_backoff_doubles_up_to_its_cap() -> None:
    """Back-off starts at initial_wait, doubles per retry, stops at max_wait, jitter 25% below."""
    policy = RetryPolicy(initial_wait=0.5, max_wait=8.0)
    for number, base in [(1, 0.5), (2, 1.0), (3, 2.0), (4, 4.0), (5, 8.0), (9, 8.0), (5000, 8.0)]:
        assert 0.75 * base <= backoff(policy, number) <= base


def test_retry_after_wins_over_backoff_up_to_its_cap() -> None:
    """A status error's Retry-After is the wait, cut to max_retry_after; without one, back-off."""
    policy = RetryPolicy(max_retry_after=10.0)
    asked = InternalServerError("busy", status_code=503, headers={"retry-after": "3"})
    too_long = InternalServerError("busy", status_code=503, headers={"retry-after": "300"})
    assert wait_for(policy, asked, 4) == 3.0
    assert wait_for(policy, too_long, 1) == 10.0
    assert 0.375 <= wait_for(policy, None, 1) <= 0.5
    assert retry_after({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, now=1445412470.0) == 10.0


async def test_switch_off_again_after_the_block() -> None:
    """Leaving instant_retries() restores the switch as it was (nested blocks included)."""
    with instant_retries() as outer:
        with instant_retries() as inner:
            assert inner is not outer
        tries = Retries(RetryPolicy(max_retries=1))

        async def once() -> None:
            if tries.tries == 1:
                raise InternalServerError("boom", status_code=500)

        await tries.run(once)
    assert len(outer) == 1 and inner == []
