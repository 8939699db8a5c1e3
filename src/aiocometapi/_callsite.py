"""Warnings attributed to the caller's line: the first frame outside this package.

A counted ``stacklevel`` breaks whenever a path gains or loses a frame (``parse()`` calls
``create()``, ``run_tools()`` calls it from a loop); walking out of the package's frames does
not. One walk serves every Python version (3.12's ``skip_file_prefixes`` would do the direct
case only), because ``fan_out`` needs more: its requests run in worker tasks whose stacks hold
no frame of the caller at all. For those, ``remember_caller`` stores the caller's line in the
context the workers run in, and warnings raised there go to that line.
"""

from __future__ import annotations

import contextvars
import os
import sys
import warnings
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

__all__ = ["CallSite", "caller", "remember_caller", "warn"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True, slots=True)
class CallSite:
    """A line of the caller's code: where a warning is shown."""

    filename: str
    lineno: int
    module_globals: dict[str, Any] = field(repr=False)


_remembered: contextvars.ContextVar[CallSite | None] = contextvars.ContextVar(
    "aiocometapi_call_site", default=None
)


def caller() -> CallSite | None:
    """The innermost frame on the stack that is not this package's (``None``: there is none)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
    if frame is None:
        return None
    return CallSite(frame.f_code.co_filename, frame.f_lineno, frame.f_globals)


def remember_caller(context: contextvars.Context) -> None:
    """Make warnings raised inside ``context`` point at the caller's line of now.

    For code that runs in tasks of its own (``fan_out``'s workers), where walking the stack
    finds the event loop instead of the caller.
    """
    context.run(_remembered.set, caller())


def warn(message: Warning) -> None:
    """Issue ``message`` (its class is the category) as if from the caller's line."""
    site = _remembered.get() or caller()
    if site is None:
        warnings.warn(message, stacklevel=2)
        return
    module_globals = site.module_globals
    warnings.warn_explicit(
        message,
        type(message),
        site.filename,
        site.lineno,
        module=module_globals.get("__name__", "<string>"),
        registry=module_globals.setdefault("__warningregistry__", {}),
        module_globals=module_globals,
    )
