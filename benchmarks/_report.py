"""Figures with their spread, targets judged against the spread, Markdown tables, saved JSON."""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from _env import environment, environment_lines
from _measure import Sample

__all__ = [
    "Figure",
    "Metric",
    "Report",
    "Scale",
    "Table",
    "Target",
    "cpu_per_unit",
    "extra",
    "fmt_number",
    "fmt_ratio",
    "rate",
    "ratio_figure",
    "verdict",
    "wall",
]


# --------------------------------------------------------------------------- figures


@dataclass(frozen=True)
class Figure:
    """One figure over the repeats: its median and its spread (min-max)."""

    values: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def low(self) -> float:
        return min(self.values)

    @property
    def high(self) -> float:
        return max(self.values)

    def show(self, fmt: Callable[[float], str]) -> str:
        """``median (min-max)``; just the value when every run gave the same."""
        if self.low == self.high:
            return fmt(self.median)
        return f"{fmt(self.median)} ({fmt(self.low)}-{fmt(self.high)})"

    def as_dict(self) -> dict[str, Any]:
        return {"median": self.median, "min": self.low, "max": self.high, "values": self.values}


def fmt_number(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def fmt_ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def verdict(figure: Figure, low: float, high: float) -> str:
    """Judge a figure against the band ``[low, high]`` it should lie in, given its spread.

    ``met`` when every repeat lies in the band, ``missed`` when none does, and ``within
    noise`` when the band's edge lies inside the spread: the repeats disagree, so one run
    more could go either way. The median's side is named then, since it is the best guess.
    """
    inside = [low <= value <= high for value in figure.values]
    alone = " (one run: no spread to judge the noise by)" if len(figure.values) == 1 else ""
    if all(inside):
        return "met" + alone
    if not any(inside) and (figure.high < low or figure.low > high):
        return "missed" + alone
    side = "meets" if low <= figure.median <= high else "misses"
    return f"within noise (median {side} it)"


# --------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Scale:
    """How a per-unit CPU cost is shown: ``unit`` "chunk", ``factor`` 1e6, ``label`` "µs"."""

    unit: str
    factor: float
    label: str


@dataclass(frozen=True)
class Metric:
    """A figure taken from each sample: its column header, how to compute it, how to show it."""

    key: str
    label: str
    value: Callable[[Sample], float]
    fmt: Callable[[float], str] = fmt_number
    higher_is_better: bool = False


def cpu_per_unit(scale: Scale) -> Metric:
    """CPU time of this process per unit, in ``scale.label``."""
    return Metric(
        "cpu_per_unit",
        f"CPU {scale.label}/{scale.unit}",
        lambda s: s.cpu / s.units * scale.factor,
    )


def rate(scale: Scale) -> Metric:
    """Units per wall-clock second."""
    return Metric(
        "rate", f"{scale.unit}s/s", lambda s: s.units / s.wall, lambda v: f"{v:,.0f}", True
    )


def wall() -> Metric:
    return Metric("wall", "wall s/run", lambda s: s.wall, lambda v: f"{v:.3f}")


def extra(key: str, label: str, fmt: Callable[[float], str] = lambda v: f"{v:.0f}") -> Metric:
    """A probe's reading (``Sample.extra[key]``), e.g. the server's peak connections."""
    return Metric(key, label, lambda s: s.extra[key], fmt)


def ratio_figure(
    results: Mapping[str, Sequence[Sample]], metric: Metric, of: str, per: str
) -> Figure:
    """``metric`` of ``of`` divided by that of ``per``, round by round (same round, same noise)."""
    pairs = zip(results[of], results[per], strict=True)
    return Figure(tuple(metric.value(a) / metric.value(b) for a, b in pairs))


@dataclass(frozen=True)
class Target:
    """A goal for a ratio between two contenders (or, with ``per`` None, for a figure itself).

    ``op``: "<=" or ">=" the goal, "~" within ``tolerance`` (a share) of it, "" no goal.
    """

    label: str
    metric: Metric
    of: str
    per: str | None
    op: Literal["<=", ">=", "~", ""]
    goal: float = 0.0
    tolerance: float = 0.0

    def band(self) -> tuple[float, float]:
        if self.op == "<=":
            return -math.inf, self.goal
        if self.op == ">=":
            return self.goal, math.inf
        return self.goal * (1 - self.tolerance), self.goal * (1 + self.tolerance)

    def goal_text(self) -> str:
        if self.op == "~":
            return f"{self.goal:g}x ± {self.tolerance:.0%}"
        return f"{self.op} {self.goal:g}x"


@dataclass(frozen=True)
class Table:
    """The columns of a case's table: figures per contender, then ratios to reference rows."""

    metrics: Sequence[Metric]
    ratios: Sequence[tuple[Metric, str]] = ()


# --------------------------------------------------------------------------- the report


@dataclass
class _Case:
    key: str
    title: str
    params: dict[str, Any]
    samples: dict[str, list[Sample]]
    columns: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class Report:
    """A benchmark's report: the environment first, then one table per case; JSON on request.

    Markdown goes to stdout (``> results.md`` keeps a clean copy); ``save`` writes every
    sample, every figure with its spread and every verdict, with the environment, as JSON.
    """

    def __init__(self, title: str, *, save: str | None = None) -> None:
        self.title = title
        self.environment = environment()
        self._save = save
        self._cases: list[_Case] = []
        self._extra: dict[str, Any] = {}
        lines = [f"## {title}", "", *environment_lines(self.environment), ""]
        print("\n".join(lines), flush=True)

    def case(
        self,
        *,
        key: str,
        title: str,
        params: dict[str, Any],
        results: dict[str, list[Sample]],
        table: Table,
        targets: Sequence[Target] = (),
        notes: Sequence[str] = (),
    ) -> None:
        """Print one case's table, its target lines and notes; keep all of it for ``save``."""
        case = _Case(key, title, params, results, notes=list(notes))
        repeat = max(len(samples) for samples in results.values())
        ratios = [(m, ref) for m, ref in table.ratios if ref in results]
        head = ["client", *(m.label for m in table.metrics)]
        head += [f"{m.label.split()[0]} ÷ {ref}" for m, ref in ratios]
        lines = [
            f"### {title}",
            "",
            f"Each cell: median (min-max) over {repeat} interleaved rounds; ratios are taken "
            "round by round.",
            "",
            "| " + " | ".join(head) + " |",
            "|" + "---|" * len(head),
        ]
        for name, samples in results.items():
            figures: dict[str, Any] = {}
            cells = [name]
            for metric in table.metrics:
                figure = Figure(tuple(metric.value(s) for s in samples))
                figures[metric.key] = figure.as_dict()
                cells.append(figure.show(metric.fmt))
            for metric, ref in ratios:
                figure = ratio_figure(results, metric, name, ref)
                figures[f"{metric.key}/{ref}"] = figure.as_dict()
                cells.append(figure.show(fmt_ratio))
            case.columns[name] = figures
            lines.append("| " + " | ".join(cells) + " |")
        shown = [t for t in targets if t.of in results and (t.per is None or t.per in results)]
        if shown:
            lines.append("")
        for target in shown:
            if target.per is None:
                figure = Figure(tuple(target.metric.value(s) for s in results[target.of]))
                text = figure.show(target.metric.fmt)
            else:
                figure = ratio_figure(results, target.metric, target.of, target.per)
                text = figure.show(fmt_ratio)
            record: dict[str, Any] = {"label": target.label, **figure.as_dict()}
            if target.op:
                judged = verdict(figure, *target.band())
                record.update(goal=target.goal_text(), verdict=judged)
                goal = target.goal_text()
                lines.append(f"- {target.label}: **{text}** (target {goal}: {judged})")
            else:
                lines.append(f"- {target.label}: **{text}**")
            case.targets.append(record)
        if notes:
            lines += ["", *notes]
        lines.append("")
        print("\n".join(lines), flush=True)
        self._cases.append(case)

    def add(self, key: str, value: Any) -> None:
        """Keep anything else (e.g. a benchmark's own table) in the saved JSON."""
        self._extra[key] = value

    def finish(self) -> None:
        """Write the JSON file if one was asked for."""
        if not self._save:
            return
        document = {
            "benchmark": self.title,
            "argv": sys.argv[1:],
            "environment": self.environment,
            "cases": [
                {
                    "key": c.key,
                    "title": c.title,
                    "params": c.params,
                    "samples": {n: [asdict(s) for s in ss] for n, ss in c.samples.items()},
                    "figures": c.columns,
                    "targets": c.targets,
                    "notes": c.notes,
                }
                for c in self._cases
            ],
            **self._extra,
        }
        Path(self._save).write_text(json.dumps(document, indent=2, default=_jsonable) + "\n")
        print(f"(saved to {self._save})", file=sys.stderr, flush=True)


def _jsonable(value: object) -> object:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot save {type(value).__name__} as JSON")
