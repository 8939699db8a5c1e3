"""What a batch run tells its user: warnings, progress, the summary and the exit status."""

from __future__ import annotations

import contextlib
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

__all__ = [
    "EXIT_STOPPED_EARLY",
    "EXIT_USAGE",
    "BatchError",
    "BatchSummary",
    "Reporter",
    "progress_text",
    "summary_text",
]

EXIT_USAGE = 2
EXIT_STOPPED_EARLY = 3
_EXIT_ON_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}
_MAX_MESSAGES = 1000
"""Distinct failure messages counted; past this many, only those already seen are counted."""


class BatchError(Exception):
    """A usage error, or an input that cannot be run with ``strict`` (exit status 2)."""


@dataclass
class BatchSummary:
    """What one run did; printed at its end."""

    input_path: str
    output_path: str
    total: int = 0
    """Input lines that are not blank."""
    succeeded: int = 0
    """Answered with a completion in this run."""
    failed: Counter[str] = field(default_factory=Counter)
    """Lines answered with an error in this run, by HTTP status or error code."""
    skipped: int = 0
    """Lines already answered in the output before this run."""
    skipped_failed: int = 0
    """Of ``skipped``, those whose answer in the output is an error."""
    malformed: int = 0
    """Lines that could not be run (bad JSON or fields, unsupported url, repeated custom_id)."""
    rate_limited: int = 0
    """429 answers seen (retried ones included)."""
    tokens: int = 0
    """Tokens the answers of this run reported."""
    cost: float | None = None
    """Their cost at the client's prices (``None`` without prices)."""
    elapsed: float = 0.0
    interrupted: str | None = None
    """The signal that stopped the run (``"SIGINT"``, ``"SIGTERM"``), if one did."""
    stopped_by: str | None = None
    """The error that stopped the run, if one did."""
    stopped_early: str | None = None
    """Why the run stopped sending, when its answers showed that every request would fail
    the same way (a refused key, an unreachable host, a wrong URL); it quotes the server."""
    budget_reached: str | None = None
    """Why the run stopped sending at its budget (``--max-tokens-total``, ``--max-cost``)."""
    sent: int = 0
    """With ``stopped_early`` or ``budget_reached``: the requests sent before the stop."""
    messages: Counter[str] = field(default_factory=Counter)
    """Failed lines of this run by ``"<status or code>: <the error's message>"``."""

    def count_message(self, message: str) -> None:
        """Count one failed line under its error message."""
        if message in self.messages or len(self.messages) < _MAX_MESSAGES:
            self.messages[message] += 1

    @property
    def answered(self) -> int:
        return self.succeeded + sum(self.failed.values())

    @property
    def processed(self) -> int:
        return self.answered + self.skipped + self.malformed

    @property
    def exit_status(self) -> int:
        """130/143 after SIGINT/SIGTERM; 3 when stopped early; 1 if a line failed, was
        malformed or was not run; else 0.

        Lines answered in an earlier run count too: 0 means the output holds a successful
        answer for every input line.
        """
        if self.interrupted is not None:
            return _EXIT_ON_SIGNAL.get(self.interrupted, 1)
        if self.stopped_early is not None:
            return EXIT_STOPPED_EARLY
        unfinished = self.total - self.processed
        if self.failed or self.skipped_failed or self.malformed or unfinished > 0:
            return 1
        return 0


# --------------------------------------------------------------------------- stderr


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Reporter:
    """Warnings, the progress line and the summary on stderr; secrets are blanked out."""

    def __init__(self, stream: TextIO, progress: bool, redact: tuple[str, ...]) -> None:
        self._stream = stream
        self.redact = redact
        """Strings blanked out of everything shown."""
        self.progress_enabled = progress
        try:
            self.tty = progress and stream.isatty()
        except (AttributeError, ValueError):
            self.tty = False
        self._drawn = False

    def _write(self, text: str) -> None:
        for secret in self.redact:
            text = text.replace(secret, "[redacted]")
        with contextlib.suppress(OSError, ValueError):
            self._stream.write(text)
            self._stream.flush()

    def line(self, text: str) -> None:
        self._write(("\r\x1b[K" if self._drawn else "") + text + "\n")
        self._drawn = False

    def warn(self, text: str) -> None:
        self.line(f"aiocometapi batch: {text}")

    def progress(self, text: str) -> None:
        if self.tty:
            self._write("\r" + text + "\x1b[K")
            self._drawn = True
        else:
            self.line(text)


def _cut(text: str, size: int) -> str:
    return text if len(text) <= size else text[: size - 1] + "…"


def progress_text(s: BatchSummary) -> str:
    """The progress line shown while the run goes on."""
    rate = s.answered / s.elapsed if s.elapsed > 0 else 0.0
    left = s.total - s.processed
    eta = _duration(left / rate) if rate > 0 and left >= 0 else "?"
    share = f" {100 * s.processed / s.total:.1f}%" if s.total else ""
    return (
        f"batch {s.processed:,}/{s.total:,}{share} | {rate:.1f}/s | ETA {eta} | "
        f"ok {s.succeeded:,} | failed {sum(s.failed.values()):,} | "
        f"429s {s.rate_limited:,} | tokens {s.tokens:,}"
        + (f" | cost {s.cost:.4f}" if s.cost is not None else "")
    )


def summary_text(s: BatchSummary) -> str:
    """The summary printed when the run ends, however it ends."""
    if s.interrupted is not None:
        head = f"interrupted by {s.interrupted} after {s.elapsed:.1f} s"
    elif s.stopped_early is not None:
        head = f"stopped after {s.sent:,} request(s) in {s.elapsed:.1f} s: {s.stopped_early}"
    elif s.budget_reached is not None:
        head = f"stopped at its budget after {s.sent:,} request(s) in {s.elapsed:.1f} s: " + (
            s.budget_reached
        )
    elif s.stopped_by is not None:
        head = f"stopped by an error after {s.elapsed:.1f} s: {s.stopped_by}"
    else:
        head = f"finished in {s.elapsed:.1f} s"
    failed = sum(s.failed.values())
    by = ", ".join(f"{key}: {count:,}" for key, count in sorted(s.failed.items()))
    rows = [
        ("lines", f"{s.total:,} in {s.input_path}"),
        ("succeeded", f"{s.succeeded:,}"),
        ("failed", f"{failed:,}" + (f" ({by})" if by else "")),
    ]
    if s.messages:
        [(message, count)] = s.messages.most_common(1)
        rows.append(("", f"most often ({count:,}): {_cut(message, 300)}"))
    rows += [
        (
            "skipped",
            f"{s.skipped:,} already answered in {s.output_path}"
            + (
                f" ({s.skipped_failed:,} of them failed: --retry-failed sends those again)"
                if s.skipped_failed
                else ""
            ),
        ),
        ("malformed", f"{s.malformed:,}"),
    ]
    left = s.total - s.processed
    if left > 0:
        again = "fix the cause, then rerun" if s.stopped_early else "rerun"
        rows.append(("not run", f"{left:,} ({again} the same command to resume)"))
    rate = s.answered / s.elapsed if s.elapsed > 0 else 0.0
    rows += [
        ("429s", f"{s.rate_limited:,}"),
        ("tokens", f"{s.tokens:,}"),
        *([("cost", f"{s.cost:.6g}")] if s.cost is not None else []),
        ("rate", f"{rate:.1f} requests/s"),
    ]
    return "\n".join(
        [f"aiocometapi batch: {head}"] + [f"  {name:<10} {value}" for name, value in rows]
    )
