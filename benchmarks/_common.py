"""Shared benchmark plumbing: the mock server in its own process, timing, and the report."""

from __future__ import annotations

import argparse
import collections
import contextlib
import gc
import importlib.metadata
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass

__all__ = [
    "Sample",
    "Scale",
    "compare",
    "compare_and_report",
    "cpu_per_unit",
    "environment_line",
    "mock_server",
    "parse_args",
    "print_report",
    "progress",
    "rate",
    "server_url",
]

_LISTENING = re.compile(r"listening on (http://\S+)")


# --------------------------------------------------------------------------- the mock server


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def mock_server(
    *, port: int | None = None, startup_timeout: float = 30.0, **options: object
) -> Iterator[str]:
    """Run ``aiocometapi.testing.run`` in a child process; yield its base URL (``.../v1``).

    The child is always terminated and waited for on the way out, error or not. Its output
    is drained by a thread so that a chatty server can never block on a full pipe.
    """
    port = port or _free_port()
    kwargs = ", ".join(f"{key}={value!r}" for key, value in options.items())
    code = (
        "from aiocometapi.testing import run; "
        f"run(host='127.0.0.1', port={port}{', ' if kwargs else ''}{kwargs})"
    )
    proc = subprocess.Popen(
        [sys.executable, "-u", "-c", code],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    tail: collections.deque[str] = collections.deque(maxlen=40)
    found: list[str] = []
    ready = threading.Event()

    def drain() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            tail.append(line.rstrip("\n"))
            if not found:
                match = _LISTENING.search(line)
                if match:
                    found.append(match.group(1).rstrip("/"))
                    ready.set()
        ready.set()  # EOF: the child died (or closed its stdout); let the waiter look

    reader = threading.Thread(target=drain, name="mock-server-output", daemon=True)
    reader.start()
    try:
        if not ready.wait(startup_timeout) or not found:
            output = "\n".join(tail) or "(no output)"
            raise RuntimeError(
                f"the mock server did not report 'listening' within {startup_timeout:g} s "
                f"(exit code {proc.poll()}); its output:\n{output}"
            )
        url = found[0]
        if not url.endswith("/v1"):
            url += "/v1"
        yield url
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        reader.join(timeout=5)
        if proc.stdout is not None:
            proc.stdout.close()


# --------------------------------------------------------------------------- measuring


@dataclass(frozen=True)
class Sample:
    """One timed run of a case: wall seconds, CPU seconds of this process, units done."""

    wall: float
    cpu: float
    units: int


async def _timed(run: Callable[[], Awaitable[int]]) -> Sample:
    gc.collect()
    wall0 = time.perf_counter()
    cpu0 = time.process_time()
    units = await run()
    cpu1 = time.process_time()
    wall1 = time.perf_counter()
    return Sample(wall1 - wall0, cpu1 - cpu0, units)


async def compare(
    names: Sequence[str],
    run: Callable[[str], Awaitable[int]],
    *,
    repeat: int,
    expected_units: int,
) -> dict[str, list[Sample]]:
    """Time ``run(name)`` ``repeat`` times per client, round-robin, rotating the order.

    Interleaving the clients (rather than running one client's repeats back to back) spreads
    the shared machine's slow spells over all of them, which keeps the ratios honest.
    ``run`` returns how many units (chunks, requests) it got; any other count than
    ``expected_units`` aborts the benchmark.
    """
    samples: dict[str, list[Sample]] = {name: [] for name in names}
    for round_ in range(repeat):
        shift = round_ % len(names)
        for name in [*names[shift:], *names[:shift]]:
            sample = await _timed(lambda name=name: run(name))
            if sample.units != expected_units:
                raise AssertionError(f"{name}: got {sample.units} units, expected {expected_units}")
            samples[name].append(sample)
            progress(
                f"  {name:<15} round {round_ + 1}/{repeat}: wall {sample.wall:7.3f} s, "
                f"CPU {sample.cpu:7.3f} s"
            )
    gc.collect()
    return samples


async def compare_and_report(
    names: Sequence[str],
    run: Callable[[str], Awaitable[int]],
    *,
    repeat: int,
    expected_units: int,
    title: str,
    scale: Scale,
    targets: Callable[[dict[str, list[Sample]]], list[tuple[str, float, str, float]]],
) -> None:
    """``compare`` the clients, then print the table and the target lines for aiocometapi."""
    results = await compare(names, run, repeat=repeat, expected_units=expected_units)
    print_report(title, results, scale, ours="aiocometapi", floor="floor", targets=targets(results))


# --------------------------------------------------------------------------- reporting


@dataclass(frozen=True)
class Scale:
    """How a per-unit CPU cost is shown: ``unit`` "chunk", ``factor`` 1e6, ``label`` "µs"."""

    unit: str
    factor: float
    label: str


def _per_unit(samples: Sequence[Sample], scale: Scale) -> list[float]:
    return [s.cpu / s.units * scale.factor for s in samples]


def _rates(samples: Sequence[Sample]) -> list[float]:
    return [s.units / s.wall for s in samples]


def cpu_per_unit(samples: Sequence[Sample], scale: Scale) -> float:
    """Median CPU cost per unit, in ``scale.label``."""
    return statistics.median(_per_unit(samples, scale))


def rate(samples: Sequence[Sample]) -> float:
    """Median units per wall-clock second."""
    return statistics.median(_rates(samples))


def _fmt(value: float) -> str:
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.0f}"
    if value >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _ratio(value: float) -> str:
    return f"{value:.2f}x" if value < 10 else f"{value:.1f}x"


def print_report(
    title: str,
    results: dict[str, list[Sample]],
    scale: Scale,
    *,
    ours: str,
    floor: str,
    targets: Sequence[tuple[str, float, str, float]] = (),
) -> None:
    """Print a Markdown table (medians, min-max of CPU per unit) and the target ratios.

    ``targets``: (label, measured ratio, ">=" or "<=" or "" for no goal, goal).
    """
    unit = scale.unit
    head = (
        f"| client | {unit}s/run | wall s | CPU s | CPU {scale.label}/{unit} (min-max) | "
        f"{unit}s/s | CPU ÷ {floor} | CPU ÷ {ours} | {unit}s/s ÷ {ours} |"
    )
    lines = [f"### {title}", "", head, "|" + "---|" * head.count(" | ") + "---|"]
    ours_cpu = cpu_per_unit(results[ours], scale) if ours in results else None
    ours_rate = rate(results[ours]) if ours in results else None
    floor_cpu = cpu_per_unit(results[floor], scale) if floor in results else None
    for name, samples in results.items():
        per_unit = _per_unit(samples, scale)
        cpu = statistics.median(per_unit)
        speed = rate(samples)
        cells = [
            name,
            f"{samples[0].units:,}",
            f"{statistics.median(s.wall for s in samples):.3f}",
            f"{statistics.median(s.cpu for s in samples):.3f}",
            f"{_fmt(cpu)} ({_fmt(min(per_unit))}-{_fmt(max(per_unit))})",
            f"{speed:,.0f}",
            _ratio(cpu / floor_cpu) if floor_cpu else "-",
            _ratio(cpu / ours_cpu) if ours_cpu else "-",
            _ratio(speed / ours_rate) if ours_rate else "-",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if targets:
        lines.append("")
        for label, value, op, goal in targets:
            if not op:
                lines.append(f"- {label}: **{_ratio(value)}**")
                continue
            met = value <= goal if op == "<=" else value >= goal
            verdict = "met" if met else "MISSED"
            lines.append(f"- {label}: **{_ratio(value)}** (target {op} {goal:g}x: {verdict})")
    lines.append("")
    print("\n".join(lines), flush=True)


# --------------------------------------------------------------------------- command line


def parse_args(
    description: str,
    clients: Sequence[str],
    cases: Sequence[str],
    argv: Sequence[str] | None = None,
    *,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The flags every benchmark takes; ``extra`` may add its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per client (median)")
    parser.add_argument("--case", choices=[*cases, "all"], default="all")
    parser.add_argument(
        "--only",
        default=",".join(clients),
        help=f"comma-separated clients to run (default: {','.join(clients)})",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument(
        "--base-url", help="use a mock server already running there instead of starting one"
    )
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    only = [name.strip() for name in args.only.split(",") if name.strip()]
    unknown = sorted(set(only) - set(clients))
    if unknown or not only:
        parser.error(f"--only takes some of {', '.join(clients)}; got {args.only!r}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    args.only = [name for name in clients if name in only]
    args.cases = list(cases) if args.case == "all" else [args.case]
    return args


@contextlib.contextmanager
def server_url(base_url: str | None) -> Iterator[str]:
    """``base_url`` if given, else a fresh mock server's for the duration."""
    if base_url:
        yield base_url.rstrip("/")
        return
    with mock_server() as url:
        progress(f"mock server: {url}")
        yield url


def environment_line() -> str:
    versions = []
    for package in ("aiocometapi", "openai", "httpx2", "aiohttp", "msgspec"):
        try:
            versions.append(f"{package} {importlib.metadata.version(package)}")
        except importlib.metadata.PackageNotFoundError:
            versions.append(f"{package} (absent)")
    return (
        f"Python {platform.python_version()} on {platform.machine()}, "
        f"{os.cpu_count()} CPUs; " + ", ".join(versions)
    )


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
