"""The rate controller's extension point for a budget shared beyond the process (no Ray
needed), and the client's hook that hands it a budget."""

from __future__ import annotations

import math
import subprocess
import sys
import time
from typing import Any

import anyio
import pytest

from aiocometapi import AsyncCometAPI
from aiocometapi._ratelimit import RateController
from aiocometapi.testing import MockServer

pytestmark = pytest.mark.anyio


class FakeBudget:
    """A budget that admits when told to, records what it hears, and can be 'gone'."""

    def __init__(self, *, pace: float = math.inf) -> None:
        self.open = anyio.Event()
        self.gone = False
        self.pace = pace
        self.admitted = 0
        self.heard: list[dict[str, Any]] = []

    async def admit(self, tokens: int) -> bool:
        await self.open.wait()
        if self.gone:
            return False
        self.admitted += 1
        return True

    def released(self, **answer: Any) -> None:
        self.heard.append(answer)


async def test_a_shared_budget_decides_when_requests_start() -> None:
    """With a budget shared, a request starts only once the budget admits it."""
    rate = RateController()
    budget = FakeBudget()
    rate.share(budget)
    started = anyio.Event()

    async def request() -> None:
        await rate.acquire()
        started.set()

    async with anyio.create_task_group() as group:
        group.start_soon(request)
        await anyio.sleep(0.05)
        assert not started.is_set() and rate.state().in_flight == 0
        budget.open.set()
        await started.wait()
    assert budget.admitted == 1 and rate.state().in_flight == 1


async def test_the_budget_hears_every_answer_with_its_retry_after() -> None:
    """Each answer, a 429 with the server's Retry-After included, is told to the budget."""
    rate = RateController()
    budget = FakeBudget()
    budget.open.set()
    rate.share(budget)
    await rate.acquire()
    rate.release(status=429, retry_after=1.5)
    await rate.acquire(tokens=30)
    rate.release(status=200, tokens_estimated=30, tokens_used=12)
    assert budget.heard == [
        {"status": 429, "retry_after": 1.5, "tokens_estimated": 0, "tokens_used": None},
        {"status": 200, "retry_after": None, "tokens_estimated": 30, "tokens_used": 12},
    ]
    assert rate.state().rate_limited == 1


@pytest.mark.real_waits
async def test_the_client_paces_alone_at_the_last_pace_once_the_budget_is_gone() -> None:
    """When the shared budget is gone, requests go on under the client's own control, paced
    at the rate the budget last allowed, and the budget is not asked again."""
    rate = RateController()
    budget = FakeBudget(pace=20.0)
    budget.gone = True
    budget.open.set()
    rate.share(budget)
    started = time.monotonic()
    for _ in range(5):
        await rate.acquire()
        rate.release(status=200)
    elapsed = time.monotonic() - started
    assert rate.state().rate_limit == pytest.approx(20.0, abs=0.5)
    assert elapsed >= 4 / 21  # five starts at 20/s take at least four gaps
    assert budget.admitted == 0 and budget.heard == []


async def test_a_client_given_a_shared_budget_waits_for_it_and_reports_each_answer(
    client: AsyncCometAPI, server: MockServer
) -> None:
    """``share_rate_budget`` makes the client's requests, its ``with_options`` copies' too,
    wait for the budget's admission, and the budget hears every answer."""
    budget = FakeBudget()
    client.share_rate_budget(budget)
    copy = client.with_options(timeout=30)
    messages = [{"role": "user", "content": "hello"}]
    answers: list[str | None] = []

    async def ask(sender: AsyncCometAPI) -> None:
        completion = await sender.chat.completions.create(model="gpt-4o-mini", messages=messages)
        answers.append(completion.choices[0].message.content)

    async with anyio.create_task_group() as group:
        group.start_soon(ask, client)
        group.start_soon(ask, copy)
        await anyio.sleep(0.2)
        assert answers == [] and len(server.requests) == 0
        budget.open.set()
    assert len(answers) == 2 and len(server.requests) == 2
    assert budget.admitted == 2
    assert [answer["status"] for answer in budget.heard] == [200, 200]


def test_import_aiocometapi_never_imports_ray() -> None:
    """``import aiocometapi`` (and its command line) loads neither ray nor pyarrow."""
    code = (
        "import sys, aiocometapi, aiocometapi.cli\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('ray', 'pyarrow'))\n"
        "print(loaded)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "[]"
