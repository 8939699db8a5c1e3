"""The benchmarks' arithmetic: interleaved rounds, ratios round by round, verdicts by spread."""

from __future__ import annotations

import asyncio
import contextlib
import math
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from _measure import Contender, Run, Sample, compare, shared
from _report import Figure, Metric, Target, ratio_figure, verdict

CPU = Metric("cpu", "CPU s", lambda s: s.cpu)


def test_verdict_met_when_every_repeat_meets_the_target() -> None:
    """A figure whose whole spread lies on the right side of the goal is reported met."""
    assert verdict(Figure((1.2, 1.3, 1.4)), -math.inf, 1.5) == "met"


def test_verdict_missed_only_when_no_repeat_meets_the_target() -> None:
    """A figure whose whole spread lies on the wrong side of the goal is reported missed."""
    assert verdict(Figure((1.6, 1.9, 1.7)), -math.inf, 1.5) == "missed"
    assert verdict(Figure((0.5, 0.7)), 0.9, 1.1) == "missed"


def test_verdict_within_noise_when_the_goal_lies_inside_the_spread() -> None:
    """A goal inside the min-max spread is 'within noise', naming the median's side of it."""
    assert verdict(Figure((1.4, 1.6, 1.7)), -math.inf, 1.5) == "within noise (median misses it)"
    assert verdict(Figure((1.4, 1.45, 1.7)), -math.inf, 1.5) == "within noise (median meets it)"
    # A spread wider than a two-sided band, on both sides of it, is noise too, not a miss.
    assert verdict(Figure((0.5, 1.5)), 0.9, 1.1).startswith("within noise")


def test_verdict_of_a_single_run_says_it_has_no_spread() -> None:
    """With one run there is no spread to judge by, and the verdict says so."""
    assert verdict(Figure((1.6,)), -math.inf, 1.5) == (
        "missed (one run: no spread to judge the noise by)"
    )


def test_figure_shows_median_and_spread() -> None:
    """A figure prints as median (min-max), or one value when every run agreed."""
    assert Figure((3.0, 1.0, 2.0)).show(str) == "2.0 (1.0-3.0)"
    assert Figure((9.0, 9.0)).show(lambda v: f"{v:.0f}") == "9"


def test_ratios_pair_the_samples_of_the_same_round() -> None:
    """A ratio between two contenders is taken round by round, not median over median."""
    results = {
        "a": [Sample(1, 2.0, 1), Sample(1, 4.0, 1), Sample(1, 9.0, 1)],
        "b": [Sample(1, 1.0, 1), Sample(1, 4.0, 1), Sample(1, 3.0, 1)],
    }
    assert ratio_figure(results, CPU, "a", "b").values == (2.0, 1.0, 3.0)


def test_target_bands() -> None:
    """'<=' and '>=' goals are one-sided; '~' accepts the goal give or take its tolerance."""
    assert Target("x", CPU, "a", "b", "<=", 1.1).band() == (-math.inf, 1.1)
    assert Target("x", CPU, "a", "b", ">=", 5).band() == (5, math.inf)
    low, high = Target("x", CPU, "a", "b", "~", 1.0, 0.1).band()
    assert (low, high) == pytest.approx((0.9, 1.1))


def _recording(name: str, order: list[str], units: int = 1) -> Contender:
    async def run() -> int:
        order.append(name)
        return units

    return shared(name, run)


def test_compare_interleaves_and_rotates_the_contenders() -> None:
    """Each round runs every contender once, the order rotating so noise hits all alike."""
    order: list[str] = []
    contenders = [_recording(name, order) for name in "ABC"]
    results = asyncio.run(compare(contenders, repeat=4, expected_units=1))
    assert order == list("ABCBCACABABC")
    assert {name: len(samples) for name, samples in results.items()} == {"A": 4, "B": 4, "C": 4}


def test_compare_refuses_a_run_that_lost_work() -> None:
    """A run that returns fewer units than the case sent aborts the benchmark."""
    order: list[str] = []
    with pytest.raises(AssertionError, match="B: got 9 units, expected 10"):
        asyncio.run(
            compare(
                [_recording("A", order, 10), _recording("B", order, 9)],
                repeat=1,
                expected_units=10,
            )
        )


def test_compare_sets_up_each_round_outside_the_clock() -> None:
    """A contender's session is entered before and left after each timed run, every round."""
    events: list[str] = []

    @contextlib.asynccontextmanager
    async def session() -> AsyncIterator[Run]:
        events.append("open")

        async def run() -> int:
            events.append("run")
            return 1

        yield run
        events.append("close")

    asyncio.run(compare([Contender("A", session)], repeat=2, expected_units=1))
    assert events == ["open", "run", "close"] * 2
