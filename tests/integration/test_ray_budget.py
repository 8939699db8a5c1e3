"""The shared rate budget's arithmetic and its worker side, with no cluster: the coordinator is
called in-process through a stand-in for its actor handle."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("ray", reason="aiocometapi.ray needs the extra: pip install 'aiocometapi[ray]'")

from aiocometapi.ray._budget import ClusterBudget
from aiocometapi.ray._coordinator import BLOCK_SECONDS, Coordinator, Grant, Report

pytestmark = pytest.mark.anyio


class _Method:
    """``handle.method.remote(...)``: an awaitable answer after a short round trip."""

    def __init__(self, call: Callable[..., Any], broken: list[bool]) -> None:
        self._call = call
        self._broken = broken

    def remote(self, *args: Any) -> asyncio.Future[Any]:
        async def answer() -> Any:
            await asyncio.sleep(0.001)
            if self._broken[0]:
                raise RuntimeError("actor died")
            result = self._call(*args)
            return await result if asyncio.iscoroutine(result) else result

        return asyncio.ensure_future(answer())


class Handle:
    """Stands for the coordinator actor's handle; ``kill()`` makes every later call fail."""

    def __init__(self, coordinator: Coordinator) -> None:
        self._broken = [False]
        self.lease = _Method(coordinator.lease, self._broken)
        self.refused = _Method(coordinator.refused, self._broken)
        self.watch = _Method(coordinator.watch, self._broken)

    def kill(self) -> None:
        self._broken[0] = True


# --------------------------------------------------------------------------- the coordinator


def test_permits_go_out_as_asked_until_the_first_429() -> None:
    """Before any 429 and with no budget set, nothing is paced: a worker gets what it asks."""
    coordinator = Coordinator()
    grant = coordinator.lease("a", 128, 0, Report(admitted=0))
    assert (grant.permits, grant.spacing, grant.delay, grant.pace) == (128, 0.0, 0.0, math.inf)


def test_a_429_pauses_everyone_and_paces_the_cluster_at_what_was_admitted() -> None:
    """After a 429 every worker waits for the server's Retry-After, then the cluster is paced
    at what the workers report the server admitted, in blocks placed one after another."""
    coordinator = Coordinator()
    coordinator.lease("a", 64, 0, Report(admitted=0))
    coordinator.lease("b", 64, 0, Report(admitted=0))
    coordinator.refused("a", 70, 0.5)
    first = coordinator.lease("b", 64, 0, Report(admitted=50))  # b's report counts too
    second = coordinator.lease("a", 64, 0, Report(admitted=70))
    assert coordinator.state()["rate"] == pytest.approx(120.0)
    assert first.epoch == second.epoch == 1
    assert first.delay == pytest.approx(0.5, abs=0.05)
    assert first.spacing == pytest.approx(1 / 120)
    assert first.permits == math.ceil(120 * BLOCK_SECONDS)
    # b's block is placed first: a's starts after it, so the two never run at twice the rate.
    assert second.delay == pytest.approx(first.delay + first.permits * first.spacing, abs=0.01)


def test_once_paced_a_429_cuts_the_rate_to_the_starts_placed_minus_those_refused() -> None:
    """A later congestion event measures what the server admitted exactly: the starts the
    clock placed in the last second minus the 429s heard in it, and cuts at most by half."""
    coordinator = Coordinator()
    coordinator.lease("a", 64, 0, Report(admitted=0))
    coordinator.refused("a", 100, 0.0)  # rate 100/s from the report
    time.sleep(1.05)  # the first event and the starts before it are out of the window
    grant = coordinator.lease("a", 10, 0, Report(admitted=0))
    assert grant.permits == 10 and grant.delay == pytest.approx(0.0, abs=0.01)
    time.sleep(10 * grant.spacing)  # every start of the block is now due
    coordinator.refused("a", 0, 0.0)
    coordinator.refused("a", 0, 0.0)
    # 10 placed minus 3 refusals in the window, over one second: below half of 100, so half.
    assert coordinator.state()["rate"] == pytest.approx(50.0)
    assert coordinator.state()["epoch"] == 2


def test_the_rate_climbs_back_with_every_success_reported() -> None:
    """Successes add back a little rate, so the cluster probes for room again."""
    coordinator = Coordinator()
    coordinator.lease("a", 64, 0, Report(admitted=0))
    coordinator.refused("a", 100, 0.0)
    time.sleep(0.15)
    coordinator.lease("a", 1, 0, Report(admitted=0, succeeded=40))
    assert coordinator.state()["rate"] == pytest.approx(102.0)


def test_a_requests_per_minute_budget_paces_the_whole_cluster() -> None:
    """requests_per_minute=600 paces the starts of all workers together at 10 per second."""
    coordinator = Coordinator(requests_per_minute=600)
    first = coordinator.lease("a", 64, 0, Report(admitted=0))
    second = coordinator.lease("b", 64, 0, Report(admitted=0))
    assert first.spacing == pytest.approx(0.1) and first.permits == 1
    assert second.delay == pytest.approx(0.1, abs=0.01)


def test_a_tokens_per_minute_budget_paces_by_the_tokens_each_request_is_estimated_at() -> None:
    """tokens_per_minute=60,000 with requests estimated at 100 tokens paces the cluster at
    10 requests/s, and each lease takes its permits' tokens from the budget."""
    coordinator = Coordinator(tokens_per_minute=60_000)
    grant = coordinator.lease("a", 64, 100, Report(admitted=0))
    assert grant.spacing == pytest.approx(0.1) and grant.permits == 1 and grant.tokens == 100
    unknown = coordinator.lease("b", 64, 0, Report(admitted=0))  # no estimate: not paced
    assert unknown.spacing == 0.0 and unknown.tokens == 0


async def test_a_watch_returns_at_once_when_a_429_happens_anywhere() -> None:
    """Every worker watching hears of a congestion event as soon as the coordinator does."""
    coordinator = Coordinator()
    watching = asyncio.ensure_future(coordinator.watch(0))
    await asyncio.sleep(0.01)
    assert not watching.done()
    coordinator.refused("a", 1, 2.0)
    epoch, pause = await asyncio.wait_for(watching, 1.0)
    assert epoch == 1 and pause == pytest.approx(2.0, abs=0.1)


# --------------------------------------------------------------------------- a worker's side


async def test_a_worker_starts_its_permits_at_the_pace_they_were_granted() -> None:
    """A worker with many requests waiting starts them one slot apart, not all at once."""
    coordinator = Coordinator(requests_per_minute=6000)  # 100/s: slots 10 ms apart
    budget = ClusterBudget(Handle(coordinator), concurrency=8)
    starts: list[float] = []

    async def request() -> None:
        assert await budget.admit(0)
        starts.append(time.monotonic())

    await asyncio.gather(*(request() for _ in range(30)))
    await budget.aclose()
    assert len(starts) == 30
    assert starts[-1] - starts[0] >= 29 * 0.01 * 0.9
    # Timers on a busy machine fire late and may bunch a few starts, never a block's worth.
    assert max(sum(1 for t in starts if s <= t < s + 0.1) for s in starts) <= 15


async def test_a_429_voids_the_slots_waiters_hold_so_they_do_not_start_together() -> None:
    """After a 429 the waiting requests queue again behind the pause, still paced, instead of
    all starting the moment the pause ends."""
    coordinator = Coordinator(requests_per_minute=1200)  # 20/s: slots 50 ms apart
    coordinator.lease("other", 1, 0, Report(admitted=200))  # the cut below stays above 20/s
    budget = ClusterBudget(Handle(coordinator), concurrency=8)
    starts: list[float] = []

    async def request() -> None:
        assert await budget.admit(0)
        starts.append(time.monotonic())

    waiting = [asyncio.ensure_future(request()) for _ in range(6)]
    await asyncio.sleep(0.06)
    refused_at = time.monotonic()
    budget.released(status=429, retry_after=0.2, tokens_estimated=0, tokens_used=None)
    await asyncio.gather(*waiting)
    await budget.aclose()
    late = sorted(t for t in starts if t > refused_at)
    assert len(late) >= 3 and late[0] >= refused_at + 0.19
    assert late[-1] - late[0] >= (len(late) - 1) * 0.05 * 0.8


async def test_a_worker_goes_on_alone_when_the_coordinator_dies() -> None:
    """If the coordinator's actor dies, waiting requests are let go to the client's own
    control (admit says False) rather than wait for an actor that will not answer."""
    coordinator = Coordinator()
    handle = Handle(coordinator)
    budget = ClusterBudget(handle, concurrency=2)
    assert await budget.admit(0)
    handle.kill()
    budget.released(status=429, retry_after=0.0, tokens_estimated=0, tokens_used=None)
    results = await asyncio.wait_for(asyncio.gather(*(budget.admit(0) for _ in range(3))), 2.0)
    assert results == [False, False, False]
    assert not budget.alive
    await budget.aclose()


def test_grants_are_plain_values_that_pickle() -> None:
    """What crosses between the actor and the workers pickles (Ray sends it between nodes)."""
    import pickle

    grant = Grant(3, 0, 0.1, 0.01, 100.0, 2)
    report = Report(admitted=4, succeeded=2, tokens_back=-10)
    assert pickle.loads(pickle.dumps((grant, report))) == (grant, report)
