"""Timing contenders side by side: interleaved rounds, CPU and wall clock, optional probes."""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Contender", "Probe", "Run", "Sample", "compare", "shared"]

Run = Callable[[], Awaitable[int]]
"""One timed run of a case: does the work, returns how many units (chunks, requests) it got."""


@dataclass(frozen=True)
class Sample:
    """One timed run: wall seconds, CPU seconds of this process, units done, probe readings."""

    wall: float
    cpu: float
    units: int
    extra: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Contender:
    """One row of a table: a name and how to get a ready-to-time run, fresh for each round.

    ``session()`` is entered before each timed run and left after it, both outside the clock:
    it may open and warm up a client of its own (and close it again), or hand out a run on a
    client that stays open for the whole case (``shared``).
    """

    name: str
    session: Callable[[], contextlib.AbstractAsyncContextManager[Run]]


def shared(name: str, run: Run) -> Contender:
    """A contender whose run needs no setting up per round (its client is already open)."""

    @contextlib.asynccontextmanager
    async def session() -> AsyncIterator[Run]:
        yield run

    return Contender(name, session)


class Probe(Protocol):
    """Something read around every timed run, outside the clock (e.g. the server's connections)."""

    async def start(self) -> None: ...

    async def stop(self) -> dict[str, float]: ...


async def compare(
    contenders: Sequence[Contender],
    *,
    repeat: int,
    expected_units: int,
    probe: Probe | None = None,
    progress: Callable[[str], None] = lambda message: None,
) -> dict[str, list[Sample]]:
    """Time every contender ``repeat`` times, interleaved; the samples in round order.

    Each round runs every contender once, the order rotating by one per round (A B C, B C A,
    C A B, ...), so that a slow spell of a shared machine hits all of them alike and every
    contender takes every position equally often. ``samples[name][i]`` is from round ``i``,
    so ratios between contenders can be taken round by round. A run that returns any other
    count than ``expected_units`` aborts the benchmark: one that drops work measures nothing.
    """
    samples: dict[str, list[Sample]] = {c.name: [] for c in contenders}
    for round_ in range(repeat):
        shift = round_ % len(contenders)
        for contender in [*contenders[shift:], *contenders[:shift]]:
            async with contender.session() as run:
                if probe is not None:
                    await probe.start()
                sample = await _timed(run)
                if probe is not None:
                    sample = Sample(sample.wall, sample.cpu, sample.units, await probe.stop())
            if sample.units != expected_units:
                raise AssertionError(
                    f"{contender.name}: got {sample.units} units, expected {expected_units}"
                )
            samples[contender.name].append(sample)
            extra = "".join(f", {key} {value:g}" for key, value in sample.extra.items())
            progress(
                f"  {contender.name:<16} round {round_ + 1}/{repeat}: wall {sample.wall:7.3f} s, "
                f"CPU {sample.cpu:7.3f} s{extra}"
            )
    gc.collect()
    return samples


async def _timed(run: Run) -> Sample:
    gc.collect()
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    units = await run()
    cpu1 = time.process_time()
    wall1 = time.perf_counter()
    return Sample(wall1 - wall0, cpu1 - cpu0, units)
