"""Shared benchmark plumbing: the flags every script takes, the server to run against, progress."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator, Sequence

from _server import MockProcess, mock_server

__all__ = ["parse_args", "progress", "server"]


def parse_args(
    description: str,
    clients: Sequence[str],
    cases: Sequence[str],
    argv: Sequence[str] | None = None,
    *,
    repeat: int = 7,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> argparse.Namespace:
    """The flags every benchmark takes; ``extra`` may add its own."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--repeat",
        type=int,
        default=repeat,
        help=f"timed runs per client, interleaved round by round (default {repeat})",
    )
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
    parser.add_argument(
        "--save",
        metavar="FILE",
        help="also write the environment, every sample and every verdict as JSON",
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
def server(base_url: str | None) -> Iterator[MockProcess]:
    """A mock server already running at ``base_url`` if given (no connection counter), else a
    fresh one in a child process for the duration."""
    if base_url:
        yield MockProcess(base_url.rstrip("/"), None)
        return
    with mock_server() as process:
        progress(f"mock server: {process.url}")
        yield process


def progress(message: str) -> None:
    """A line of progress on stderr (the report itself goes to stdout)."""
    print(message, file=sys.stderr, flush=True)
