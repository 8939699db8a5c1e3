"""The shared rate budget on Ray: the named coordinator actor, and each worker's side of it.

A worker's ``ClusterBudget`` plugs into its client's rate controller (``RateController.share``)
and admits requests from permits it leases from the coordinator in blocks (about a tenth of a
second of the cluster's rate each, every permit with its own time slot; the next block is asked
for when half of what it holds is taken), so the actor is never on a request's path. A slot not
used while due is dropped rather than saved up, so a worker never bursts above the pace.

A 429 pauses the worker at once and is told to the coordinator; a long-polled ``watch`` tells
every other worker within a round trip, and they drop the permits they hold. Should any call to
the coordinator fail (the actor died), the budget is gone for good: its waiters are let go and
the controller admits locally from then on."""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
import uuid
from collections import deque
from dataclasses import dataclass
from typing import Any

import ray

from .._logs import log
from ._coordinator import Coordinator, Grant, Report

__all__ = ["ClusterBudget", "start_coordinator"]

ACTOR_PREFIX = "aiocometapi-rate-"
_WINDOW = 1.0


class _RateActor:
    """The Ray actor around a ``Coordinator``: async methods, so that they all run on one loop."""

    def __init__(self, requests_per_minute: float | None, tokens_per_minute: float | None) -> None:
        self._coordinator = Coordinator(
            requests_per_minute=requests_per_minute, tokens_per_minute=tokens_per_minute
        )

    async def lease(self, worker: str, want: int, estimate: int, report: Report) -> Grant:
        return self._coordinator.lease(worker, want, estimate, report)

    async def refused(self, worker: str, admitted: int, retry_after: float | None) -> None:
        self._coordinator.refused(worker, admitted, retry_after)

    async def watch(self, epoch: int) -> tuple[int, float]:
        return await self._coordinator.watch(epoch)

    async def state(self) -> dict[str, float]:
        return self._coordinator.state()


def start_coordinator(*, requests_per_minute: float | None, tokens_per_minute: float | None) -> Any:
    """Start the named coordinator actor (``aiocometapi-rate-<hex>``) and return its handle.

    It takes no CPU, is not restarted (workers go on with local control instead) and lives as
    long as a handle to it does (the dataset plan holds one).
    """
    name = ACTOR_PREFIX + uuid.uuid4().hex[:12]
    actor_class = ray.remote(_RateActor)
    return actor_class.options(name=name, num_cpus=0, max_restarts=0, max_concurrency=1000).remote(
        requests_per_minute, tokens_per_minute
    )


@dataclass(slots=True)
class _Slots:
    """A block of permits held: the next slot's time, how many are left, their spacing."""

    next: float
    left: int
    spacing: float


class ClusterBudget:
    """One worker's side of the shared budget (a ``_ratelimit.Budget``).

    Args:
        coordinator: The coordinator actor's handle.
        concurrency: The worker's requests in flight at most: permits are asked for in
            blocks of twice that while the rate is unlimited.
    """

    def __init__(self, coordinator: Any, *, concurrency: int) -> None:
        self._coordinator = coordinator
        self._id = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self._want = max(1, 2 * concurrency)
        self._blocks: deque[_Slots] = deque()
        self._permits = 0
        """Permits held, over all blocks."""
        self._paused_until = 0.0
        self._epoch = 0
        self._generation = 0
        self._pace = math.inf
        self._low = 0
        self._estimate = 0
        self._succeeded = 0
        self._tokens_back = 0
        self._starts: deque[float] = deque()
        self._refusals: deque[float] = deque()
        self._refill: asyncio.Task[None] | None = None
        self._watching: asyncio.Task[None] | None = None
        self._reports: set[asyncio.Task[None]] = set()
        self.alive = True

    @property
    def pace(self) -> float:
        """The requests/s this worker would have alone (the rate over the active workers)."""
        return self._pace

    # ----------------------------------------------------------------------- Budget

    async def admit(self, tokens: int) -> bool:
        """Wait for this request's slot; False once the coordinator is gone."""
        if self._watching is None and self.alive:
            self._watching = asyncio.ensure_future(self._watch())
        if tokens:
            self._estimate = tokens
        while self.alive:
            slot = self._take()
            if slot is not None:
                if self._permits <= self._low:
                    self._lease_soon()
                now = time.monotonic()
                if slot > now:
                    generation = self._generation
                    await asyncio.sleep(slot - now)
                    if self._generation != generation:
                        # A 429 meanwhile voided this slot with the others: queue anew rather
                        # than start together with every other waiter when the pause ends.
                        continue
                self._starts.append(time.monotonic())
                return True
            self._lease_soon()
            refill = self._refill
            if refill is None or not self.alive:
                break
            await asyncio.shield(refill)
        return False

    def _take(self) -> float | None:
        """The time of the next free slot (taken), or None when no permit is left."""
        now = time.monotonic()
        blocks = self._blocks
        while blocks:
            block = blocks[0]
            if block.spacing and now - block.next > block.spacing:
                # A slot is good only while it is due: permits saved up and spent at once
                # would start more in a second than the rate they were placed at.
                missed = min(block.left, math.floor((now - block.next) / block.spacing))
                block.left -= missed
                block.next += missed * block.spacing
                self._permits -= missed
            if block.left == 0:
                blocks.popleft()
                continue
            slot = max(now, block.next, self._paused_until)
            block.next = slot + block.spacing
            block.left -= 1
            self._permits -= 1
            if block.left == 0:
                blocks.popleft()
            return slot
        return None

    def released(
        self,
        *,
        status: int | None,
        retry_after: float | None,
        tokens_estimated: int,
        tokens_used: int | None,
    ) -> None:
        """Count an answer; a 429 pauses this worker, voids its slots and tells the actor."""
        if tokens_used is not None and tokens_estimated:
            self._tokens_back += tokens_estimated - tokens_used
        if status == 429:
            now = time.monotonic()
            self._refusals.append(now)
            pause = 0.5 if retry_after is None else min(max(retry_after, 0.0), 60.0)
            self._paused_until = max(self._paused_until, now + pause)
            self._void()  # granted at a pace the server just refused
            if self.alive:
                refusal = self._coordinator.refused.remote(self._id, self._admitted(), retry_after)
                self._call(refusal)
        elif status is not None and status < 400:
            self._succeeded += 1

    async def aclose(self) -> None:
        """Stop watching the coordinator and wait for the calls still out (for a clean exit)."""
        tasks = [t for t in (self._watching, self._refill, *self._reports) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    # ----------------------------------------------------------------------- the actor

    def _lease_soon(self) -> None:
        if self.alive and (self._refill is None or self._refill.done()):
            self._refill = asyncio.ensure_future(self._lease())

    async def _lease(self) -> None:
        report = Report(self._admitted(), self._succeeded, self._tokens_back)
        self._succeeded = self._tokens_back = 0
        want = self._want
        try:
            grant: Grant = await self._coordinator.lease.remote(
                self._id, want, self._estimate, report
            )
        except Exception as exc:  # the actor is gone (or broken): go on without it
            self._gone(exc)
            return
        now = time.monotonic()
        if grant.epoch < self._epoch:
            return  # granted before a congestion event this worker already heard of
        if grant.epoch > self._epoch:  # one it has not heard of yet: what it holds is void
            self._new_epoch(grant.epoch)
        self._blocks.append(_Slots(now + grant.delay, grant.permits, grant.spacing))
        self._permits += grant.permits
        self._pace = grant.pace
        self._low = grant.permits // 2

    async def _watch(self) -> None:
        while self.alive:
            try:
                epoch, pause = await self._coordinator.watch.remote(self._epoch)
            except Exception as exc:
                self._gone(exc)
                return
            if epoch > self._epoch:
                self._new_epoch(epoch)
                self._paused_until = max(self._paused_until, time.monotonic() + pause)

    def _new_epoch(self, epoch: int) -> None:
        """A congestion event: drop the permits held; successes before it probe nothing."""
        self._epoch = epoch
        self._succeeded = 0
        self._void()

    def _void(self) -> None:
        """Drop the permits held and the slots taken but not yet started."""
        self._blocks.clear()
        self._permits = 0
        self._generation += 1

    def _call(self, reference: Any) -> None:
        """Send a report without waiting for it; a failure means the actor is gone."""

        async def wait() -> None:
            try:
                await reference
            except Exception as exc:
                self._gone(exc)

        task = asyncio.ensure_future(wait())
        self._reports.add(task)
        task.add_done_callback(self._reports.discard)

    def _gone(self, exc: BaseException) -> None:
        if not self.alive:
            return
        self.alive = False
        if log.isEnabledFor(logging.WARNING):
            log.warning(
                "aiocometapi.ray: the shared rate budget is gone (%s); this worker goes on "
                "with its own rate control",
                type(exc).__name__,
            )
        watching = self._watching
        if watching is not None and watching is not asyncio.current_task():
            watching.cancel()

    def _admitted(self) -> int:
        horizon = time.monotonic() - _WINDOW
        for times in (self._starts, self._refusals):
            while times and times[0] < horizon:
                times.popleft()
        return max(0, len(self._starts) - len(self._refusals))
